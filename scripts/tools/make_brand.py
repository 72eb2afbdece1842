"""Draw the integration's brand images (a feeder with a bowl of kibble) with Pillow.

Run: .venv/bin/python scripts/tools/make_brand.py
"""

from pathlib import Path

from PIL import Image, ImageDraw

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


def main() -> None:
    """Write icon.png, icon@2x.png, logo.png and logo@2x.png."""
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size in (("icon", 256), ("logo", 256)):
        draw_mark(size).save(OUT / f"{name}.png", optimize=True)
        draw_mark(size * 2).save(OUT / f"{name}@2x.png", optimize=True)


if __name__ == "__main__":
    main()
