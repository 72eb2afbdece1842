"""Draw the integration's brand images (a feeder with a bowl of kibble) with Pillow.

icon.png is the square mark; logo.png is landscape: the mark and the word mark "Petnet
SmartFeeder" in Pillow's bundled font (Aileron), so every run draws the same pixels. Both are
on a transparent background, the logo trimmed to its content, as Home Assistant's brand images
expect. The teal reads on light and dark themes alike.

Run: .venv/bin/python scripts/tools/make_brand.py
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

OUT = (
    Path(__file__).resolve().parents[2]
    / "custom_components"
    / "petnet_feeder"
    / "brand"
)
TEAL = (0, 150, 136, 255)
DARK = (38, 50, 56, 255)
KIBBLE = (214, 137, 16, 255)
WHITE = (255, 255, 255, 255)
DARK_TEAL = (0, 121, 107, 255)


def draw_mark(size: int) -> Image.Image:
    """A hopper above a bowl with three pieces of kibble."""
    scale = size / 256
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)

    def box(
        x0: float, y0: float, x1: float, y1: float
    ) -> tuple[float, float, float, float]:
        return (x0 * scale, y0 * scale, x1 * scale, y1 * scale)

    draw.rounded_rectangle(box(8, 8, 248, 248), radius=48 * scale, fill=TEAL)
    # Hopper: a rounded body with a window showing the food level.
    draw.rounded_rectangle(box(78, 36, 178, 150), radius=18 * scale, fill=WHITE)
    draw.rounded_rectangle(box(94, 86, 162, 134), radius=10 * scale, fill=KIBBLE)
    # Chute into the bowl.
    draw.rectangle(box(116, 150, 140, 170), fill=WHITE)
    # Bowl.
    draw.chord(box(56, 130, 200, 226), start=0, end=180, fill=DARK)
    for cx, cy in ((104, 172), (128, 166), (152, 172)):
        draw.ellipse(box(cx - 11, cy - 9, cx + 11, cy + 9), fill=KIBBLE)
    return image


WORD_MARK = ("Petnet", "SmartFeeder")


def draw_logo(target_height: int) -> Image.Image:
    """The mark, then the word mark on two lines beside it; trimmed to the content.

    The mark's rounded square fills 240 of its 256 units, so it is drawn a little larger for
    the trimmed logo to be ``target_height`` tall.
    """
    height = round(target_height * 256 / 240)
    mark = draw_mark(height)
    font = ImageFont.load_default(size=round(height * 0.34))
    stroke = max(1, round(height / 160))  # a little heavier than the font's regular
    gap = round(height * 0.12)
    boxes = [
        font.getbbox(line, stroke_width=stroke) for line in WORD_MARK
    ]  # (left, top, right, bottom)
    text_width = max(box[2] for box in boxes)
    line_height = round(height * 0.40)
    image = Image.new("RGBA", (height + gap + text_width, height), (0, 0, 0, 0))
    image.paste(mark, (0, 0), mark)
    draw = ImageDraw.Draw(image)
    top = (height - 2 * line_height) // 2
    for index, line in enumerate(WORD_MARK):
        draw.text(
            (height + gap, top + index * line_height),
            line,
            font=font,
            fill=TEAL if index == 0 else DARK_TEAL,
            stroke_width=stroke,
            stroke_fill=TEAL if index == 0 else DARK_TEAL,
        )
    return image.crop(image.getbbox())


def main() -> None:
    """Write icon.png, icon@2x.png, logo.png and logo@2x.png."""
    OUT.mkdir(parents=True, exist_ok=True)
    draw_mark(256).save(OUT / "icon.png", optimize=True)
    draw_mark(512).save(OUT / "icon@2x.png", optimize=True)
    draw_logo(128).save(OUT / "logo.png", optimize=True)
    draw_logo(256).save(OUT / "logo@2x.png", optimize=True)


if __name__ == "__main__":
    main()
