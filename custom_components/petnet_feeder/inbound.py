"""Inbound MQTT traffic (§4.5, §5): each message applied to feeder state on its own.

Telemetry is handled as it arrives (nothing in it waits); an API request in a tracked task of
its own (its reply is published first). Implements the transport's ``TransportHandler``. A message that cannot be read is dropped with
one warning per gateway and kind; nothing it carried reaches the state.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
import logging
from typing import Any, Protocol

from .confirmations import CommandConfirmations
from .const import HISTORY_LIMIT
from .log_once import OnceLogger
from .models import Feeder, StoredFeedResult, Telemetry
from .outbox import Outbox
from .protocol import messages, topics
from .protocol.messages import (
    FeedResult,
    Heartbeat,
    ProtocolError,
    ScheduleHash,
    SensorReading,
    UnknownTelemetry,
)
from .protocol.topics import InboundKind
from .registry import GatewayRegistry
from .state import FeederState, now
from .transport.base import GatewayNotConnectedError

_LOGGER = logging.getLogger(__name__)

# A feed result may start this far ahead of Home Assistant's clock (the clocks differ a little).
FUTURE_SLACK_S = 600
# ...and this far back: a feeder replays what it could not send, but not a week of it; an
# older start is a wrong clock, and would rewrite days whose account is final.
PAST_LIMIT_S = 7 * 86400


class InboundListener(Protocol):
    """Who acts on what the feeders say, besides the state (schedules, monitoring)."""

    def gateway_connected(self, gateway_hid: str) -> None:
        """A gateway's session is up."""

    def gateway_disconnected(self, gateway_hid: str) -> None:
        """A gateway's session ended."""

    def hash_received(self, feeder: Feeder, message: ScheduleHash) -> None:
        """A feeder reported its schedule hash (§5.5)."""

    def result_stored(self, feeder: Feeder, result: FeedResult) -> None:
        """A new feed result was kept in the feeder's history."""


type Spawn = Callable[[Coroutine[Any, Any, Any], str], object]


