"""The bundled transport: an amqtt broker running in the current asyncio loop.

Feeders connect to us (plain MQTT and/or MQTT over TLS). The listening sockets are our own
``asyncio`` servers handed to amqtt as "external" listeners, so we choose the TLS context, report
a port that cannot be bound, and can close every connection on stop. Inbound messages reach the
hub in-process (no loopback client), outbound commands go straight to the gateway's session.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
import logging
import os
from pathlib import Path
import ssl
from typing import Any, Final

from amqtt.adapters import StreamWriterAdapter
from amqtt.errors import AMQTTError, MQTTError, ProtocolHandlerError
from amqtt.mqtt.constants import QOS_1
from amqtt.plugins import manager as amqtt_plugin_manager
from amqtt.session import Session

from ..protocol.topics import may_subscribe
from ..tls import server_ssl_context
from ..tls_listener import tls_protocol_factory
from . import plugins
from .base import GatewayNotConnectedError, Transport, TransportHandler
from .broker import CONNECT_TIMEOUT, ConnectRefusedError, PacketReader, PetnetBroker
from .plugins import GATEWAY_ATTRIBUTE

_LOGGER = logging.getLogger(__name__)

PUBLISH_TIMEOUT: Final = 10.0
"""Upper bound of ``async_publish`` (waiting for the subscription, sending, PUBACK)."""
STOP_TIMEOUT: Final = 5.0
"""How long ``async_stop`` lets amqtt close sessions gracefully before aborting connections."""

MAX_UNAUTHENTICATED: Final = 64
"""Connections that have not completed CONNECT (and its authentication), in all."""
MAX_UNAUTHENTICATED_PER_ADDRESS: Final = 56
"""The same, from one address, so one host cannot take every slot. Only connections still
before their CONNACK count: a feeder holds its slot from the end of its TLS handshake until its
CONNECT was handled, a moment that stretches while the event loop is busy with handshakes (50
feeders on loopback reconnecting at once held up to 50). A burst larger than the limits is
closed at once and gets in on its retry, as the benchmark's 200 rebooting together do."""

_PLAIN_LISTENER: Final = "default"  # amqtt requires a listener named "default"
_TLS_LISTENER: Final = "tls"
_MAX_WARNED: Final = 1024


def _plugin_path(plugin: type) -> str:
    return f"{plugin.__module__}.{plugin.__qualname__}"


@dataclass(slots=True)
class _Connection:
    task: asyncio.Task[Any] | None
    writer: asyncio.StreamWriter


