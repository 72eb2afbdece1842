"""The HA-MQTT transport: feeders use the user's broker, reached through HA's MQTT integration.

There are no broker sessions to look at, so "connected" is inferred: a gateway counts as
connected while its messages keep arriving (a window of 120 s after the last one, §9.1) and after
a successful API-request round trip. A gateway that speaks again after its window lapsed is
connected again, which gives the hub the same ``on_gateway_connected`` (and with it the schedule
sync of §7.6) as a new session on the bundled broker.

Subscriptions are the exact inbound topics of every known gateway, never a wildcard: the user's
broker carries other people's traffic. The broker's own ACL keeps a feeder to its own topics
(``broker_credentials`` hands out the lines); here we only ever route a message to the gateway
whose topic it arrived on.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from functools import partial
import logging
from typing import Final

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady, HomeAssistantError

from ..const import DOMAIN
from ..protocol import topics
from ..protocol.ids import is_safe_id
from .base import GatewayNotConnectedError, Transport, TransportHandler

_LOGGER = logging.getLogger(__name__)

CONNECTED_WINDOW: Final = 120.0
"""Seconds a gateway counts as connected after its last message or API round trip (§9.1)."""
_RESCHEDULE_SLACK: Final = 1.0
"""A gateway's expiry timer moves only when its deadline moved by at least this much, so a
message flood costs no timer churn; the window is therefore exact to within a second."""
QOS: Final = 1


@dataclass(slots=True)
class _Gateway:
    """What the transport knows about one gateway."""

    unsubscribe: list[CALLBACK_TYPE] = field(default_factory=list)
    connected: bool = False
    deadline: float = 0.0
    timer: asyncio.TimerHandle | None = None


class HaMqttTransport(Transport):
    """Transport over the user's MQTT broker, through ``homeassistant.components.mqtt``."""

    # HA's MQTT integration returns on the broker's PUBACK, not the feeder's.
    confirms_delivery = False

    def __init__(
        self,
        hass: HomeAssistant,
        handler: TransportHandler,
        *,
        window: float = CONNECTED_WINDOW,
    ) -> None:
        """Prepare; nothing is subscribed before ``async_start``."""
        self._hass = hass
        self._handler = handler
        self._window = window
        self._gateways: dict[str, _Gateway] = {}
        # Gateways whose subscription failed: subscribed again on their next gateway_added
        # and whenever HA's MQTT client is (re)connected to the broker.
        self._unsubscribed: set[str] = set()
        self._running = False
        self._unsub_connection: CALLBACK_TYPE | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- Transport --------------------------------------------------------------------------

    async def async_start(self, *, serve: bool = True) -> None:
        """Wait until HA's MQTT client is available; ConfigEntryNotReady if it never is."""
        if self._running:
            raise RuntimeError("The MQTT transport is already running")
        if not await mqtt.async_wait_for_mqtt_client(self._hass):
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN, translation_key="mqtt_unavailable"
            )
        self._running = True
        self._unsub_connection = mqtt.async_subscribe_connection_status(
            self._hass, self._broker_connection_changed
        )
        # The hub calls gateway_added for every stored gateway right after this.

    async def async_stop(self) -> None:
        """Unsubscribe every topic and cancel every timer; the hub hears nothing more."""
        self._running = False
        if self._unsub_connection is not None:
            self._unsub_connection()
            self._unsub_connection = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._unsubscribed.clear()
        gateways, self._gateways = self._gateways, {}
        for gateway_hid, gateway in gateways.items():
            if gateway.timer is not None:
                gateway.timer.cancel()
            for unsubscribe in gateway.unsubscribe:
                try:
                    unsubscribe()
                except HomeAssistantError as err:
                    # The MQTT entry was unloaded or reloaded first; its client is gone.
                    _LOGGER.debug(
                        "Unsubscribing gateway %s failed: %s", gateway_hid, err
                    )

    async def async_publish(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Publish at QoS 1, retain False, through HA's MQTT client.

        What "awaited" means here: HA's ``mqtt.async_publish`` returns once its client handed
        the PUBLISH to the broker and the *broker* answered with PUBACK (HA waits at most 10 s
        for that, then only logs a warning and returns). The feeder's own PUBACK is invisible
        through HA's MQTT integration, so unlike the bundled broker a return does not prove
        that the feeder got the message. It is never retained and never queued by us: a
        gateway that does not count as connected gets GatewayNotConnectedError, and so does
        every gateway while HA's client has lost the broker (paho would otherwise keep the
        message and send it after reconnecting, which could feed twice or late).
        """
        if not topics.may_subscribe(gateway_hid, topic):
            raise ValueError(
                f"Topic {topic!r} is not deliverable to gateway {gateway_hid}"
            )
        if not self.is_connected(gateway_hid) or not self._broker_connected():
            raise GatewayNotConnectedError(f"Gateway {gateway_hid} is not connected")
        try:
            await mqtt.async_publish(
                self._hass, topic, payload, qos=QOS, retain=False, encoding=None
            )
        except HomeAssistantError as err:
            raise GatewayNotConnectedError(
                f"Publishing to gateway {gateway_hid} failed: {err}"
            ) from err
        if topic == topics.api_reply_topic(gateway_hid):
            # A request came in and its answer went out: the API round trip succeeded.
            self._heard(gateway_hid)

    def is_connected(self, gateway_hid: str) -> bool:
        """Tell whether the gateway was heard from within the window."""
        gateway = self._gateways.get(gateway_hid)
        return gateway is not None and gateway.connected

    def gateway_added(self, gateway_hid: str) -> None:
        """Subscribe to the gateway's two inbound topics (exact names, QoS 1), once.

        The hub calls this for every stored gateway at start, and when a gateway registers or
        checks in over HTTP. A feeder does that at boot, before its MQTT session: a gateway
        we still counted as connected is therefore restarting, and stops counting as
        connected until its next message (a schedule sync then waits for the new session).
        A check-in sent over MQTT (an API request) comes from a live session and never
        arrives here.
        """
        if not self._running:
            return
        if not is_safe_id(gateway_hid):
            # Kronos only creates safe ids; a wildcard here would subscribe to far more.
            _LOGGER.warning("Not subscribing for unusable gateway id %r", gateway_hid)
            return
        if (gateway := self._gateways.get(gateway_hid)) is not None:
            self._lapse(gateway_hid)
            return
        gateway = self._gateways[gateway_hid] = _Gateway()
        # Eager: HA's subscribe does not suspend, so the subscription exists on return.
        task = self._hass.async_create_task(
            self._async_subscribe(gateway_hid, gateway),
            f"{DOMAIN} subscribe {gateway_hid}",
        )
        if not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def gateway_removed(self, gateway_hid: str) -> None:
        """Unsubscribe the gateway's topics; its login at the user's broker stays theirs.

        The broker is not ours, so its session cannot be closed from here; the
        broker_credentials action no longer lists the gateway, and its messages are ignored.
        """
        self._unsubscribed.discard(gateway_hid)
        if (gateway := self._gateways.pop(gateway_hid, None)) is None:
            return
        if gateway.timer is not None:
            gateway.timer.cancel()
        for unsubscribe in gateway.unsubscribe:
            with contextlib.suppress(HomeAssistantError):  # MQTT gone: nothing to undo
                unsubscribe()
        if gateway.connected:
            try:
                self._handler.on_gateway_disconnected(gateway_hid)
            except Exception:
                _LOGGER.exception(
                    "Error in the disconnect handler of gateway %s", gateway_hid
                )

    # -- internals --------------------------------------------------------------------------

    async def _async_subscribe(self, gateway_hid: str, gateway: _Gateway) -> None:
        for topic in (
            topics.telemetry_topic(gateway_hid),
            topics.api_request_topic(gateway_hid),
        ):
            try:
                unsubscribe = await mqtt.async_subscribe(
                    self._hass,
                    topic,
                    partial(self._message_received, gateway_hid),
                    QOS,
                    encoding=None,
                )
            except HomeAssistantError as err:
                self._subscribe_failed(gateway_hid, gateway, topic, err)
                return
            if self._gateways.get(gateway_hid) is not gateway:  # stopped meanwhile
                unsubscribe()
                return
            gateway.unsubscribe.append(unsubscribe)
        self._unsubscribed.discard(gateway_hid)
        _LOGGER.debug("Subscribed to the topics of gateway %s", gateway_hid)

    def _subscribe_failed(
        self, gateway_hid: str, gateway: _Gateway, topic: str, err: HomeAssistantError
    ) -> None:
        """Forget a gateway whose topics could not all be subscribed, so it is tried again.

        Half a subscription is undone: a gateway is either fully subscribed or not known
        here, and its next gateway_added (or HA's next connection to the broker) retries.
        """
        level = logging.DEBUG if gateway_hid in self._unsubscribed else logging.WARNING
        _LOGGER.log(
            level,
            "Cannot subscribe to %s (%s); trying again when the gateway registers or "
            "checks in, or when Home Assistant reconnects to the broker",
            topic,
            err,
        )
        for unsubscribe in gateway.unsubscribe:
            with contextlib.suppress(HomeAssistantError):  # MQTT gone: nothing to undo
                unsubscribe()
        gateway.unsubscribe.clear()
        if self._gateways.get(gateway_hid) is gateway:
            del self._gateways[gateway_hid]
            if gateway.timer is not None:
                gateway.timer.cancel()
            if self._running:
                self._unsubscribed.add(gateway_hid)

    @property
    def subscribed_gateways(self) -> set[str]:
        """The gateways whose topics are subscribed (for tests and diagnostics)."""
        return set(self._gateways)

    @callback
    def _message_received(self, gateway_hid: str, msg: mqtt.ReceiveMessage) -> None:
        """Take one inbound message off HA's MQTT client (runs in the event loop)."""
        if not self._running or gateway_hid not in self._gateways:
            return
        if msg.retain:
            # A retained message is a replay by the broker, not a sign of life; a feeder
            # never retains (and retaining on these topics is someone else's mistake).
            _LOGGER.debug("Ignored a retained message on %s", msg.topic)
            return
        payload = msg.payload
        if isinstance(payload, str):  # only with an encoding, which we never ask for
            payload = payload.encode()
        self._heard(gateway_hid)
        try:
            self._handler.on_message(gateway_hid, msg.topic, payload)
        except Exception:
            _LOGGER.exception(
                "Error handling a message of gateway %s on %s", gateway_hid, msg.topic
            )

    def _heard(self, gateway_hid: str) -> None:
        """The gateway is alive: (re)start its window; tell the hub if it was silent."""
        if (gateway := self._gateways.get(gateway_hid)) is None:
            return
        loop = self._hass.loop
        deadline = loop.time() + self._window
        if gateway.connected:
            if deadline - gateway.deadline < _RESCHEDULE_SLACK:
                return
            if gateway.timer is not None:
                gateway.timer.cancel()
        gateway.deadline = deadline
        gateway.timer = loop.call_at(deadline, self._lapse, gateway_hid)
        if gateway.connected:
            return
        gateway.connected = True
        _LOGGER.debug("Gateway %s is connected (heard over MQTT)", gateway_hid)
        try:
            self._handler.on_gateway_connected(gateway_hid)
        except Exception:
            _LOGGER.exception("Error in the connect handler of gateway %s", gateway_hid)

    @callback
    def _lapse(self, gateway_hid: str) -> None:
        """The gateway's window ended (or it restarts): it is disconnected until heard again."""
        if (gateway := self._gateways.get(gateway_hid)) is None:
            return
        if gateway.timer is not None:
            gateway.timer.cancel()
            gateway.timer = None
        if not gateway.connected:
            return
        gateway.connected = False
        _LOGGER.debug("Gateway %s is disconnected (not heard from)", gateway_hid)
        try:
            self._handler.on_gateway_disconnected(gateway_hid)
        except Exception:
            _LOGGER.exception(
                "Error in the disconnect handler of gateway %s", gateway_hid
            )

    def _broker_connected(self) -> bool:
        try:
            return mqtt.is_connected(self._hass)
        except KeyError:  # the MQTT entry was unloaded
            return False

    @callback
    def _broker_connection_changed(self, connected: bool) -> None:
        """While HA has lost the broker nothing can be heard: every gateway disconnects."""
        if connected:
            _LOGGER.debug("MQTT broker connection is back")
            for gateway_hid in sorted(self._unsubscribed):
                if gateway_hid not in self._gateways:
                    self.gateway_added(gateway_hid)
            return
        _LOGGER.debug("MQTT broker connection lost; gateways count as disconnected")
        for gateway_hid in list(self._gateways):
            self._lapse(gateway_hid)
