"""A Home Assistant restart inside one test: a second, fresh hass on the first one's storage.

The test harness keeps the config entries and the device and entity registries in memory (its
registry stores never write, and every hass it makes starts with empty registries). A real
Home Assistant writes them to ``.storage`` when it stops and reads them back at start; these
helpers do both through the test's ``hass_storage``, which the integration's own store uses too.

``restart`` is the quick kind: the same hass unloads the entry and sets it up again (``stop``
and ``start_again`` apart, for what happens while it is stopped).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from unittest.mock import patch

from homeassistant import bootstrap, config_entries, core, loader
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    area_registry as ar,
    category_registry as cr,
    device_registry as dr,
    entity_registry as er,
    floor_registry as fr,
    frame,
    issue_registry as ir,
    label_registry as lr,
    restore_state as rs,
)
from homeassistant.helpers.storage import Store
from pytest_homeassistant_custom_component.common import async_test_home_assistant

from custom_components.petnet_feeder.hub import PetnetHub


async def async_write_core_storage(hass: HomeAssistant) -> None:
    """Write config entries, devices and entities as a stopping Home Assistant does."""
    stores: list[tuple[str, int, int, Any]] = [
        (
            config_entries.STORAGE_KEY,
            config_entries.STORAGE_VERSION,
            config_entries.STORAGE_VERSION_MINOR,
            hass.config_entries._data_to_save(),
        ),
        (
            dr.STORAGE_KEY,
            dr.STORAGE_VERSION_MAJOR,
            dr.STORAGE_VERSION_MINOR,
            dr.async_get(hass)._data_to_save(),
        ),
        (
            er.STORAGE_KEY,
            er.STORAGE_VERSION_MAJOR,
            er.STORAGE_VERSION_MINOR,
            er.async_get(hass)._data_to_save(),
        ),
    ]
    for key, version, minor_version, data in stores:
        await Store[Any](hass, version, key, minor_version=minor_version).async_save(
            data
        )


@asynccontextmanager
async def async_restarted_hass(config_dir: str) -> AsyncIterator[HomeAssistant]:
    """Start a fresh hass that loads registries and config entries from storage.

    Set up its entries with ``async_setup_entries``. On exit its loaded entries are unloaded
    (so the harness can check that nothing lingers) and it is stopped. The first hass stays
    the one ``async_get_hass`` returns afterwards.
    """
    first = core.async_get_hass()
    async with async_test_home_assistant(
        load_registries=False, config_dir=config_dir
    ) as hass:
        frame.async_setup(hass)
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)  # custom_components/ are allowed
        # As the harness does, minus its empty registry stores: these read hass_storage.
        with (
            patch(
                "homeassistant.helpers.restore_state.RestoreStateData.async_setup_dump",
                return_value=None,
            ),
            patch("homeassistant.helpers.restore_state.start.async_at_start"),
        ):
            for registry in (ar, cr, dr, er, fr, ir, lr, rs):
                await registry.async_load(hass)
        hass.data[bootstrap.DATA_REGISTRIES_LOADED] = None
        await hass.config_entries.async_initialize()
        try:
            yield hass
        finally:
            for entry in hass.config_entries.async_entries():
                if entry.state is ConfigEntryState.LOADED:
                    await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
            await hass.async_stop(force=True)
            core._hass.hass = first


async def async_setup_entries(hass: HomeAssistant) -> None:
    """Set up every stored config entry, HA's MQTT integration's first, as at start."""
    entries = sorted(
        hass.config_entries.async_entries(), key=lambda entry: entry.domain != "mqtt"
    )
    for entry in entries:
        assert await hass.config_entries.async_setup(entry.entry_id), entry.domain
    await hass.async_block_till_done()


async def stop(hass: HomeAssistant, hub: PetnetHub) -> None:
    """Unload the hub's entry, as Home Assistant does when it stops."""
    assert await hass.config_entries.async_unload(hub.entry.entry_id)
    await hass.async_block_till_done()


async def start_again(hass: HomeAssistant, hub: PetnetHub) -> PetnetHub:
    """Set the stopped hub's entry up again on the same storage; returns the new hub.

    The new hub's schedule syncs start as quickly as the old one's did.
    """
    entry = hub.entry
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    restarted: PetnetHub = entry.runtime_data
    assert restarted is not hub
    restarted.sync.reconciler_options = hub.sync.reconciler_options
    return restarted


async def restart(hass: HomeAssistant, hub: PetnetHub) -> PetnetHub:
    """Unload the entry and set it up again on the same storage, as after an HA restart."""
    await stop(hass, hub)
    return await start_again(hass, hub)
