"""When the hub's state reaches the disk: never starved by traffic, never once per heartbeat."""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.petnet_feeder.const import (
    DOMAIN,
    LAZY_SAVE_DELAY_S,
    SAVE_DELAY_S,
)
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.models import Feeder
from feeder_sim import SimulatedFeeder

from .helpers.feeders import RECENT_STIME, FeederFactory, wait_for_feeder

STIME = RECENT_STIME


async def heartbeat(hub: PetnetHub, feeder: SimulatedFeeder) -> None:
    before = hub.state.feeders[feeder.device_hid].last_heartbeat
    await feeder.send_heartbeat()
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.last_heartbeat != before)


async def run_timers(hass: HomeAssistant, seconds: float) -> None:
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
    await hass.async_block_till_done()


def stored_feeder(hass_storage: dict[str, Any], feeder: SimulatedFeeder) -> Any:
    return hass_storage[DOMAIN]["data"]["feeders"][feeder.device_hid]


async def test_steady_heartbeats_do_not_postpone_a_feed_result(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_storage: dict[str, Any],
) -> None:
    """HA's Store alone moves a delayed write later with every change it is asked to save."""
    feeder = await make_feeder()
    await hub.state.async_save_now()
    await feeder.send_feed_result(stime=STIME, portion=0.25, src=6)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
    for _ in range(3):  # any feeder's heartbeats, arriving more often than every 10 s
        await heartbeat(hub, feeder)
    assert feeder.device_hid not in hass_storage[DOMAIN]["data"]["history"]

    await run_timers(hass, SAVE_DELAY_S + 1)
    history = hass_storage[DOMAIN]["data"]["history"][feeder.device_hid]
    assert [row["start_ms"] for row in history] == [STIME * 1000]


async def test_heartbeats_alone_are_written_lazily(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_storage: dict[str, Any],
) -> None:
    feeder = await make_feeder()
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    await run_timers(hass, SAVE_DELAY_S + 1)  # whatever the boot changed
    await hub.state.async_save_now()
    stored = stored_feeder(hass_storage, feeder)["last_heartbeat"]
    for _ in range(5):
        await heartbeat(hub, feeder)
    latest = hub.state.feeders[feeder.device_hid].last_heartbeat

    await run_timers(hass, SAVE_DELAY_S + 1)
    assert stored_feeder(hass_storage, feeder)["last_heartbeat"] == stored
    await run_timers(hass, LAZY_SAVE_DELAY_S + 1)
    assert stored_feeder(hass_storage, feeder)["last_heartbeat"] == latest


async def test_unload_writes_everything(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_storage: dict[str, Any],
) -> None:
    feeder = await make_feeder()
    await heartbeat(hub, feeder)
    latest = hub.state.feeders[feeder.device_hid].last_heartbeat
    assert await hass.config_entries.async_unload(hub.entry.entry_id)
    await hass.async_block_till_done()
    assert stored_feeder(hass_storage, feeder)["last_heartbeat"] == latest


def test_meal_times_and_skips_survive_the_json_round_trip() -> None:
    """Meal ids are JSON object keys: written as strings, read back as ints."""
    feeder = Feeder(
        hid="f" * 40,
        gateway_hid="g" * 40,
        skipped={3: 1717243203.0},
        meal_since={3: 1717250000.5, 12: 0.0},
    )
    stored = json.loads(json.dumps(feeder.to_dict()))
    assert stored["meal_since"] == {"3": 1717250000.5, "12": 0.0}
    loaded = Feeder.from_dict(stored)
    assert loaded.meal_since == {3: 1717250000.5, 12: 0.0}
    assert loaded.skipped == {3: 1717243203.0}
    assert loaded == feeder


async def test_a_new_key_is_on_disk_before_anything_else_happens(
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Config hands the key out at once; lost in a crash, it locks the feeder out (§1.4)."""
    assert DOMAIN not in hass_storage
    feeder = await make_feeder(boot=False)
    await feeder.register_gateway()
    stored = hass_storage[DOMAIN]["data"]["gateways"]
    assert (
        stored[feeder.gateway_hid]["api_key"]
        == hub.state.gateways[feeder.gateway_hid].api_key
    )
    await feeder.fetch_config()
    assert feeder.api_key == stored[feeder.gateway_hid]["api_key"]

    # Older firmware only checks in: that creates the gateway and its key as well.
    other = await make_feeder("smartfeeder-4b09fa082bbd", boot=False, register=False)
    assert await other.checkin() == 200
    stored = hass_storage[DOMAIN]["data"]["gateways"]
    assert (
        stored[other.gateway_hid]["api_key"]
        == hub.state.gateways[other.gateway_hid].api_key
    )
