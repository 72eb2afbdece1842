"""Config and options flow, every branch, with real port binding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import socket
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder.const import (
    CONF_BIND_HOST,
    CONF_DEFAULT_PORTION,
    CONF_HTTP_PORT,
    CONF_HTTPS_PORT,
    CONF_KRONOS_ON_HA_HTTP,
    CONF_MQTT_PORT,
    CONF_MQTTS_PORT,
    CONF_SSL_CERTIFICATE,
    CONF_SSL_KEY,
    CONF_TRANSPORT,
    DOMAIN,
    TRANSPORT_MQTT,
)
from custom_components.petnet_feeder.tls import ensure_certificate

from .helpers.ports import LOOPBACK
from .helpers.transports import both_transports


@pytest.fixture
def busy_port(socket_enabled: None) -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def network_options(entry_data: dict[str, Any]) -> dict[str, Any]:
    """The listen address and ports of the entry, as the options form expects them."""
    return {
        key: entry_data[key]
        for key in (
            CONF_BIND_HOST,
            CONF_HTTP_PORT,
            CONF_HTTPS_PORT,
            CONF_MQTT_PORT,
            CONF_MQTTS_PORT,
        )
    }


async def _start(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return result["flow_id"]


@pytest.mark.usefixtures("transport_ready")
@both_transports
async def test_user_step_creates_a_working_entry(
    hass: HomeAssistant,
    entry_data: dict[str, Any],
) -> None:
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, entry_data)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {**entry_data, CONF_KRONOS_ON_HA_HTTP: False}
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_defaults_offered(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    defaults = {
        str(key): key.default()
        for key in result["data_schema"].schema
        if hasattr(key, "default") and callable(key.default)
    }
    assert defaults[CONF_TRANSPORT] == "bundled"
    assert defaults[CONF_HTTP_PORT] == 5000
    assert defaults[CONF_HTTPS_PORT] == 443
    assert defaults[CONF_MQTT_PORT] == 1883
    assert defaults[CONF_MQTTS_PORT] == 8883
    assert defaults[CONF_KRONOS_ON_HA_HTTP] is False


async def test_mqtt_transport_needs_the_mqtt_integration(
    hass: HomeAssistant, entry_data: dict[str, Any]
) -> None:
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**entry_data, CONF_TRANSPORT: TRANSPORT_MQTT}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TRANSPORT: "mqtt_not_available"}


@pytest.mark.usefixtures("mqtt_mock")
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_mqtt_transport_binds_no_mqtt_port(
    hass: HomeAssistant,
    entry_data: dict[str, Any],
    busy_port: int,
) -> None:
    """With HA's MQTT integration the MQTT port fields are not ours to check or bind."""
    flow_id = await _start(hass)
    data = {
        **entry_data,
        CONF_TRANSPORT: TRANSPORT_MQTT,
        CONF_MQTT_PORT: busy_port,
        CONF_MQTTS_PORT: busy_port,
    }
    # The Kronos ports are still checked...
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**data, CONF_HTTPS_PORT: busy_port}
    )
    assert result["errors"] == {CONF_HTTPS_PORT: "port_unavailable"}
    # ...the MQTT ones are not.
    result = await hass.config_entries.flow.async_configure(flow_id, data)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    assert type(entry.runtime_data.transport).__name__ == "HaMqttTransport"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_options_refuse_mqtt_without_the_integration(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, entry_data: dict[str, Any]
) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    options = network_options(entry_data)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {**options, CONF_TRANSPORT: TRANSPORT_MQTT, CONF_DEFAULT_PORTION: 0.125},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TRANSPORT: "mqtt_not_available"}
    assert CONF_TRANSPORT not in loaded_entry.options


@pytest.mark.parametrize(
    "field", [CONF_HTTP_PORT, CONF_HTTPS_PORT, CONF_MQTT_PORT, CONF_MQTTS_PORT]
)
async def test_busy_port_gets_a_field_error(
    hass: HomeAssistant, entry_data: dict[str, Any], busy_port: int, field: str
) -> None:
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**entry_data, field: busy_port}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: "port_unavailable"}
    assert result["description_placeholders"] == {"busy_ports": str(busy_port)}
    # The user fixes it and the flow completes.
    result = await hass.config_entries.flow.async_configure(flow_id, entry_data)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_duplicate_ports(hass: HomeAssistant, entry_data: dict[str, Any]) -> None:
    flow_id = await _start(hass)
    data = {**entry_data, CONF_MQTTS_PORT: entry_data[CONF_MQTT_PORT]}
    result = await hass.config_entries.flow.async_configure(flow_id, data)
    assert result["errors"] == {CONF_MQTTS_PORT: "port_duplicate"}


@pytest.mark.parametrize(
    ("given", "error_field"),
    [
        ({CONF_SSL_CERTIFICATE: "/x/cert.pem"}, CONF_SSL_KEY),
        ({CONF_SSL_KEY: "/x/key.pem"}, CONF_SSL_CERTIFICATE),
    ],
)
async def test_certificate_needs_both_files(
    hass: HomeAssistant,
    entry_data: dict[str, Any],
    given: dict[str, str],
    error_field: str,
) -> None:
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**entry_data, **given}
    )
    assert result["errors"] == {error_field: "certificate_pair"}


async def test_unreadable_certificate(
    hass: HomeAssistant, entry_data: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            **entry_data,
            CONF_SSL_CERTIFICATE: str(tmp_path / "cert.pem"),
            CONF_SSL_KEY: str(tmp_path / "key.pem"),
        },
    )
    assert result["errors"] == {CONF_SSL_CERTIFICATE: "certificate_unusable"}


async def test_users_certificate_is_accepted(
    hass: HomeAssistant, entry_data: dict[str, Any], tmp_path: Path
) -> None:
    cert, key = await hass.async_add_executor_job(
        ensure_certificate, tmp_path, "feeder.example"
    )
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**entry_data, CONF_SSL_CERTIFICATE: str(cert), CONF_SSL_KEY: str(key)}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SSL_CERTIFICATE] == str(cert)
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_only_one_entry(hass: HomeAssistant, entry_data: dict[str, Any]) -> None:
    MockConfigEntry(domain=DOMAIN, data=entry_data).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"


async def test_options_change_portion_and_reload(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, entry_data: dict[str, Any]
) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    # The entry's own listeners hold these ports; that must not count as "in use".
    options = network_options(entry_data)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **options,
            CONF_DEFAULT_PORTION: 0.25,
            "grace_minutes": 10,
            "auto_feed_missed": True,
            "offline_alert_minutes": 30,
            "accept_new_feeders": False,
            CONF_KRONOS_ON_HA_HTTP: True,
        },
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options[CONF_DEFAULT_PORTION] == 0.25
    settings = loaded_entry.runtime_data.settings
    assert settings.grace_minutes == 10
    assert settings.auto_feed_missed is True
    assert settings.offline_alert_minutes == 30
    assert settings.accept_new_feeders is False
    assert loaded_entry.options[CONF_KRONOS_ON_HA_HTTP] is True
    assert loaded_entry.options[CONF_SSL_CERTIFICATE] == ""
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.runtime_data.settings.default_portion == 0.25


async def test_options_busy_port(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    busy_port: int,
) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    options = network_options(entry_data)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {**options, CONF_HTTP_PORT: busy_port, CONF_DEFAULT_PORTION: 0.125},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_HTTP_PORT: "port_unavailable"}
    assert result["description_placeholders"] == {"busy_ports": str(busy_port)}
    assert CONF_DEFAULT_PORTION not in loaded_entry.options
