"""amqtt Broker subclass with the fixes the bundled transport relies on.

These override private methods of amqtt, which is therefore pinned to exactly 0.12.1; the tests
in ``tests/transport`` fail on a stock broker.

1. Authenticate before touching any session (the security fix). Stock 0.12.1 reads the
   CONNECT and, for a clean session, deletes the existing session of that client id (with its
   subscriptions) *before* the auth plugins run; for a persistent session it overwrites the live
   session's credentials and then takes the connection over. Either way a CONNECT with a
   feeder's client id and a wrong key cut the live feeder off. ``_initialize_client_session``
   now authenticates first and refuses with CONNACK 5 while nothing has been changed.
2. No session state across connections: every session is treated as clean (CONNACK
   session-present 0), because commands must never be queued for an offline feeder and
   because amqtt's persistent-session takeover lets the old connection mark the shared session
   disconnected. A feeder must subscribe after each CONNECT, as it must after any broker restart.
3. A second connection of the same client id closes the first (MQTT-3.1.4-2); stock amqtt only
   forgets the old session and leaves its connection running.
4. Keep-alive is enforced (1.5 x the client's value, MQTT-3.1.2-24); stock amqtt never closes a
   silent connection, so a feeder that lost power would stay "connected".
5. A CONNECT that does not arrive within ``CONNECT_TIMEOUT`` closes the connection.
6. A PUBLISH to a name with ``#``, ``+`` or a leading ``$`` is dropped like any refused publish.
   Stock amqtt either stops reading the session's messages but keeps the connection open (a
   zombie), or, for wildcards, fails half-way through the packet and parses the rest of it as
   new packets. ``PacketReader`` hands amqtt whole packets and drops those; it also caps the
   packet size.
7. Messages already acknowledged are not lost at a disconnect. amqtt sends the PUBACK when it
   queues an inbound message, and its message loop dropped whatever was still queued when the
   client disconnected: a feeder that published and went away lost its last messages (in a
   benchmark, 70 % of a burst). ``_client_message_loop`` processes them before the disconnect.
8. A session that ended is dropped at once, with its subscriptions (``_forget_session``).
9. Client PUBLISHes are not queued for broadcast: the ACL lets feeders publish only to inbound
   topics and subscribe only to outbound ones, so nobody could receive them, and amqtt's
   broadcast loop would spend O(subscriptions) per message to find that out. They reach the hub
   through the event plugin instead.
10. A session's inbound messages are acknowledged no faster than they are delivered: amqtt
   sends the PUBACK once a message is in the session's queue, and that queue was unbounded. Under
   a flood the reader outran the delivery 8 to 1 (benchmark: 6,000 PUBLISHes/s acknowledged,
   750/s delivered, a backlog of 24 s, memory growing). The queue now holds
   ``DELIVERY_QUEUE_LIMIT`` messages (``DeliveryQueue``, which keeps their order); a full queue
   delays the PUBACK, and a QoS-1 client waits for it, so the broker reads only as fast as it
   delivers (and delivered 9 x more per second).
11. A packet's task cancelled while it sends ends cancelled. amqtt handles each received packet
   in a task of its own and cancels those tasks, unawaited, when the connection ends; a send cut
   short that way (a PUBACK waiting for the write lock) ended with ``ProtocolHandlerError``,
   which nobody retrieved, so asyncio logged "Task exception was never retrieved".
12. A client PUBLISH (QoS 0 or 1) goes to ``PetnetBroker.inbound`` (the ACL check and the
   hand-over to the hub) as soon as it is read, and a QoS-1 one is acknowledged after that. amqtt
   queues it for the session's message loop, which calls the ACL plugins through a task per
   plugin that it gathers and the event plugin through another task: five turns of the event
   loop per message instead of one, and in a storm the largest share of the loop's time
   (benchmark profile: 22 % in the plugin tasks alone). Acknowledging after the hand-over also
   bounds what is taken in to what is delivered, which point 10 does for the queue that QoS 2
   (never used by feeders) and a broker without ``inbound`` still use. Retained flags of client
   messages are ignored: nobody may subscribe to an inbound topic, so a retained copy could only
   take memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import logging
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.errors import (
    AMQTTError,
    CodecError,
    MQTTError,
    NoDataError,
    ProtocolHandlerError,
)
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.constants import QOS_0, QOS_1
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.session import Session

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
DELIVERY_QUEUE_LIMIT = 16
"""Messages of one session taken in (and acknowledged) but not yet delivered (point 10)."""
MAX_PACKET_SIZE = 256 * 1024
"""Feeder messages are a few hundred bytes; a larger packet closes the connection."""

_PUBLISH = 3


class ConnectRefusedError(Exception):
    """A connection ended before it became a session (already logged where decided).

    Deliberately not an amqtt error type, so amqtt does not log it a second time; the bundled
    transport's connection handler catches it.
    """


class PacketReader(ReaderAdapter):  # type: ignore[misc]  # amqtt is untyped
    """Reader adapter that frames MQTT packets itself and serves amqtt one packet at a time.

    amqtt parses a packet with many small reads; when it gives up in the middle (a wildcard
    in a PUBLISH topic raises while the packet id and payload are still unread) it carries on
    reading the rest as new packets. Framing here means such a PUBLISH is dropped whole before
    amqtt sees it, and a packet amqtt reads only partly cannot shift the next one.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        """Wrap an asyncio stream."""
        self._reader = reader
        self._packet = b""
        self._offset = 0

    async def read(self, n: int = -1) -> bytes:
        """Return up to ``n`` bytes of the current packet (b"" at the end of the stream)."""
        if self._offset >= len(self._packet) and not await self._next_packet():
            return b""
        end = len(self._packet) if n < 0 else self._offset + n
        data = self._packet[self._offset : end]
        self._offset += len(data)
        return data

    def feed_eof(self) -> None:
        """Acknowledge EOF."""
        self._reader.feed_eof()

    def discard_rest(self) -> None:
        """Forget what amqtt left unread of the current packet."""
        self._packet = b""
        self._offset = 0

    async def _next_packet(self) -> bool:
        self.discard_rest()
        while True:
            try:
                header = await self._reader.readexactly(1)
                length = 0
                for shift in (0, 7, 14, 21):
                    byte = (await self._reader.readexactly(1))[0]
                    header += bytes((byte,))
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                else:
                    _LOGGER.debug("Malformed MQTT remaining length, closing")
                    return False
                if length > MAX_PACKET_SIZE:
                    _LOGGER.warning(
                        "MQTT packet of %s bytes is over the limit of %s, closing",
                        length,
                        MAX_PACKET_SIZE,
                    )
                    return False
                body = await self._reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return False
            if header[0] >> 4 == _PUBLISH and _has_wildcard_topic(body):
                _LOGGER.debug("Dropped PUBLISH with a wildcard in its topic")
                continue
            self._packet = header + body
            return True


