"""Boot sequence (§3) and MQTT session setup (§4.1) against real local peers."""

from __future__ import annotations

from collections.abc import Callable
import re

import aiohttp
import pytest

from feeder_sim import KronosError, SimulatedFeeder

from ..helpers.sim_peers import BrokerInfo, FakeKronos, FakeServer

pytestmark = pytest.mark.usefixtures("socket_enabled")

GW = "488533283e3f06ca4ae929fd01f50a9259dd393f"
DEV = "5238b0c4ceb91b35119887f44f29cb489fcf044a"


def header_values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


async def test_boot_sequence_http_side(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    kronos: FakeKronos,
    broker: BrokerInfo,
    server: FakeServer,
) -> None:
    feeder = make_sim_feeder(uid="smartfeeder-795ae773737d")
    assert feeder.api_key is None
    await feeder.boot()

    assert kronos.calls == [
        "POST /api/v1/kronos/gateways",
        f"GET /api/v1/kronos/gateways/{GW}/config",
        "POST /api/v1/kronos/devices",
    ]
    register, config, device = kronos.requests
    assert register.body == (
        b'{"name":"SF Gateway","uid":"smartfeeder-795ae773737d","osName":"FreeRTOS","type":"Local",'
        b'"softwareName":"SMART FEEDER","softwareVersion":"2.8.0","sdkVersion":"1.3.12"}'
    )
    assert device.body == (
        b'{"name":"SF20A","type":"SMART FEEDER","uid":"smartfeeder-795ae773737d-prod",'
        b'"gatewayHid":"488533283e3f06ca4ae929fd01f50a9259dd393f","softwareName":"SMART FEEDER",'
        b'"softwareVersion":"2.8.0"}'
    )
    assert config.body == b""
    for request in kronos.requests:
        assert header_values(request.headers, "Content-Type") == []
        assert header_values(request.headers, "x-arrow-version") == ["1"]
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z",
            header_values(request.headers, "x-arrow-date")[0],
        )
        assert re.fullmatch(
            r"[0-9a-f]{64}", header_values(request.headers, "x-arrow-signature")[0]
        )
    assert header_values(register.headers, "User-Agent") == ["IOE Client"]
    assert header_values(config.headers, "User-Agent") == ["IOE Client", "Eos"]
    # Built-in key before config, the configured key afterwards.
    assert header_values(register.headers, "x-arrow-apikey") != [kronos.api_keys[GW]]
    assert header_values(device.headers, "x-arrow-apikey") == [kronos.api_keys[GW]]

    assert (feeder.gateway_hid, feeder.device_hid) == (GW, DEV)
    assert feeder.api_key == kronos.api_keys[GW]
    assert feeder.connected

    # MQTT CONNECT: client id = gw, username /pegasus:<gw>, password = apiKey.
    session = broker.session(GW)
    assert (session.client_id, session.username, session.password) == (
        GW,
        f"/pegasus:{GW}",
        kronos.api_keys[GW],
    )
    assert session.clean_session is True

    # Boot ends with the (empty) schedule hash on the dotted telemetry topic.
    (hash_msg,) = await server.wait_telemetry("hash", gw=GW)
    assert hash_msg == {"_|deviceHid": DEV, "s|msg_type": "hash", "s|local_md5": ""}
    assert feeder.boot_count == 1


async def test_boot_without_registration_checks_in_with_held_hid(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    kronos: FakeKronos,
    broker: BrokerInfo,
    server: FakeServer,
) -> None:
    held_gw = "6ec68eb4" + "0" * 28 + "1abc"  # a hid the real cloud gave, not sha1(uid)
    feeder = make_sim_feeder(
        register=False, firmware="1.4.4", gateway_hid=held_gw, device_hid="d" * 40
    )
    await feeder.boot()
    assert kronos.calls == [
        f"PUT /api/v1/kronos/gateways/{held_gw}/checkin",
        f"GET /api/v1/kronos/gateways/{held_gw}/config",
    ]
    assert kronos.requests[0].body == b""
    assert broker.session(held_gw).username == f"/pegasus:{held_gw}"
    (hash_msg,) = await server.wait_telemetry("hash", gw=held_gw)
    assert hash_msg["_|deviceHid"] == "d" * 40


async def test_boot_over_tls_without_verification(
    kronos_tls: FakeKronos, broker: BrokerInfo, server: FakeServer
) -> None:
    feeder = SimulatedFeeder(
        uid="smartfeeder-0123456789ab",
        kronos_url=kronos_tls.url,
        mqtt_port=broker.tls_port,
        mqtt_tls=True,
    )
    try:
        assert kronos_tls.url.startswith("https://")
        await feeder.boot()
        assert feeder.connected
        await feeder.send_heartbeat()
        await server.wait_telemetry("hb", gw=feeder.gateway_hid)
    finally:
        await feeder.stop()
    assert not feeder.connected


async def test_config_for_unknown_gateway_fails_boot(
    make_sim_feeder: Callable[..., SimulatedFeeder],
) -> None:
    feeder = make_sim_feeder()
    with pytest.raises(KronosError) as err:
        await feeder.fetch_config()
    assert err.value.status == 400
    assert feeder.api_key is None
    with pytest.raises(RuntimeError):
        await feeder.connect()


async def test_unreachable_server_raises_without_retry(broker: BrokerInfo) -> None:
    feeder = SimulatedFeeder(
        uid="smartfeeder-aaaaaaaaaaaa",
        kronos_url="http://127.0.0.1:9",
        mqtt_port=broker.port,
    )
    with pytest.raises(aiohttp.ClientError):
        await feeder.start()
    await feeder.stop()
