"""One MQTT session of a feeder, on top of amqtt's asyncio ``MQTTClient``.

amqtt quirks handled here (amqtt 0.12.1):

- Auto-reconnect is on by default; it is turned off so the feeder (and tests)
  decide when to reconnect. A :class:`FeederMqttConnection` is one TCP/TLS
  connection and is not reused: a reconnect makes a new one.
- ``publish``/``subscribe`` *wait* for a connection when the client is not
  connected (forever after a clean ``disconnect()``), so this wrapper refuses
  them up front instead.
- TLS: ``check_hostname`` and ``verify_cert`` off, as the real feeder does not
  verify the server certificate (§2).
- Username and password travel in the URI (percent-encoded, as
  ``/pegasus:<gw>`` contains ``/`` and ``:``).
- A closed connection shows up as ``deliver_message()`` returning ``None``.
- amqtt leaves some internal tasks finishing after ``disconnect()``; they are
  awaited here so that nothing lingers (the HA test plugin fails on that).
- amqtt turns a cancellation of the calling task into ``ConnectError`` (in
  ``connect``) or ``ProtocolHandlerError`` (in any packet send). Such errors
  are turned back into ``CancelledError`` when the calling task is being
  cancelled, so ``task.cancel()`` really stops a feeder.
- amqtt handles each received packet in a task of its own and, when the
  connection ends, cancels those tasks without awaiting them. A task cancelled
  while it sends (a PUBACK waiting for the write lock) then ended with
  ``ProtocolHandlerError``, which nobody retrieves: asyncio reports "Task
  exception was never retrieved". The protocol handler used here ends such a
  send as what it is, a cancellation.
- There is no public "drop the TCP connection"; :meth:`abort` aborts the
  stream's transport, so no DISCONNECT packet is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
import logging
import time
from typing import Any
from urllib.parse import quote

from amqtt.client import MQTTClient
from amqtt.errors import AMQTTError, ClientError, ConnectError, ProtocolHandlerError
from amqtt.mqtt.protocol.client_handler import ClientProtocolHandler

_LOGGER = logging.getLogger(__name__)

QOS_1 = 1
SUBACK_FAILURE = 0x80


class MqttError(Exception):
    """The MQTT session failed or is not connected."""


class MqttConnectRefusedError(MqttError):
    """The broker refused the CONNECT (CONNACK return code != 0)."""

    def __init__(self, return_code: int | None) -> None:
        """Keep the CONNACK return code."""
        super().__init__(f"CONNECT refused, return code {return_code}")
        self.return_code = return_code


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A PUBLISH received from the broker."""

    topic: str
    payload: bytes
    qos: int | None
    retain: bool
    received_at: float


class _CancellableClientHandler(ClientProtocolHandler):  # type: ignore[misc]  # amqtt is untyped
    """amqtt's client protocol handler; a send cut short by cancellation ends cancelled."""

    async def _send_packet(self, packet: Any) -> None:
        try:
            await super()._send_packet(packet)
        except ProtocolHandlerError as err:
            if isinstance(err.__cause__, asyncio.CancelledError):
                raise asyncio.CancelledError from err
            raise


class _FeederMqttClient(MQTTClient):  # type: ignore[misc]  # amqtt is untyped
    """amqtt's client with :class:`_CancellableClientHandler` as its protocol handler.

    amqtt builds a new handler inside ``connect()``; it is swapped here as it is assigned.
    """

    @property
    def _handler(self) -> ClientProtocolHandler | None:
        return self._cancellable_handler

    @_handler.setter
    def _handler(self, handler: ClientProtocolHandler | None) -> None:
        if handler is not None and not isinstance(handler, _CancellableClientHandler):
            handler = _CancellableClientHandler(
                handler.plugins_manager, handler.session
            )
        self._cancellable_handler = handler


