#!/usr/bin/env python3
"""Writes the bad-input corpus: files a careless or hostile client uploads.

Usage: bad_inputs.py OUTPUT_DIR
       bad_inputs.py --scanned-pdf OUTPUT PAGES   (a scan of PAGES pages, about 43 KB each)

Written at test time (nothing large is committed), from the rendered
documents in tests/fixtures/documents and a few bytes of each format. What
each file must come to (refused at creation, rejected by ingest, failed with
a reason, or read) is asserted by the test that uploads them
(cli/tests/local_stack.rs, bad_input_corpus_*), not here.
"""

import io
import struct
import sys
import zipfile
import zlib
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "documents"


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with one tiny deflated row: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def jpeg_with_pdf_inside() -> bytes:
    """A real JPEG carrying a PDF header in a comment segment right after SOI."""
    jpeg = (FIXTURES / "business-registration.jpg").read_bytes()
    comment = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n"
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return jpeg[:2] + segment + jpeg[2:]


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("scan.png", (FIXTURES / "receipt.png").read_bytes())
    return buffer.getvalue()


def windows_program() -> bytes:
    """The start of a PE executable: the MZ stub and the PE signature it points to."""
    stub = bytearray(128)
    stub[0:2] = b"MZ"
    stub[0x3C:0x40] = struct.pack("<I", 0x80)
    return bytes(stub) + b"PE\x00\x00" + bytes(60)


def sideways_photo_100_mp() -> bytes:
    """A 10000 x 10000 RGB photo stored sideways (EXIF orientation 6): 1-2 MB on
    disk, 300 MB decoded at full size, twice that turned in one piece."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (10000, 10000), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    for row in range(40):
        draw.rectangle([800, 600 + row * 220, 8800, 660 + row * 220], fill=(30, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, exif=exif.tobytes())
    return out.getvalue()


def jpeg_frame_past_64_kib(width: int, height: int) -> bytes:
    """A JPEG whose frame header follows 3 metadata segments of 64 KiB: a check
    of the first 64 KiB alone never sees what it declares."""
    out = b"\xff\xd8"
    for _ in range(3):
        out += b"\xff\xef\xff\xff" + b" " * (0xFFFF - 2)
    out += b"\xff\xc0\x00\x0b\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00"
    out += b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x12\x34\xff\xd9"
    return out


def tiff_pages(sizes: list) -> bytes:
    """A little-endian TIFF with one directory (width, height) per page."""
    out = b"II*\x00" + struct.pack("<I", 8)
    for i, (width, height) in enumerate(sizes):
        at = len(out)
        out += struct.pack("<H", 2)
        out += struct.pack("<HHII", 256, 4, 1, width) + struct.pack("<HHII", 257, 4, 1, height)
        out += struct.pack("<I", at + 2 + 24 + 4 if i + 1 < len(sizes) else 0)
    return out


def object_stream_bomb() -> bytes:
    """About 1 MB of PDF whose four object streams inflate to 250 MiB each,
    with /Encrypt named only in a comment (which once forced a full parse)."""
    data = zlib.compress(bytes(250 * 1024 * 1024), 9)
    out = b"%PDF-1.5\n% /Encrypt\n"
    for n in range(1, 5):
        out += f"{n} 0 obj\n<< /Type /ObjStm /N 1 /First 0 /Filter /FlateDecode /Length {len(data)} >>\nstream\n".encode()
        out += data + b"\nendstream\nendobj\n"
    out += b"5 0 obj\n<< /Type /Catalog /Pages 6 0 R >>\nendobj\n"
    out += b"6 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    out += b"trailer\n<< /Root 5 0 R >>\n%%EOF\n"
    return out


def scanned_pdf(path: Path, pages: int) -> None:
    """A PDF of `pages` scanned pages: each a noisy 1240 x 1754 grey JPEG of
    about 43 KB (an A4 page at 150 dpi), so 1,000 pages come near the 50 MiB limit."""
    import random

    import pikepdf
    from PIL import Image, ImageDraw

    rng = random.Random(20261203)
    pdf = pikepdf.new()
    for number in range(1, pages + 1):
        image = Image.new("L", (1240, 1754), 235)
        draw = ImageDraw.Draw(image)
        for row in range(30):
            y = 120 + row * 52
            draw.rectangle([100, y, 100 + rng.randrange(600, 1040), y + 18], fill=40)
        for _ in range(100):
            x, y = rng.randrange(1240), rng.randrange(1754)
            draw.point((x, y), fill=rng.randrange(256))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=50, optimize=True)
        jpeg = pdf.make_stream(out.getvalue(), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                               Width=1240, Height=1754, ColorSpace=pikepdf.Name.DeviceGray,
                               BitsPerComponent=8, Filter=pikepdf.Name.DCTDecode)
        content = pdf.make_stream(b"q 595 0 0 842 0 0 cm /Im0 Do Q")
        page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842], Contents=content,
                                  Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=jpeg)))
        pdf.pages.append(pikepdf.Page(page))
    pdf.save(path, static_id=True)


def pdfs(out: Path) -> None:
    import pikepdf
    from pikepdf import Dictionary, Name

    def text_pdf(pages: int) -> pikepdf.Pdf:
        pdf = pikepdf.new()
        font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica))
        for number in range(1, pages + 1):
            content = f"BT /F1 36 Tf 72 700 Td (PAGE {number}) Tj ET".encode()
            page = Dictionary(Type=Name.Page, MediaBox=[0, 0, 595, 842],
                              Resources=Dictionary(Font=Dictionary(F1=font)), Contents=pdf.make_stream(content))
            pdf.pages.append(pikepdf.Page(page))
        return pdf

    text_pdf(0).save(out / "no-pages.pdf", static_id=True)
    text_pdf(1000).save(out / "pages-1000.pdf", static_id=True)
    text_pdf(1001).save(out / "pages-1001.pdf", static_id=True)
    text_pdf(2).save(out / "password.pdf", static_id=True,
                     encryption=pikepdf.Encryption(owner="owner-secret", user="open-sesame", R=6))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    receipt = (FIXTURES / "receipt.png").read_bytes()
    jpeg = (FIXTURES / "business-registration.jpg").read_bytes()
    contract = (FIXTURES / "contract.pdf").read_bytes()
    files = {
        "empty.png": b"",
        "one-byte.png": b"x",
        "truncated.png": receipt[: len(receipt) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.pdf": contract[: len(contract) // 2],
        "jpeg-with-pdf-header.jpg": jpeg_with_pdf_inside(),
        "page.html.png": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        "drawing.svg.png": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
        "archive.zip.pdf": zip_archive(),
        "program.exe.png": windows_program(),
        "bomb-60000x60000.png": png_declaring(60000, 60000),
        "sideways-100mp.jpg": sideways_photo_100_mp(),
        "frame-past-64k-20000x20000.jpg": jpeg_frame_past_64_kib(20000, 20000),
        "tiff-huge-third-page.tif": tiff_pages([(2480, 3508), (2480, 3508), (60000, 60000)]),
        "object-stream-bomb.pdf": object_stream_bomb(),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    pdfs(out)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--scanned-pdf":
        scanned_pdf(Path(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 2:
        main(Path(sys.argv[1]))
    else:
        sys.exit(__doc__)