class InboundHandler:
    """Takes every authenticated message and connection change from the transport."""

    def __init__(
        self,
        state: FeederState,
        registry: GatewayRegistry,
        outbox: Outbox,
        confirmations: CommandConfirmations,
        listener: InboundListener,
        spawn: Spawn,
    ) -> None:
        """Apply messages to ``state``; ``spawn`` runs each in a tracked task."""
        self._state = state
        self._registry = registry
        self._outbox = outbox
        self._confirmations = confirmations
        self._listener = listener
        self._spawn = spawn
        self._log = OnceLogger(_LOGGER)

    # ------------------------------------------------------------------ TransportHandler

    def api_key_for(self, gateway_hid: str) -> str | None:
        """Return the MQTT password of a gateway (the broker's auth lookup)."""
        return self._registry.gateway_api_key(gateway_hid)

    def on_message(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Handle telemetry at once, an API request in its own tracked task.

        Telemetry is handled without waiting for anything, so a task of its own would only
        cost the time to make it (in a flood, one per heartbeat); an API request waits for
        its reply to be published.
        """
        parsed = topics.parse_inbound_topic(topic)
        if parsed is not None and parsed[0] is InboundKind.TELEMETRY:
            self._handle_message(gateway_hid, topic, payload)
            return
        self._spawn(
            self.async_handle_message(gateway_hid, topic, payload),
            f"message from {gateway_hid}",
        )

    def on_gateway_connected(self, gateway_hid: str) -> None:
        """A gateway's MQTT session is up."""
        _LOGGER.debug("Gateway %s connected", gateway_hid)
        with self._state.batch():
            if (gateway := self._state.gateways.get(gateway_hid)) is not None:
                self._state.mark_gateway_seen(gateway)
            self._listener.gateway_connected(gateway_hid)

    def on_gateway_disconnected(self, gateway_hid: str) -> None:
        """A gateway's MQTT session ended."""
        _LOGGER.debug("Gateway %s disconnected", gateway_hid)
        with self._state.batch():
            self._outbox.gateway_disconnected(gateway_hid)
            self._listener.gateway_disconnected(gateway_hid)
            self._state.async_check_availability()

    # ------------------------------------------------------------------ messages

    async def async_handle_message(
        self, gateway_hid: str, topic: str, payload: bytes
    ) -> None:
        """Handle one message; any failure is logged and goes no further."""
        api_request = False
        try:
            if (parsed := self._own_topic(gateway_hid, topic)) is None:
                return
            if api_request := parsed[0] is InboundKind.API_REQUEST:
                await self._async_handle_api_request(gateway_hid, payload)
            else:
                with self._state.batch():
                    self._handle_telemetry(gateway_hid, payload)
        except ProtocolError as err:
            self._malformed(gateway_hid, topic, err, api_request=api_request)
        except GatewayNotConnectedError:
            _LOGGER.debug("Gateway %s went away before its reply was sent", gateway_hid)
        except TimeoutError:
            # Only the reply's publish waits: the feeder never took it (it may not subscribe
            # to its reply topic at all), so the request is dropped like an unanswered one.
            self._log.warning(
                gateway_hid,
                "reply_timeout",
                "Gateway %s did not take the reply to its API request in time (is it "
                "subscribed to %s?); request dropped",
                gateway_hid,
                topics.api_reply_topic(gateway_hid),
            )
        except Exception:
            _LOGGER.exception(
                "Error handling a message from gateway %s on %s", gateway_hid, topic
            )

    def _own_topic(
        self, gateway_hid: str, topic: str
    ) -> tuple[InboundKind, str] | None:
        """The topic's kind and gateway, or None (said once) when it is not the gateway's."""
        parsed = topics.parse_inbound_topic(topic)
        if parsed is None or parsed[1] != gateway_hid:
            self._log.warning(
                gateway_hid,
                "topic",
                "Dropped message from gateway %s on unexpected topic %s",
                gateway_hid,
                topic,
            )
            return None
        return parsed

    def _handle_message(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Handle one telemetry message at once; any failure is logged and goes no further."""
        try:
            if self._own_topic(gateway_hid, topic) is None:
                return
            with self._state.batch():
                self._handle_telemetry(gateway_hid, payload)
        except ProtocolError as err:
            self._malformed(gateway_hid, topic, err, api_request=False)
        except Exception:
            _LOGGER.exception(
                "Error handling a message from gateway %s on %s", gateway_hid, topic
            )

    def _malformed(
        self, gateway_hid: str, topic: str, err: ProtocolError, *, api_request: bool
    ) -> None:
        # Gateway, topic and message type, as far as the parser got (§4.5).
        if err.msg_type is not None:
            message_type = repr(err.msg_type)
        else:
            message_type = "API request" if api_request else "unknown"
        self._log.warning(
            gateway_hid,
            "malformed",
            "Dropped malformed message from gateway %s on %s (type %s): %s",
            gateway_hid,
            topic,
            message_type,
            err,
        )

    async def _async_handle_api_request(self, gateway_hid: str, payload: bytes) -> None:
        request = messages.parse_api_request(payload)
        # The SDK gives up on MQTT and reconnects when the reply is late: answer first.
        await self._outbox.async_reply(
            gateway_hid, messages.api_ack(request.request_id)
        )
        # Only method and uri: the request's parameters carry the gateway's key.
        _LOGGER.debug(
            "Gateway %s sent API request %.16s %.200s (answered)",
            gateway_hid,
            request.method,
            request.uri,
        )
        with self._state.batch():
            if (gateway := self._state.gateways.get(gateway_hid)) is not None:
                self._state.mark_gateway_seen(gateway)
            uri = request.uri or ""
            if (status := messages.command_status_from_uri(uri)) is not None:
                self._confirmations.reported(*status)
            elif messages.checkin_gateway_from_uri(uri) == gateway_hid:
                self._registry.checkin(gateway_hid, rebooting=False)

    def _handle_telemetry(self, gateway_hid: str, payload: bytes) -> None:
        message = messages.parse_telemetry(payload)
        _LOGGER.debug(
            "Gateway %s sent %.64s for feeder %s",
            gateway_hid,
            message.msg_type,
            message.device_hid,
        )
        gateway = self._state.gateways.get(gateway_hid)
        if gateway is None:
            _LOGGER.debug("Telemetry for unknown gateway %s dropped", gateway_hid)
            return
        gateway.last_seen = now()
        if isinstance(message, ScheduleHash) and message.device_hid is None:
            for each in self._state.feeders_of(gateway_hid):
                self._handle_hash(each, message)
            return
        assert message.device_hid is not None
        feeder = self._registry.feeder_for_message(gateway_hid, message.device_hid)
        if feeder is None:
            return
        at = now()
        feeder.last_seen = at
        if implausible := getattr(message, "implausible", ()):
            self._log.warning(
                gateway_hid,
                "implausible",
                "Dropped implausible %s from feeder %s",
                ", ".join(implausible),
                feeder.hid,
            )
        match message:
            case Heartbeat():
                feeder.last_heartbeat = at
            case SensorReading():
                before = feeder.telemetry
                # An implausible value is dropped; the good one stored before stays.
                feeder.telemetry = Telemetry(
                    voltage_v=before.voltage_v
                    if "f|voltage" in message.implausible
                    else message.voltage_v,
                    usb=message.usb,
                    charging=message.charging,
                    ir=message.ir,
                    rssi=before.rssi
                    if "i|rssi" in message.implausible
                    else message.rssi,
                    received_at=at,
                )
            case FeedResult():
                self._store_feed_result(feeder, message, at)
            case ScheduleHash():
                self._handle_hash(feeder, message)
            case UnknownTelemetry():
                if self._log.first_time(gateway_hid, "kind", message.msg_type):
                    _LOGGER.debug(
                        "Ignoring unknown message type %r from gateway %s",
                        message.msg_type,
                        gateway_hid,
                    )
        self._state.schedule_save(lazy=not isinstance(message, FeedResult))
        self._state.heard_from(
            feeder,
            at=at,
            liveness_only=isinstance(message, Heartbeat | UnknownTelemetry),
        )

    def _store_feed_result(self, feeder: Feeder, result: FeedResult, at: float) -> None:
        """Keep a feed result once per start time, newest first, bounded."""
        if result.start_ms > (at + FUTURE_SLACK_S) * 1000:
            # A dispense that has not happened yet would become "Last feed" and count today.
            self._log.warning(
                feeder.gateway_hid,
                "future",
                "Dropped a feed result of feeder %s that starts in the future (%s)",
                feeder.hid,
                datetime.fromtimestamp(result.start_ms / 1000, UTC).isoformat(),
            )
            return
        if result.start_ms < (at - PAST_LIMIT_S) * 1000:
            self._log.warning(
                feeder.gateway_hid,
                "past",
                "Dropped a feed result of feeder %s that starts more than 7 days ago (%s)",
                feeder.hid,
                datetime.fromtimestamp(result.start_ms / 1000, UTC).isoformat(),
            )
            return
        if any(row.result.start_ms == result.start_ms for row in feeder.history):
            _LOGGER.debug(
                "Duplicate feed result %s of %s ignored", result.start_ms, feeder.hid
            )
            return
        feeder.history.append(StoredFeedResult(result=result, received_at=at))
        feeder.history.sort(key=lambda row: row.result.start_ms, reverse=True)
        del feeder.history[HISTORY_LIMIT:]
        # A result older than every kept one is dropped at once: it fires and resolves nothing.
        if any(row.result is result for row in feeder.history):
            self._listener.result_stored(feeder, result)

    def _handle_hash(self, feeder: Feeder, message: ScheduleHash) -> None:
        feeder.last_hash = "" if message.is_empty else message.local_md5
        feeder.last_hash_at = now()
        self._listener.hash_received(feeder, message)
