"""The feeding event: a snapshot of it, and no replay of an old event after a restart."""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.hub import PetnetHub

from .helpers.entities import wait_for_entity
from .helpers.feeders import FeederFactory
from .helpers.feeding import (
    AT_MORNING,
    BREAKFAST,
    advance,
    breakfast_feeder,
    feeding_events,
    heartbeat,
)
from .helpers.platforms import SNAPSHOT_TIME, EntitiesSnapshot
from .helpers.restart import restart


@pytest.mark.freeze_time(SNAPSHOT_TIME)
@pytest.mark.parametrize("after_a_dispense", [False, True])
async def test_entities(
    entities_snapshot: EntitiesSnapshot, after_a_dispense: bool
) -> None:
    """The feeding event before any meal, and its type and attributes once breakfast is in."""
    await entities_snapshot(Platform.EVENT, after_a_dispense=after_a_dispense)


@AT_MORNING
async def test_events_do_not_replay_after_a_restart(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    morning: FrozenDateTimeFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    event = await wait_for_entity(hass, "event", dev, "feeding")
    await advance(hass, morning, 60, feeder)  # breakfast is dispensed at 07:00
    fired = hass.states.get(event)
    assert fired.attributes["event_type"] == "scheduled"

    hub = await restart(hass, hub)
    # HA restores the last event as it was; nothing fires for it again.
    restored = hass.states.get(event)
    assert restored.state == fired.state
    assert restored.attributes == fired.attributes
    events = feeding_events(hub, feeder)
    # The feeder reconnects and resends the result it already reported.
    await feeder.connect()
    await feeder.send_feed_result(stime=int(BREAKFAST.timestamp()), portion=0.25, src=6)
    morning.tick(1)
    await heartbeat(hub, feeder)
    await hass.async_block_till_done()
    assert events == []
    assert hass.states.get(event).state == fired.state
    assert len(hub.state.feeders[dev].history) == 1
