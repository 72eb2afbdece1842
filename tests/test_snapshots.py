"""Snapshots of every entity's state and registry entry, one platform at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.petnet_feeder.const import DOMAIN

from .helpers.feeders import FeederFactory, wait_for_feeder

pytestmark = pytest.mark.freeze_time("2024-06-01T11:30:00+00:00")


@pytest.fixture
def config_entry(entry_data: dict[str, Any]) -> MockConfigEntry:
    """A fixed entry id keeps the registry entries comparable."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Petnet SmartFeeder",
        data=entry_data,
        entry_id="01JSNAPSHOTPETNETFEEDER000",
    )


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's serializer: registry ids and timestamps become stable placeholders."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture(autouse=True)
def enable_all_entities() -> Iterator[None]:
    """Entities disabled by default are part of the snapshot too."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.mark.parametrize(
    "platform",
    [
        Platform.BINARY_SENSOR,
        Platform.BUTTON,
        Platform.CALENDAR,
        Platform.EVENT,
        Platform.NUMBER,
        Platform.SELECT,
        Platform.SENSOR,
        Platform.SWITCH,
    ],
)
async def test_entities(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    await hass.config.async_set_time_zone("America/Chicago")
    with patch("custom_components.petnet_feeder.PLATFORMS", [platform]):
        config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
        hub = config_entry.runtime_data
        feeder = await make_feeder()
        await feeder.send_sensor(voltage_mv=3950, usb=1, chg=0, ir=0, rssi=80)
        await wait_for_feeder(
            hub, feeder.device_hid, lambda f: f.telemetry.voltage_v == 3.95
        )
        hub.schedules.add_meal(
            hub.feeders[feeder.device_hid],
            name="Breakfast",
            time_s=7 * 3600,
            portion=0.25,
        )
        await hass.async_block_till_done()
        device = dr.async_get(hass).async_get_device(
            identifiers={(DOMAIN, feeder.device_hid)}
        )
        assert device is not None
        assert device == snapshot(name="device")
        await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize("platform", [Platform.EVENT, Platform.SENSOR])
async def test_entities_after_a_dispense(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    freezer: FrozenDateTimeFactory,
    platform: Platform,
) -> None:
    """Last feed, the feeding event's attributes and today's counters once breakfast is in."""
    await hass.config.async_set_time_zone("America/Chicago")
    with patch("custom_components.petnet_feeder.PLATFORMS", [platform]):
        config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
        hub = config_entry.runtime_data
        feeder = await make_feeder()
        dev = feeder.device_hid
        hub.schedules.add_meal(
            hub.feeders[dev], name="Breakfast", time_s=7 * 3600, portion=0.25
        )
        freezer.move_to("2024-06-01T12:00:04+00:00")  # 07:00:04 CDT
        await feeder.send_feed_result(stime=1717243203, portion=0.25, src=6)
        await wait_for_feeder(hub, dev, lambda f: len(f.history) == 1)
        await hass.async_block_till_done()
        await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
