"""The feeder dispenses on its own clock; HA matches each result to the right meal (§9.5).

The simulator holds the schedule HA sent and dispenses by its clock (UTC + the last
``utc_offset``), like the firmware; HA then finds the meal of each result. Around midnight and
on both DST days of America/Chicago. The wall clock stands a little after the last dispense, and
the results arrive as a feeder replays them after a reconnect; the meals existed from the day
before the first one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder

from .helpers.feeders import FeederFactory, device_id, wait_for_feeder
from .helpers.feeding import feed_history, meals_existed_since
from .helpers.schedules import settle


@pytest.fixture
def replayed_at(
    freezer: FrozenDateTimeFactory, dispenses: list[tuple[str, int]]
) -> datetime:
    """Stand the wall clock five minutes after the last dispense, before HA starts."""
    moments = sorted(datetime.fromisoformat(moment) for moment, _ in dispenses)
    freezer.move_to(moments[-1] + timedelta(minutes=5))
    return moments[0]


async def feeder_with_meals(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    zone: str,
    meals: list[tuple[str, str]],
    first_dispense: datetime,
) -> SimulatedFeeder:
    await hass.config.async_set_time_zone(zone)
    feeder = await make_feeder()
    # The empty hash of its boot first, so that it cannot be what delivers the meals.
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.last_hash_at is not None)
    target = {"device_id": device_id(hass, feeder)}
    await hass.services.async_call(
        DOMAIN,
        "set_schedule",
        {
            **target,
            "meals": [
                {"name": name, "time": hhmm, "portion": 0.125} for name, hhmm in meals
            ],
        },
        blocking=True,
    )
    # The edit's debounce timer never comes due on the frozen clock: sync as the button does.
    await hass.services.async_call(DOMAIN, "sync_schedule", target, blocking=True)
    await settle(hub, feeder)
    assert len(feeder.schedule) == len(meals)
    meals_existed_since(
        hub.state.feeders[feeder.device_hid], first_dispense - timedelta(days=1)
    )
    return feeder


async def dispense_at(
    hub: PetnetHub, feeder: SimulatedFeeder, moments: list[tuple[str, int]]
) -> None:
    """Let the feeder's clock run its schedule at these UTC moments (with that offset)."""
    stored = hub.state.feeders[feeder.device_hid]
    before = len(stored.history)
    sent = 0
    for moment, utc_offset in moments:
        feeder.utc_offset = utc_offset  # what HA had sent by then (tested on its own)
        sent += len(await feeder.run_due_meals(datetime.fromisoformat(moment)))
    assert sent == len(moments)
    await wait_for_feeder(
        hub, feeder.device_hid, lambda f: len(f.history) == before + sent
    )


async def history(
    hass: HomeAssistant, feeder: SimulatedFeeder
) -> list[tuple[str, Any]]:
    response = await feed_history(hass, feeder)
    rows: list[dict[str, Any]] = response["results"]  # type: ignore[assignment]
    return sorted((row["start"], row["meal"]) for row in rows)


@pytest.mark.parametrize(
    ("zone", "meals", "dispenses", "expected"),
    [
        pytest.param(
            # Two meals four minutes apart across midnight: each dispense is inside both
            # windows, and each goes to its own meal and day. (Tokyo has no DST: any date
            # will do.)
            "Asia/Tokyo",
            [("Late", "23:58"), ("Early", "00:02")],
            [
                ("2024-06-01T14:58:30+00:00", 9 * 3600),  # 23:58:30 on June 1st
                ("2024-06-01T15:02:10+00:00", 9 * 3600),  # 00:02:10 on June 2nd
                ("2024-06-02T14:58:00+00:00", 9 * 3600),  # 23:58 on June 2nd
            ],
            [
                ("2024-06-01T14:58:30+00:00", "Late"),
                ("2024-06-01T15:02:10+00:00", "Early"),
                ("2024-06-02T14:58:00+00:00", "Late"),
            ],
            id="either_side_of_midnight",
        ),
        pytest.param(
            # 2024-03-10: 02:00 CST becomes 03:00 CDT. The feeder's clock moves with the
            # new offset.
            "America/Chicago",
            [("Night", "01:58"), ("Morning", "03:02"), ("Breakfast", "07:00")],
            [
                ("2024-03-10T07:58:00+00:00", -6 * 3600),  # 01:58 CST
                ("2024-03-10T08:02:00+00:00", -5 * 3600),  # 03:02 CDT, 4 minutes later
                ("2024-03-10T12:00:00+00:00", -5 * 3600),  # 07:00 CDT
            ],
            [
                ("2024-03-10T07:58:00+00:00", "Night"),
                ("2024-03-10T08:02:00+00:00", "Morning"),
                ("2024-03-10T12:00:00+00:00", "Breakfast"),
            ],
            id="on_the_day_dst_starts",
        ),
        pytest.param(
            # 2024-11-03: 02:00 CDT becomes 01:00 CST, so 01:30 comes twice. The meal is at
            # the first 01:30; a dispense at the second (a feeder whose clock went back) is
            # no meal.
            "America/Chicago",
            [("Night", "01:30"), ("Breakfast", "07:00")],
            [
                ("2024-11-03T06:30:00+00:00", -5 * 3600),  # 01:30 CDT
                ("2024-11-03T07:30:00+00:00", -6 * 3600),  # 01:30 CST, an hour later
                ("2024-11-03T13:00:00+00:00", -6 * 3600),  # 07:00 CST
            ],
            [
                ("2024-11-03T06:30:00+00:00", "Night"),
                ("2024-11-03T07:30:00+00:00", None),
                ("2024-11-03T13:00:00+00:00", "Breakfast"),
            ],
            id="on_the_day_dst_ends",
        ),
    ],
)
async def test_meals(
    replayed_at: datetime,
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    zone: str,
    meals: list[tuple[str, str]],
    dispenses: list[tuple[str, int]],
    expected: list[tuple[str, str | None]],
) -> None:
    """Each dispense goes to the meal of its day and window, whatever the clock did."""
    feeder = await feeder_with_meals(hass, hub, make_feeder, zone, meals, replayed_at)
    await dispense_at(hub, feeder, dispenses)
    assert await history(hass, feeder) == expected


# 07:00 on June 2nd in Tokyo, by a feeder whose clock is off by six minutes either way.
_BREAKFAST = datetime(2024, 6, 1, 22, 0, tzinfo=UTC)
_OFF_BY_SIX = [
    pytest.param(
        [
            (
                (_BREAKFAST + timedelta(minutes=minutes)).isoformat(),
                9 * 3600 - minutes * 60,
            )
        ],
        id=f"{minutes:+d}_minutes",
    )
    for minutes in (-6, 6)
]


@pytest.mark.parametrize("dispenses", _OFF_BY_SIX)
async def test_a_dispense_outside_the_window_is_no_meal(
    replayed_at: datetime,
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    dispenses: list[tuple[str, int]],
) -> None:
    # The window is five minutes: the dispense is no meal.
    feeder = await feeder_with_meals(
        hass, hub, make_feeder, "Asia/Tokyo", [("Breakfast", "07:00")], replayed_at
    )
    await dispense_at(hub, feeder, dispenses)
    assert [meal for _, meal in await history(hass, feeder)] == [None]
