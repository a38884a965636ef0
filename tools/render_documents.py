#!/usr/bin/env python3
"""Renders Korean test documents with their ground-truth text.

A receipt (PNG), a business registration certificate (JPEG), an ID card
(PNG) and a two-page lease contract (PDF, and the same as a multi-page TIFF), set in Nanum fonts (Debian: fonts-nanum), at 200 dpi on
A4-like pages. Each document's text, line by line, goes to <name>.txt beside it.

Usage: render_documents.py OUTPUT_DIR
       render_documents.py --photo OUTPUT.jpg
       render_documents.py --long-pdf OUTPUT.pdf PAGES
       render_documents.py --pdf-variants OUTPUT_DIR

--photo writes the receipt as a phone would: about 4000 px on its long side,
with sensor noise, stored sideways with the EXIF orientation that turns it
upright (6: rotate 90 degrees clockwise to display); and beside it, as
OUTPUT-upright.png, the same pixels turned upright and stored losslessly. Tests render them when they
run, so no multi-megabyte photo is committed.

--long-pdf writes a PDF of PAGES scanned pages, as a scanner with OCR writes
it: each page a greyscale JPEG at 100 dpi showing "PAGEMARK nnn" and clause
lines, under an invisible text layer with the same mark (which a test's fake
OCR service reads back, so that page order can be checked end to end).

--pdf-variants writes the same five-page PDF as the structures readers meet:
plain.pdf (classic cross-reference table), linearized.pdf, owner-password.pdf
(AES-256, opens without a password), user-password.pdf (needs "open-sesame"),
and incremental.pdf (plain.pdf with an appended update that revises page 2).
"""

import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

FONT_DIR = Path("/usr/share/fonts/truetype/nanum")
REGULAR = FONT_DIR / "NanumGothic.ttf"
BOLD = FONT_DIR / "NanumGothicBold.ttf"

RECEIPT = [
    ("영수증", 56, True),
    ("", 20, False),
    ("상호: 한빛커피 강남점", 36, False),
    ("사업자번호: 214-86-12345", 36, False),
    ("주소: 서울특별시 강남구 테헤란로 123", 36, False),
    ("일시: 2026-11-25 14:32", 36, False),
    ("", 20, False),
    ("아메리카노 2 9,000", 36, False),
    ("카페라떼 1 5,000", 36, False),
    ("치즈케이크 1 6,500", 36, False),
    ("", 20, False),
    ("공급가액 18,637", 36, False),
    ("부가세 1,863", 36, False),
    ("합계 20,500원", 44, True),
    ("", 20, False),
    ("카드승인 신한카드 12345678", 36, False),
    ("감사합니다", 36, False),
]

BUSINESS_REGISTRATION = [
    ("사업자등록증", 60, True),
    ("(법인사업자)", 36, False),
    ("", 24, False),
    ("등록번호: 120-81-47521", 38, False),
    ("법인명(단체명): 주식회사 예시솔루션", 38, False),
    ("대표자: 김민준", 38, False),
    ("개업연월일: 2019년 03월 15일", 38, False),
    ("법인등록번호: 110111-7012345", 38, False),
    ("사업장 소재지: 서울특별시 마포구 월드컵북로 21", 38, False),
    ("본점 소재지: 서울특별시 마포구 월드컵북로 21", 38, False),
    ("사업의 종류: 업태 정보통신업 종목 소프트웨어 개발", 38, False),
    ("", 24, False),
    ("2026년 11월 25일", 38, False),
    ("마포세무서장", 44, True),
]