class FeederMqttConnection:
    """One MQTT 3.1.1 connection (clean session) of a feeder."""

    def __init__(
        self,
        *,
        client_id: str,
        username: str,
        password: str,
        host: str,
        port: int,
        tls: bool,
        keep_alive: int = 60,
        connect_timeout: float = 10,
    ) -> None:
        """Prepare the connection; nothing is opened yet."""
        self._uri = _broker_uri(
            host, port, tls=tls, username=username, password=password
        )
        self._client = _FeederMqttClient(
            client_id=client_id,
            config={
                "keep_alive": keep_alive,
                "ping_delay": 1,
                "default_qos": QOS_1,
                "default_retain": False,
                "auto_reconnect": False,
                "reconnect_retries": 0,
                "connection_timeout": max(1, round(connect_timeout)),
                "cleansession": True,
                "check_hostname": False,
                "verify_cert": False,
                "plugins": {},
            },
        )
        self._closed = False

    @property
    def connected(self) -> bool:
        """Return True while the session is up."""
        session = self._client.session
        return (
            not self._closed
            and session is not None
            and session.transitions.is_connected()
        )

    async def connect(self) -> None:
        """Open the connection and send CONNECT; raise MqttError on failure."""
        try:
            await self._client.connect(uri=self._uri, cleansession=True)
        except ConnectError as err:
            self._closed = True
            await self._close_transport(abort=True)
            _reraise_if_cancelled(err)
            if err.return_code is not None:
                raise MqttConnectRefusedError(err.return_code) from err
            raise MqttError(f"MQTT connection failed: {err}") from err

    async def subscribe(self, topics: list[str], qos: int = QOS_1) -> list[int]:
        """Subscribe; raise MqttError if any topic is refused."""
        self._require_connected()
        try:
            codes: list[int] = await self._client.subscribe(
                [(topic, qos) for topic in topics]
            )
        except (ClientError, AMQTTError, ProtocolHandlerError) as err:
            _reraise_if_cancelled(err)
            raise MqttError(f"subscribe failed: {err!r}") from err
        if any(code == SUBACK_FAILURE for code in codes):
            raise MqttError(
                f"SUBSCRIBE refused: {dict(zip(topics, codes, strict=False))}"
            )
        return codes

    async def publish(self, topic: str, payload: bytes, *, qos: int = QOS_1) -> None:
        """Publish (retain false); at QoS 1 return once PUBACK arrived."""
        self._require_connected()
        try:
            await self._client.publish(topic, payload, qos=qos, retain=False)
        except (ClientError, AMQTTError, ProtocolHandlerError, TimeoutError) as err:
            _reraise_if_cancelled(err)
            raise MqttError(f"publish on {topic} failed: {err!r}") from err

    async def receive(self) -> InboundMessage | None:
        """Return the next message, or None once the connection is closed."""
        if self._closed:
            return None
        try:
            message = await self._client.deliver_message()
        except (ClientError, AMQTTError):
            message = None
        except asyncio.CancelledError:
            # deliver_message leaves its helper task behind when we are cancelled.
            for task in self._client.client_tasks:
                task.cancel()
            raise
        if message is None:
            self._closed = True
            return None
        return InboundMessage(
            topic=message.topic,
            payload=bytes(message.data),
            qos=message.qos,
            retain=bool(message.retain),
            received_at=time.time(),
        )

    async def disconnect(self) -> None:
        """Send DISCONNECT and close the connection (idempotent)."""
        if self.connected:
            try:
                await self._client.disconnect()
            except (ClientError, AMQTTError, ProtocolHandlerError, OSError) as err:
                _reraise_if_cancelled(err)
        self._closed = True
        await self._close_transport(abort=False)
        await self._wait_internal_tasks()

    async def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT (like a power cut)."""
        await self._close_transport(abort=True)
        self._closed = True
        await self._wait_internal_tasks()

    def _require_connected(self) -> None:
        if not self.connected:
            raise MqttError("MQTT session is not connected")

    async def _close_transport(self, *, abort: bool) -> None:
        handler = getattr(self._client, "_handler", None)
        writer = getattr(getattr(handler, "writer", None), "_writer", None)
        if writer is None:
            return
        if abort:
            writer.transport.abort()
        elif not writer.is_closing():
            writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def _wait_internal_tasks(self) -> None:
        """Let amqtt's own tasks of this connection finish."""
        handler: Any = getattr(self._client, "_handler", None)
        # The tasks deliver_message starts wait for a message a closed connection never brings:
        # end them now instead of waiting out the timeout (which a test's frozen clock never
        # reaches).
        for task in self._client.client_tasks:
            if task is not asyncio.current_task():
                task.cancel()
        tasks = [
            task
            for task in (
                getattr(self._client, "_disconnect_task", None),
                getattr(handler, "_reader_task", None),
                getattr(handler, "_ping_task", None),
                *self._client.client_tasks,
            )
            if isinstance(task, asyncio.Task) and task is not asyncio.current_task()
        ]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=5)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        for task in tasks:
            # Retrieved here: a connection that ended may leave them failed, which is no news.
            if not task.cancelled() and (err := task.exception()) is not None:
                _LOGGER.debug("amqtt task %s ended with %r", task.get_name(), err)


def _reraise_if_cancelled(err: BaseException) -> None:
    """Raise CancelledError if amqtt converted our task's cancellation into ``err``."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from err


def _broker_uri(
    host: str, port: int, *, tls: bool, username: str, password: str
) -> str:
    scheme = "mqtts" if tls else "mqtt"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{port}"
