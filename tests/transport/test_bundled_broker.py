"""The bundled amqtt broker transport, with real clients on 127.0.0.1.

paho-mqtt (the client HA uses, in its own thread) plays a well-behaved feeder; a tiny raw MQTT
3.1.1 client plays the misbehaving ones, since paho refuses to send what they send. Nothing
waits on sleeps: every wait is on a future set from a callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
import logging
from pathlib import Path
import socket
import threading
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.session import Session
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
import pytest

from custom_components.petnet_feeder.protocol import topics
from custom_components.petnet_feeder.tls import ensure_certificate
from custom_components.petnet_feeder.transport import (
    broker as broker_module,
    bundled as bundled_module,
)
from custom_components.petnet_feeder.transport.base import GatewayNotConnectedError
from custom_components.petnet_feeder.transport.bundled import BundledBrokerTransport
from custom_components.petnet_feeder.transport.plugins import (
    GATEWAY_ATTRIBUTE,
    BridgeConfig,
    PetnetTopicPlugin,
)

from ..helpers.ports import free_port
from ..helpers.raw_mqtt import (
    TIMEOUT,
    RawClient,
    client_tls_context,
    mqtt_string,
    packet,
)
from ..helpers.tasks import packet_tasks_done, unretrieved_task_failures

GW_A = "488533283e3f06ca4ae929fd01f50a9259dd393f"
GW_B = "d9eae8344910399224153df53f12400ceb8c5707"
GW_UNKNOWN = "c3d89400068631f8138a57286982bea94370693d"
KEY_A = "a1" * 32
KEY_B = "b2" * 32
REFUSED = 5  # CONNACK "not authorised"
SUBACK_FAILURE = 0x80


def user(gateway_hid: str) -> str:
    return f"/pegasus:{gateway_hid}"


class FakeHandler:
    """TransportHandler that records every call and lets tests wait for conditions."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = dict(keys)
        self.calls: list[tuple[str, ...]] = []
        self.messages: list[tuple[str, str, bytes]] = []
        self.fail_on: bytes | None = None
        self.fail_on_connection_change = False
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def api_key_for(self, gateway_hid: str) -> str | None:
        return self.keys.get(gateway_hid)

    def on_message(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        self.messages.append((gateway_hid, topic, payload))
        self._changed()
        if payload == self.fail_on:
            raise RuntimeError("handler blew up")

    def on_gateway_connected(self, gateway_hid: str) -> None:
        self.calls.append(("connected", gateway_hid))
        self._changed()
        if self.fail_on_connection_change:
            raise RuntimeError("connect handler blew up")

    def on_gateway_disconnected(self, gateway_hid: str) -> None:
        self.calls.append(("disconnected", gateway_hid))
        self._changed()
        if self.fail_on_connection_change:
            raise RuntimeError("disconnect handler blew up")

    def events_of(self, gateway_hid: str) -> list[str]:
        return [call[0] for call in self.calls if call[1] == gateway_hid]

    def _changed(self) -> None:
        for predicate, future in self._waiters:
            if not future.done() and predicate():
                future.set_result(None)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(TIMEOUT):
                await future
        finally:
            self._waiters.remove(entry)

    async def wait_connected(self, gateway_hid: str, count: int = 1) -> None:
        await self.wait_until(
            lambda: self.events_of(gateway_hid).count("connected") >= count
        )

    async def wait_disconnected(self, gateway_hid: str) -> None:
        await self.wait_until(lambda: "disconnected" in self.events_of(gateway_hid))

    async def wait_messages(self, count: int) -> None:
        await self.wait_until(lambda: len(self.messages) >= count)


class PahoFeeder:
    """A paho-mqtt 2.1 client (MQTT 3.1.1) whose callbacks resolve asyncio futures."""

    def __init__(
        self,
        client_id: str,
        password: str,
        *,
        username: str | None = None,
        tls: bool = False,
        manual_ack: bool = False,
        keepalive: int = 60,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.keepalive = keepalive
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            manual_ack=manual_ack,
        )
        self.client.username_pw_set(username or user(client_id), password)
        if tls:
            self.client.tls_set_context(client_tls_context())
            self.client.tls_insecure_set(True)
        self.connack: asyncio.Future[mqtt.ReasonCode] = self.loop.create_future()
        self.disconnected = asyncio.Event()
        self.messages: asyncio.Queue[mqtt.MQTTMessage] = asyncio.Queue()
        self._lock = threading.Lock()
        self._acks: dict[int, Any] = {}
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self._started = False

    # paho thread -> event loop
    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.loop.call_soon_threadsafe(_set, self.connack, reason)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        # No automatic reconnect: a test decides when a client comes back.
        client.disconnect()
        self.loop.call_soon_threadsafe(self.disconnected.set)

    def _on_message(
        self, client: Any, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        self.loop.call_soon_threadsafe(self.messages.put_nowait, message)

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, codes: Any, props: Any
    ) -> None:
        self._acked(mid, [code.value for code in codes])

    def _on_publish(
        self, client: Any, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        self._acked(mid, reason)

    def _acked(self, mid: int, value: Any) -> None:
        with self._lock:
            future = self._futures.pop(mid, None)
            if future is None:
                self._acks[mid] = value
                return
        self.loop.call_soon_threadsafe(_set, future, value)

    async def _wait_ack(self, mid: int) -> Any:
        with self._lock:
            if mid in self._acks:
                return self._acks.pop(mid)
            future: asyncio.Future[Any] = self.loop.create_future()
            self._futures[mid] = future
        async with asyncio.timeout(TIMEOUT):
            return await future

    async def connect(self, port: int) -> mqtt.ReasonCode:
        self.client.connect_async("127.0.0.1", port, keepalive=self.keepalive)
        self.client.loop_start()
        self._started = True
        async with asyncio.timeout(TIMEOUT):
            return await self.connack

    async def subscribe(self, *topic_names: str) -> list[int]:
        result, mid = self.client.subscribe([(name, 1) for name in topic_names])
        assert result == mqtt.MQTT_ERR_SUCCESS
        codes: list[int] = await self._wait_ack(mid)
        return codes

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        await self._wait_ack(info.mid)

    async def next_message(self) -> mqtt.MQTTMessage:
        async with asyncio.timeout(TIMEOUT):
            return await self.messages.get()

    async def wait_disconnected(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            await self.disconnected.wait()

    async def close(self) -> None:
        if self._started:
            self._started = False
            self.client.disconnect()
            await asyncio.to_thread(self.client.loop_stop)


def _set(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


@dataclass
class Harness:
    transport: BundledBrokerTransport
    handler: FakeHandler
    mqtt_port: int
    mqtts_port: int
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def feeder(
        self, gateway_hid: str = GW_A, *, subscribe: bool = True, **kwargs: Any
    ) -> PahoFeeder:
        """Connect a paho feeder that subscribes to its two topics."""
        password = kwargs.pop("password", KEY_A if gateway_hid == GW_A else KEY_B)
        tls = kwargs.get("tls", False)
        client = PahoFeeder(gateway_hid, password, **kwargs)
        self.closers.append(client.close)
        reason = await client.connect(self.mqtts_port if tls else self.mqtt_port)
        assert not reason.is_failure, reason
        if subscribe:
            codes = await client.subscribe(
                topics.command_topic(gateway_hid), topics.api_reply_topic(gateway_hid)
            )
            assert codes == [1, 1]
        return client

    async def raw(self, *, tls: bool = False) -> RawClient:
        client = await RawClient.open(
            self.mqtts_port if tls else self.mqtt_port, tls=tls
        )
        self.closers.append(client.close)
        return client

    async def raw_session(self, gateway_hid: str = GW_A, **kwargs: Any) -> RawClient:
        client = await self.raw()
        key = KEY_A if gateway_hid == GW_A else KEY_B
        assert await client.connect(gateway_hid, user(gateway_hid), key, **kwargs) == 0
        return client


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ensure_certificate(tmp_path_factory.mktemp("tls"), "petnet.local")


async def started_harness(
    certificate: tuple[Path, Path],
    transport_class: type[BundledBrokerTransport] = BundledBrokerTransport,
    **kwargs: Any,
) -> Harness:
    """A transport started on free ports with gateways A and B, not yet connected to."""
    handler = FakeHandler({GW_A: KEY_A, GW_B: KEY_B})
    mqtt_port, mqtts_port = free_port(), free_port()
    transport = transport_class(
        handler,
        host="127.0.0.1",
        mqtt_port=mqtt_port,
        mqtts_port=mqtts_port,
        ssl_cert=certificate[0],
        ssl_key=certificate[1],
        **kwargs,
    )
    await transport.async_start()
    return Harness(transport, handler, mqtt_port, mqtts_port)


@pytest.fixture
async def start_harness(
    socket_enabled: None, certificate: tuple[Path, Path]
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Start transports on free ports; stop their clients and them afterwards."""
    harnesses: list[Harness] = []

    async def start(
        transport_class: type[BundledBrokerTransport] = BundledBrokerTransport,
        **kwargs: Any,
    ) -> Harness:
        harness = await started_harness(certificate, transport_class, **kwargs)
        harnesses.append(harness)
        return harness

    yield start
    for harness in harnesses:
        for close in reversed(harness.closers):
            await close()
        await harness.transport.async_stop()


@pytest.fixture
async def harness(start_harness: Callable[..., Awaitable[Harness]]) -> Harness:
    return await start_harness()


# -- login ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_login_connects_and_telemetry_reaches_hub(
    harness: Harness, tls: bool
) -> None:
    feeder = await harness.feeder(GW_A, tls=tls)
    await harness.handler.wait_connected(GW_A)
    assert harness.transport.is_connected(GW_A)
    assert not harness.transport.is_connected(GW_B)

    telemetry = b'{"_|deviceHid":"5238b0c4","s|msg_type":"hb"}\x00\xff'
    await feeder.publish(topics.telemetry_topic(GW_A), telemetry)
    await feeder.publish(topics.api_request_topic(GW_A), b"{}")
    await harness.handler.wait_messages(2)
    assert harness.handler.messages == [
        (GW_A, topics.telemetry_topic(GW_A), telemetry),
        (GW_A, topics.api_request_topic(GW_A), b"{}"),
    ]
    assert harness.handler.calls == [("connected", GW_A)]


async def test_tls_listener_speaks_tls_only(harness: Harness) -> None:
    client = await harness.raw(tls=True)
    ssl_object = client.writer.get_extra_info("ssl_object")
    assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
    assert await client.connect(GW_A, user(GW_A), KEY_A) == 0
    await harness.handler.wait_connected(GW_A)


@pytest.mark.parametrize(
    ("client_id", "username", "password"),
    [
        pytest.param(GW_A, user(GW_A), "wrong", id="wrong-key"),
        pytest.param(GW_A, user(GW_A), KEY_A.upper(), id="key-wrong-case"),
        pytest.param(GW_A, user(GW_A), None, id="no-password"),
        pytest.param(GW_A, None, None, id="anonymous"),
        pytest.param(GW_A, "", KEY_A, id="empty-username"),
        pytest.param(GW_A, GW_A, KEY_A, id="username-without-prefix"),
        pytest.param(GW_A, f"pegasus:{GW_A}", KEY_A, id="username-without-slash"),
        pytest.param(GW_A, f"/pegasus:{GW_A}/x", KEY_A, id="username-extra-level"),
        pytest.param("#", "/pegasus:#", KEY_A, id="username-wildcard"),
        pytest.param(GW_UNKNOWN, user(GW_UNKNOWN), KEY_A, id="unknown-gateway"),
        pytest.param("someone-else", user(GW_A), KEY_A, id="client-id-not-gateway"),
        pytest.param("", user(GW_A), KEY_A, id="empty-client-id"),
        pytest.param(GW_A, user(GW_B), KEY_B, id="other-gateways-credentials"),
    ],
)
async def test_refused_logins(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    client_id: str,
    username: str | None,
    password: str | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await harness.raw()
    assert await client.connect(client_id, username, password) == REFUSED
    assert await client.at_eof()
    assert harness.handler.calls == []
    assert not harness.transport.is_connected(GW_A)
    assert harness.transport._broker.sessions == {}
    assert "Refused MQTT connection" in caplog.text
    for secret in (KEY_A, KEY_B, KEY_A.upper()):
        assert secret not in caplog.text


# -- topic ACL ------------------------------------------------------------------------------


async def test_refused_publishes_are_dropped_and_session_stays_up(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    feeder = await harness.raw_session(GW_A)
    await harness.handler.wait_connected(GW_A)
    for topic in (
        topics.telemetry_topic(GW_B),  # another gateway's topic
        topics.api_request_topic(GW_B),
        topics.command_topic(GW_A),  # an outbound topic
        topics.api_reply_topic(GW_A),
        f"krs/tel/gts/{GW_A}",  # upstream's regex let this through
        f"krsXtelXgts.{GW_A}",
        f"krs.tel.bat.gts.{GW_A}",
        "$SYS/broker",
        "",
    ):
        await feeder.publish(topic, b"nope")
    # Wildcards are invalid in a PUBLISH: dropped whole, without a PUBACK. The payload looks
    # like a packet, to show it is not parsed as one.
    for topic in ("krs.tel.gts.#", "#", f"krs.tel.gts.{GW_A}/+", "+"):
        await feeder.publish(topic, b"\xc0\x00", wait_ack=False)  # a PINGREQ
    # The next packet read is this PUBACK: nothing of the dropped ones was answered.
    await feeder.publish(topics.telemetry_topic(GW_A), b"good")
    await harness.handler.wait_messages(1)
    assert harness.handler.messages == [(GW_A, topics.telemetry_topic(GW_A), b"good")]
    assert harness.transport.is_connected(GW_A)
    assert harness.handler.calls == [("connected", GW_A)]
    assert f"Refused MQTT publish of gateway {GW_A}" in caplog.text
    assert KEY_A not in caplog.text


async def test_refused_subscriptions_get_failure_code(harness: Harness) -> None:
    feeder = await harness.feeder(GW_A, subscribe=False)
    codes = await feeder.subscribe(
        topics.command_topic(GW_B),
        topics.api_reply_topic(GW_B),
        "#",
        "krs/cmd/stg/+",
        "krs/#",
        topics.telemetry_topic(GW_A),
        topics.command_topic(GW_A),
    )
    assert codes == [SUBACK_FAILURE] * 6 + [1]
    # The session stays usable.
    await harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"cmd")
    assert (await feeder.next_message()).payload == b"cmd"


async def test_feeders_never_receive_each_others_traffic(harness: Harness) -> None:
    feeder_a = await harness.feeder(GW_A)
    feeder_b = await harness.feeder(GW_B)
    await feeder_a.publish(topics.telemetry_topic(GW_A), b"from a")
    await harness.transport.async_publish(GW_B, topics.command_topic(GW_B), b"for b")
    await harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"for a")
    message_b = await feeder_b.next_message()
    message_a = await feeder_a.next_message()
    assert (message_b.topic, message_b.payload) == (
        topics.command_topic(GW_B),
        b"for b",
    )
    assert (message_a.topic, message_a.payload) == (
        topics.command_topic(GW_A),
        b"for a",
    )
    assert feeder_a.messages.empty()
    assert feeder_b.messages.empty()


async def test_topic_plugin_acl_matrix() -> None:
    context = BaseContext()
    context.config = BridgeConfig(bridge=FakeBridge())
    plugin = PetnetTopicPlugin(context)
    session = Session()
    session.attributes[GATEWAY_ATTRIBUTE] = GW_A
    anonymous = Session()

    async def check(
        session: Session | None, topic: str | None, action: Action | None
    ) -> bool:
        return await plugin.topic_filtering(session=session, topic=topic, action=action)

    assert await check(session, topics.telemetry_topic(GW_A), Action.PUBLISH)
    assert await check(session, topics.api_request_topic(GW_A), Action.PUBLISH)
    assert not await check(session, topics.command_topic(GW_A), Action.PUBLISH)
    assert not await check(session, topics.telemetry_topic(GW_B), Action.PUBLISH)
    for action in (Action.SUBSCRIBE, Action.RECEIVE):
        assert await check(session, topics.command_topic(GW_A), action)
        assert await check(session, topics.api_reply_topic(GW_A), action)
        assert not await check(session, topics.command_topic(GW_B), action)
        assert not await check(session, topics.telemetry_topic(GW_A), action)
        assert not await check(session, "#", action)
    assert not await check(anonymous, topics.command_topic(GW_A), Action.SUBSCRIBE)
    assert not await check(None, topics.command_topic(GW_A), Action.SUBSCRIBE)
    assert not await check(session, "", Action.SUBSCRIBE)
    assert not await check(session, topics.command_topic(GW_A), None)


class FakeBridge:
    def __init__(self) -> None:
        self.refusals: list[tuple[str, ...]] = []

    def topic_refused(self, gateway_hid: str, action: str, topic: str) -> None:
        self.refusals.append((gateway_hid, action, topic))


# -- inbound delivery -----------------------------------------------------------------------


async def test_inbound_order_is_kept_and_handler_errors_are_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    feeder = await harness.feeder(GW_A)
    harness.handler.fail_on = b"boom"
    payloads = [str(index).encode() for index in range(300)]
    payloads[100] = b"boom"
    for payload in payloads:
        feeder.client.publish(topics.telemetry_topic(GW_A), payload, qos=1)
    await harness.handler.wait_messages(len(payloads))
    assert [message[2] for message in harness.handler.messages] == payloads
    assert "Error handling a message of gateway" in caplog.text
    assert "handler blew up" in caplog.text
    assert harness.transport.is_connected(GW_A)


async def test_publishes_reach_the_hub_without_amqtt_plugin_tasks(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point 12: the ACL and the hand-over run in the session's loop, not in a task per plugin.

    Stock amqtt fires two events (a task each) and gathers a task per ACL plugin for every
    PUBLISH; what the hub receives, and what the ACL refuses, stay the same.
    """
    manager = harness.transport._broker.plugins_manager
    fired: list[str] = []
    checked: list[Any] = []
    fire_event, map_plugin_topic = manager.fire_event, manager.map_plugin_topic

    async def record_event(event_name: Any, **kwargs: Any) -> None:
        fired.append(str(getattr(event_name, "value", event_name)))
        await fire_event(event_name, **kwargs)

    async def record_check(**kwargs: Any) -> Any:
        checked.append(kwargs.get("action"))
        return await map_plugin_topic(**kwargs)

    monkeypatch.setattr(manager, "fire_event", record_event)
    monkeypatch.setattr(manager, "map_plugin_topic", record_check)
    feeder = await harness.raw_session(GW_A)
    await harness.handler.wait_connected(GW_A)
    assert await feeder.subscribe(topics.command_topic(GW_A)) == 1
    await feeder.publish(topics.telemetry_topic(GW_B), b"refused")
    for index in range(20):
        await feeder.publish(topics.telemetry_topic(GW_A), str(index).encode())
    await harness.handler.wait_messages(20)
    assert [payload for *_, payload in harness.handler.messages] == [
        str(index).encode() for index in range(20)
    ]
    assert not {"broker_message_received", "broker_message_broadcast"} & set(fired)
    assert checked == [Action.SUBSCRIBE]  # subscriptions still go through the plugin


async def test_acknowledged_messages_survive_a_disconnect(harness: Harness) -> None:
    """Whatever amqtt acknowledged before the client left must reach the hub (it acks on queueing)."""
    client = await harness.raw_session(GW_A)
    await harness.handler.wait_connected(GW_A)
    topic = mqtt_string(topics.telemetry_topic(GW_A))
    burst = b"".join(
        packet(0x32, topic + packet_id.to_bytes(2, "big") + str(packet_id).encode())
        for packet_id in range(1, 501)
    )
    await client.send(burst + b"\xe0\x00")  # then DISCONNECT at once
    acked: list[int] = []
    while True:
        try:
            first, body = await client.read_packet()
        except asyncio.IncompleteReadError:
            break
        assert first == 0x40
        acked.append(int.from_bytes(body, "big"))
    await harness.handler.wait_disconnected(GW_A)
    delivered = [int(payload) for _gw, _topic, payload in harness.handler.messages]
    assert acked  # the broker acknowledged at least part of the burst
    assert set(acked) <= set(delivered)
    assert delivered == sorted(delivered)


async def test_a_flood_is_acknowledged_no_faster_than_it_is_delivered(
    harness: Harness,
) -> None:
    """Backpressure: a PUBACK means the hub has the message (point 12).

    amqtt acknowledges a PUBLISH when it queues it; under a flood its reader outran the
    delivery 8 to 1 (benchmark), so the queue and the latency grew without bound. A bounded
    queue (point 10) kept it within DELIVERY_QUEUE_LIMIT; the hand-over before the PUBACK
    leaves nothing in between.
    """
    client = await harness.raw_session(GW_A)
    await harness.handler.wait_connected(GW_A)
    topic = mqtt_string(topics.telemetry_topic(GW_A))
    total = 2000
    await client.send(
        b"".join(
            packet(0x32, topic + packet_id.to_bytes(2, "big") + str(packet_id).encode())
            for packet_id in range(1, total + 1)
        )
    )
    ahead = []
    for _ in range(total):
        first, body = await client.read_packet()
        assert first == 0x40
        ahead.append(int.from_bytes(body, "big") - len(harness.handler.messages))
    await harness.handler.wait_messages(total)
    assert max(ahead) <= 0
    delivered = [int(message[2]) for message in harness.handler.messages]
    assert delivered == list(range(1, total + 1))


async def test_a_qos0_flood_is_shed_without_errors(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """QoS 0 is "at most once": what does not fit the session's queue is dropped, quietly."""
    client = await harness.raw_session(GW_A)
    await harness.handler.wait_connected(GW_A)
    topic = mqtt_string(topics.telemetry_topic(GW_A))
    await client.send(b"".join(packet(0x30, topic + b"q0") for _ in range(3000)))
    await client.publish(
        topics.telemetry_topic(GW_A), b"last"
    )  # QoS 1, waits for PUBACK
    await harness.handler.wait_until(
        lambda: bool(harness.handler.messages)
        and harness.handler.messages[-1][2] == b"last"
    )
    payloads = [message[2] for message in harness.handler.messages]
    assert set(payloads) == {b"q0", b"last"}
    assert harness.transport.is_connected(GW_A)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_will_is_never_delivered(harness: Harness) -> None:
    feeder_b = await harness.feeder(GW_B)
    attacker = await harness.raw()
    code = await attacker.connect(
        GW_A, user(GW_A), KEY_A, will=(topics.command_topic(GW_B), b'{"feed": true}')
    )
    assert code == 0
    await harness.handler.wait_connected(GW_A)
    attacker.writer.transport.abort()  # an abnormal end would publish the will
    await harness.handler.wait_disconnected(GW_A)
    await harness.transport.async_publish(GW_B, topics.command_topic(GW_B), b"marker")
    assert (await feeder_b.next_message()).payload == b"marker"
    assert harness.transport._broker.retained_messages == {}


# -- outbound publish -----------------------------------------------------------------------


async def test_async_publish_delivers_once_at_qos1_without_retain(
    harness: Harness,
) -> None:
    feeder = await harness.feeder(GW_A)
    await harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"first")
    await harness.transport.async_publish(GW_A, topics.api_reply_topic(GW_A), b"second")
    first = await feeder.next_message()
    second = await feeder.next_message()
    assert (first.topic, first.payload, first.qos, first.retain) == (
        topics.command_topic(GW_A),
        b"first",
        1,
        False,
    )
    assert (second.topic, second.payload, second.qos, second.retain) == (
        topics.api_reply_topic(GW_A),
        b"second",
        1,
        False,
    )
    assert feeder.messages.empty()
    # Nothing was retained for later subscribers.
    assert harness.transport._broker.retained_messages == {}


async def test_async_publish_returns_after_puback(harness: Harness) -> None:
    feeder = await harness.feeder(GW_A, manual_ack=True)
    publish = asyncio.create_task(
        harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"feed")
    )
    message = await feeder.next_message()
    assert message.payload == b"feed"
    assert not publish.done()  # the PUBLISH arrived, the PUBACK was not sent yet
    feeder.client.ack(message.mid, message.qos)
    async with asyncio.timeout(TIMEOUT):
        await publish


async def test_async_publish_times_out_without_puback(
    start_harness: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await start_harness(publish_timeout=0.5)
    feeder = await harness.feeder(GW_A, manual_ack=True)
    with pytest.raises(TimeoutError, match=GW_A):
        await harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"feed")
    assert (await feeder.next_message()).payload == b"feed"
    # The session is still fine for the next command.
    publish = asyncio.create_task(
        harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"next")
    )
    message = await feeder.next_message()
    feeder.client.ack(message.mid, message.qos)
    await publish


async def test_async_publish_waits_for_the_subscription(harness: Harness) -> None:
    feeder = await harness.feeder(GW_A, subscribe=False)
    await harness.handler.wait_connected(GW_A)
    publish = asyncio.create_task(
        harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"early")
    )
    assert await feeder.subscribe(topics.command_topic(GW_A)) == [1]
    async with asyncio.timeout(TIMEOUT):
        await publish
    assert (await feeder.next_message()).payload == b"early"


async def test_async_publish_without_subscription_times_out(
    start_harness: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await start_harness(publish_timeout=0.2)
    feeder = await harness.feeder(GW_A, subscribe=False)
    with pytest.raises(TimeoutError):
        await harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"lost")
    assert await feeder.subscribe(topics.command_topic(GW_A)) == [1]
    await harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"next")
    assert (await feeder.next_message()).payload == b"next"  # "lost" was never sent


async def test_async_publish_to_offline_gateway(harness: Harness) -> None:
    with pytest.raises(GatewayNotConnectedError):
        await harness.transport.async_publish(GW_B, topics.command_topic(GW_B), b"x")
    with pytest.raises(GatewayNotConnectedError):
        await harness.transport.async_publish(
            GW_UNKNOWN, topics.command_topic(GW_UNKNOWN), b"x"
        )

    feeder = await harness.feeder(GW_A)
    await feeder.close()
    await harness.handler.wait_disconnected(GW_A)
    assert not harness.transport.is_connected(GW_A)
    with pytest.raises(GatewayNotConnectedError):
        await harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"x")


