"""How often a feeder's entities are written: once per loop pass, never for a heartbeat alone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder

from .helpers.feeders import FeederFactory, wait_for_feeder
from .helpers.schedules import settle


class Writes:
    """Counts the state writes of one feeder's entities (changed or only reported)."""

    def __init__(self, hass: HomeAssistant, feeder_hid: str) -> None:
        registry = er.async_get(hass)
        self.entities = {
            entry.entity_id
            for entry in registry.entities.values()
            if entry.platform == DOMAIN and entry.unique_id.startswith(feeder_hid)
        }
        assert self.entities
        self.written: list[str] = []
        self._unsubs = [
            hass.bus.async_listen(kind, self._seen, event_filter=self._ours)
            for kind in (EVENT_STATE_CHANGED, EVENT_STATE_REPORTED)
        ]

    @callback
    def _ours(self, data: Any) -> bool:
        return data["entity_id"] in self.entities

    @callback
    def _seen(self, event: Event[Any]) -> None:
        self.written.append(event.data["entity_id"])

    def stop(self) -> None:
        for unsub in self._unsubs:
            unsub()


async def quiet_feeder(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> SimulatedFeeder:
    """A booted feeder with nothing more on its way to its entities."""
    feeder = await make_feeder()
    # Its boot ends with its schedule hash: once that is handled, nothing else is on its way.
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.last_hash_at is not None)
    await settle(hub, feeder)
    await hass.async_block_till_done()
    return feeder


async def test_the_changes_of_one_message_write_each_entity_once(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await quiet_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    writes = Writes(hass, feeder.device_hid)
    battery = sorted(
        entity
        for entity in writes.entities
        if entity.endswith(("_battery_voltage", "_battery")) and hass.states.get(entity)
    )
    assert battery
    with hub.state.batch():  # as the handling of one message is
        for volts in (3.6, 3.7, 3.8):
            stored.telemetry = replace(stored.telemetry, voltage_v=volts)
            hub.state.changed(stored)
        assert writes.written == []
    # Once each, and only the entities that show the voltage.
    assert sorted(writes.written) == battery
    # Outside a batch (an action, say) they are written at once.
    writes.written.clear()
    stored.telemetry = replace(stored.telemetry, voltage_v=3.9)
    hub.state.changed(stored)
    assert sorted(writes.written) == battery
    writes.stop()


async def test_an_update_that_changes_nothing_shown_writes_nothing(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    """Most of a feeder's updates leave most of its 30 entities as they were."""
    feeder = await quiet_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    writes = Writes(hass, feeder.device_hid)
    hub.state.changed(stored)
    assert writes.written == []
    writes.stop()


async def test_a_heartbeat_writes_no_entity(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await quiet_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    before = stored.last_heartbeat
    writes = Writes(hass, feeder.device_hid)
    await feeder.send_heartbeat()
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.last_heartbeat != before)
    await hass.async_block_till_done()
    writes.stop()
    # Connectivity changes only when the feeder comes online or goes offline; "Last seen",
    # which follows every heartbeat, is disabled by default.
    assert writes.written == []