def _has_wildcard_topic(body: bytes) -> bool:
    topic = body[2 : 2 + int.from_bytes(body[:2], "big")]
    return b"#" in topic or b"+" in topic


class DeliveryQueue(asyncio.Queue[Any]):
    """A session's bounded queue of inbound messages, in arrival order (point 10).

    amqtt puts each QoS-1 message from its own task: a bounded ``asyncio.Queue`` would let a
    task that arrives while the queue has room pass tasks already waiting for room, and so
    reorder a feeder's messages. Puts here take their turn in order. A QoS-0 message that
    finds the queue full is dropped ("at most once"); feeders publish at QoS 1.
    """

    def __init__(self, maxsize: int) -> None:
        """Bound the queue."""
        super().__init__(maxsize)
        self._turn = asyncio.Lock()
        self._puts = 0

    @property
    def puts_waiting(self) -> bool:
        """Whether a put is waiting for its turn or for room."""
        return self._puts > 0

    async def put(self, item: Any) -> None:
        """Wait for room, after every put that started waiting before this one."""
        self._puts += 1
        try:
            async with self._turn:
                await super().put(item)
        finally:
            self._puts -= 1

    def put_nowait(self, item: Any) -> None:
        """Queue without waiting; a QoS-0 message that does not fit is dropped."""
        if self.full():
            _LOGGER.debug("Dropped a QoS 0 message: the session's queue is full")
            return
        super().put_nowait(item)


def is_valid_topic_name(topic: str | None) -> bool:
    """Whether a PUBLISH may name ``topic`` (no wildcard, no leading ``$``; point 6)."""
    return (
        topic is not None
        and topic != ""
        and "#" not in topic
        and "+" not in topic
        and not topic.startswith("$")
    )