async def test_async_publish_fails_when_gateway_drops_before_puback(
    harness: Harness,
) -> None:
    feeder = await harness.feeder(GW_A, manual_ack=True)
    publish = asyncio.create_task(
        harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"feed")
    )
    await feeder.next_message()
    await feeder.close()  # gone without acknowledging
    with pytest.raises(GatewayNotConnectedError):
        async with asyncio.timeout(TIMEOUT):
            await publish


async def test_async_publish_refuses_topics_the_gateway_cannot_receive(
    harness: Harness,
) -> None:
    await harness.feeder(GW_A)
    for topic in (topics.command_topic(GW_B), topics.telemetry_topic(GW_A), "#"):
        with pytest.raises(ValueError):
            await harness.transport.async_publish(GW_A, topic, b"x")


# -- sessions -------------------------------------------------------------------------------


async def _takeover_attempts(harness: Harness) -> None:
    """A connected and subscribed; two CONNECTs with A's client id but not A's key."""
    for username, password in ((user(GW_A), "wrong-key"), (user(GW_B), KEY_B)):
        attacker = await harness.raw()
        assert await attacker.connect(GW_A, username, password) == REFUSED
        assert await attacker.at_eof()


async def test_takeover_with_wrong_key_leaves_live_session_intact(
    harness: Harness,
) -> None:
    feeder = await harness.feeder(GW_A)
    await harness.handler.wait_connected(GW_A)
    session_before = harness.transport._broker.sessions[GW_A][0]

    await _takeover_attempts(harness)

    assert harness.transport._broker.sessions[GW_A][0] is session_before
    assert harness.transport.is_connected(GW_A)
    await harness.transport.async_publish(
        GW_A, topics.command_topic(GW_A), b"still mine"
    )
    assert (await feeder.next_message()).payload == b"still mine"
    assert not feeder.disconnected.is_set()
    assert harness.handler.calls == [("connected", GW_A)]


