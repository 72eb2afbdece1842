"""Kronos HTTP API (§3) on the embedded site and on HA's own HTTP server."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder.const import (
    CONF_HTTP_PORT,
    CONF_HTTPS_PORT,
    CONF_KRONOS_ON_HA_HTTP,
    DOMAIN,
)
from custom_components.petnet_feeder.protocol.ids import SECRET_KEY, hid_from_uid

from .helpers.options import set_options
from .helpers.ports import LOOPBACK

GW_UID = "smartfeeder-795ae773737d"
GW_HID = "488533283e3f06ca4ae929fd01f50a9259dd393f"
DEV_UID = "smartfeeder-795ae773737d-prod"
DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"
GATEWAY_BODY = {
    "name": "SF Gateway",
    "uid": GW_UID,
    "osName": "FreeRTOS",
    "type": "Local",
    "softwareName": "SMART FEEDER",
    "softwareVersion": "2.8.0",
    "sdkVersion": "1.3.12",
}
DEVICE_BODY = {
    "name": "SF20A",
    "type": "SMART FEEDER",
    "uid": DEV_UID,
    "gatewayHid": GW_HID,
    "softwareName": "SMART FEEDER",
    "softwareVersion": "2.8.0",
}


@pytest.fixture
async def http(loaded_entry: MockConfigEntry, entry_data: dict[str, Any]) -> Any:
    """A client for the embedded plain-HTTP Kronos site."""
    async with aiohttp.ClientSession(
        base_url=f"http://{LOOPBACK}:{entry_data[CONF_HTTP_PORT]}"
    ) as session:
        yield session


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    raw: bytes | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    # The feeder sends no Content-Type (§1.9): send raw bytes without one.
    data = (
        raw
        if raw is not None
        else (json.dumps(body).encode() if body is not None else None)
    )
    async with session.request(
        method, path, data=data, skip_auto_headers=["Content-Type"]
    ) as response:
        text = await response.read()
        return response.status, json.loads(text) if text else None, response


def _stored(entry: MockConfigEntry) -> tuple[dict[str, Any], dict[str, Any]]:
    hub = entry.runtime_data
    return (
        {hid: gw.to_dict() for hid, gw in hub.state.gateways.items()},
        {hid: f.to_dict() for hid, f in hub.state.feeders.items()},
    )


async def test_boot_sequence(
    http: aiohttp.ClientSession, loaded_entry: MockConfigEntry
) -> None:
    status, body, response = await _call(
        http, "POST", "/api/v1/kronos/gateways", GATEWAY_BODY
    )
    assert status == 200
    assert body == {"hid": GW_HID, "message": "OK"}
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert "Content-Length" in response.headers
    assert "Transfer-Encoding" not in response.headers

    status, config, _ = await _call(
        http, "GET", f"/api/v1/kronos/gateways/{GW_HID}/config"
    )
    assert status == 200
    assert config["cloudPlatform"] == "IoTConnect"
    assert config["key"]["secretKey"] == SECRET_KEY
    api_key = config["key"]["apiKey"]
    assert len(api_key) == 64
    assert int(api_key, 16) >= 0

    status, body, _ = await _call(http, "POST", "/api/v1/kronos/devices", DEVICE_BODY)
    assert status == 200
    assert body == {
        "hid": DEV_HID,
        "links": {},
        "message": "device is already registered",
        "pri": f"arw:krn:dev:{DEV_HID}",
    }

    # Registering again is idempotent and never rotates the key.
    status, body, _ = await _call(
        http,
        "POST",
        "/api/v1/kronos/gateways",
        {**GATEWAY_BODY, "softwareVersion": "2.8.1"},
    )
    assert body == {"hid": GW_HID, "message": "gateway is already registered"}
    _, config_again, _ = await _call(
        http, "GET", f"/api/v1/kronos/gateways/{GW_HID}/config"
    )
    assert config_again["key"]["apiKey"] == api_key
    hub = loaded_entry.runtime_data
    # Re-registration sets the version of every device of the gateway (§3.1).
    assert hub.state.feeders[DEV_HID].software_version == "2.8.1"
    assert hub.state.feeders[DEV_HID].gateway_hid == GW_HID


@pytest.mark.usefixtures("loaded_entry")
async def test_checkin_creates_unknown_gateway(
    http: aiohttp.ClientSession,
) -> None:
    status, body, _ = await _call(
        http, "PUT", f"/api/v1/kronos/gateways/{GW_HID}/checkin"
    )
    assert (status, body) == (200, {})
    status, config, _ = await _call(
        http, "GET", f"/api/v1/kronos/gateways/{GW_HID}/config"
    )
    assert status == 200
    assert len(config["key"]["apiKey"]) == 64


async def test_device_with_unknown_gateway_gets_placeholder(
    http: aiohttp.ClientSession, loaded_entry: MockConfigEntry
) -> None:
    other = hid_from_uid("smartfeeder-000000000001")
    status, body, _ = await _call(
        http, "POST", "/api/v1/kronos/devices", {**DEVICE_BODY, "gatewayHid": other}
    )
    assert status == 200
    assert body["hid"] == DEV_HID
    assert other in loaded_entry.runtime_data.state.gateways


@pytest.mark.parametrize(
    ("method", "path", "raw", "status", "detail"),
    [
        (
            "POST",
            "/api/v1/kronos/gateways",
            b"{not json",
            422,
            "body is not valid JSON",
        ),
        (
            "POST",
            "/api/v1/kronos/gateways",
            b"[1, 2]",
            422,
            "body must be a JSON object",
        ),
        ("POST", "/api/v1/kronos/gateways", b"", 422, "body is not valid JSON"),
        (
            "POST",
            "/api/v1/kronos/gateways",
            b'{"uid": NaN}',
            422,
            "body is not valid JSON",
        ),
        ("POST", "/api/v1/kronos/gateways", b'{"name": "x"}', 400, "uid required"),
        ("POST", "/api/v1/kronos/gateways", b'{"uid": 5}', 400, "uid required"),
        ("POST", "/api/v1/kronos/gateways", b"\xff\xfe", 422, "body is not valid JSON"),
        ("POST", "/api/v1/kronos/devices", b'{"uid": "x"}', 422, "gatewayHid required"),
        (
            "POST",
            "/api/v1/kronos/devices",
            b'{"uid": "x", "gatewayHid": "../../etc"}',
            422,
            "gatewayHid required",
        ),
        (
            "POST",
            "/api/v1/kronos/devices",
            b'{"gatewayHid": "abc"}',
            400,
            "uid required",
        ),
        (
            "GET",
            f"/api/v1/kronos/gateways/{GW_HID}/config",
            None,
            400,
            f"Unregistered Gateway ({GW_HID})",
        ),
        (
            "GET",
            "/api/v1/kronos/gateways/..%2F..%2Fsecrets/config",
            None,
            400,
            "invalid gateway id",
        ),
        (
            "GET",
            f"/api/v1/kronos/gateways/{'a' * 10240}/config",
            None,
            400,
            "invalid gateway id",
        ),
        (
            "PUT",
            f"/api/v1/kronos/gateways/{'b' * 10240}/checkin",
            None,
            400,
            "invalid gateway id",
        ),
        (
            "PUT",
            f"/api/v1/kronos/gateways/{GW_HID}/heartbeat",
            None,
            400,
            f"Unregistered Gateway ({GW_HID})",
        ),
        ("PUT", "/api/v1/core/events/abc/exploded", None, 404, "not found"),
    ],
)
async def test_bad_requests_change_nothing(
    http: aiohttp.ClientSession,
    loaded_entry: MockConfigEntry,
    method: str,
    path: str,
    raw: bytes | None,
    status: int,
    detail: str,
) -> None:
    before = _stored(loaded_entry)
    got_status, body, _ = await _call(http, method, path, raw=raw)
    assert (got_status, body) == (status, {"detail": detail})
    assert _stored(loaded_entry) == before


async def test_over_long_device_uid_is_refused(
    http: aiohttp.ClientSession, loaded_entry: MockConfigEntry
) -> None:
    status, body, _ = await _call(
        http, "POST", "/api/v1/kronos/devices", {**DEVICE_BODY, "uid": "u" * 300}
    )
    assert (status, body) == (400, {"detail": "uid too long"})
    assert loaded_entry.runtime_data.state.feeders == {}
    assert loaded_entry.runtime_data.state.gateways == {}


async def test_command_statuses_are_bounded(
    http: aiohttp.ClientSession, loaded_entry: MockConfigEntry
) -> None:
    """A feeder reports on every command; only the latest reports are kept."""
    hids = [f"cmd{index:04d}" for index in range(205)]
    for hid in hids:
        status, _, _ = await _call(http, "PUT", f"/api/v1/core/events/{hid}/received")
        assert status == 200
    kept = loaded_entry.runtime_data.confirmations.statuses
    assert list(kept) == hids[-200:]


async def test_huge_body_refused_before_reading(
    http: aiohttp.ClientSession, loaded_entry: MockConfigEntry
) -> None:
    status, body, _ = await _call(
        http, "POST", "/api/v1/kronos/gateways", raw=b"{" + b" " * (70 * 1024) + b"}"
    )
    assert status == 413
    assert loaded_entry.runtime_data.state.gateways == {}


async def test_command_status_and_catch_all(
    http: aiohttp.ClientSession, loaded_entry: MockConfigEntry
) -> None:
    status, body, _ = await _call(
        http, "PUT", "/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received"
    )
    assert (status, body) == (200, {})
    assert (
        loaded_entry.runtime_data.confirmations.statuses[
            "kemubcrdlsbqgbcnnchcrnbsdhuusbss"
        ]
        == "received"
    )
    assert (await _call(http, "POST", "/api/v1/some/other/call", {"x": 1}))[:2] == (
        200,
        {},
    )
    assert (await _call(http, "GET", "/api/v1/unknown"))[:2] == (
        404,
        {"detail": "not found"},
    )
    assert (await _call(http, "DELETE", "/api/v1/kronos/gateways"))[0] == 404


async def test_http_heartbeat_and_error_report(
    http: aiohttp.ClientSession,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _call(http, "POST", "/api/v1/kronos/gateways", GATEWAY_BODY)
    assert (await _call(http, "PUT", f"/api/v1/kronos/gateways/{GW_HID}/heartbeat"))[
        :2
    ] == (200, {})
    assert loaded_entry.runtime_data.state.gateways[GW_HID].last_seen is not None
    with caplog.at_level(logging.WARNING):
        status, _, _ = await _call(
            http,
            "POST",
            f"/api/v1/kronos/gateways/{GW_HID}/errors",
            {"error": "motor jam"},
        )
    assert status == 200
    assert "motor jam" in caplog.text


@pytest.mark.usefixtures("loaded_entry")
async def test_https_site_serves_the_same_api(entry_data: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession(
            base_url=f"https://{LOOPBACK}:{entry_data[CONF_HTTPS_PORT]}"
        ) as session,
        session.post(
            "/api/v1/kronos/gateways", data=json.dumps(GATEWAY_BODY), ssl=False
        ) as response,
    ):
        assert response.status == 200
        assert (await response.json(content_type=None))["hid"] == GW_HID


async def _serve_on_ha_http(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Turn the option on, as the options flow does (the entry reloads)."""
    await set_options(hass, entry, {**entry.options, CONF_KRONOS_ON_HA_HTTP: True})


