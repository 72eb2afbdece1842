"""Snapshots of every entity's state and registry entry, one platform at a time.

Only what the integration decides is compared: the fields its entity descriptions and device
info set, and each entity's state. The rest of a registry entry is Home Assistant's own data
shape, which changes between releases (2026.2 dropped ``is_new`` from devices and added
``object_id_base`` to entities), so one snapshot file serves every tested Home Assistant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.types import PropertyPath

from custom_components.petnet_feeder.compat import async_get_device
from custom_components.petnet_feeder.const import DOMAIN

from .conftest import FeederFactory, wait_for_feeder

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


INTEGRATION_FIELDS = frozenset(
    {
        # Entity registry entries: what the entity descriptions set.
        "capabilities",
        "domain",
        "entity_category",
        "entity_id",
        "has_entity_name",
        "options",
        "original_device_class",
        "original_icon",
        "original_name",
        "platform",
        "supported_features",
        "translation_key",
        "unique_id",
        "unit_of_measurement",
        # Device registry entries: what the device info sets.
        "configuration_url",
        "connections",
        "entry_type",
        "hw_version",
        "identifiers",
        "manufacturer",
        "model",
        "model_id",
        "name",
        "serial_number",
        "sw_version",
        "via_device_id",
        # States: all of it is the integration's (ids and times are placeholders).
        "attributes",
        "context",
        "last_changed",
        "last_reported",
        "last_updated",
        "state",
    }
)
"""Top-level fields of a snapshotted registry entry or state that are compared."""


def ha_data_shape(*, prop: object, path: PropertyPath) -> bool:
    """Leave out a top-level field that is Home Assistant's, not the integration's."""
    return not path and prop not in INTEGRATION_FIELDS


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's serializer, comparing only the integration's fields.

    The serializer turns registry ids and timestamps into stable placeholders.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension).with_defaults(
        exclude=ha_data_shape
    )


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
        hub.meal_editor.add_meal(
            hub.state.feeders[feeder.device_hid],
            name="Breakfast",
            time_s=7 * 3600,
            portion=0.25,
        )
        await hass.async_block_till_done()
        device = async_get_device(
            hass, config_entry.entry_id, (DOMAIN, feeder.device_hid)
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
        hub.meal_editor.add_meal(
            hub.state.feeders[dev], name="Breakfast", time_s=7 * 3600, portion=0.25
        )
        freezer.move_to("2024-06-01T12:00:04+00:00")  # 07:00:04 CDT
        await feeder.send_feed_result(stime=1717243203, portion=0.25, src=6)
        await wait_for_feeder(hub, dev, lambda f: len(f.history) == 1)
        await hass.async_block_till_done()
        await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
