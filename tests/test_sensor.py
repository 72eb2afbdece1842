"""The sensors: a snapshot of each, and the last-seen sensor that is off by default."""

from __future__ import annotations

from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder.hub import PetnetHub

from .helpers.entities import entity_id, wait_for_state
from .helpers.feeders import FeederFactory, wait_for_feeder
from .helpers.platforms import SNAPSHOT_TIME, EntitiesSnapshot
from .helpers.transports import both_transports

DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"


@pytest.mark.freeze_time(SNAPSHOT_TIME)
async def test_entities(entities_snapshot: EntitiesSnapshot) -> None:
    """Battery, signal, hopper, meals and the rest, for a feeder with a reading and a meal."""
    await entities_snapshot(Platform.SENSOR)


@pytest.mark.freeze_time(SNAPSHOT_TIME)
async def test_entities_after_a_dispense(entities_snapshot: EntitiesSnapshot) -> None:
    """Last feed and today's counters once breakfast is in."""
    await entities_snapshot(Platform.SENSOR, after_a_dispense=True)


@both_transports
async def test_last_seen_is_disabled_by_default_and_follows_messages_when_enabled(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, make_feeder: FeederFactory
) -> None:
    """Every heartbeat changes it (logbook, recorder): off unless the user wants it."""
    feeder = await make_feeder()
    last_seen = entity_id(hass, "sensor", DEV_HID, "last_seen")
    registry = er.async_get(hass)
    assert (
        registry.async_get(last_seen).disabled_by
        is er.RegistryEntryDisabler.INTEGRATION
    )
    assert hass.states.get(last_seen) is None

    registry.async_update_entity(last_seen, disabled_by=None)
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    await feeder.connect()  # the reload closed the broker and its sessions
    await feeder.send_heartbeat()
    hub: PetnetHub = loaded_entry.runtime_data
    await wait_for_feeder(hub, DEV_HID, lambda f: f.last_heartbeat is not None)
    state = await wait_for_state(
        hass, last_seen, lambda s: s.state not in ("unknown", STATE_UNAVAILABLE)
    )
    assert state.attributes["device_class"] == "timestamp"
    # A timestamp sensor's state is in whole seconds.
    assert dt_util.parse_datetime(state.state) == dt_util.utc_from_timestamp(
        hub.state.feeders[DEV_HID].last_seen
    ).replace(microsecond=0)
