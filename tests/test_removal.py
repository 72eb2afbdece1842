"""Removing the integration, and removing one feeder's device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.petnet_feeder.const import (
    CERT_DIR_NAME,
    CERT_HOSTNAME,
    CONF_MQTT_PORT,
    CONF_SSL_CERTIFICATE,
    CONF_SSL_KEY,
    DOMAIN,
)
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.tls import ensure_certificate
from feeder_sim.kronos_client import KronosError

from .helpers.entities import wait_for_entity
from .helpers.feeders import FeederFactory
from .helpers.pairing import accept, wait_for_discovered, wait_session_closed
from .helpers.raw_mqtt import RawClient

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


async def remove_device_in_ui(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    entry_id: str,
    device_id: str,
) -> dict[str, Any]:
    """Delete a device from the integration as the device page does."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": entry_id,
            "device_id": device_id,
        }
    )
    response = await client.receive_json()
    await hass.async_block_till_done()
    return dict(response)


async def test_removed_device_loses_its_key_and_comes_back_only_by_pairing(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
    hass_storage: dict[str, Any],
) -> None:
    feeder = await make_feeder(retry_delay=None)
    hub: PetnetHub = loaded_entry.runtime_data
    battery = await wait_for_entity(hass, "sensor", DEV_HID, "battery_voltage")
    devices = dr.async_get(hass)
    device = devices.async_get_device(identifiers={(DOMAIN, DEV_HID)})
    assert device is not None
    api_key = hub.state.gateways[GW_HID].api_key
    assert hub.state.is_connected(GW_HID)
    hub.registrations.close_window()

    response = await remove_device_in_ui(
        hass, hass_ws_client, loaded_entry.entry_id, device.id
    )
    assert response["success"], response

    assert devices.async_get_device(identifiers={(DOMAIN, DEV_HID)}) is None
    assert er.async_get(hass).async_get(battery) is None
    assert hass.states.get(battery) is None
    assert DEV_HID not in hub.state.feeders
    assert GW_HID not in hub.state.gateways
    await wait_session_closed(hub, GW_HID)
    await hub.state.async_save_now()
    assert DEV_HID not in hass_storage[DOMAIN]["data"]["feeders"]
    assert GW_HID not in hass_storage[DOMAIN]["data"]["gateways"]
    # Its old key no longer logs in, and nothing it says is heard.
    client = await RawClient.open(entry_data[CONF_MQTT_PORT])
    assert await client.connect(GW_HID, f"/pegasus:{GW_HID}", api_key) == 5
    await client.close()
    response = await hass.services.async_call(
        DOMAIN, "broker_credentials", {}, blocking=True, return_response=True
    )
    assert response == {"gateways": [], "acl_file": ""}

    # It comes back only through pairing, with a new key.
    with pytest.raises(KronosError):
        await feeder.boot()
    await wait_for_discovered(hass, GW_HID)
    assert (await accept(hass, GW_HID))["reason"] == "paired"
    await feeder.boot()
    assert feeder.connected
    assert feeder.api_key == hub.state.gateways[GW_HID].api_key != api_key
    back = devices.async_get_device(identifiers={(DOMAIN, DEV_HID)})
    assert back is not None
    assert back.config_entries == {loaded_entry.entry_id}


async def test_hub_device_cannot_be_removed(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    hub_device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"hub_{loaded_entry.entry_id}")}
    )
    assert hub_device is not None
    response = await remove_device_in_ui(
        hass, hass_ws_client, loaded_entry.entry_id, hub_device.id
    )
    assert not response["success"]
    assert dr.async_get(hass).async_get(hub_device.id) is not None
