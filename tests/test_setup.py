"""Setting up and stopping the integration."""

from __future__ import annotations

from pathlib import Path
import socket
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder.const import (
    CERT_DIR_NAME,
    CONF_MQTT_PORT,
    DOMAIN,
    STORAGE_KEY,
)

from .conftest import LOOPBACK


async def test_certificate_lives_beside_the_store_not_in_its_place(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    # The store is the file .storage/<STORAGE_KEY>; a folder of that name would break every save.
    cert_dir = Path(hass.config.path(".storage", CERT_DIR_NAME))
    assert CERT_DIR_NAME != STORAGE_KEY
    assert len(list(cert_dir.iterdir())) == 2
    assert not Path(hass.config.path(".storage", STORAGE_KEY)).is_dir()


async def test_port_taken_means_not_ready(
    hass: HomeAssistant, config_entry: MockConfigEntry, entry_data: dict[str, Any]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind((LOOPBACK, entry_data[CONF_MQTT_PORT]))
        blocker.listen(1)
        config_entry.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(config_entry.entry_id)
        assert config_entry.state is ConfigEntryState.SETUP_RETRY
        assert str(entry_data[CONF_MQTT_PORT]) in (config_entry.reason or "")
    # Everything opened before the failure was closed again: the other ports are free.
    for key in ("http_port", "https_port", "mqtts_port"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, entry_data[key]))


async def test_home_assistant_stop_closes_the_broker(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, entry_data: dict[str, Any]
) -> None:
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, entry_data[CONF_MQTT_PORT]))
    assert hass.config_entries.async_entries(DOMAIN)[0].state is ConfigEntryState.LOADED
