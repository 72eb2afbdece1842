"""Real local peers for the simulator tests: Kronos HTTP, an amqtt broker, a server client.

Nothing here imports the integration: the peers implement just enough of the
protocol (§3.1-3.4, §5.7, §6.1) to drive a simulated feeder. The fixtures that start them
are in tests/sim/conftest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
import hashlib
import json
from pathlib import Path
import random
import secrets
import ssl
import string
from typing import Any

from aiohttp import web
from amqtt.broker import Broker
from amqtt.client import MQTTClient

from feeder_sim import SimulatedFeeder

SECRET_KEY = "gEhFrm2hRvW2Km47lgt9xRBCtT9uH2Lx77WxYliNGJI="


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


@dataclass
class KronosRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class FakeKronos:
    """Minimal Kronos (§3.1-3.4) that records every request."""

    url: str = ""
    requests: list[KronosRequest] = field(default_factory=list)
    api_keys: dict[str, str] = field(default_factory=dict)  # gateway hid -> apiKey
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def calls(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def _gateway(self, hid: str) -> None:
        self.api_keys.setdefault(hid, secrets.token_hex(32))

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(
            KronosRequest(
                request.method,
                request.path,
                list(request.headers.items()),
                await request.read(),
            )
        )
        return await handler(request)

    async def register_gateway(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        hid = sha1(body["uid"])
        known = hid in self.api_keys
        self._gateway(hid)
        message = "gateway is already registered" if known else "OK"
        return web.json_response({"hid": hid, "message": message})

    async def config(self, request: web.Request) -> web.Response:
        hid = request.match_info["gw"]
        if hid not in self.api_keys:
            return web.json_response(
                {"detail": f"Unregistered Gateway ({hid})"}, status=400
            )
        return web.json_response(
            {
                "cloudPlatform": "IoTConnect",
                "key": {"apiKey": self.api_keys[hid], "secretKey": SECRET_KEY},
            }
        )

    async def register_device(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        hid = sha1(body["uid"])
        self._gateway(body["gatewayHid"])
        self.devices[hid] = body
        return web.json_response(
            {
                "hid": hid,
                "links": {},
                "message": "device is already registered",
                "pri": f"arw:krn:dev:{hid}",
            }
        )

    async def checkin(self, request: web.Request) -> web.Response:
        self._gateway(request.match_info["gw"])
        return web.json_response({})


@asynccontextmanager
async def running_kronos(
    ssl_context: ssl.SSLContext | None,
) -> AsyncIterator[FakeKronos]:
    """A FakeKronos on a free loopback port, HTTPS with ``ssl_context``; stopped at exit."""
    kronos = FakeKronos()
    app = web.Application(middlewares=[kronos.record])
    base = "/api/v1/kronos"
    app.router.add_post(f"{base}/gateways", kronos.register_gateway)
    app.router.add_get(f"{base}/gateways/{{gw}}/config", kronos.config)
    app.router.add_post(f"{base}/devices", kronos.register_device)
    app.router.add_put(f"{base}/gateways/{{gw}}/checkin", kronos.checkin)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    kronos.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    try:
        yield kronos
    finally:
        await runner.cleanup()


@dataclass
class BrokerInfo:
    broker: Broker
    port: int
    tls_port: int

    def session(self, client_id: str) -> Any:
        """Return the broker's session object of a connected client."""
        return self.broker._sessions[client_id][0]


def command_hid() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=32))


def envelope(
    device_hid: str, command: str, payload: Any, *, hid: str | None = None
) -> bytes:
    """A §6.1 command envelope, byte-exact json.dumps form."""
    return json.dumps(
        {
            "hid": hid or command_hid(),
            "name": "SendCommand",
            "encrypted": False,
            "parameters": {
                "deviceHid": device_hid,
                "command": command,
                "payload": json.dumps(payload),
            },
        }
    ).encode()


@dataclass
class Received:
    topic: str
    payload: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.payload)


class FakeServer:
    """The integration's role on MQTT: receives telemetry, sends commands, ACKs API requests."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.client = MQTTClient(
            client_id="local_test_server",
            config={"auto_reconnect": False, "default_qos": 1, "plugins": {}},
        )
        self.messages: list[Received] = []
        self.answer_api = True
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.client.connect(f"mqtt://127.0.0.1:{self.port}")
        await self.client.subscribe(
            [("+", 1)]
        )  # every dotted (single-level) topic, §4.2
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        await self.client.disconnect()
        if self._task:
            # amqtt's deliver_message() does not return once the connection is gone (it
            # waits on the session's queue), so the reader is cancelled, with the helper
            # task deliver_message leaves behind.
            self._task.cancel()
            await asyncio.wait([self._task])
            helpers = list(self.client.client_tasks)
            for helper in helpers:
                helper.cancel()
            if helpers:
                await asyncio.wait(helpers)
            if not self._task.cancelled():
                self._task.result()  # a failed reader fails the test, not the loop's log

    async def _read(self) -> None:
        while (message := await self.client.deliver_message()) is not None:
            received = Received(message.topic, bytes(message.data))
            self.messages.append(received)
            if received.topic.startswith("krs.api.gts.") and self.answer_api:
                request = received.json
                reply = {
                    "requestId": request["requestId"],
                    "eventName": "GatewayToServer_ApiRequest",
                    "encrypted": False,
                    "parameters": {"status": "OK"},
                }
                gw = received.topic.removeprefix("krs.api.gts.")
                await self.client.publish(
                    f"krs/api/stg/{gw}", json.dumps(reply).encode(), qos=1
                )
            async with self._changed:
                self._changed.notify_all()

    def telemetry(
        self, msg_type: str | None = None, gw: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            m.json
            for m in self.messages
            if m.topic.startswith("krs.tel.gts.")
            and (gw is None or m.topic == f"krs.tel.gts.{gw}")
            and (msg_type is None or m.json.get("s|msg_type") == msg_type)
        ]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5) -> Any:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)
        return predicate()

    async def wait_telemetry(
        self,
        msg_type: str,
        *,
        count: int = 1,
        gw: str | None = None,
        timeout: float = 5,
    ) -> list[dict[str, Any]]:
        await self.wait_for(lambda: len(self.telemetry(msg_type, gw)) >= count, timeout)
        return self.telemetry(msg_type, gw)

    async def send(
        self,
        feeder: SimulatedFeeder,
        command: str,
        payload: Any,
        *,
        hid: str | None = None,
    ) -> None:
        await self.send_raw(
            feeder, envelope(feeder.device_hid, command, payload, hid=hid)
        )

    async def send_raw(self, feeder: SimulatedFeeder, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        await self.client.publish(f"krs/cmd/stg/{feeder.gateway_hid}", raw, qos=1)
