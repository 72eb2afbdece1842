"""Registration control: with "accept new feeders automatically" off, new feeders wait.

HTTP answers for a gateway held for approval (docs/decisions.md):
POST /gateways 202 {"hid", "message"}; GET config 400 {"detail": "... waiting for approval ..."};
PUT checkin and POST /devices 202 {"message"}; MQTT login refused (CONNACK 5).
"""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder import approvals
from custom_components.petnet_feeder.approvals import pending_issue_id
from custom_components.petnet_feeder.const import (
    CONF_ACCEPT_NEW_FEEDERS,
    CONF_MQTT_PORT,
    DOMAIN,
)
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim.kronos_client import KronosError

from .helpers.entities import wait_for_entity
from .helpers.feeders import FeederFactory
from .helpers.logs import server_messages
from .helpers.options import set_options
from .helpers.raw_mqtt import RawClient

GW_HID = "488533283e3f06ca4ae929fd01f50a9259dd393f"
REFUSED = 5


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """New feeders need approval in this module."""
    return {CONF_ACCEPT_NEW_FEEDERS: False}


@pytest.fixture
async def repairs_client(hass: HomeAssistant, hass_client: Any) -> Any:
    """An authenticated client of HA's HTTP API with the repairs component loaded."""
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, "repairs", {})
    return await hass_client()


async def approve_in_ui(client: Any, gateway_hid: str) -> dict[str, Any]:
    """Run the repair's fix flow like the frontend does; return the shown form."""
    response = await client.post(
        "/api/repairs/issues/fix",
        json={"handler": DOMAIN, "issue_id": pending_issue_id(gateway_hid)},
    )
    assert response.status == 200, await response.text()
    form = await response.json()
    assert (form["type"], form["step_id"]) == ("form", "approve")
    response = await client.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={})
    assert response.status == 200, await response.text()
    assert (await response.json())["type"] == "create_entry"
    return dict(form)


async def refused_status(call: Any) -> tuple[int, Any]:
    """Status and body of a Kronos call the simulator treats as failed."""
    with pytest.raises(KronosError) as err:
        await call()
    return err.value.status, err.value.body


async def mqtt_login(entry_data: dict[str, Any], gateway_hid: str, key: str) -> int:
    client = await RawClient.open(entry_data[CONF_MQTT_PORT])
    try:
        return await client.connect(gateway_hid, f"/pegasus:{gateway_hid}", key)
    finally:
        await client.close()


