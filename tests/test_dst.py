"""Daylight saving: every meal is dispensed once per local day on the days the clocks change.

The simulated feeder runs its schedule on its own clock (UTC plus the offset it was sent), as
the firmware does; the clock moves in half-minute steps, and the minute checks run as their
timers would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.petnet_feeder.const import TRANSPORT_BUNDLED
from custom_components.petnet_feeder.feeder_clock import FeederClock
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.models import Feeder
from feeder_sim import SimulatedFeeder

from .helpers.feeders import FeederFactory
from .helpers.feeding import add_meal, heartbeat
from .helpers.schedules import settle


@dataclass
class NightMeal:
    """A feeder holding one 1/8 cup meal, "Night", in the night the clocks change."""

    hass: HomeAssistant
    hub: PetnetHub
    freezer: FrozenDateTimeFactory
    feeder: SimulatedFeeder
    stored: Feeder
    change: datetime
    """When the clocks change."""

    async def live_through(self, seconds: int) -> list[int]:
        """Let time pass; return the feeder's dispense start times (epoch s) meanwhile."""
        hass, hub, feeder = self.hass, self.hub, self.feeder
        dispensed: list[int] = []
        while seconds > 0:
            step = min(seconds, 30)
            seconds -= step
            self.freezer.tick(step)
            async_fire_time_changed(hass)
            await hass.async_block_till_done()
            await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
            dispensed.extend(
                int(result["i|stime"])
                for result in await feeder.run_due_meals(dt_util.utcnow())
            )
            await heartbeat(hub, feeder)
        return dispensed

    async def dispensed_once(self, seconds: int) -> int:
        """Let time pass; the feeder dispensed exactly once meanwhile: when (epoch s)."""
        dispensed = await self.live_through(seconds)
        assert len(dispensed) == 1, dispensed
        return dispensed[0]