CONTRACT_PAGES = [
    [
        ("부동산 임대차 계약서", 56, True),
        ("", 24, False),
        ("임대인과 임차인은 아래 부동산에 관하여 다음과 같이 계약한다.", 34, False),
        ("", 18, False),
        ("제1조 (목적) 임대인은 아래 부동산을 임차인에게 임대한다.", 34, False),
        ("소재지: 서울특별시 송파구 올림픽로 300", 34, False),
        ("면적: 84.5 제곱미터", 34, False),
        ("", 18, False),
        ("제2조 (보증금) 보증금은 금 오천만원정으로 한다.", 34, False),
        ("계약금은 계약 시에 지불하고 잔금은 입주일에 지불한다.", 34, False),
        ("", 18, False),
        ("제3조 (차임) 월 차임은 금 일백이십만원정으로 한다.", 34, False),
        ("매월 말일에 임대인의 계좌로 지불한다.", 34, False),
    ],
    [
        ("제4조 (존속기간) 임대차 기간은 2027년 1월 1일부터", 34, False),
        ("2028년 12월 31일까지로 한다.", 34, False),
        ("", 18, False),
        ("제5조 (계약의 해제) 임차인이 차임을 2회 이상 연체하면", 34, False),
        ("임대인은 계약을 해지할 수 있다.", 34, False),
        ("", 18, False),
        ("본 계약을 증명하기 위하여 계약서 2통을 작성하고", 34, False),
        ("임대인과 임차인이 서명 날인한다.", 34, False),
        ("", 24, False),
        ("임대인: 박서연 (인)", 36, False),
        ("임차인: 이도윤 (인)", 36, False),
        ("2026년 11월 25일", 36, False),
    ],
]


# An ID card: the holder's resident registration number, and a 13-digit
# reference that is no such number (month 13), which must be left alone.
ID_CARD = [
    ("주민등록증", 56, True),
    ("", 20, False),
    ("홍길동", 44, False),
    ("900101-1234568", 44, False),
    ("서울특별시 종로구 세종대로 209", 34, False),
    ("2021. 3. 15.", 34, False),
    ("서울특별시 종로구청장", 36, True),
    ("참고번호 991399-1234567", 30, False),
]


def render(lines, width=1654, margin=110):
    """One white page with `lines` set top to bottom, left-aligned (titles centred)."""
    height = margin * 2 + sum(int(size * 1.7) for _, size, _ in lines)
    height = max(height, 900)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y = margin
    for text, size, bold in lines:
        font = ImageFont.truetype(str(BOLD if bold else REGULAR), size)
        if text:
            left = (width - draw.textlength(text, font=font)) / 2 if bold else margin
            draw.text((left, y), text, fill=0, font=font)
        y += int(size * 1.7)
    return page


def truth(lines):
    return "\n".join(text for text, _, _ in lines if text) + "\n"