async def test_new_feeder_waits_until_approved(
    hass: HomeAssistant,
    hub: PetnetHub,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
    repairs_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    feeder = await make_feeder(boot=False)

    status, body = await refused_status(feeder.register_gateway)
    assert status == 202
    assert '"hid": "488533283e3f06ca4ae929fd01f50a9259dd393f"' in body
    assert "waiting for approval" in body
    status, body = await refused_status(feeder.fetch_config)
    assert status == 400
    assert f"Gateway ({GW_HID}) is waiting for approval in Home Assistant" in body
    assert feeder.api_key is None
    status, body = await refused_status(feeder.register_device)
    assert status == 202
    assert await feeder.checkin() == 202
    # No key exists, so no key can be guessed into a session either.
    assert await mqtt_login(entry_data, GW_HID, "0" * 64) == REFUSED
    assert hub.state.gateways == {}
    assert hub.state.feeders == {}
    assert list(hub.registrations.pending) == [GW_HID]

    issue = ir.async_get(hass).async_get_issue(DOMAIN, pending_issue_id(GW_HID))
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "pending_gateway"
    assert issue.translation_placeholders == {
        "feeder": "SmartFeeder 73737D",
        "gateway": GW_HID,
        "uid": "smartfeeder-795ae773737d",
        "version": "2.8.0",
    }

    form = await approve_in_ui(repairs_client, GW_HID)
    assert form["description_placeholders"]["feeder"] == "SmartFeeder 73737D"
    assert ir.async_get(hass).async_get_issue(DOMAIN, pending_issue_id(GW_HID)) is None
    assert hub.registrations.pending == {}
    gateway = hub.state.gateways[GW_HID]
    assert (gateway.uid, gateway.software_version) == (
        "smartfeeder-795ae773737d",
        "2.8.0",
    )

    # The feeder's next boot attempt gets its key and connects.
    await feeder.boot()
    assert feeder.connected
    assert feeder.api_key == gateway.api_key
    await wait_for_entity(hass, "binary_sensor", feeder.device_hid, "connectivity")
    assert gateway.api_key not in "\n".join(server_messages(caplog.records))


async def test_checkin_only_firmware_waits_too(
    hass: HomeAssistant,
    hub: PetnetHub,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
    repairs_client: Any,
) -> None:
    feeder = await make_feeder(boot=False, register=False)
    assert await feeder.checkin() == 202
    status, _ = await refused_status(feeder.fetch_config)
    assert status == 400
    assert await mqtt_login(entry_data, GW_HID, "0" * 64) == REFUSED
    assert hub.state.gateways == {}
    issue = ir.async_get(hass).async_get_issue(DOMAIN, pending_issue_id(GW_HID))
    assert issue is not None
    assert issue.translation_placeholders["uid"] == "unknown"

    await approve_in_ui(repairs_client, GW_HID)
    await feeder.boot()
    assert feeder.connected
    assert feeder.api_key == hub.state.gateways[GW_HID].api_key


async def test_known_feeder_is_not_held(
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """Approval is for new gateways; one that is known reboots and reconnects as always."""
    feeder = await make_feeder(boot=False)
    await refused_status(feeder.register_gateway)
    assert hub.registrations.approve(GW_HID)
    await feeder.boot()
    key = feeder.api_key
    await feeder.reboot()
    assert feeder.connected
    assert feeder.api_key == key
    assert hub.registrations.pending == {}


async def test_approving_twice_aborts(
    hub: PetnetHub,
    make_feeder: FeederFactory,
    repairs_client: Any,
) -> None:
    feeder = await make_feeder(boot=False)
    await refused_status(feeder.register_gateway)
    response = await repairs_client.post(
        "/api/repairs/issues/fix",
        json={"handler": DOMAIN, "issue_id": pending_issue_id(GW_HID)},
    )
    flow_id = (await response.json())["flow_id"]
    assert hub.registrations.approve(GW_HID)  # e.g. from a second browser tab
    api_key = hub.state.gateways[GW_HID].api_key
    response = await repairs_client.post(f"/api/repairs/issues/fix/{flow_id}", json={})
    result = await response.json()
    assert (result["type"], result["reason"]) == ("abort", "not_pending")
    assert hub.state.gateways[GW_HID].api_key == api_key


async def test_pending_queue_is_bounded(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(approvals, "MAX_PENDING", 3)
    feeders = [
        await make_feeder(f"smartfeeder-00000000000{index}", boot=False)
        for index in range(4)
    ]
    for feeder in feeders[:3]:
        assert (await refused_status(feeder.register_gateway))[0] == 202
    status, body = await refused_status(feeders[3].register_gateway)
    assert status == 429
    assert "too many feeders are waiting for approval" in body
    assert len(hub.registrations.pending) == 3
    assert len(ir.async_get(hass).issues) == 3
    # One that already waits is still told so (and not counted twice).
    assert (await refused_status(feeders[0].register_gateway))[0] == 202


async def test_unload_forgets_pending_and_option_on_lets_them_in(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
) -> None:
    feeder = await make_feeder(boot=False, retry_delay=None)
    await refused_status(feeder.register_gateway)
    assert ir.async_get(hass).async_get_issue(DOMAIN, pending_issue_id(GW_HID))

    await set_options(hass, loaded_entry, {CONF_ACCEPT_NEW_FEEDERS: True})
    assert ir.async_get(hass).async_get_issue(DOMAIN, pending_issue_id(GW_HID)) is None
    hub: PetnetHub = loaded_entry.runtime_data
    assert hub.registrations.accept_new
    await feeder.boot()
    assert feeder.connected
    assert GW_HID in hub.state.gateways
