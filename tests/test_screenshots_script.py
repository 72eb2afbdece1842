"""scripts/screenshots.py: the parts that need no browser and no Home Assistant.

The whole run (a demo, Chromium, four to six minutes) is not part of the suite; these check that
the README's example dashboard still parses into the card the run saves, and how the missed
meal's minute is chosen.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
import subprocess
from zoneinfo import ZoneInfo

from .helpers.scripts import load_script_module

ROOT = Path(__file__).parent.parent


screenshots = load_script_module("screenshots")


def test_readme_example_dashboard_becomes_the_saved_card() -> None:
    config = screenshots.example_dashboard("smartfeeder_abcdef")
    (view,) = config["views"]
    (card,) = view["cards"]
    assert card["type"] == "vertical-stack"
    calendar, entities, buttons = card["cards"]
    assert calendar["entities"] == ["calendar.smartfeeder_abcdef_meals"]
    assert "sensor.smartfeeder_abcdef_next_meal" in entities["entities"]
    assert all("73737d" not in entity for entity in entities["entities"])
    assert [b["entity"] for b in buttons["cards"]] == [
        "button.smartfeeder_abcdef_feed_now",
        "button.smartfeeder_abcdef_hopper_refilled",
    ]


def test_missed_meal_minute_is_ahead_and_avoids_the_snack() -> None:
    zone = ZoneInfo("America/Chicago")
    now = datetime(2026, 12, 4, 18, 20, 10, tzinfo=zone)
    assert screenshots.next_free_minute(now, set()) == now.replace(minute=21, second=0)
    late = now.replace(second=30)  # 45 s ahead is in the next minute already
    assert screenshots.next_free_minute(late, set()) == now.replace(minute=22, second=0)
    assert screenshots.next_free_minute(now, {"18:21"}) == now.replace(
        minute=22, second=0
    )
    # The pause reaches into the next minute: a meal there is kept clear of too.
    assert screenshots.next_free_minute(now, {"18:22"}) == now.replace(
        minute=23, second=0
    )


def test_wrapper_help_needs_nothing_installed() -> None:
    result = subprocess.run(
        [ROOT / "scripts" / "screenshots", "--help"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 0
    assert "docs/images" in result.stdout
    assert "--out DIR" in result.stdout
