"""Fault storms with 50 simulated feeders: everything at once, and nothing lost or doubled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder.const import CONF_HTTP_PORT, CONF_MQTT_PORT, DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import Fleet, SimulatedFeeder

from .helpers.ports import LOOPBACK
from .helpers.schedules import NEW_SEQUENCE

COUNT = 50
MEALS = [
    {"name": "Breakfast", "time_s": 7 * 3600, "portion": 0.25},
    {"name": "Dinner", "time_s": 18 * 3600 + 1800, "portion": 0.25},
]
SYNC = NEW_SEQUENCE
SYNC_3 = [*SYNC[:-1], "schedule_add", "schedule_mod_end"]  # the same with three meals
TIMEOUT = 60


@pytest.fixture
async def fleet(
    hass: HomeAssistant, hub: PetnetHub, entry_data: dict[str, Any]
) -> AsyncIterator[Fleet]:
    """50 feeders (plain HTTP and MQTT: TLS is not what is under test) holding 2 meals each.

    They reconnect by themselves after a lost connection, like the firmware.
    """
    fleet = Fleet(
        COUNT,
        kronos_url=f"http://{LOOPBACK}:{entry_data[CONF_HTTP_PORT]}",
        mqtt_host=LOOPBACK,
        mqtt_port=entry_data[CONF_MQTT_PORT],
        mqtt_tls=False,
        retry_delay=0.2,
        namespace="storm",
    )
    await fleet.start()
    try:
        for feeder in fleet:
            hub.meal_editor.set_schedule(hub.state.feeders[feeder.device_hid], MEALS)
        await asyncio.gather(*(holds(feeder, 2) for feeder in fleet))
        await all_idle(hub, fleet)
        yield fleet
    finally:
        await fleet.stop()


async def holds(feeder: SimulatedFeeder, meals: int, since: int = 0) -> None:
    """Wait until the feeder completed a schedule delivery of ``meals`` meals."""
    async with asyncio.timeout(TIMEOUT), feeder._changed:
        await feeder._changed.wait_for(
            lambda: len(feeder.schedule) == meals
            and "schedule_mod_end" in [c.command for c in feeder.commands[since:]]
        )


async def all_idle(hub: PetnetHub, fleet: Fleet) -> None:
    async with asyncio.timeout(TIMEOUT):
        await asyncio.gather(
            *(hub.sync.reconciler(f.device_hid).async_wait_idle() for f in fleet)
        )


def assert_fleet_intact(
    hass: HomeAssistant, hub: PetnetHub, fleet: Fleet, keys: dict[str, str]
) -> None:
    """Same gateways with the same keys, one feeder each, one device each, in sync."""
    assert {hid: gw.api_key for hid, gw in hub.state.gateways.items()} == keys
    assert sorted(hub.state.feeders) == sorted(f.device_hid for f in fleet)
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), hub.entry.entry_id)
    # Besides the integration's own device (the pairing switch).
    assert len([d for d in devices if d.entry_type is None]) == COUNT
    for feeder in fleet:
        state = hub.state.feeders[feeder.device_hid]
        assert state.gateway_hid == feeder.gateway_hid
        assert hub.sync.in_sync(state), feeder.uid
    assert fleet.protocol_errors == []


async def test_all_feeders_reboot_at_once(
    hass: HomeAssistant, hub: PetnetHub, fleet: Fleet
) -> None:
    keys = {hid: gw.api_key for hid, gw in hub.state.gateways.items()}
    held = {feeder.uid: list(feeder.schedule) for feeder in fleet}
    marks = {feeder.uid: len(feeder.commands) for feeder in fleet}

    # Each one drops its session, forgets its schedule and clock, boots and reports an
    # empty hash.
    await asyncio.gather(*(feeder.reboot() for feeder in fleet))
    assert all(feeder.boot_count == 2 for feeder in fleet)
    await asyncio.gather(*(holds(f, 2, since=marks[f.uid]) for f in fleet))
    await all_idle(hub, fleet)

    restored = [feeder for feeder in fleet if feeder.schedule == held[feeder.uid]]
    assert len(restored) == COUNT
    assert all(feeder.utc_offset is not None for feeder in fleet)
    assert_fleet_intact(hass, hub, fleet, keys)


async def test_all_connections_drop_at_once(
    hass: HomeAssistant, hub: PetnetHub, fleet: Fleet
) -> None:
    keys = {hid: gw.api_key for hid, gw in hub.state.gateways.items()}
    held = {feeder.uid: list(feeder.schedule) for feeder in fleet}
    history = {hid: list(feeder.history) for hid, feeder in hub.state.feeders.items()}
    marks = {feeder.uid: len(feeder.commands) for feeder in fleet}

    await asyncio.gather(*(feeder.drop() for feeder in fleet))  # no DISCONNECT sent
    await asyncio.gather(*(feeder.connect() for feeder in fleet))
    await asyncio.gather(*(holds(f, 2, since=marks[f.uid]) for f in fleet))
    await all_idle(hub, fleet)

    for feeder in fleet:
        # Exactly one full delivery per reconnect, and the same schedule as before.
        assert [c.command for c in feeder.commands[marks[feeder.uid] :]] == SYNC
        assert feeder.schedule == held[feeder.uid]
    assert {hid: list(f.history) for hid, f in hub.state.feeders.items()} == history
    assert_fleet_intact(hass, hub, fleet, keys)


def names(feeder: SimulatedFeeder, marks: dict[str, int]) -> list[str]:
    """The commands the feeder received since its mark."""
    return [c.command for c in feeder.commands[marks[feeder.uid] :]]


async def test_home_assistant_restarts_during_a_sync(
    hass: HomeAssistant,
    hub: PetnetHub,
    loaded_entry: MockConfigEntry,
    fleet: Fleet,
    hass_storage: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = {hid: gw.api_key for hid, gw in hub.state.gateways.items()}
    marks = {feeder.uid: len(feeder.commands) for feeder in fleet}
    for feeder in fleet:
        # Slow deliveries, so that the restart lands in the middle of them.
        hub.sync.reconciler(feeder.device_hid)._pacing_s = 0.05
        hub.meal_editor.add_meal(
            hub.state.feeders[feeder.device_hid],
            name="Supper",
            time_s=21 * 3600,
            portion=0.125,
        )
    first = fleet.feeders[0]
    await first.wait_for_command("schedule_clear", since=marks[first.uid])
    running = [f for f in fleet if hub.sync.reconciler(f.device_hid).running]
    assert running, "the restart must interrupt deliveries"

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    restart = {feeder.uid: len(feeder.commands) for feeder in fleet}
    stored = hass_storage[DOMAIN]["data"]["feeders"]
    assert all(len(stored[f.device_hid]["meals"]) == 3 for f in fleet)
    pending = {f.device_hid for f in fleet if stored[f.device_hid]["sync_pending"]}
    assert pending, "the restart must leave deliveries owed"

    # What the new hub read from storage, before anything could clear it.
    loaded: dict[str, bool] = {}
    async_load = PetnetHub.async_load

    async def load_and_note(self: PetnetHub) -> None:
        await async_load(self)
        loaded.update({hid: f.sync_pending for hid, f in self.state.feeders.items()})

    monkeypatch.setattr(PetnetHub, "async_load", load_and_note)
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await hass.async_block_till_done()
    hub = loaded_entry.runtime_data
    assert {hid for hid, owed in loaded.items() if owed} == pending

    # The feeders reconnect by themselves; each owed delivery is made whole after the
    # restart: the clock, then the whole schedule from schedule_clear to schedule_mod_end.
    await asyncio.gather(*(holds(f, 3, since=restart[f.uid]) for f in fleet))
    await all_idle(hub, fleet)
    for feeder in fleet:
        assert [event["time"] for event in feeder.schedule] == [25200, 66600, 75600]
        assert not hub.state.feeders[feeder.device_hid].sync_pending
        if feeder.device_hid in pending:
            after = names(feeder, restart)
            assert after[-len(SYNC_3) :] == SYNC_3, feeder.uid
    assert_fleet_intact(hass, hub, fleet, keys)