def photo(out: Path) -> None:
    # The receipt on a table, filling the middle of a 3000 x 4000 portrait frame.
    receipt = render(RECEIPT, width=1000)
    receipt = receipt.resize((receipt.width * 8 // 5, receipt.height * 8 // 5), Image.BICUBIC)
    frame = Image.new("L", (3000, 4000), 170)
    frame.paste(receipt, ((frame.width - receipt.width) // 2, (frame.height - receipt.height) // 2))
    large = frame.filter(ImageFilter.GaussianBlur(0.8))
    # Seeded, so that every run reads the same photo.
    grain = random.Random(7).randbytes(large.width * large.height)
    noise = Image.frombytes("L", large.size, grain)
    noisy = Image.blend(large, noise, 0.06).convert("RGB")
    sideways = noisy.transpose(Image.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(out, quality=92, exif=exif.tobytes())
    # Its twin: the photo's own pixels turned upright, stored losslessly.
    ImageOps.exif_transpose(Image.open(out)).save(out.with_name(out.stem + "-upright.png"))


def page_mark(number: int) -> str:
    return f"PAGEMARK {number:03d}"


def scan_of(number: int) -> bytes:
    """One A4 page at 100 dpi, greyscale JPEG: the mark large, clause lines below."""
    import io

    page = Image.new("L", (827, 1169), 255)
    draw = ImageDraw.Draw(page)
    draw.text((80, 80), page_mark(number), fill=0, font=ImageFont.truetype(str(BOLD), 44))
    body = ImageFont.truetype(str(REGULAR), 22)
    for line in range(12):
        draw.text((80, 200 + line * 60), f"Clause {number}.{line + 1}: the parties agree to the terms.", fill=40, font=body)
    buffer = io.BytesIO()
    page.save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()


def text_pdf(marks, scans=False):
    """A pikepdf document of one page per mark: Helvetica text, or a scan under invisible text."""
    import pikepdf
    from pikepdf import Dictionary, Name

    pdf = pikepdf.new()
    font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica))
    for number, mark in marks:
        resources = Dictionary(Font=Dictionary(F1=font))
        if scans:
            image = pikepdf.Stream(pdf, scan_of(number), Type=Name.XObject, Subtype=Name.Image,
                                   Width=827, Height=1169, ColorSpace=Name.DeviceGray,
                                   BitsPerComponent=8, Filter=Name.DCTDecode)
            resources.XObject = Dictionary(Scan=image)
            content = f"q 595 0 0 842 0 0 cm /Scan Do Q BT 3 Tr /F1 24 Tf 58 780 Td ({mark}) Tj ET"
        else:
            content = f"BT /F1 36 Tf 72 700 Td ({mark}) Tj ET"
        page = Dictionary(Type=Name.Page, MediaBox=[0, 0, 595, 842], Resources=resources,
                          Contents=pdf.make_stream(content.encode()))
        pdf.pages.append(pikepdf.Page(page))
    return pdf


def long_pdf(out: Path, pages: int) -> None:
    text_pdf([(n, page_mark(n)) for n in range(1, pages + 1)], scans=True).save(out, static_id=True)


def pdf_variants(out: Path) -> None:
    import pikepdf

    out.mkdir(parents=True, exist_ok=True)
    plain = out / "plain.pdf"
    text_pdf([(n, f"PAGE {n}") for n in range(1, 6)]).save(
        plain, static_id=True, object_stream_mode=pikepdf.ObjectStreamMode.disable, compress_streams=False)
    with pikepdf.open(plain) as pdf:
        pdf.save(out / "linearized.pdf", static_id=True, linearize=True)
        pdf.save(out / "owner-password.pdf", static_id=True,
                 encryption=pikepdf.Encryption(owner="owner-secret", user="", R=6))
        pdf.save(out / "user-password.pdf", static_id=True,
                 encryption=pikepdf.Encryption(owner="owner-secret", user="open-sesame", R=6))
        contents = pdf.pages[1].obj.Contents.objgen[0]
        size = int(pdf.trailer.Size)
        root = pdf.trailer.Root.objgen[0]
    # An incremental update, as an editor appends it: page 2's content stream
    # again under its own number, a cross-reference section for it alone, and
    # a trailer that points back at the original one.
    original = plain.read_bytes()
    previous = int(original[original.rindex(b"startxref") + 9:].split()[0])
    stream = b"BT /F1 36 Tf 72 700 Td (PAGE 2 REVISED) Tj ET"
    update = bytearray(b"\n")
    offset = len(original) + len(update)
    update += b"%d 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (contents, len(stream), stream)
    xref = len(original) + len(update)
    update += b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \n" % (contents, offset)
    update += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, previous, xref)
    (out / "incremental.pdf").write_bytes(original + bytes(update))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    render(RECEIPT, width=1000).save(out / "receipt.png", optimize=True)
    (out / "receipt.txt").write_text(truth(RECEIPT), encoding="utf-8")

    render(BUSINESS_REGISTRATION).convert("RGB").save(out / "business-registration.jpg", quality=90)
    (out / "business-registration.txt").write_text(truth(BUSINESS_REGISTRATION), encoding="utf-8")

    render(ID_CARD, width=1100, margin=70).save(out / "id-card.png", optimize=True)
    (out / "id-card.txt").write_text(truth(ID_CARD), encoding="utf-8")

    pages = [render(lines).convert("RGB") for lines in CONTRACT_PAGES]
    pages[0].save(out / "contract.pdf", save_all=True, append_images=pages[1:], resolution=200.0)
    # The same two pages as one multi-page TIFF, as a scanner writes it.
    grey = [page.convert("L") for page in pages]
    grey[0].save(out / "contract.tif", save_all=True, append_images=grey[1:],
                 compression="tiff_deflate", dpi=(200, 200))
    # Pages apart by a blank line, as the pipeline joins them.
    (out / "contract.txt").write_text("\n".join(truth(lines) for lines in CONTRACT_PAGES), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--photo":
        photo(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--long-pdf":
        long_pdf(Path(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--pdf-variants":
        pdf_variants(Path(sys.argv[2]))
    elif len(sys.argv) == 2:
        main(Path(sys.argv[1]))
    else:
        sys.exit(__doc__)
