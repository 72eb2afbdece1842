"""The binary sensors: connectivity, charging, USB power and the schedule-sync problem."""

from __future__ import annotations

from homeassistant.const import STATE_OFF, STATE_ON, Platform
from homeassistant.core import HomeAssistant
import pytest

from .helpers.entities import entity_id, wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory
from .helpers.platforms import SNAPSHOT_TIME, EntitiesSnapshot


@pytest.mark.freeze_time(SNAPSHOT_TIME)
async def test_entities(entities_snapshot: EntitiesSnapshot) -> None:
    await entities_snapshot(Platform.BINARY_SENSOR)


@pytest.mark.usefixtures("loaded_entry")
async def test_charging_and_usb_power_follow_each_reading(
    hass: HomeAssistant, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    dev = feeder.device_hid
    await wait_for_entity(hass, "binary_sensor", dev, "connectivity")
    charging = entity_id(hass, "binary_sensor", dev, "charging")
    usb_power = entity_id(hass, "binary_sensor", dev, "usb_power")

    await feeder.send_sensor(voltage_mv=3800, usb=0, chg=1, ir=0, rssi=87)
    await wait_for_state(hass, charging, lambda s: s.state == STATE_ON)
    assert hass.states.get(usb_power).state == STATE_OFF

    # On mains the battery is full: USB power on, charging off.
    await feeder.send_sensor(voltage_mv=4100, usb=1, chg=0, ir=0, rssi=87)
    await wait_for_state(hass, usb_power, lambda s: s.state == STATE_ON)
    assert hass.states.get(charging).state == STATE_OFF