class PetnetProtocolHandler(BrokerProtocolHandler):  # type: ignore[misc]  # amqtt is untyped
    """Broker-side protocol handler with points 4, 11 and 12 of the module docstring."""

    inbound: Callable[[Session, str, bytes], None] | None = None
    """Set by the broker once the session is authenticated (point 12)."""

    async def handle_publish(self, publish_packet: PublishPacket) -> None:
        """Hand a QoS 0 or 1 PUBLISH over at once, then acknowledge it (point 12)."""
        inbound, session = self.inbound, self.session
        qos = publish_packet.qos
        if inbound is None or session is None or qos not in (QOS_0, QOS_1):
            await super().handle_publish(publish_packet)
            return
        topic, data = publish_packet.topic_name, publish_packet.data
        if topic is None or data is None:
            return
        if qos == QOS_0 and publish_packet.dup_flag:
            _LOGGER.debug(
                "Dropped a QoS 0 PUBLISH with the DUP flag set (MQTT-3.3.1-2)"
            )
            return
        if is_valid_topic_name(topic):
            inbound(session, topic, bytes(data))
        else:
            _LOGGER.debug(
                "Dropped PUBLISH to invalid topic %r from MQTT client %s",
                topic,
                session.client_id,
            )
        if qos == QOS_1:
            packet_id = publish_packet.variable_header.packet_id
            await self._send_packet(PubackPacket.build(packet_id))

    async def _send_packet(self, packet: Any) -> None:
        """Send a packet; a send cancelled half-way raises CancelledError (point 11)."""
        try:
            await super()._send_packet(packet)
        except ProtocolHandlerError as err:
            if isinstance(err.__cause__, asyncio.CancelledError):
                raise asyncio.CancelledError from err
            raise

    def handle_read_timeout(self) -> None:
        """End the session: nothing arrived within 1.5 x the keep-alive (stock: ignored)."""
        waiter = self._disconnect_waiter
        if waiter is not None and not waiter.done():
            _LOGGER.debug(
                "Keep-alive expired for MQTT client %s, closing",
                self.session.client_id if self.session else None,
            )
            waiter.set_result(None)


