"""The buttons: feed now, sync the schedule, hopper refilled, reboot."""

from __future__ import annotations

from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder.hub import PetnetHub

from .helpers.entities import entity_id, select_option, wait_for_state
from .helpers.feeders import FeederFactory, wait_for_history
from .helpers.platforms import SNAPSHOT_TIME, EntitiesSnapshot
from .helpers.transports import both_transports

DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"


@pytest.mark.freeze_time(SNAPSHOT_TIME)
async def test_entities(entities_snapshot: EntitiesSnapshot) -> None:
    await entities_snapshot(Platform.BUTTON)


@both_transports
async def test_feed_button_sends_exactly_one_feed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    await select_option(hass, DEV_HID, "manual_portion", "1_8_cup")
    button = entity_id(hass, "button", DEV_HID, "feed_now")
    await wait_for_state(hass, button, lambda s: s.state != STATE_UNAVAILABLE)
    await hass.services.async_call(
        "button", "press", {"entity_id": button}, blocking=True
    )

    received = await feeder.wait_for_command("feed")
    assert len(received) == 1
    assert received[0].payload == {"portion": 0.125}
    hub: PetnetHub = loaded_entry.runtime_data
    await wait_for_history(hub, DEV_HID)
    stored = hub.state.feeders[DEV_HID].history[0].result
    assert stored.source == 4
    assert stored.grams_expected == pytest.approx(0.125 * 16 * 8)
    assert [c.command for c in feeder.commands].count("feed") == 1
    assert feeder.protocol_errors == []