async def test_stock_amqtt_broker_fails_the_takeover_check(
    start_harness: Callable[..., Awaitable[Harness]],
) -> None:
    """Guards the amqtt pin: the stock 0.12.1 broker strips the live feeder's subscriptions."""

    class StockBrokerTransport(BundledBrokerTransport):
        broker_class = Broker

    harness = await start_harness(StockBrokerTransport, publish_timeout=0.5)
    await harness.feeder(GW_A)
    command = topics.command_topic(GW_A)
    assert [
        s.client_id for s, _ in harness.transport._broker.subscriptions[command]
    ] == [GW_A]

    attacker = await harness.raw()
    assert await attacker.connect(GW_A, user(GW_A), "wrong-key") == REFUSED

    assert not harness.transport._broker.subscriptions.get(command)
    with pytest.raises((TimeoutError, GatewayNotConnectedError)):
        await harness.transport.async_publish(GW_A, command, b"lost")


async def test_reconnect_with_right_key_replaces_the_old_connection(
    harness: Harness,
) -> None:
    old = await harness.feeder(GW_A)
    await harness.handler.wait_connected(GW_A)
    (old_connection,) = harness.transport._connections.values()

    new = await harness.feeder(GW_A)
    await (
        old.wait_disconnected()
    )  # MQTT-3.1.4-2: the broker closed the first connection
    async with asyncio.timeout(TIMEOUT):
        await asyncio.shield(old_connection.task)  # its disconnect event has been fired
    await harness.transport._broker.plugins_manager.wait_fired_events()

    assert harness.transport.is_connected(GW_A)
    assert harness.handler.events_of(GW_A)[-1] == "connected"
    await harness.transport.async_publish(GW_A, topics.command_topic(GW_A), b"to new")
    assert (await new.next_message()).payload == b"to new"
    assert old.messages.empty()


