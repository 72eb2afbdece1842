"""Hostile HTTP on the embedded Kronos site: refused early, nothing stored, nothing held open."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
import json
import ssl
import time
from typing import Any

import aiohttp
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest

from custom_components.petnet_feeder import approvals, kronos
from custom_components.petnet_feeder.const import CONF_HTTP_PORT, CONF_HTTPS_PORT

from ..helpers.arena import ATTACKER_UID, GOOD_UID, Arena
from ..helpers.ports import LOOPBACK

# Short enough to keep the slow-loris tests quick, long enough for the feeders' own requests.
TIMEOUT = 1.0
UNKNOWN_GW = "c3d89400068631f8138a57286982bea94370693d"


@pytest.fixture(autouse=True)
def short_timeouts(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set before the entry loads (the listeners and the runner read them).

    A test marked ``shipped_timeouts`` keeps the integration's own: under a flood on a busy
    machine a TLS handshake or a keep-alive pause can take longer than TIMEOUT, and the
    connection would be closed for being slow rather than for what the test is about.
    """
    if request.node.get_closest_marker("shipped_timeouts"):
        return
    monkeypatch.setattr(kronos, "REQUEST_HEADER_TIMEOUT", TIMEOUT)
    monkeypatch.setattr(kronos, "BODY_READ_TIMEOUT", TIMEOUT)
    monkeypatch.setattr(kronos, "KEEPALIVE_TIMEOUT", TIMEOUT)