class PetnetBroker(Broker):  # type: ignore[misc]  # amqtt is untyped
    """amqtt 0.12.1 broker with the fixes listed in this module's docstring."""

    connect_settled: Callable[[WriterAdapter], None] | None = None
    """Called once a connection's CONNECT was accepted or refused (the transport counts the
    connections that have not logged in yet)."""
    inbound: Callable[[Session, str, bytes], None] | None = None
    """Takes each client PUBLISH to a valid topic name, in place of amqtt's ACL plugins and
    message events (point 12). Without it, amqtt's path runs."""

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        """Read the CONNECT, authenticate, and only then replace an existing session."""
        try:
            return await self._connect_and_authenticate(
                reader, writer, remote_address, remote_port
            )
        finally:
            if self.connect_settled is not None:
                self.connect_settled(writer)

    async def _connect_and_authenticate(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                handler, session = await PetnetProtocolHandler.init_from_connect(
                    reader, writer, self.plugins_manager
                )
        except (
            AMQTTError,
            MQTTError,
            NoDataError,
            CodecError,
            TimeoutError,
            OSError,
        ) as err:
            _LOGGER.debug(
                "No valid MQTT CONNECT from %s:%s: %r", remote_address, remote_port, err
            )
            raise ConnectRefusedError from err
        if isinstance(reader, PacketReader):
            reader.discard_rest()  # bytes after the CONNECT's fields are not a packet

        # The fix: nothing about existing sessions has been looked at or changed yet.
        if not await self._authenticate(session, self.listeners_config["default"]):
            with contextlib.suppress(OSError):
                await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            raise ConnectRefusedError

        client_id: str = session.client_id
        session.clean_session = True
        session.parent = 0
        if (existing := self._sessions.get(client_id)) is not None:
            old_session, old_handler = existing
            if old_session.transitions.is_connected():
                _LOGGER.debug(
                    "MQTT client %s connected again, closing its old connection",
                    client_id,
                )
                # Its own message loop then stops it and reports the disconnect.
                await old_handler.handle_connection_closed()
            await self._delete_session(client_id)

        if session.keep_alive > 0:
            session.keep_alive += max(1, session.keep_alive // 2)
        # Point 10: acknowledge no faster than the messages are delivered.
        session.delivered_message_queue = DeliveryQueue(DELIVERY_QUEUE_LIMIT)
        handler.inbound = self.inbound
        return handler, session

    async def _client_message_loop(
        self, client_session: Session, handler: BrokerProtocolHandler
    ) -> None:
        """Run the session's message loop (amqtt's, with the order of events fixed).

        Per wake-up: subscriptions, unsubscriptions and the next message first, then a
        disconnect; before the disconnect is handled, every message already taken from the
        client (and acknowledged to it) is processed in order.
        """
        disconnect_waiter = asyncio.ensure_future(handler.wait_disconnect())
        subscribe_waiter = asyncio.ensure_future(
            handler.get_next_pending_subscription()
        )
        unsubscribe_waiter = asyncio.ensure_future(
            handler.get_next_pending_unsubscription()
        )
        wait_deliver = asyncio.ensure_future(handler.mqtt_deliver_next_message())
        try:
            while True:
                done, _ = await asyncio.wait(
                    [
                        disconnect_waiter,
                        subscribe_waiter,
                        unsubscribe_waiter,
                        wait_deliver,
                    ],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if subscribe_waiter in done:
                    await self._handle_subscription(
                        client_session, handler, subscribe_waiter
                    )
                    subscribe_waiter = asyncio.ensure_future(
                        handler.get_next_pending_subscription()
                    )
                if unsubscribe_waiter in done:
                    await self._handle_unsubscription(
                        client_session, handler, unsubscribe_waiter
                    )
                    unsubscribe_waiter = asyncio.ensure_future(
                        handler.get_next_pending_unsubscription()
                    )
                if wait_deliver in done:
                    await self._handle_message_delivery(
                        client_session, handler, wait_deliver
                    )
                    wait_deliver = asyncio.ensure_future(
                        handler.mqtt_deliver_next_message()
                    )
                if disconnect_waiter in done:
                    await self._deliver_queued(client_session, handler, wait_deliver)
                    await self._handle_disconnect(
                        client_session, handler, disconnect_waiter
                    )
                    await self._forget_session(client_session)
                    return
        except asyncio.CancelledError:
            _LOGGER.debug(
                "Message loop of MQTT client %s cancelled", client_session.client_id
            )
        finally:
            waiters = [
                disconnect_waiter,
                subscribe_waiter,
                unsubscribe_waiter,
                wait_deliver,
            ]
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _forget_session(self, client_session: Session) -> None:
        """Drop a session that ended, unless a newer one of its client id replaced it.

        Sessions are never resumed (point 2), so there is nothing to keep. amqtt's session
        monitor would drop it within a second, but by client id: one that reconnected in
        between could lose its new session.
        """
        client_id = client_session.client_id
        entry = self._sessions.get(client_id)
        if entry is not None and entry[0] is client_session:
            del self._sessions[client_id]
            await self._del_all_subscriptions(client_session)
            client_session.clear_queues()

    async def _deliver_queued(
        self,
        client_session: Session,
        handler: BrokerProtocolHandler,
        wait_deliver: asyncio.Future[Any],
    ) -> None:
        """Process the messages the session had queued when it disconnected."""
        # A pending wait returns None when cancelled; one that already took a message has it.
        wait_deliver.cancel()
        await asyncio.gather(wait_deliver, return_exceptions=True)
        if not wait_deliver.cancelled() and wait_deliver.result() is not None:
            await self._handle_message_delivery(client_session, handler, wait_deliver)
        queue = client_session.delivered_message_queue
        idle_turns = 0
        while True:
            if not queue.empty():
                idle_turns = 0
                taken: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                taken.set_result(queue.get_nowait())
                await self._handle_message_delivery(client_session, handler, taken)
                continue
            # A put that waited for room gets it only in a later turn of the loop; the direct
            # hand-over (point 12) never yields, so give it those turns. A put cancelled with
            # its connection never comes: stop after ten idle turns.
            if not getattr(queue, "puts_waiting", False) or idle_turns >= 10:
                return
            idle_turns += 1
            await asyncio.sleep(0)

    async def _handle_message_delivery(
        self,
        client_session: Session,
        handler: BrokerProtocolHandler,
        wait_deliver: asyncio.Future[Any],
    ) -> bool:
        """Drop a PUBLISH to an invalid topic name instead of zombifying the session.

        A valid one goes to ``inbound`` when set (point 12), else through amqtt.
        """
        message = wait_deliver.result()
        if message is not None:
            topic = message.topic
            if not is_valid_topic_name(topic):
                _LOGGER.debug(
                    "Dropped PUBLISH to invalid topic %r from MQTT client %s",
                    topic,
                    client_session.client_id,
                )
                return True
            if self.inbound is not None:
                self.inbound(client_session, topic, bytes(message.data))
                return True
        result: bool = await super()._handle_message_delivery(
            client_session, handler, wait_deliver
        )
        return result

    async def _broadcast_message(
        self,
        session: Session | None,
        topic: str | None,
        data: bytes | bytearray | None,
        force_qos: int | None = None,
    ) -> None:
        """Broadcast only the broker's own messages; see point 9 of the module docstring."""
        if session is None:
            await super()._broadcast_message(session, topic, data, force_qos)