async def test_disconnect_is_reported(harness: Harness) -> None:
    feeder = await harness.feeder(GW_A)
    await harness.handler.wait_connected(GW_A)
    await feeder.close()
    await harness.handler.wait_disconnected(GW_A)
    assert harness.handler.calls == [("connected", GW_A), ("disconnected", GW_A)]
    assert not harness.transport.is_connected(GW_A)
    # Nothing of the session is kept (sessions are never resumed).
    assert harness.transport._broker.sessions == {}
    assert not any(harness.transport._broker.subscriptions.values())


async def test_silent_connection_is_closed_after_keepalive(harness: Harness) -> None:
    client = await harness.raw_session(GW_A, keepalive=1)
    await harness.handler.wait_connected(GW_A)
    # No PINGREQ follows: after 1.5 x keep-alive the broker must give up on the session.
    assert await client.at_eof()
    await harness.handler.wait_disconnected(GW_A)
    assert not harness.transport.is_connected(GW_A)


async def test_connection_without_connect_is_closed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker_module, "CONNECT_TIMEOUT", 0.2)
    client = await harness.raw()
    assert await client.at_eof()
    assert harness.transport._connections == {}


async def test_other_protocol_levels_are_refused(harness: Harness) -> None:
    client = await harness.raw()
    header = mqtt_string("MQTT") + bytes([5, 0xC2]) + (60).to_bytes(2, "big")
    payload = mqtt_string(GW_A) + mqtt_string(user(GW_A)) + mqtt_string(KEY_A)
    await client.send(packet(0x10, header + payload))
    first, body = await client.read_packet()
    assert (first, body[1]) == (0x20, 1)  # unacceptable protocol version
    assert await client.at_eof()
    assert harness.handler.calls == []