async def test_views_on_home_assistant_http_are_off_by_default(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    http: aiohttp.ClientSession,
    hass_client_no_auth: Any,
) -> None:
    """Home Assistant may face the internet: nobody gets a key through it unless asked for."""
    assert await async_setup_component(hass, "http", {})
    client = await hass_client_no_auth()
    response = await client.post(
        "/api/v1/kronos/gateways", data=json.dumps(GATEWAY_BODY)
    )
    assert response.status == 404
    assert await response.json(content_type=None) == {"detail": "not found"}
    assert loaded_entry.runtime_data.state.gateways == {}

    # A gateway registered on the feeder-facing site: its key is not served here either.
    status, _, _ = await _call(http, "POST", "/api/v1/kronos/gateways", GATEWAY_BODY)
    assert status == 200
    response = await client.get(f"/api/v1/kronos/gateways/{GW_HID}/config")
    assert response.status == 404
    assert await response.json(content_type=None) == {"detail": "not found"}
    response = await client.put(f"/api/v1/kronos/gateways/{GW_HID}/checkin")
    assert response.status == 404


async def test_views_on_home_assistant_http(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_client_no_auth: Any
) -> None:
    assert await async_setup_component(hass, "http", {})
    await _serve_on_ha_http(hass, loaded_entry)
    client = await hass_client_no_auth()
    response = await client.post(
        "/api/v1/kronos/gateways", data=json.dumps(GATEWAY_BODY)
    )
    assert response.status == 200
    assert (await response.json(content_type=None)) == {"hid": GW_HID, "message": "OK"}
    response = await client.get(f"/api/v1/kronos/gateways/{GW_HID}/config")
    assert (await response.json(content_type=None))["key"][
        "apiKey"
    ] == loaded_entry.runtime_data.state.gateways[GW_HID].api_key


async def test_views_answer_503_without_a_loaded_entry(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_client_no_auth: Any
) -> None:
    assert await async_setup_component(hass, "http", {})
    await _serve_on_ha_http(hass, loaded_entry)
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    client = await hass_client_no_auth()
    response = await client.post(
        "/api/v1/kronos/gateways", data=json.dumps(GATEWAY_BODY)
    )
    assert response.status == 503
    assert await response.json(content_type=None) == {"detail": "not ready"}


async def test_views_answer_404_without_an_entry(
    hass: HomeAssistant, hass_client_no_auth: Any
) -> None:
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client_no_auth()
    response = await client.post(
        "/api/v1/kronos/gateways", data=json.dumps(GATEWAY_BODY)
    )
    assert response.status == 404
    assert await response.json(content_type=None) == {"detail": "not found"}
