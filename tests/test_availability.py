"""A feeder goes offline and comes back: entities follow, the log says so once each way."""

from __future__ import annotations

import asyncio
import logging

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.petnet_feeder.const import (
    AVAILABILITY_CHECK_INTERVAL,
    ONLINE_WINDOW,
)
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder

from .helpers.entities import entity_id, wait_for_state
from .helpers.feeders import FeederFactory, wait_for_feeder

GW_HID = "488533283e3f06ca4ae929fd01f50a9259dd393f"
DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"

# Entities that show what the feeder reports or talk to it: unavailable while it is offline.
LIVE = (
    ("sensor", "battery_voltage"),
    ("sensor", "wifi_signal"),
    ("binary_sensor", "charging"),
    ("button", "feed_now"),
    ("button", "reboot"),
    ("switch", "front_button"),
)
# HA's own data about the feeder: available whatever the feeder does.
KEPT = (
    ("binary_sensor", "connectivity"),
    ("sensor", "next_meal"),
    ("button", "hopper_refilled"),
    ("calendar", "meals"),
)

# The clock "heard from in the last 120 s" reads; HA's event loop follows it in tests.
pytestmark = pytest.mark.freeze_time("2024-06-01T12:00:00+00:00")


async def drop_session(hub: PetnetHub, feeder: SimulatedFeeder) -> None:
    """Cut the feeder's connection and wait until the broker told the hub it is gone."""
    ended = asyncio.Event()
    on_gateway_disconnected = hub.inbound.on_gateway_disconnected

    def disconnected(gateway_hid: str) -> None:
        on_gateway_disconnected(gateway_hid)
        if gateway_hid == feeder.gateway_hid:
            ended.set()

    hub.inbound.on_gateway_disconnected = disconnected  # type: ignore[method-assign]
    try:
        await feeder.drop()
        await asyncio.wait_for(ended.wait(), 10)
    finally:
        del hub.inbound.on_gateway_disconnected
    assert not hub.state.is_connected(feeder.gateway_hid)


def availability_lines(caplog: pytest.LogCaptureFixture, feeder_hid: str) -> list[str]:
    prefix = f"Feeder {feeder_hid} is "
    return [
        record.getMessage().removeprefix(prefix)
        for record in caplog.records
        if record.getMessage().startswith(prefix)
    ]


def states(hass: HomeAssistant, entities: tuple[tuple[str, str], ...]) -> list[str]:
    return [
        hass.states.get(entity_id(hass, platform, DEV_HID, key)).state
        for platform, key in entities
    ]


async def tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Let time pass and run the timers that fell due (the availability check every 15 s)."""
    freezer.tick(seconds)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_offline_and_back(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "custom_components.petnet_feeder")
    feeder = await make_feeder()
    await feeder.send_sensor(voltage_mv=3900, usb=0, chg=1, ir=0, rssi=70)
    hub: PetnetHub = loaded_entry.runtime_data
    await wait_for_feeder(hub, DEV_HID, lambda f: f.telemetry.voltage_v == 3.9)
    await hass.async_block_till_done()
    assert STATE_UNAVAILABLE not in states(hass, LIVE + KEPT)
    caplog.clear()

    await drop_session(hub, feeder)
    # No session, but heard from less than 120 s ago: still online (§9.1).
    await tick(hass, freezer, ONLINE_WINDOW.total_seconds() - 10)
    assert STATE_UNAVAILABLE not in states(hass, LIVE)
    assert availability_lines(caplog, DEV_HID) == []

    await tick(hass, freezer, 10 + AVAILABILITY_CHECK_INTERVAL.total_seconds())
    assert states(hass, LIVE) == [STATE_UNAVAILABLE] * len(LIVE)
    assert STATE_UNAVAILABLE not in states(hass, KEPT)
    assert hass.states.get(
        entity_id(hass, "binary_sensor", DEV_HID, "connectivity")
    ).state == (STATE_OFF)
    for _ in range(4):  # later checks find nothing new to say
        await tick(hass, freezer, AVAILABILITY_CHECK_INTERVAL.total_seconds())
    assert availability_lines(caplog, DEV_HID) == ["offline"]

    await feeder.connect()
    await wait_for_state(
        hass,
        entity_id(hass, "sensor", DEV_HID, "battery_voltage"),
        lambda s: s.state == "3.9",
    )
    await feeder.send_heartbeat()
    await feeder.send_sensor(voltage_mv=3950, usb=0, chg=1, ir=0, rssi=70)
    await wait_for_feeder(hub, DEV_HID, lambda f: f.telemetry.voltage_v == 3.95)
    await tick(hass, freezer, AVAILABILITY_CHECK_INTERVAL.total_seconds())
    assert STATE_UNAVAILABLE not in states(hass, LIVE + KEPT)
    assert hass.states.get(
        entity_id(hass, "binary_sensor", DEV_HID, "connectivity")
    ).state == (STATE_ON)
    assert availability_lines(caplog, DEV_HID) == ["offline", "online"]


async def test_restart_does_not_announce_a_feeder_that_was_online(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Heard from just before the restart: online from the start, so nothing to announce."""
    caplog.set_level(logging.INFO, "custom_components.petnet_feeder")
    feeder = await make_feeder()
    await feeder.send_heartbeat()
    await hass.async_block_till_done()
    await drop_session(loaded_entry.runtime_data, feeder)
    caplog.clear()

    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    hub: PetnetHub = loaded_entry.runtime_data
    assert not hub.state.is_connected(GW_HID)
    assert STATE_UNAVAILABLE not in states(hass, LIVE)
    await tick(hass, freezer, AVAILABILITY_CHECK_INTERVAL.total_seconds())
    assert availability_lines(caplog, DEV_HID) == []

    await tick(hass, freezer, ONLINE_WINDOW.total_seconds())
    assert states(hass, LIVE) == [STATE_UNAVAILABLE] * len(LIVE)
    assert availability_lines(caplog, DEV_HID) == ["offline"]


async def test_restart_keeps_quiet_about_a_feeder_that_was_offline(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "custom_components.petnet_feeder")
    feeder = await make_feeder()
    await drop_session(loaded_entry.runtime_data, feeder)
    await tick(hass, freezer, ONLINE_WINDOW.total_seconds() + 1)
    caplog.clear()

    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert states(hass, LIVE) == [STATE_UNAVAILABLE] * len(LIVE)
    await tick(hass, freezer, AVAILABILITY_CHECK_INTERVAL.total_seconds())
    assert availability_lines(caplog, DEV_HID) == []
