"""Config and options flow, every branch, with real port binding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import socket
from typing import Any

from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_INTEGRATION_DISCOVERY,
    SOURCE_USER,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

import custom_components.petnet_feeder as petnet
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
    PORT_KEYS,
    TRANSPORT_MQTT,
)
from custom_components.petnet_feeder.tls import ensure_certificate

from .helpers.ports import LOOPBACK, free_port
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


async def test_ignored_feeders_do_not_count_as_the_entry(
    hass: HomeAssistant,
) -> None:
    """An ignored feeder is an entry of the domain too; it does not block the setup."""
    MockConfigEntry(
        domain=DOMAIN, source=SOURCE_IGNORE, unique_id="a" * 40, data={}
    ).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"


async def test_discovered_feeder_without_a_loaded_entry_aborts(
    hass: HomeAssistant,
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data={"gateway_hid": "a" * 40},
    )
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "not_pending")


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
            "pairing_window_minutes": 5,
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
    assert settings.pairing_window_minutes == 5
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


@pytest.fixture
def count_setups(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The settings (data, then options) of every setup of the entry from now on."""
    setups: list[dict[str, Any]] = []
    setup_entry = petnet.async_setup_entry

    async def counting(hass: HomeAssistant, entry: Any) -> bool:
        setups.append({**entry.data, **entry.options})
        return await setup_entry(hass, entry)

    monkeypatch.setattr(petnet, "async_setup_entry", counting)
    return setups


