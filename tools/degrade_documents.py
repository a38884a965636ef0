#!/usr/bin/env python3
"""Turns rendered documents into what users send: photos held at an angle,
in perspective, on curled paper, blurred, in low light, with JPEG noise,
sideways or upside down with no EXIF to say so, pages scanned small, and
photos past reading (blurred and dark).

Usage: degrade_documents.py DOCUMENTS_DIR OUTPUT_DIR

For each of receipt.png, business-registration.jpg and id-card.png in
DOCUMENTS_DIR (as render_documents.py writes them) it writes
<name>--<condition>.<png|jpg> into OUTPUT_DIR, and conditions.tsv listing
file, document and condition. The truth of each is the document's own
<name>.txt. Every condition is seeded: the same inputs give the same files.
"""

import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

DOCUMENTS = ["receipt.png", "business-registration.jpg", "id-card.png"]
# A table under the paper: darker than it, with some texture.
TABLE = (96, 84, 72)


def noise(size, seed):
    """Seeded grey noise around mid-grey (Image.effect_noise is not seeded)."""
    rng = random.Random(seed)
    return Image.frombytes("L", size, rng.randbytes(size[0] * size[1])).convert("RGB")


def on_table(page, margin):
    """The page laid on a table, `margin` of the page's width around it."""
    pad = int(page.width * margin)
    table = Image.new("RGB", (page.width + 2 * pad, page.height + 2 * pad), TABLE)
    table = Image.blend(table, noise(table.size, "table"), 0.08)
    table.paste(page, (pad, pad))
    return table


def tilted(page, degrees, blur):
    photo = on_table(page, 0.06).rotate(degrees, resample=Image.BICUBIC, expand=True, fillcolor=TABLE)
    return photo.filter(ImageFilter.GaussianBlur(blur)) if blur else photo


def perspective(page):
    """Photographed from below its bottom edge: the top is narrower."""
    photo = on_table(page, 0.08)
    w, h = photo.size
    inset = w * 0.12
    # Image.transform maps each output pixel to an input one: solve the 8
    # coefficients that take the output's corners to the narrowed quadrilateral.
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(inset, 0), (w - inset, 0), (w, h), (0, h)]
    coefficients = solve_perspective(dst, src)
    return photo.transform((w, h), Image.PERSPECTIVE, coefficients, Image.BICUBIC, fillcolor=TABLE)


def solve_perspective(src, dst):
    """The coefficients of the projective map taking each `src` point to its `dst` point."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    # Gaussian elimination: 8 equations, no numpy needed.
    n = len(rows)
    matrix = [row + [value] for row, value in zip(rows, rhs)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(matrix[r][col]))
        matrix[col], matrix[pivot] = matrix[pivot], matrix[col]
        for r in range(n):
            if r != col:
                factor = matrix[r][col] / matrix[col][col]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[col])]
    return [matrix[i][n] / matrix[i][i] for i in range(n)]


def curled(page):
    """Paper curling up at its sides: rows bend by up to 2.5% of the height."""
    photo = on_table(page, 0.05)
    w, h = photo.size
    amplitude = h * 0.025
    strips = 40
    mesh = []
    for i in range(strips):
        x0, x1 = w * i // strips, w * (i + 1) // strips
        lift = lambda x: amplitude * (2 * x / w - 1) ** 2
        # Output box, then the input quad it samples (NW, SW, SE, NE).
        mesh.append(((x0, 0, x1, h), (x0, lift(x0), x0, h + lift(x0) - 2 * amplitude,
                                      x1, h + lift(x1) - 2 * amplitude, x1, lift(x1))))
    return photo.transform((w, h), Image.MESH, mesh, Image.BICUBIC, fillcolor=TABLE)


def low_light(page, rng):
    dark = ImageEnhance.Brightness(page).enhance(0.45)
    dark = ImageEnhance.Contrast(dark).enhance(0.8)
    return Image.blend(dark, noise(page.size, rng.random()), 0.12)


def small(page):
    width = 600
    return page.resize((width, round(page.height * width / page.width)), Image.LANCZOS)


CONDITIONS = {
    # name: (make, format, JPEG quality)
    "clean": (lambda page, rng: page, "png", None),
    "small-600px": (lambda page, rng: small(page), "png", None),
    "tilt-5-blur": (lambda page, rng: tilted(page, 5, 1.0), "jpg", 85),
    "tilt-12-blur": (lambda page, rng: tilted(page, -12, 1.0), "jpg", 85),
    "tilt-20-blur": (lambda page, rng: tilted(page, 20, 1.2), "jpg", 80),
    "tilt-30": (lambda page, rng: tilted(page, -30, 0), "jpg", 85),
    "perspective": (lambda page, rng: perspective(page), "jpg", 85),
    "curl": (lambda page, rng: curled(page), "jpg", 85),
    "blur": (lambda page, rng: page.filter(ImageFilter.GaussianBlur(1.6)), "jpg", 85),
    "jpeg-noise": (lambda page, rng: page, "jpg", 20),
    "low-light": (low_light, "jpg", 75),
    # Past reading: the app should ask for another photo (retake_photo).
    "unreadable": (lambda page, rng: ImageEnhance.Brightness(page.filter(ImageFilter.GaussianBlur(6))).enhance(0.3), "jpg", 60),
    "upside-down": (lambda page, rng: page.rotate(180), "png", None),
    "sideways": (lambda page, rng: page.rotate(90, expand=True), "png", None),
}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    listing = ["file\tdocument\tcondition"]
    for name in DOCUMENTS:
        page = Image.open(source / name).convert("RGB")
        stem = name.rsplit(".", 1)[0]
        for condition, (make, extension, quality) in CONDITIONS.items():
            rng = random.Random(f"{stem}/{condition}")
            image = make(page, rng)
            path = out / f"{stem}--{condition}.{extension}"
            if extension == "jpg":
                image.convert("RGB").save(path, quality=quality)
            else:
                image.save(path)
            listing.append(f"{path.name}\t{stem}\t{condition}")
    (out / "conditions.tsv").write_text("\n".join(listing) + "\n")


if __name__ == "__main__":
    main()