def seconds_of(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


CLOCK_CHANGE = ("zone", "started", "change", "meal_time", "before", "after")


def clock_changes[F: Callable[..., Any]](
    rows: list[tuple[Any, ...]],
) -> Callable[[F], F]:
    """Run the test once for each row (named by its zone) with the wall clock at its start.

    The bundled broker serves: how HA reaches the feeder makes no difference to its clock.
    """
    by_row = pytest.mark.parametrize(
        CLOCK_CHANGE, rows, ids=[row[0] for row in rows], indirect=["started"]
    )
    bundled = pytest.mark.parametrize("transport", [TRANSPORT_BUNDLED], indirect=True)

    def mark(test: F) -> F:
        return bundled(by_row(test))

    return mark


# Zone, a start before the meal's first time (UTC), when the clocks go back (UTC), a meal
# time inside the span that comes twice, the offsets before and after.
FALL_BACK = [
    (
        "America/Chicago",
        "2024-11-03T06:05:00+00:00",
        "2024-11-03T07:00:00+00:00",
        "01:30",
        -5 * 3600,
        -6 * 3600,
    ),
    (
        "Europe/Berlin",
        "2024-10-27T00:05:00+00:00",
        "2024-10-27T01:00:00+00:00",
        "02:30",
        2 * 3600,
        1 * 3600,
    ),
    (
        "Australia/Sydney",
        "2024-04-06T15:05:00+00:00",
        "2024-04-06T16:00:00+00:00",
        "02:30",
        11 * 3600,
        10 * 3600,
    ),
    # Lord Howe Island goes back by half an hour: 01:30 to 02:00 comes twice.
    (
        "Australia/Lord_Howe",
        "2024-04-06T14:35:00+00:00",
        "2024-04-06T15:00:00+00:00",
        "01:45",
        11 * 3600,
        10 * 3600 + 1800,
    ),
]


@pytest.fixture
def started(freezer: FrozenDateTimeFactory, request: pytest.FixtureRequest) -> str:
    """The wall clock at the start of the test, set before Home Assistant's timers start."""
    freezer.move_to(request.param)
    return str(request.param)


@pytest.fixture
async def night(
    started: str,
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    zone: str,
    change: str,
    meal_time: str,
    before: int,
) -> NightMeal:
    """HA in the row's zone; its feeder holds "Night" at the row's meal time."""
    await hass.config.async_set_time_zone(zone)
    feeder = await make_feeder()
    await add_meal(hass, hub, feeder, name="Night", time=meal_time, portion=0.125)
    assert feeder.utc_offset == before
    stored = hub.state.feeders[feeder.device_hid]
    return NightMeal(hass, hub, freezer, feeder, stored, datetime.fromisoformat(change))


@clock_changes(FALL_BACK)
async def test_a_meal_in_the_repeated_span_is_dispensed_once(
    night: NightMeal, meal_time: str, after: int
) -> None:
    # The meal's first time, the clocks going back, its second time, the end of the span.
    await night.dispensed_once(120 * 60)
    assert night.feeder.utc_offset == after  # the new offset reached the feeder
    # After the repeated span the meal is back for tomorrow.
    assert night.stored.clock_holds == {}
    active = [e["time"] for e in night.feeder.schedule if e.get("active", True)]
    assert active == [seconds_of(meal_time)]


@pytest.mark.parametrize(
    ("zone", "start", "change", "meal_time", "before", "after"),
    FALL_BACK,
    ids=[row[0] for row in FALL_BACK],
)
def test_the_clock_finds_when_the_offset_changed(
    zone: str, start: str, change: str, meal_time: str, before: int, after: int
) -> None:
    clock = FeederClock(lambda: zone, 5)
    feeder = Feeder(hid="1" * 40, gateway_hid="2" * 40)
    changed = datetime.fromisoformat(change)
    assert (
        clock.last_change(feeder, datetime.fromisoformat(start), timedelta(hours=25))
        is None
    )
    found = clock.last_change(
        feeder, changed + timedelta(minutes=3), timedelta(hours=25)
    )
    assert found is not None
    moment, delta = found
    assert abs((moment - changed).total_seconds()) <= 1
    assert delta == after - before


# Zone, a start before the change (UTC), when the clocks go forward (UTC), a meal time the
# clocks jump over, the offsets before and after.
SPRING_FORWARD = [
    (
        "America/Chicago",
        "2024-03-10T07:35:00+00:00",
        "2024-03-10T08:00:00+00:00",
        "02:30",
        -6 * 3600,
        -5 * 3600,
    ),
    (
        "Europe/Berlin",
        "2024-03-31T00:35:00+00:00",
        "2024-03-31T01:00:00+00:00",
        "02:30",
        1 * 3600,
        2 * 3600,
    ),
    (
        "Australia/Sydney",
        "2024-10-05T15:35:00+00:00",
        "2024-10-05T16:00:00+00:00",
        "02:30",
        10 * 3600,
        11 * 3600,
    ),
    # Lord Howe Island moves forward by half an hour: 02:00 to 02:30 never comes.
    (
        "Australia/Lord_Howe",
        "2024-10-05T15:05:00+00:00",
        "2024-10-05T15:30:00+00:00",
        "02:10",
        10 * 3600 + 1800,
        11 * 3600,
    ),
]


@clock_changes(SPRING_FORWARD)
async def test_a_meal_the_clocks_jump_over_is_dispensed_once_after_the_jump(
    night: NightMeal, meal_time: str, after: int
) -> None:
    # Once, in the first minute the feeder's clock shows after the jump.
    dispensed = await night.dispensed_once(40 * 60)
    assert 0 <= dispensed - night.change.timestamp() < 60
    assert night.feeder.utc_offset == after
    # HA counts it as that day's meal, and the meal has its own time again for tomorrow.
    stored = night.stored
    (row,) = stored.history
    assert night.hub.monitor.occurrence_of(stored, row.result) is not None
    assert stored.clock_moves == {}
    assert [e["time"] for e in night.feeder.schedule] == [seconds_of(meal_time)]


async def test_the_change_timer_resends_nothing_already_sent(
    hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    """The minute check may send the new offset first: the timer then starts no sync.

    A second sync right after the change would clear the schedule again in the minute a
    meal moved past the gap is due.
    """
    feeder = await make_feeder()
    await settle(hub, feeder)
    reconciler = hub.sync.reconciler(feeder.device_hid)
    started = reconciler.syncs_started
    hub.sync._offset_changed(feeder.device_hid)
    assert reconciler.syncs_started == started
    assert not reconciler.pending
