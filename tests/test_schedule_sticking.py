"""A feeder that loses every delivery at once: deliveries back off and the owner is told."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.schedule_sync import (
    NOT_STICKING_AFTER,
    STICK_WINDOW_S,
    not_sticking_issue_id,
)
from feeder_sim import SimulatedFeeder

from .helpers.feeders import FeederFactory
from .helpers.schedules import names_since, settle, with_meals

BASE_INTERVAL_S = 0.05

pytestmark = pytest.mark.usefixtures("quick_hash_syncs")


async def lose_schedule(hub: PetnetHub, feeder: SimulatedFeeder) -> int:
    """The feeder reports an empty schedule; wait until HA restored it. Returns where it began."""
    start = len(feeder.commands)
    await feeder.send_hash("")
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    return start


@pytest.fixture
def quick_hash_syncs(hub: PetnetHub) -> None:
    """Hash-triggered syncs may follow each other every 50 ms (instead of 5 minutes)."""
    hub.sync.reconciler_options = {
        **hub.sync.reconciler_options,
        "hash_min_interval_s": BASE_INTERVAL_S,
    }


async def test_a_schedule_that_never_sticks_backs_off_and_raises_a_repair(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await with_meals(hass, hub, make_feeder)
    dev = feeder.device_hid
    reconciler = hub.sync.reconciler(dev)
    registry = ir.async_get(hass)
    issue_id = not_sticking_issue_id(dev)
    for lost in range(1, NOT_STICKING_AFTER + 2):
        start = await lose_schedule(hub, feeder)  # it lost what it was just sent
        assert names_since(feeder, start)[-1] == "schedule_mod_end"
        if lost < NOT_STICKING_AFTER:
            assert registry.async_get_issue(DOMAIN, issue_id) is None
            assert reconciler.hash_interval_s == BASE_INTERVAL_S
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "schedule_not_sticking"
    assert issue.translation_placeholders == {
        "feeder": hub.state.feeders[dev].display_name,
        "count": str(NOT_STICKING_AFTER + 1),
        "family": "new",
        "firmware": "2.8.0",
    }
    # The interval doubles with every lost delivery from the third on.
    assert reconciler.hash_interval_s == BASE_INTERVAL_S * 4

    # The last delivery stays: once the window has passed without an empty schedule (as if
    # all this had happened that long ago), the next minute's check ends the back-off.
    stored = hub.state.feeders[dev]
    assert stored.last_synced_at is not None
    assert stored.last_hash_at is not None
    stored.last_synced_at -= STICK_WINDOW_S
    stored.last_hash_at -= STICK_WINDOW_S
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=1, seconds=1))
    await hass.async_block_till_done()
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    assert reconciler.hash_interval_s == BASE_INTERVAL_S


async def test_a_schedule_lost_long_after_its_delivery_is_just_restored(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    """A reboot days later loses the schedule too: that is what restoring is for."""
    feeder = await with_meals(hass, hub, make_feeder)
    dev = feeder.device_hid
    stored = hub.state.feeders[dev]
    for _ in range(NOT_STICKING_AFTER + 1):
        assert stored.last_synced_at is not None
        stored.last_synced_at -= STICK_WINDOW_S  # as if delivered long ago
        await lose_schedule(hub, feeder)
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, not_sticking_issue_id(dev)) is None
    )
    assert hub.sync.reconciler(dev).hash_interval_s == BASE_INTERVAL_S
