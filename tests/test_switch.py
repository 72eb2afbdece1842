"""The front-button switch (and the reboot button that goes with it in the same test)."""

from __future__ import annotations

from homeassistant.const import STATE_OFF, Platform
from homeassistant.core import HomeAssistant
import pytest

from .helpers.entities import entity_id, wait_for_entity
from .helpers.feeders import FeederFactory
from .helpers.platforms import SNAPSHOT_TIME, EntitiesSnapshot
from .helpers.transports import both_transports

DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"


@pytest.mark.usefixtures("loaded_entry")
@both_transports
async def test_front_button_and_reboot(
    hass: HomeAssistant, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    switch = await wait_for_entity(hass, "switch", DEV_HID, "front_button")
    assert hass.states.get(switch).state == "unknown"
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": switch}, blocking=True
    )
    received = await feeder.wait_for_command("button_enable_remote")
    assert received[0].payload == {"enable": False}
    assert hass.states.get(switch).state == STATE_OFF
    assert feeder.button_enabled is False

    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": entity_id(hass, "button", DEV_HID, "reboot")},
        blocking=True,
    )
    received = await feeder.wait_for_command("reboot")
    assert received[0].payload == {}


@pytest.mark.freeze_time(SNAPSHOT_TIME)
async def test_entities(entities_snapshot: EntitiesSnapshot) -> None:
    await entities_snapshot(Platform.SWITCH)
