"""Removing the integration, and removing one feeder's device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.petnet_feeder.const import (
    CERT_DIR_NAME,
    CERT_HOSTNAME,
    CONF_SSL_CERTIFICATE,
    CONF_SSL_KEY,
    DOMAIN,
)
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.tls import ensure_certificate

from .helpers.entities import wait_for_entity
from .helpers.feeders import FeederFactory, wait_for_feeder

GW_HID = "488533283e3f06ca4ae929fd01f50a9259dd393f"
DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"


def generated_cert_dir(hass: HomeAssistant) -> Path:
    return Path(hass.config.path(".storage", CERT_DIR_NAME))


async def test_removing_the_entry_deletes_stored_data_and_generated_key(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    hass_storage: dict[str, Any],
) -> None:
    await make_feeder()
    hub: PetnetHub = loaded_entry.runtime_data
    await hub.state.async_save_now()
    assert GW_HID in hass_storage[DOMAIN]["data"]["gateways"]
    assert (generated_cert_dir(hass) / "key.pem").is_file()

    assert (await hass.config_entries.async_remove(loaded_entry.entry_id))[
        "require_restart"
    ] is False
    await hass.async_block_till_done()

    assert DOMAIN not in hass_storage
    assert not generated_cert_dir(hass).exists()
    assert dr.async_get(hass).async_get_device(identifiers={(DOMAIN, DEV_HID)}) is None


async def test_removing_the_entry_keeps_the_users_certificate(
    hass: HomeAssistant, entry_data: dict[str, Any], tmp_path: Path
) -> None:
    cert, key = ensure_certificate(tmp_path / "mine", CERT_HOSTNAME)
    entry = MockConfigEntry(
        domain=DOMAIN,
        data=entry_data,
        options={CONF_SSL_CERTIFICATE: str(cert), CONF_SSL_KEY: str(key)},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert cert.is_file()
    assert key.is_file()
    assert not generated_cert_dir(hass).exists()  # never made: the user's pair was used


async def test_removed_device_is_forgotten_until_the_feeder_reports_again(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
    hass_storage: dict[str, Any],
) -> None:
    assert await async_setup_component(hass, "config", {})
    feeder = await make_feeder()
    hub: PetnetHub = loaded_entry.runtime_data
    battery = await wait_for_entity(hass, "sensor", DEV_HID, "battery_voltage")
    devices = dr.async_get(hass)
    device = devices.async_get_device(identifiers={(DOMAIN, DEV_HID)})
    assert device is not None
    api_key = hub.state.gateways[GW_HID].api_key

    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": loaded_entry.entry_id,
            "device_id": device.id,
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    await hass.async_block_till_done()

    assert devices.async_get_device(identifiers={(DOMAIN, DEV_HID)}) is None
    assert er.async_get(hass).async_get(battery) is None
    assert hass.states.get(battery) is None
    assert DEV_HID not in hub.state.feeders
    await hub.state.async_save_now()
    assert DEV_HID not in hass_storage[DOMAIN]["data"]["feeders"]
    # The gateway and its key stay: the feeder keeps its session and needs no reboot.
    assert hass_storage[DOMAIN]["data"]["gateways"][GW_HID]["api_key"] == api_key

    await feeder.send_sensor(voltage_mv=3900)
    await wait_for_feeder(
        hub, DEV_HID, lambda feeder: feeder.telemetry.voltage_v == 3.9
    )
    back = devices.async_get_device(identifiers={(DOMAIN, DEV_HID)})
    assert back is not None
    assert back.config_entries == {loaded_entry.entry_id}
    battery = await wait_for_entity(hass, "sensor", DEV_HID, "battery_voltage")
    await hass.async_block_till_done()
    assert hass.states.get(battery).state == "3.9"
