"""The monitor's minute check: a small fleet at once, a large one a slice per turn of the loop."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.petnet_feeder import monitor as monitor_module
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.models import Feeder

from .helpers.feeders import FeederFactory, wait_for_feeder


@pytest.fixture
async def fleet(
    hub: PetnetHub, make_feeder: FeederFactory, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], list[str]]:
    """Three feeders, all heard from; returns their hids and the list of those checked."""
    hids = []
    for index in range(3):
        feeder = await make_feeder(f"smartfeeder-795ae77373{index:02x}")
        await wait_for_feeder(
            hub, feeder.device_hid, lambda f: f.last_hash_at is not None
        )
        hids.append(feeder.device_hid)
    checked: list[str] = []
    check_feeder = monitor_module.FeedingMonitor._check_feeder

    def recording(
        self: monitor_module.FeedingMonitor, feeder: Feeder, at: float
    ) -> None:
        checked.append(feeder.hid)
        check_feeder(self, feeder, at)

    monkeypatch.setattr(monitor_module.FeedingMonitor, "_check_feeder", recording)
    return hids, checked


def next_minute(hass: HomeAssistant) -> None:
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=1, seconds=1))


@pytest.fixture
def one_per_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check one feeder per turn of the loop: three feeders make a large fleet."""
    monkeypatch.setattr(monitor_module, "CHECK_SLICE", 1)


async def test_a_small_fleet_is_checked_within_the_timer(
    hass: HomeAssistant, fleet: tuple[list[str], list[str]]
) -> None:
    hids, checked = fleet
    next_minute(hass)
    assert sorted(checked) == sorted(hids)  # nothing left for a later turn of the loop


@pytest.mark.usefixtures("one_per_slice")
async def test_a_large_fleet_is_checked_a_slice_per_turn_of_the_loop(
    hass: HomeAssistant, fleet: tuple[list[str], list[str]]
) -> None:
    hids, checked = fleet
    next_minute(hass)
    assert len(checked) == 1  # the first slice, within the timer
    await hass.async_block_till_done()
    assert sorted(checked) == sorted(hids)
    # A check that is still going covers the next minute instead of starting another.
    checked.clear()
    next_minute(hass)
    next_minute(hass)
    await hass.async_block_till_done()
    assert sorted(checked) == sorted(hids)


@pytest.mark.usefixtures("one_per_slice")
async def test_stopping_ends_a_check_that_is_still_going(
    hass: HomeAssistant, hub: PetnetHub, fleet: tuple[list[str], list[str]]
) -> None:
    _hids, checked = fleet
    next_minute(hass)
    hub.monitor.stop()
    await hass.async_block_till_done()
    assert len(checked) == 1
    hub.monitor.start()  # as the hub left it, for the entry's unload