def _held(port: int) -> bool:
    """Whether something listens on the loopback port (it cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


async def _reconfigure(
    hass: HomeAssistant, entry: MockConfigEntry, user_input: dict[str, Any]
) -> ConfigFlowResult:
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    await hass.async_block_till_done()
    return result


async def test_reconfigure_offers_the_entrys_settings(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, entry_data: dict[str, Any]
) -> None:
    result = await loaded_entry.start_reconfigure_flow(hass)
    defaults = {
        str(key): key.default()
        for key in result["data_schema"].schema
        if hasattr(key, "default") and callable(key.default)
    }
    assert defaults == {**entry_data, CONF_KRONOS_ON_HA_HTTP: False}


async def test_reconfigure_moves_every_port_and_reloads_once(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    count_setups: list[dict[str, Any]],
) -> None:
    """The bundled broker and Kronos move to new ports; the old ones are let go."""
    new_ports = {key: free_port() for key in PORT_KEYS}
    result = await _reconfigure(
        hass, loaded_entry, {**network_options(entry_data), **new_ports}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert len(count_setups) == 1
    assert count_setups[0].items() >= new_ports.items()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.data.items() >= new_ports.items()
    for key in PORT_KEYS:
        assert _held(new_ports[key]), key
        assert not _held(entry_data[key]), key


@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_reconfigure_switches_transport(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    count_setups: list[dict[str, Any]],
) -> None:
    """Bundled broker to HA's MQTT, new Kronos port; network keys leave the options."""
    # As if the options flow had set the network once: the options override the data.
    hass.config_entries.async_update_entry(
        loaded_entry,
        options={
            **network_options(entry_data),
            CONF_TRANSPORT: "bundled",
            CONF_DEFAULT_PORTION: 0.25,
        },
    )
    await hass.async_block_till_done()
    count_setups.clear()
    new_https = free_port()
    result = await _reconfigure(
        hass,
        loaded_entry,
        {
            **network_options(entry_data),
            CONF_TRANSPORT: TRANSPORT_MQTT,
            CONF_HTTPS_PORT: new_https,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert len(count_setups) == 1
    assert count_setups[0][CONF_TRANSPORT] == TRANSPORT_MQTT
    assert count_setups[0][CONF_HTTPS_PORT] == new_https
    assert loaded_entry.data[CONF_TRANSPORT] == TRANSPORT_MQTT
    assert loaded_entry.options == {CONF_DEFAULT_PORTION: 0.25}
    assert loaded_entry.state is ConfigEntryState.LOADED
    hub = loaded_entry.runtime_data
    assert type(hub.transport).__name__ == "HaMqttTransport"
    assert hub.settings.default_portion == 0.25
    assert _held(new_https)
    # The bundled broker's ports are let go.
    assert not _held(entry_data[CONF_MQTT_PORT])


async def test_reconfigure_unchanged_reloads_once(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    count_setups: list[dict[str, Any]],
) -> None:
    result = await _reconfigure(hass, loaded_entry, network_options(entry_data))
    assert result["reason"] == "reconfigure_successful"
    assert len(count_setups) == 1
    assert loaded_entry.state is ConfigEntryState.LOADED


async def _refused(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    user_input: dict[str, Any],
    count_setups: list[dict[str, Any]],
) -> ConfigFlowResult:
    """Submit the reconfigure form; it must come back, with nothing changed or reloaded."""
    data, options, state = dict(entry.data), dict(entry.options), entry.state
    result = await _reconfigure(hass, entry, user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert dict(entry.data) == data
    assert dict(entry.options) == options
    assert count_setups == []
    assert entry.state is state
    return result


@pytest.mark.parametrize("field", PORT_KEYS)
async def test_reconfigure_refuses_a_busy_port(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    busy_port: int,
    field: str,
    count_setups: list[dict[str, Any]],
) -> None:
    result = await _refused(
        hass,
        loaded_entry,
        {**network_options(entry_data), field: busy_port},
        count_setups,
    )
    assert result["errors"] == {field: "port_unavailable"}
    assert result["description_placeholders"] == {"busy_ports": str(busy_port)}
    # The form keeps what the user typed.
    defaults = {
        str(key): key.default()
        for key in result["data_schema"].schema
        if hasattr(key, "default") and callable(key.default)
    }
    assert defaults[field] == busy_port


async def test_reconfigure_refuses_an_unusable_certificate(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    tmp_path: Path,
    count_setups: list[dict[str, Any]],
) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    result = await _refused(
        hass,
        loaded_entry,
        {
            **network_options(entry_data),
            CONF_SSL_CERTIFICATE: str(tmp_path / "cert.pem"),
            CONF_SSL_KEY: str(tmp_path / "key.pem"),
        },
        count_setups,
    )
    assert result["errors"] == {CONF_SSL_CERTIFICATE: "certificate_unusable"}


async def test_reconfigure_refuses_mqtt_without_the_integration(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    count_setups: list[dict[str, Any]],
) -> None:
    result = await _refused(
        hass,
        loaded_entry,
        {**network_options(entry_data), CONF_TRANSPORT: TRANSPORT_MQTT},
        count_setups,
    )
    assert result["errors"] == {CONF_TRANSPORT: "mqtt_not_available"}


async def test_reconfigure_takes_the_users_certificate(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    tmp_path: Path,
    count_setups: list[dict[str, Any]],
) -> None:
    cert, key = await hass.async_add_executor_job(
        ensure_certificate, tmp_path, "feeder.example"
    )
    result = await _reconfigure(
        hass,
        loaded_entry,
        {
            **network_options(entry_data),
            CONF_SSL_CERTIFICATE: str(cert),
            CONF_SSL_KEY: str(key),
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert len(count_setups) == 1
    assert loaded_entry.data[CONF_SSL_CERTIFICATE] == str(cert)
    assert loaded_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_sets_up_an_entry_that_could_not_start(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    busy_port: int,
    count_setups: list[dict[str, Any]],
) -> None:
    """An entry whose port was taken at start holds no port: a free one gets it going."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, CONF_HTTPS_PORT: busy_port}
    )
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    count_setups.clear()
    # Its own (unheld) port is checked like any other.
    await _refused(
        hass, config_entry, network_options(dict(config_entry.data)), count_setups
    )
    result = await _reconfigure(hass, config_entry, network_options(entry_data))
    assert result["reason"] == "reconfigure_successful"
    assert len(count_setups) == 1
    assert config_entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(config_entry.entry_id)
