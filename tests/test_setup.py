"""Setting up and stopping the integration."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import logging
from pathlib import Path
import socket
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.petnet_feeder.const import (
    CERT_DIR_NAME,
    CONF_HTTPS_PORT,
    CONF_MQTT_PORT,
    CONF_MQTTS_PORT,
    CONF_SSL_CERTIFICATE,
    CONF_SSL_KEY,
    DOMAIN,
    STORAGE_KEY,
)

from .helpers.feeders import FeederFactory
from .helpers.ports import LOOPBACK


@pytest.mark.usefixtures("loaded_entry")
async def test_certificate_lives_beside_the_store_not_in_its_place(
    hass: HomeAssistant,
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


async def test_feeders_get_in_only_once_the_platforms_are_set_up(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ports are bound before the platforms (a port in use fails early), not accepting.

    A restart's reconnecting feeders would otherwise slow the platforms' setup, and their
    first messages would find no entities.
    """
    ports = [
        entry_data[key]
        for key in ("http_port", "https_port", "mqtt_port", "mqtts_port")
    ]
    refused: list[int] = []
    forward = hass.config_entries.async_forward_entry_setups

    async def forward_while_probing(*args: Any, **kwargs: Any) -> None:
        for port in ports:
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection(LOOPBACK, port)
            with (
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe,
                pytest.raises(OSError, match="in use"),
            ):
                probe.bind((LOOPBACK, port))
            refused.append(port)
        await forward(*args, **kwargs)

    monkeypatch.setattr(
        hass.config_entries, "async_forward_entry_setups", forward_while_probing
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    assert refused == ports
    for port in ports:
        _reader, writer = await asyncio.open_connection(LOOPBACK, port)
        writer.close()
        await writer.wait_closed()
    assert await hass.config_entries.async_unload(config_entry.entry_id)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (CONF_MQTTS_PORT, "Cannot listen for MQTTS on 127.0.0.1:{port}"),
        (CONF_HTTPS_PORT, "Kronos port {port} cannot be bound"),
    ],
)
async def test_port_taken_is_retried_until_it_is_free(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
    caplog: pytest.LogCaptureFixture,
    key: str,
    says: str,
) -> None:
    port = entry_data[key]
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind((LOOPBACK, port))
    blocker.listen(1)
    config_entry.add_to_hass(hass)
    with caplog.at_level(logging.DEBUG):
        assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    # The reason (shown on the integration's card) names the port, the cause and what to
    # do; HA retries in the background.
    reason = config_entry.reason or ""
    assert f"{says.format(port=port)}: Address already in use" in reason
    assert "Change it in the integration's options" in reason
    assert f"not ready yet: {reason}; Retrying in" in caplog.text
    assert "Traceback" not in caplog.text

    # Still taken at the first retry: still not ready, nothing left open.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=6))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY

    blocker.close()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=30))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.state is ConfigEntryState.LOADED
    feeder = await make_feeder()
    assert feeder.connected
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()


async def test_unusable_certificate_means_not_ready(
    hass: HomeAssistant, entry_data: dict[str, Any], tmp_path: Path
) -> None:
    """Files that were fine when configured and are not any more (replaced, or gone)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    entry = MockConfigEntry(
        domain=DOMAIN,
        data=entry_data,
        options={CONF_SSL_CERTIFICATE: str(cert), CONF_SSL_KEY: str(key)},
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert (entry.reason or "").startswith("The TLS certificate cannot be used: ")
    for port_key in ("http_port", "https_port", "mqtt_port", "mqtts_port"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, entry_data[port_key]))


async def test_home_assistant_stop_closes_the_broker(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, entry_data[CONF_MQTT_PORT]))
    assert hass.config_entries.async_entries(DOMAIN)[0].state is ConfigEntryState.LOADED
    # Unloading after the stop (the harness does it, and so may HA's final steps) is clean.
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert "Unable to remove unknown job listener" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
