"""The firmware-family select: automatic by version, or forced for odd firmware."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.hub import PetnetHub

from .helpers.entities import wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory
from .helpers.platforms import SNAPSHOT_TIME, EntitiesSnapshot
from .helpers.schedules import LEGACY_SEQUENCE, names_since, settle, with_meals


@pytest.mark.freeze_time(SNAPSHOT_TIME)
async def test_entities(entities_snapshot: EntitiesSnapshot) -> None:
    await entities_snapshot(Platform.SELECT)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_choosing_legacy_resends_the_schedule_in_that_form(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    # Firmware that says 2.8.0 but only understands the legacy command.
    feeder = await with_meals(hass, hub, make_feeder, schedule_api="any")
    feeder.schedule_api = "legacy"
    select = await wait_for_entity(hass, "select", feeder.device_hid, "firmware_family")
    assert hass.states.get(select).state == "auto"

    start = len(feeder.commands)
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": select, "option": "legacy"},
        blocking=True,
    )
    await feeder.wait_for_command("schedule", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == LEGACY_SEQUENCE
    assert [e["time"] for e in feeder.schedule] == [25200, 66600]
    assert feeder.protocol_errors == []
    await wait_for_state(hass, select, lambda s: s.state == "legacy")
    assert hub.state.feeders[feeder.device_hid].firmware_family == "legacy"
