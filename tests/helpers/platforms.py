"""One platform at a time, every entity enabled: what the test_<platform>.py snapshots see.

A fixed entry id and a frozen clock (``SNAPSHOT_TIME``) keep registry entries and states
comparable; HA's snapshot extension turns registry ids and timestamps into placeholders.

Only what the integration decides is compared: the fields its entity descriptions and device
info set, and each entity's state. The rest of a registry entry is Home Assistant's own data
shape, which changes between releases (2026.2 dropped ``is_new`` from devices and added
``object_id_base`` to entities), so one snapshot file serves every tested Home Assistant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion
from syrupy.types import PropertyPath

from custom_components.petnet_feeder.compat import async_get_device
from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder

from .feeders import FeederFactory, wait_for_feeder

SNAPSHOT_TIME = "2024-06-01T11:30:00+00:00"
SNAPSHOT_ENTRY_ID = "01JSNAPSHOTPETNETFEEDER000"

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


def all_entities_enabled() -> AbstractContextManager[Any]:
    """Create every entity enabled, also those the integration disables by default."""
    return patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    )


@asynccontextmanager
async def platform_only(
    hass: HomeAssistant, entry_data: dict[str, Any], platform: Platform
) -> AsyncIterator[tuple[MockConfigEntry, PetnetHub]]:
    """The entry (fixed id) set up with only ``platform``, HA in Chicago; unloaded at the end."""
    await hass.config.async_set_time_zone("America/Chicago")
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        title="Petnet SmartFeeder",
        data=entry_data,
        entry_id=SNAPSHOT_ENTRY_ID,
    )
    with (
        patch("custom_components.petnet_feeder.PLATFORMS", [platform]),
        # Entities disabled by default are part of the snapshot too.
        all_entities_enabled(),
    ):
        config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
        yield config_entry, config_entry.runtime_data
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()


@dataclass
class EntitiesSnapshot:
    """Takes a snapshot of one platform's entities of a feeder (the entities_snapshot fixture).

    By default the feeder sent a reading and holds a meal, and the device is part of the
    snapshot; with ``after_a_dispense=True`` breakfast has been dispensed.
    """

    hass: HomeAssistant
    entry_data: dict[str, Any]
    make_feeder: FeederFactory
    entity_registry: er.EntityRegistry
    snapshot: SnapshotAssertion
    freezer: FrozenDateTimeFactory

    async def __call__(
        self, platform: Platform, *, after_a_dispense: bool = False
    ) -> None:
        """Set up only ``platform``, boot a feeder, and compare with the snapshot."""
        hass = self.hass
        snapshot = self.snapshot.with_defaults(exclude=ha_data_shape)
        async with platform_only(hass, self.entry_data, platform) as (entry, hub):
            feeder = await self.make_feeder()
            if after_a_dispense:
                await self._dispense_breakfast(hub, feeder)
            else:
                await self._reading_and_meal(hub, feeder)
                device = async_get_device(
                    hass, entry.entry_id, (DOMAIN, feeder.device_hid)
                )
                assert device is not None
                assert device == snapshot(name="device")
            await snapshot_platform(
                hass, self.entity_registry, snapshot, entry.entry_id
            )

    async def _reading_and_meal(self, hub: PetnetHub, feeder: SimulatedFeeder) -> None:
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
        await self.hass.async_block_till_done()

    async def _dispense_breakfast(
        self, hub: PetnetHub, feeder: SimulatedFeeder
    ) -> None:
        """Last feed, the feeding event's attributes and today's counters once it is in."""
        dev = feeder.device_hid
        hub.meal_editor.add_meal(
            hub.state.feeders[dev], name="Breakfast", time_s=7 * 3600, portion=0.25
        )
        self.freezer.move_to("2024-06-01T12:00:04+00:00")  # 07:00:04 CDT
        await feeder.send_feed_result(stime=1717243203, portion=0.25, src=6)
        await wait_for_feeder(hub, dev, lambda f: len(f.history) == 1)
        await self.hass.async_block_till_done()
