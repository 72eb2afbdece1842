"""The brand images Home Assistant and HACS show: a square icon and a landscape logo."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

BRAND = Path(__file__).parents[1] / "custom_components" / "petnet_feeder" / "brand"


def test_icons_are_square_with_transparency() -> None:
    for name, size in (("icon.png", 256), ("icon@2x.png", 512)):
        with Image.open(BRAND / name) as image:
            assert image.size == (size, size)
            assert image.mode == "RGBA"


def test_logos_are_landscape_and_not_the_icon() -> None:
    for name, (low, high) in (("logo.png", (128, 256)), ("logo@2x.png", (256, 512))):
        with Image.open(BRAND / name) as image:
            width, height = image.size
            assert low <= height <= high
            assert width > 2 * height  # the mark and the word mark beside it
            assert image.mode == "RGBA"
            assert image.getbbox() == (0, 0, width, height)  # trimmed to the content
    assert (BRAND / "logo.png").read_bytes() != (BRAND / "icon.png").read_bytes()