@dataclass
class _GatewaySessions:
    """The bridge the amqtt plugins call: connection state and calls into the hub."""

    handler: TransportHandler
    stopping: bool = False
    live: dict[str, Session] = field(default_factory=dict)
    _waiters: dict[str, set[asyncio.Future[None]]] = field(default_factory=dict)
    _warned: set[tuple[str, ...]] = field(default_factory=set)

    # -- plugin side ------------------------------------------------------------------------

    def api_key_for(self, gateway_hid: str) -> str | None:
        """Look the key up in the hub."""
        return self.handler.api_key_for(gateway_hid)

    def connect_refused(
        self, reason: str, gateway_hid: str | None, session: Session
    ) -> None:
        """Warn once per gateway (or peer address) and reason, then log at debug level."""
        who = (
            gateway_hid
            or f"{session.remote_address} (username {_short(session.username)})"
        )
        self._log_once(
            ("connect", gateway_hid or str(session.remote_address), reason),
            "Refused MQTT connection of gateway %s: %s",
            who,
            reason,
        )

    def topic_refused(self, gateway_hid: str, action: str, topic: str) -> None:
        """Warn once per gateway, action and topic, then log at debug level."""
        self._log_once(
            ("topic", gateway_hid, action, topic),
            "Refused MQTT %s of gateway %s on topic %s",
            action,
            gateway_hid,
            _short(topic),
        )

    def session_connected(self, gateway_hid: str, session: Session) -> None:
        """Make ``session`` the gateway's live session and tell the hub."""
        if self.stopping:
            return
        self.live[gateway_hid] = session
        self._wake(gateway_hid)
        try:
            self.handler.on_gateway_connected(gateway_hid)
        except Exception:
            _LOGGER.exception("Error in the connect handler of gateway %s", gateway_hid)

    def session_disconnected(self, gateway_hid: str, session: Session) -> None:
        """Forget the gateway's session, unless a newer one already replaced it."""
        if self.stopping or self.live.get(gateway_hid) is not session:
            return
        del self.live[gateway_hid]
        self._wake(gateway_hid)
        try:
            self.handler.on_gateway_disconnected(gateway_hid)
        except Exception:
            _LOGGER.exception(
                "Error in the disconnect handler of gateway %s", gateway_hid
            )

    def session_subscribed(self, gateway_hid: str) -> None:
        """Let publishes waiting for this gateway's subscription look again."""
        self._wake(gateway_hid)

    def inbound(self, session: Session, topic: str, payload: bytes) -> None:
        """A client PUBLISH, straight from the broker: the ACL, then the hub."""
        if plugins.publish_allowed(self, session, topic):
            plugins.deliver_inbound(self, session.client_id, topic, payload)

    def deliver(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Hand an inbound message to the hub; its errors are logged, never raised."""
        if self.stopping:
            return
        try:
            self.handler.on_message(gateway_hid, topic, payload)
        except Exception:
            _LOGGER.exception(
                "Error handling a message of gateway %s on %s", gateway_hid, topic
            )

    # -- transport side ---------------------------------------------------------------------

    async def wait_for_change(self, gateway_hid: str) -> None:
        """Wait until the gateway subscribes, connects or disconnects."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(gateway_hid, set())
        waiters.add(future)
        try:
            await future
        finally:
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(gateway_hid, None)

    def stop(self) -> None:
        """Stop calling the hub and release every waiting publish."""
        self.stopping = True
        self.live.clear()
        for gateway_hid in list(self._waiters):
            self._wake(gateway_hid)

    def _wake(self, gateway_hid: str) -> None:
        for future in self._waiters.get(gateway_hid, ()):
            if not future.done():
                future.set_result(None)

    def log_once(self, key: tuple[str, ...], msg: str, *args: Any) -> None:
        """Warn the first time per key, then log at debug level."""
        self._log_once(key, msg, *args)

    def _log_once(self, key: tuple[str, ...], msg: str, *args: Any) -> None:
        if key in self._warned or len(self._warned) >= _MAX_WARNED:
            _LOGGER.debug(msg, *args)
            return
        self._warned.add(key)
        _LOGGER.warning(msg, *args)


def _short(value: str | None, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


class BundledBrokerTransport(Transport):
    """Transport that is itself the MQTT broker the feeders connect to."""

    # The tests swap in amqtt's stock Broker to prove it fails the takeover check.
    broker_class: type[Any] = PetnetBroker

    def __init__(
        self,
        handler: TransportHandler,
        *,
        host: str = "0.0.0.0",  # noqa: S104 (feeders reach us over the LAN)
        mqtt_port: int | None,
        mqtts_port: int | None,
        ssl_cert: Path | None = None,
        ssl_key: Path | None = None,
        publish_timeout: float = PUBLISH_TIMEOUT,
    ) -> None:
        """Configure listeners; nothing is bound before ``async_start``."""
        if mqtt_port is None and mqtts_port is None:
            raise ValueError("At least one of mqtt_port and mqtts_port is needed")
        if mqtts_port is not None and (ssl_cert is None or ssl_key is None):
            raise ValueError("The MQTTS listener needs ssl_cert and ssl_key")
        self._handler = handler
        self._host = host
        self._mqtt_port = mqtt_port
        self._mqtts_port = mqtts_port
        self._ssl_cert = ssl_cert
        self._ssl_key = ssl_key
        self._publish_timeout = publish_timeout
        self._gateways = _GatewaySessions(handler)
        self._broker: Any = None
        self._servers: list[asyncio.Server] = []
        self._connections: dict[StreamWriterAdapter, _Connection] = {}
        # Connections before their CONNECT was settled, and how many per address.
        self._unauthenticated: dict[Any, str] = {}
        self._unauthenticated_from: Counter[str] = Counter()

    # -- Transport --------------------------------------------------------------------------

    async def async_start(self, *, serve: bool = True) -> None:
        """Start the broker and bind the listeners; OSError names a port that failed.

        With ``serve=False`` the listeners accept nothing until ``async_start_serving``.
        """
        if self._broker is not None:
            raise RuntimeError("The MQTT broker is already running")
        tls_context: ssl.SSLContext | None = None
        if self._mqtts_port is not None:
            assert self._ssl_cert is not None and self._ssl_key is not None
            tls_context = await asyncio.get_running_loop().run_in_executor(
                None, server_ssl_context, self._ssl_cert, self._ssl_key
            )
        self._gateways = _GatewaySessions(self._handler)
        # amqtt's Broker grabs the running loop in its constructor.
        self._broker = self.broker_class(self._broker_config())
        if isinstance(self._broker, PetnetBroker):
            self._broker.connect_settled = self._connect_settled
            self._broker.inbound = self._gateways.inbound
        try:
            await self._broker.start()
            if self._mqtt_port is not None:
                await self._listen(_PLAIN_LISTENER, self._mqtt_port, None)
            if self._mqtts_port is not None:
                await self._listen(_TLS_LISTENER, self._mqtts_port, tls_context)
            if serve:
                await self.async_start_serving()
        except BaseException:
            await self.async_stop()
            raise

    async def async_start_serving(self) -> None:
        """Accept connections on the bound listeners."""
        for server in self._servers:
            await server.start_serving()

    async def async_stop(self) -> None:
        """Close the listeners, every client connection, the broker and all its tasks."""
        broker, self._broker = self._broker, None
        servers, self._servers = self._servers, []
        self._gateways.stop()
        for server in servers:
            server.close()
        if broker is None:
            return
        if broker.transitions.state == "started":
            await self._shutdown_broker(broker)
        # Whatever is left: connections still in the TLS handshake or before CONNECT.
        connections = list(self._connections.values())
        self._abort(connections)
        tasks = [c.task for c in connections if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        for server in servers:
            server.abort_clients()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await asyncio.gather(*(server.wait_closed() for server in servers))
        except TimeoutError:
            _LOGGER.warning("MQTT listeners did not close in time")
        # Hooks fired by sessions that ended during the shutdown.
        await broker.plugins_manager.wait_fired_events()
        # amqtt keeps the last plugin manager of a namespace in a module-level dict.
        registry = amqtt_plugin_manager.plugins_manager
        for namespace, manager in list(registry.items()):
            if manager is broker.plugins_manager:
                del registry[namespace]

    async def _shutdown_broker(self, broker: Any) -> None:
        """Let amqtt close its sessions; abort the connections if that takes too long."""
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await broker.shutdown()
        except TimeoutError:
            # A peer that stopped reading can block amqtt's graceful close (it drains first).
            _LOGGER.warning(
                "The MQTT broker did not stop in time; aborting connections"
            )
            self._abort(list(self._connections.values()))
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await broker.shutdown()
            except Exception:
                _LOGGER.exception("Error while stopping the MQTT broker")
        except Exception:
            _LOGGER.exception("Error while stopping the MQTT broker")

    @staticmethod
    def _abort(connections: list[_Connection]) -> None:
        for connection in connections:
            connection.writer.transport.abort()
            if connection.task is not None:
                connection.task.cancel()

    async def async_publish(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Publish at QoS 1, retain False, to the gateway's session; return after its PUBACK.

        We write to the session's protocol handler directly (``handler.mqtt_publish``) instead
        of amqtt's broadcast path: only that path gives us the PUBACK, it reaches exactly this
        gateway's connected session, and it can neither retain the message nor queue it for an
        offline session (the broadcast path does both for persistent sessions). It waits, within
        the timeout, until the session has subscribed to ``topic``: a feeder connects first
        and subscribes right after, and a message sent in between would be acknowledged by the
        client library and then dropped.
        """
        if not may_subscribe(gateway_hid, topic):
            raise ValueError(
                f"Topic {topic!r} is not deliverable to gateway {gateway_hid}"
            )
        try:
            async with asyncio.timeout(self._publish_timeout):
                protocol_handler = await self._wait_for_subscriber(gateway_hid, topic)
                await self._publish(protocol_handler, gateway_hid, topic, payload)
        except TimeoutError as err:
            raise TimeoutError(
                f"Gateway {gateway_hid} did not acknowledge a message on {topic} in time"
            ) from err

    def is_connected(self, gateway_hid: str) -> bool:
        """Tell whether the gateway has an authenticated, connected session."""
        return gateway_hid in self._gateways.live

    def gateway_added(self, gateway_hid: str) -> None:
        """Nothing to do: authentication asks the hub for keys at each CONNECT."""

    def gateway_removed(self, gateway_hid: str) -> None:
        """Close the gateway's session at once; its key no longer logs in."""
        if self._broker is None:
            return
        _session, protocol_handler = self._broker.sessions.get(
            gateway_hid, (None, None)
        )
        if protocol_handler is None:
            return
        for adapter, connection in self._connections.items():
            if protocol_handler.writer is adapter:
                _LOGGER.debug("Closing the session of removed gateway %s", gateway_hid)
                connection.writer.transport.abort()

    # -- internals --------------------------------------------------------------------------

    def _broker_config(self) -> dict[str, Any]:
        plugin_config = {"bridge": self._gateways}
        external = {"type": "external"}
        return {
            "listeners": {
                _PLAIN_LISTENER: dict(external),
                _TLS_LISTENER: dict(external),
            },
            "timeout_disconnect_delay": 0,
            # Giving "plugins" replaces amqtt's defaults (which let anonymous clients in).
            "plugins": {
                _plugin_path(plugins.PetnetAuthPlugin): plugin_config,
                _plugin_path(plugins.PetnetTopicPlugin): plugin_config,
                _plugin_path(plugins.PetnetEventPlugin): plugin_config,
            },
        }

    async def _listen(
        self, name: str, port: int, context: ssl.SSLContext | None
    ) -> None:
        kind = "MQTTS" if context is not None else "MQTT"
        on_connection = partial(self._on_connection, name)

        def streams() -> asyncio.BaseProtocol:
            # What asyncio.start_server makes per connection.
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(), on_connection)

        factory = streams
        if context is not None:
            # A TLS handshake counts against the time a CONNECT may take.
            factory = tls_protocol_factory(
                streams, context, handshake_timeout=CONNECT_TIMEOUT
            )
        try:
            server = await asyncio.get_running_loop().create_server(
                factory, self._host, port, start_serving=False
            )
        except OSError as err:
            # asyncio's own message repeats the address; the errno says what went wrong.
            reason = os.strerror(err.errno) if err.errno else str(err)
            raise OSError(
                err.errno, f"Cannot listen for {kind} on {self._host}:{port}: {reason}"
            ) from err
        self._servers.append(server)
        _LOGGER.debug("Listening for %s on %s:%s", kind, self._host, port)

    async def _on_connection(
        self, listener: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Run one client connection through amqtt (asyncio's per-connection task)."""
        broker = self._broker
        if broker is None:
            writer.transport.abort()
            return
        address = str((writer.get_extra_info("peername") or ("?",))[0])
        if (
            len(self._unauthenticated) >= MAX_UNAUTHENTICATED
            or self._unauthenticated_from[address] >= MAX_UNAUTHENTICATED_PER_ADDRESS
        ):
            self._gateways.log_once(
                ("limit", address),
                "Closed MQTT connections from %s at once: too many connections have not "
                "logged in yet (%s in all, %s from one address)",
                address,
                MAX_UNAUTHENTICATED,
                MAX_UNAUTHENTICATED_PER_ADDRESS,
            )
            writer.transport.abort()
            return
        adapter = StreamWriterAdapter(writer)
        self._connections[adapter] = _Connection(asyncio.current_task(), writer)
        self._unauthenticated[adapter] = address
        self._unauthenticated_from[address] += 1
        failed = False
        try:
            await broker.external_connected(PacketReader(reader), adapter, listener)
        except ConnectRefusedError:
            pass
        except (OSError, AMQTTError, MQTTError, ProtocolHandlerError) as err:
            failed = True
            _LOGGER.debug("MQTT connection ended with an error: %r", err)
        except Exception:
            failed = True
            _LOGGER.exception("Unexpected error in an MQTT connection")
        finally:
            self._connect_settled(adapter)
            del self._connections[adapter]
            writer.transport.close()
        if failed:
            await self._end_orphaned_session(broker, adapter)

    def _connect_settled(self, adapter: Any) -> None:
        """The connection logged in, was refused, or ended: it no longer counts."""
        if (address := self._unauthenticated.pop(adapter, None)) is None:
            return
        self._unauthenticated_from[address] -= 1
        if self._unauthenticated_from[address] <= 0:
            del self._unauthenticated_from[address]

    @property
    def unauthenticated_connections(self) -> int:
        """Connections that have not completed CONNECT yet (for tests and diagnostics)."""
        return len(self._unauthenticated)

    async def _end_orphaned_session(
        self, broker: Any, adapter: StreamWriterAdapter
    ) -> None:
        """Mark disconnected a session whose amqtt message loop died with an exception.

        amqtt only cleans a session up from its message loop; when that loop raises, the
        session would otherwise stay "connected" (and its subscriptions alive) forever.
        """
        for session, protocol_handler in list(broker.sessions.values()):
            if (
                protocol_handler.writer is adapter
                and session.transitions.is_connected()
            ):
                await protocol_handler.stop()
                session.transitions.disconnect()
                if (
                    gateway_hid := session.attributes.get(GATEWAY_ATTRIBUTE)
                ) is not None:
                    self._gateways.session_disconnected(gateway_hid, session)

    async def _wait_for_subscriber(self, gateway_hid: str, topic: str) -> Any:
        """Return the protocol handler of the gateway's session once it subscribed to topic."""
        while True:
            broker = self._broker
            if broker is None or self._gateways.stopping:
                raise GatewayNotConnectedError(
                    f"Gateway {gateway_hid} is not connected"
                )
            session, protocol_handler = broker.sessions.get(gateway_hid, (None, None))
            if (
                session is None
                or session.attributes.get(GATEWAY_ATTRIBUTE) != gateway_hid
                or not session.transitions.is_connected()
            ):
                raise GatewayNotConnectedError(
                    f"Gateway {gateway_hid} is not connected"
                )
            # Feeders may only subscribe to exact topic names (protocol.topics.may_subscribe).
            if any(sub is session for sub, _qos in broker.subscriptions.get(topic, ())):
                return protocol_handler
            await self._gateways.wait_for_change(gateway_hid)

    async def _publish(
        self, protocol_handler: Any, gateway_hid: str, topic: str, payload: bytes
    ) -> None:
        """Send one QoS 1 PUBLISH and wait for its PUBACK.

        amqtt waits at most 5 s for the PUBACK (then TimeoutError), and cancels the wait when
        the session ends; that cancellation is not ours, so it becomes
        GatewayNotConnectedError.
        """
        task = asyncio.current_task()
        try:
            await protocol_handler.mqtt_publish(topic, payload, QOS_1, retain=False)
        except asyncio.CancelledError:
            if task is not None and task.cancelling():
                raise
            raise GatewayNotConnectedError(
                f"Gateway {gateway_hid} disconnected before acknowledging"
            ) from None
        except (AMQTTError, MQTTError, ProtocolHandlerError, OSError) as err:
            raise GatewayNotConnectedError(
                f"Gateway {gateway_hid} connection failed"
            ) from err
