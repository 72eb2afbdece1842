"""The raw feed plan sensor, parsed exactly as README's dispenser-schedule-card config does."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
import re
from zoneinfo import ZoneInfo

from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.sensor import MAX_STATE_LENGTH, _feed_plan

from .helpers.feeders import FeederFactory, wait_for_feeder
from .helpers.feeding import chicago_feeder, meals_existed_since
from .helpers.schedules import add_meals

README = Path(__file__).parent.parent / "README.md"
CHICAGO = "America/Chicago"


def card_config() -> tuple[re.Pattern[str], dict[int, str]]:
    """The status_pattern and status_map of README's card example."""
    text = README.read_text()
    pattern = re.search(r'status_pattern: "(.+)"', text)
    assert pattern is not None
    mapping = dict(re.findall(r'- "([0-9]+) -> ([a-z]+)"', text))
    # JavaScript's named groups (?<name>...) are (?P<name>...) in Python.
    return (
        re.compile(pattern.group(1).replace("(?<", "(?P<")),
        {int(code): status for code, status in mapping.items()},
    )


def parse(state: str) -> list[tuple[int, int, int, int, str]]:
    pattern, status_map = card_config()
    return [
        (
            int(m["id"]),
            int(m["hour"]),
            int(m["minute"]),
            int(m["amount"]),
            status_map[int(m["status"])],
        )
        for m in pattern.finditer(state)
    ]


@pytest.mark.freeze_time("2024-06-01 17:00:00", real_asyncio=True)
async def test_the_card_reads_every_status(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    # Frozen at 12:00 CDT.
    feeder = await chicago_feeder(hass, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    add_meals(
        hub,
        stored,
        (
            ("Breakfast", "07:00", 0.25, True),
            ("Snack", "09:00", 0.125, True),
            ("Brunch", "11:00", 0.125, True),
            ("Dinner", "18:30", 2.0, True),
            ("Supper", "20:00", 0.0625, False),
            ("Night", "23:59", 0.0625, True),
        ),
    )
    meals_existed_since(stored, datetime(2024, 6, 1, tzinfo=ZoneInfo(CHICAGO)))
    hub.meal_editor.skip_next_meal(stored)  # Dinner

    def at(hhmm: str) -> int:
        moment = datetime.fromisoformat(f"2024-06-01T{hhmm}")
        return int(moment.replace(tzinfo=ZoneInfo(CHICAGO)).timestamp())

    await feeder.send_feed_result(stime=at("07:00:03"), portion=0.25, src=6)
    await feeder.send_feed_result(stime=at("09:00:10"), portion=0.125, src=6, fail=True)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 2)

    assert parse(_feed_plan(hub.view(stored))) == [
        (1, 7, 0, 4, "dispensed"),
        (2, 9, 0, 2, "failed"),
        (3, 11, 0, 2, "skipped"),  # missed
        (4, 18, 30, 32, "skipped"),
        (5, 20, 0, 1, "disabled"),
        (6, 23, 59, 1, "pending"),
    ]


async def test_a_long_plan_leaves_out_whole_meals(
    hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    stored = hub.state.feeders[feeder.device_hid]
    stored.next_meal_id = 100  # three-digit ids, as after many edits
    hub.meal_editor.set_schedule(
        stored,
        [
            {"name": f"Meal {i}", "time_s": 36000 + i * 60, "portion": 2.0}
            for i in range(20)
        ],
    )
    plan = _feed_plan(hub.view(stored))
    assert len(plan) <= MAX_STATE_LENGTH
    meals = parse(plan)
    assert 10 < len(meals) < 20
    assert [meal[0] for meal in meals] == list(range(100, 100 + len(meals)))
    assert plan.endswith(",32,2")  # the last group is whole