# -- start / stop ---------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    """Tell whether nothing listens on the port (TIME_WAIT leftovers do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("busy", ["mqtt", "mqtts"])
async def test_port_in_use_raises_oserror_naming_the_port(
    certificate: tuple[Path, Path], busy: str
) -> None:
    tasks_before = asyncio.all_tasks()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy_port = blocker.getsockname()[1]
        other_port = free_port()
        ports = (busy_port, other_port) if busy == "mqtt" else (other_port, busy_port)
        transport = BundledBrokerTransport(
            FakeHandler({}),
            host="127.0.0.1",
            mqtt_port=ports[0],
            mqtts_port=ports[1],
            ssl_cert=certificate[0],
            ssl_key=certificate[1],
        )
        with pytest.raises(OSError, match=f":{busy_port}"):
            await transport.async_start()
    assert _port_is_free(other_port)
    assert asyncio.all_tasks() - tasks_before == set()
    await transport.async_stop()  # harmless after a failed start


@pytest.mark.usefixtures("socket_enabled")
async def test_stop_closes_listeners_connections_and_tasks(
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tasks_before = asyncio.all_tasks()
    harness = await started_harness(certificate)
    transport, handler = harness.transport, harness.handler
    mqtt_port, mqtts_port = harness.mqtt_port, harness.mqtts_port
    try:
        feeder = await harness.feeder(GW_A)
        tls_feeder = await harness.raw_session(GW_B)
        silent = await harness.raw()  # connected, never sends CONNECT
        tls_silent = await harness.raw(tls=True)
        await handler.wait_connected(GW_B)
        pending = asyncio.create_task(
            transport.async_publish(GW_B, topics.command_topic(GW_B), b"x")
        )
        await feeder.publish(topics.telemetry_topic(GW_A), b"hb")
        await handler.wait_messages(1)

        await transport.async_stop()

        await feeder.wait_disconnected()
        for client in (tls_feeder, silent, tls_silent):
            assert await client.at_eof()
        with pytest.raises(GatewayNotConnectedError):
            await pending
        assert not transport.is_connected(GW_A)
        # No callbacks into a hub that is being unloaded.
        assert "disconnected" not in handler.events_of(GW_A)
        for port in (mqtt_port, mqtts_port):
            assert _port_is_free(port)
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", port)
        assert asyncio.all_tasks() - tasks_before == set()
    finally:
        for close in reversed(harness.closers):
            await close()
        await transport.async_stop()

    # And it starts again on the same ports.
    await transport.async_start()
    again = await RawClient.open(mqtt_port)
    assert await again.connect(GW_A, user(GW_A), KEY_A) == 0
    await again.close()
    await transport.async_stop()
    assert asyncio.all_tasks() - tasks_before == set()


async def test_stop_does_not_hang_on_a_peer_that_stopped_reading(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundled_module, "STOP_TIMEOUT", 0.5)
    client = await harness.raw_session(GW_A)
    await harness.handler.wait_connected(GW_A)
    client.writer.transport.pause_reading()  # a peer that stopped reading
    # More than the socket buffers hold: amqtt's graceful close drains first.
    _session, protocol_handler = harness.transport._broker.sessions[GW_A]
    protocol_handler.writer.write(bytes(64 * 1024 * 1024))
    async with asyncio.timeout(TIMEOUT):
        await harness.transport.async_stop()
    assert _port_is_free(harness.mqtt_port)
    assert harness.transport._connections == {}


def test_constructor_validates_listeners(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        BundledBrokerTransport(FakeHandler({}), mqtt_port=None, mqtts_port=None)
    with pytest.raises(ValueError):
        BundledBrokerTransport(FakeHandler({}), mqtt_port=None, mqtts_port=8883)
    transport = BundledBrokerTransport(FakeHandler({}), mqtt_port=1883, mqtts_port=None)
    assert not transport.is_connected(GW_A)
    transport.gateway_added(GW_A)  # no-op


# -- error paths ----------------------------------------------------------------------------


async def test_handler_errors_on_connect_and_disconnect_are_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing hub never takes the broker down: the session works, the error is logged."""
    harness.handler.fail_on_connection_change = True
    feeder = await harness.feeder(GW_A)
    await harness.handler.wait_connected(GW_A)
    assert harness.transport.is_connected(GW_A)
    await feeder.publish(topics.telemetry_topic(GW_A), b"still delivered")
    await harness.handler.wait_messages(1)
    await feeder.close()
    await harness.handler.wait_disconnected(GW_A)
    assert not harness.transport.is_connected(GW_A)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"Error in the connect handler of gateway {GW_A}",
        f"Error in the disconnect handler of gateway {GW_A}",
    ]
    assert all(r.exc_info for r in errors)
    # The broker still takes new sessions.
    harness.handler.fail_on_connection_change = False
    await harness.feeder(GW_B)
    await harness.handler.wait_connected(GW_B)


async def test_starting_twice_is_refused_and_the_broker_keeps_running(
    harness: Harness,
) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        await harness.transport.async_start()
    await harness.feeder(GW_A)
    await harness.handler.wait_connected(GW_A)


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("listener", ["mqtt", "mqtts"])
async def test_either_listener_alone(
    certificate: tuple[Path, Path], listener: str
) -> None:
    port = free_port()
    handler = FakeHandler({GW_A: KEY_A})
    transport = BundledBrokerTransport(
        handler,
        host="127.0.0.1",
        mqtt_port=port if listener == "mqtt" else None,
        mqtts_port=port if listener == "mqtts" else None,
        ssl_cert=certificate[0],
        ssl_key=certificate[1],
    )
    await transport.async_start()
    try:
        client = await RawClient.open(port, tls=listener == "mqtts")
        assert await client.connect(GW_A, user(GW_A), KEY_A) == 0
        await handler.wait_connected(GW_A)
        await client.close()
        await handler.wait_disconnected(GW_A)
    finally:
        await transport.async_stop()
        await transport.async_stop()  # stopping again is harmless
    assert _port_is_free(port)


async def test_refusal_warnings_are_bounded(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each new kind of refusal warns once, but the memory of them is bounded: then debug."""
    monkeypatch.setattr(bundled_module, "_MAX_WARNED", 2)
    caplog.set_level(logging.DEBUG, "custom_components.petnet_feeder")
    for gateway in (GW_A, GW_B, GW_UNKNOWN):
        client = await harness.raw()
        assert await client.connect(gateway, user(gateway), "wrong key") == REFUSED
        assert await client.at_eof()
    refusals = [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.getMessage().startswith("Refused MQTT connection of gateway")
    ]
    assert [level for level, _message in refusals] == [
        logging.WARNING,
        logging.WARNING,
        logging.DEBUG,
    ]
    assert GW_UNKNOWN in refusals[2][1]


async def test_a_drop_while_a_puback_waits_leaves_no_unretrieved_task(
    harness: Harness,
) -> None:
    """The broker's per-packet task cancelled mid-PUBACK ends cancelled, not failed."""
    client = await harness.raw_session(GW_A)
    await harness.handler.wait_connected(GW_A)
    _session, protocol_handler = harness.transport._broker.sessions[GW_A]
    with unretrieved_task_failures() as reports:
        async with protocol_handler._write_lock:  # the PUBACK cannot go out
            await client.publish(topics.telemetry_topic(GW_A), b"{}", wait_ack=False)
            await harness.handler.wait_messages(1)
            client.writer.transport.abort()
            await harness.handler.wait_disconnected(GW_A)
        await packet_tasks_done(protocol_handler)
    assert [report["message"] for report in reports] == []
