"""One platform at a time, every entity enabled: what the test_<platform>.py snapshots see.

A fixed entry id and a frozen clock (``SNAPSHOT_TIME``) keep registry entries and states
comparable; HA's snapshot extension turns registry ids and timestamps into placeholders.
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
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder

from .feeders import FeederFactory, wait_for_feeder

SNAPSHOT_TIME = "2024-06-01T11:30:00+00:00"
SNAPSHOT_ENTRY_ID = "01JSNAPSHOTPETNETFEEDER000"


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
        hass, snapshot = self.hass, self.snapshot
        async with platform_only(hass, self.entry_data, platform) as (entry, hub):
            feeder = await self.make_feeder()
            if after_a_dispense:
                await self._dispense_breakfast(hub, feeder)
            else:
                await self._reading_and_meal(hub, feeder)
                device = dr.async_get(hass).async_get_device(
                    identifiers={(DOMAIN, feeder.device_hid)}
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
        hub.schedules.add_meal(
            hub.feeders[feeder.device_hid],
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
        hub.schedules.add_meal(
            hub.feeders[dev], name="Breakfast", time_s=7 * 3600, portion=0.25
        )
        self.freezer.move_to("2024-06-01T12:00:04+00:00")  # 07:00:04 CDT
        await feeder.send_feed_result(stime=1717243203, portion=0.25, src=6)
        await wait_for_feeder(hub, dev, lambda f: len(f.history) == 1)
        await self.hass.async_block_till_done()