async def call(
    arena: Arena, method: str, path: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """One request without Content-Type, as the feeder sends them."""
    data = (
        raw
        if raw is not None
        else (None if body is None else json.dumps(body).encode())
    )
    async with (
        aiohttp.ClientSession(
            base_url=f"http://{LOOPBACK}:{arena.entry_data[CONF_HTTP_PORT]}"
        ) as session,
        session.request(
            method, path, data=data, skip_auto_headers=["Content-Type"]
        ) as response,
    ):
        text = await response.read()
        try:
            decoded = json.loads(text) if text else None
        except ValueError:
            decoded = text
        return response.status, decoded, response


@dataclass
class RawHttp:
    """A bare connection to the Kronos site, for what a well-behaved client never does."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, arena: Arena, *, tls: bool = False) -> RawHttp:
        port = arena.entry_data[CONF_HTTPS_PORT if tls else CONF_HTTP_PORT]
        context = None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=context)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        async with asyncio.timeout(5):
            status_line = await self.reader.readline()
            status = int(status_line.split()[1])
            headers: dict[str, str] = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", 0)))
        return status, headers, body

    async def closed_within(self, seconds: float) -> float:
        """Wait until the server closes the connection; return how long that took."""
        started = time.monotonic()
        async with asyncio.timeout(seconds):
            try:
                while await self.reader.read(65536):
                    pass
            except (ConnectionError, ssl.SSLError):
                pass
        return time.monotonic() - started

    def close(self) -> None:
        self.writer.transport.abort()


def _registration(uid: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "SF Gateway",
        "uid": uid,
        "softwareVersion": "2.8.0",
        "sdkVersion": "1.3.12",
        **extra,
    }


# -- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "raw", "status"),
    [
        ("/api/v1/kronos/gateways", b"{not json", 422),
        ("/api/v1/kronos/gateways", b"\xff\xfe\x00", 422),
        ("/api/v1/kronos/gateways", b"[1, 2]", 422),
        ("/api/v1/kronos/gateways", b'{"uid": NaN}', 422),
        ("/api/v1/kronos/gateways", b"[" * 20000 + b"]" * 20000, 422),
        ("/api/v1/kronos/gateways", b'{"uid": 5}', 400),
        ("/api/v1/kronos/devices", b'{"uid": "x", "gatewayHid": {"$ne": 1}}', 422),
        ("/api/v1/kronos/devices", b"", 422),
    ],
    ids=[
        "gateways-not-json",
        "gateways-not-utf8",
        "gateways-array",
        "gateways-nan",
        "gateways-nested",
        "gateways-uid-number",
        "devices-gateway-object",
        "devices-empty",
    ],
)
async def test_malformed_bodies(
    arena: Arena, path: str, raw: bytes, status: int
) -> None:
    got, body, _ = await call(arena, "POST", path, raw=raw)
    assert got == status
    assert isinstance(body, dict)
    assert set(body) == {"detail"}
    await arena.check()


async def test_huge_body_is_refused_before_it_is_sent(arena: Arena) -> None:
    """Content-Length over 64 KiB: 413 at once, while the client has sent only its headers."""
    client = await RawHttp.open(arena)
    await client.send(
        b"POST /api/v1/kronos/gateways HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 104857600\r\n\r\n" + b"{" * 1024
    )
    status, headers, body = await client.response()
    assert status == 413
    assert headers["content-type"] == "application/json;charset=UTF-8"
    assert json.loads(body) == {"detail": "request body too large"}
    client.close()
    await arena.check()


async def test_huge_chunked_body_is_refused_after_64_kib(arena: Arena) -> None:
    """No Content-Length: the read is counted and stops past the limit."""
    client = await RawHttp.open(arena)
    await client.send(
        b"POST /api/v1/kronos/gateways HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"  # 16 KiB
    for _ in range(5):
        await client.send(chunk)
    # No final chunk: the answer must not wait for the end of the body.
    status, _, body = await client.response()
    assert status == 413
    assert json.loads(body) == {"detail": "request body too large"}
    client.close()
    await arena.check()


# -- methods, paths, ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("DELETE", "/api/v1/kronos/gateways", 404, {"detail": "not found"}),
        ("GET", "/api/v1/kronos/devices", 404, {"detail": "not found"}),
        (
            "PATCH",
            f"/api/v1/kronos/gateways/{UNKNOWN_GW}/config",
            404,
            {"detail": "not found"},
        ),
        (
            "GET",
            f"/api/v1/kronos/gateways/{UNKNOWN_GW}/checkin",
            404,
            {"detail": "not found"},
        ),
        ("OPTIONS", "/api/v1/kronos/gateways", 404, {"detail": "not found"}),
        ("GET", "/", 404, {"detail": "not found"}),
        ("GET", "/admin/.env", 404, {"detail": "not found"}),
        ("POST", "/api/v2/kronos/gateways", 404, {"detail": "not found"}),
        # §3.5: any other PUT/POST under /api/v1/ gets 200 {} and does nothing.
        ("PUT", "/api/v1/kronos/gateways", 200, {}),
        ("POST", "/api/v1/core/anything/else", 200, {}),
        (
            "GET",
            f"/api/v1/kronos/gateways/{UNKNOWN_GW}/config",
            400,
            {"detail": f"Unregistered Gateway ({UNKNOWN_GW})"},
        ),
        (
            "PUT",
            f"/api/v1/kronos/gateways/{UNKNOWN_GW}/heartbeat",
            400,
            {"detail": f"Unregistered Gateway ({UNKNOWN_GW})"},
        ),
        (
            "GET",
            "/api/v1/kronos/gateways/..%2F..%2F.storage/config",
            400,
            {"detail": "invalid gateway id"},
        ),
        (
            "GET",
            f"/api/v1/kronos/gateways/{'a' * 10240}/config",
            400,
            {"detail": "invalid gateway id"},
        ),
        (
            "PUT",
            f"/api/v1/kronos/gateways/{'b' * 10240}/checkin",
            400,
            {"detail": "invalid gateway id"},
        ),
        (
            "POST",
            f"/api/v1/kronos/gateways/{'c' * 10240}/errors",
            400,
            {"detail": "invalid gateway id"},
        ),
        (
            "PUT",
            "/api/v1/core/events/..%2F..%2Fx/received",
            404,
            {"detail": "not found"},
        ),
        (
            "PUT",
            f"/api/v1/core/events/{'d' * 10240}/received",
            404,
            {"detail": "not found"},
        ),
    ],
    ids=[
        "delete-gateways",
        "get-devices",
        "patch-config",
        "get-checkin",
        "options",
        "root",
        "dotfile",
        "other-api-version",
        "put-gateways",
        "post-unknown",
        "config-unknown-gateway",
        "heartbeat-unknown-gateway",
        "config-dotdot",
        "config-10kb-id",
        "checkin-10kb-id",
        "errors-10kb-id",
        "event-dotdot",
        "event-10kb-id",
    ],
)
async def test_methods_paths_and_ids(
    arena: Arena, method: str, path: str, status: int, body: Any
) -> None:
    got, answer, _ = await call(
        arena, method, path, raw=b"{}" if method != "GET" else None
    )
    assert (got, answer) == (status, body)
    await arena.check()


@pytest.mark.parametrize(
    "path",
    [
        b"/api/v1/kronos/gateways/../../../.storage/petnet_feeder/config",
        b"/api/v1/kronos/gateways/%2e%2e/%2e%2e/config",
        b"/" + b"x" * (20 * 1024),
    ],
    ids=["dotdot-raw", "dotdot-encoded", "line-over-16kb"],
)
async def test_raw_paths(arena: Arena, path: bytes) -> None:
    client = await RawHttp.open(arena)
    await client.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = await client.response()
    assert status in (400, 404)
    client.close()
    await arena.check()


# -- identity and bounds ----------------------------------------------------------------------


async def test_device_of_another_gateway_cannot_be_claimed(arena: Arena) -> None:
    good, attacker = arena.good, arena.attacker
    got, body, _ = await call(
        arena,
        "POST",
        "/api/v1/kronos/devices",
        {
            "uid": good.device_uid,
            "gatewayHid": attacker.gateway_hid,
            "softwareVersion": "2.3.2",
        },
    )
    assert (got, body) == (409, {"detail": "device belongs to another gateway"})
    assert arena.hub.state.feeders[good.device_hid].gateway_hid == good.gateway_hid
    assert arena.warned(f"Registration of feeder {good.device_hid} for gateway")
    await arena.check()


async def test_over_long_registration_fields_are_not_stored(arena: Arena) -> None:
    got, body, _ = await call(
        arena, "POST", "/api/v1/kronos/gateways", _registration("u" * 10240)
    )
    assert (got, body) == (400, {"detail": "uid too long"})
    got, _, _ = await call(
        arena,
        "POST",
        "/api/v1/kronos/gateways",
        _registration(ATTACKER_UID, name="n" * 10240, sdkVersion="s" * 10240),
    )
    assert got == 200
    gateway = arena.hub.state.gateways[arena.attacker.gateway_hid]
    assert (gateway.name, gateway.sdk_version) == ("SF Gateway", "1.3.12")
    await arena.check()


def _registry_view(arena: Arena) -> tuple[set[str], set[str]]:
    """Every device's identifiers and every entity's unique id, for a before/after check."""
    devices = dr.async_get(arena.hass).devices.values()
    entities = er.async_get(arena.hass).entities.values()
    return (
        {repr(sorted(device.identifiers)) for device in devices},
        {entity.unique_id for entity in entities},
    )


@pytest.mark.shipped_timeouts
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_flood_of_10000_new_ids_changes_nothing(arena: Arena, tls: bool) -> None:
    """Outside a pairing window no new id reaches the store or the registries.

    Registration, device registration naming an unknown gateway and check-in of an unknown
    gateway: 10,000 distinct ids. Each is answered 202 (waits for the owner), at most
    MAX_PENDING wait at once, and as many discovered flows at most are shown.
    """
    # Home Assistant runs its loop without asyncio's debug mode, which records a stack for
    # every future and would make up most of this test's time.
    arena.hass.loop.set_debug(False)
    hub = arena.hub
    hub.registrations.close_window()
    registries = _registry_view(arena)
    started = time.monotonic()
    scheme, port = ("https", CONF_HTTPS_PORT) if tls else ("http", CONF_HTTP_PORT)
    async with aiohttp.ClientSession(
        base_url=f"{scheme}://{LOOPBACK}:{arena.entry_data[port]}",
        connector=aiohttp.TCPConnector(limit=50, ssl=False),
    ) as session:

        async def send(index: int) -> int:
            kind = index % 3
            if kind == 0:
                method, path = "POST", "/api/v1/kronos/gateways"
                body: bytes | None = json.dumps(
                    _registration(f"flood-{index}")
                ).encode()
            elif kind == 1:
                method, path = "POST", "/api/v1/kronos/devices"
                body = json.dumps(
                    {"uid": f"flood-{index}-prod", "gatewayHid": f"gw{index:038x}"}
                ).encode()
            else:
                method, path = "PUT", f"/api/v1/kronos/gateways/gw{index:038x}/checkin"
                body = None
            async with session.request(method, path, data=body) as response:
                await response.read()
                return response.status

        flood = asyncio.gather(
            *(send(index) for index in range(10_000)), return_exceptions=True
        )
        try:
            # A known feeder that reboots in the middle of it still gets in.
            status, _, _ = await call(
                arena, "POST", "/api/v1/kronos/gateways", _registration(GOOD_UID)
            )
        finally:
            answers = await flood
    statuses = Counter(
        answer if isinstance(answer, int) else repr(answer) for answer in answers
    )
    assert status == 200
    assert statuses == {202: 10_000}, statuses
    elapsed = time.monotonic() - started
    assert len(hub.registrations.pending) == approvals.MAX_PENDING
    await arena.hass.async_block_till_done()
    flows = arena.hass.config_entries.flow.async_progress_by_handler("petnet_feeder")
    assert len(flows) <= approvals.MAX_PENDING
    assert _registry_view(arena) == registries
    await arena.check()
    print(f"10,000 new ids over {scheme} in {elapsed:.1f} s")  # noqa: T201


async def test_a_gateway_registers_only_its_own_device(arena: Arena) -> None:
    """Its uid is the gateway's plus -prod (§1.2); any other device is refused."""
    attacker = arena.attacker
    answers = [
        await call(
            arena,
            "POST",
            "/api/v1/kronos/devices",
            {"uid": uid, "gatewayHid": attacker.gateway_hid},
        )
        for uid in ("device-1", f"{GOOD_UID}-prod-2", "smartfeeder-000000000000-prod")
    ]
    assert [(status, body) for status, body, _ in answers] == [
        (409, {"detail": "device does not belong to this gateway"})
    ] * 3
    assert [f.hid for f in arena.hub.state.feeders_of(attacker.gateway_hid)] == [
        attacker.device_hid
    ]
    # Its own device registers again as always.
    status, body, _ = await call(
        arena,
        "POST",
        "/api/v1/kronos/devices",
        {"uid": attacker.device_uid, "gatewayHid": attacker.gateway_hid},
    )
    assert (status, body["hid"]) == (200, attacker.device_hid)
    assert arena.warned("a gateway registers only its own device")
    await arena.check()


# -- slow and idle connections ----------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_idle_connections_are_closed(arena: Arena, tls: bool) -> None:
    """Connections that send nothing (HTTPS: not even a ClientHello) are closed."""
    if tls:
        # In debug mode (the test harness's) asyncio reports each TLS handshake that times
        # out through the loop's exception handler, which the harness turns into a failure;
        # Home Assistant does not run its loop in debug mode, and then asyncio is silent.
        arena.hass.loop.set_debug(False)
    started = time.monotonic()
    if tls:
        port = arena.entry_data[CONF_HTTPS_PORT]
        idle = [
            RawHttp(*await asyncio.open_connection(LOOPBACK, port)) for _ in range(50)
        ]
    else:
        idle = [await RawHttp.open(arena) for _ in range(100)]
    await arena.roundtrip()  # the server works meanwhile
    # closed_within raises TimeoutError for a connection the server keeps open.
    await asyncio.gather(*(client.closed_within(TIMEOUT * 5) for client in idle))
    assert time.monotonic() - started >= TIMEOUT * 0.5  # by the timeout, not at once
    for client in idle:
        client.close()
    await arena.check()


async def test_partial_headers_are_cut_off(arena: Arena) -> None:
    client = await RawHttp.open(arena)
    await client.send(b"PUT /api/v1/kronos/gateways/x/checkin HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    await client.closed_within(TIMEOUT * 5)
    assert time.monotonic() - started >= TIMEOUT * 0.5
    client.close()
    await arena.check()


async def test_slow_body_is_answered_408_and_closed(arena: Arena) -> None:
    client = await RawHttp.open(arena)
    await client.send(
        b"POST /api/v1/kronos/gateways HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    )
    status, _, body = await client.response()
    assert status == 408
    assert json.loads(body) == {"detail": "request body not received in time"}
    client.close()
    await arena.check()


async def test_idle_keep_alive_connection_is_closed(arena: Arena) -> None:
    client = await RawHttp.open(arena)
    await client.send(
        f"PUT /api/v1/kronos/gateways/{arena.good.gateway_hid}/heartbeat HTTP/1.1\r\n"
        "Host: x\r\nContent-Length: 0\r\n\r\n".encode()
    )
    status, _, _ = await client.response()
    assert status == 200
    started = time.monotonic()
    await client.closed_within(TIMEOUT * 5)
    assert time.monotonic() - started >= TIMEOUT * 0.5
    client.close()
    await arena.check()
