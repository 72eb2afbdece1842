"""amqtt plugins of the bundled broker: authentication, topic ACL and in-process delivery.

amqtt instantiates plugins itself from their dotted import path, so this module must stay
importable on its own. Each plugin gets the transport's bridge (a ``BrokerBridge``) through its
``Config`` dataclass; the plugins only translate amqtt's calls, the bridge holds the state.

Every hook here is exception-safe: amqtt gathers auth/ACL results without catching, and runs event
hooks as fire-and-forget tasks whose failures it only prints at debug level.
"""

from __future__ import annotations

from dataclasses import dataclass
import hmac
import logging
from typing import Any, Protocol

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin, BaseTopicPlugin
from amqtt.session import ApplicationMessage, Session

from ..protocol.topics import (
    gateway_from_username,
    may_publish,
    may_subscribe,
    parse_inbound_topic,
)

_LOGGER = logging.getLogger(__name__)

# Session attribute holding the gateway hid, set only by a successful authentication.
GATEWAY_ATTRIBUTE = "petnet_feeder.gateway_hid"


class BrokerBridge(Protocol):
    """What the plugins call; implemented by the bundled transport."""

    def api_key_for(self, gateway_hid: str) -> str | None:
        """Return the gateway's MQTT password, or None."""

    def connect_refused(
        self, reason: str, gateway_hid: str | None, session: Session
    ) -> None:
        """Log a refused CONNECT (never the password)."""

    def topic_refused(self, gateway_hid: str, action: str, topic: str) -> None:
        """Log a refused publish or subscription."""

    def session_connected(self, gateway_hid: str, session: Session) -> None:
        """An authenticated session got its CONNACK."""

    def session_disconnected(self, gateway_hid: str, session: Session) -> None:
        """A session ended."""

    def session_subscribed(self, gateway_hid: str) -> None:
        """A session got a subscription accepted."""

    def deliver(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Hand an accepted inbound message to the hub."""


@dataclass
class BridgeConfig:
    """Plugin configuration: the bridge object (amqtt hydrates ``Config`` with dacite)."""

    bridge: Any = None


def _bridge_of(config: Any) -> BrokerBridge:
    bridge: BrokerBridge | None = getattr(config, "bridge", None)
    if bridge is None:
        raise TypeError("petnet_feeder broker plugins need a 'bridge' in their config")
    return bridge


class PetnetAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped
    """Accept only ``/pegasus:<gw>`` with the gateway's key and the client id ``<gw>``."""

    Config = BridgeConfig

    def __init__(self, context: Any) -> None:
        """Take the bridge from the plugin config."""
        super().__init__(context)
        self._bridge = _bridge_of(self.config)

    async def authenticate(self, *, session: Session) -> bool:
        """Tell whether the CONNECT may proceed; None is never returned."""
        try:
            return self._authenticate(session)
        except Exception:
            _LOGGER.exception("MQTT authentication failed with an error")
            return False

    def _authenticate(self, session: Session) -> bool:
        username = session.username
        gateway_hid = gateway_from_username(username)
        if gateway_hid is None:
            reason = "no username" if not username else "malformed username"
            self._bridge.connect_refused(reason, None, session)
            return False
        if session.client_id != gateway_hid:
            # The firmware uses its gateway hid as client id; anything else could take over
            # another gateway's client id.
            self._bridge.connect_refused(
                "client id is not the gateway hid", gateway_hid, session
            )
            return False
        api_key = self._bridge.api_key_for(gateway_hid)
        if api_key is None:
            self._bridge.connect_refused("unknown gateway", gateway_hid, session)
            return False
        password = (session.password or "").encode()
        if not hmac.compare_digest(password, api_key.encode()):
            self._bridge.connect_refused("wrong key", gateway_hid, session)
            return False
        session.attributes[GATEWAY_ATTRIBUTE] = gateway_hid
        # amqtt broadcasts a will without any ACL check (to any topic, even retained): a
        # feeder has no use for one here, so it is dropped.
        session.will_flag = False
        session.will_retain = False
        session.will_topic = None
        session.will_message = None
        return True


class PetnetTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt is untyped
    """Per-gateway topic ACL (protocol §4.3), from ``protocol.topics``."""

    Config = BridgeConfig

    def __init__(self, context: Any) -> None:
        """Take the bridge from the plugin config."""
        super().__init__(context)
        self._bridge = _bridge_of(self.config)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        """Allow publishing to, subscribing to and receiving the gateway's own topics only."""
        if session is None or not topic:
            return False
        if action == Action.PUBLISH:
            return publish_allowed(self._bridge, session, topic)
        gateway_hid = session.attributes.get(GATEWAY_ATTRIBUTE)
        if gateway_hid is None or action not in (Action.SUBSCRIBE, Action.RECEIVE):
            return False
        try:
            allowed = may_subscribe(gateway_hid, topic)
            if not allowed:
                self._bridge.topic_refused(gateway_hid, str(action), topic)
        except Exception:
            _LOGGER.exception("MQTT topic check failed with an error")
            return False
        return allowed


def publish_allowed(bridge: BrokerBridge, session: Session, topic: str) -> bool:
    """Whether an authenticated session may publish to ``topic``; a refusal is logged.

    The ACL for PUBLISH, shared by the topic plugin and the broker's direct hand-over.
    """
    gateway_hid = session.attributes.get(GATEWAY_ATTRIBUTE)
    if gateway_hid is None or not topic:
        return False
    try:
        allowed = may_publish(gateway_hid, topic)
        if not allowed:
            bridge.topic_refused(gateway_hid, str(Action.PUBLISH), topic)
    except Exception:
        _LOGGER.exception("MQTT topic check failed with an error")
        return False
    return allowed


def deliver_inbound(
    bridge: BrokerBridge, client_id: str, topic: str, data: bytes
) -> None:
    """Hand an accepted PUBLISH on an inbound topic of the session's own gateway to the hub.

    Only for messages that passed the ACL; the client id is the gateway hid.
    """
    parsed = parse_inbound_topic(topic)
    if parsed is None or parsed[1] != client_id:
        return
    bridge.deliver(client_id, topic, data)


class PetnetEventPlugin(BasePlugin[Any]):  # type: ignore[misc]  # amqtt is untyped
    """Session and message events to the bridge.

    amqtt runs each hook as its own task, in the order the events were fired. The bodies below
    never await, so each runs to completion in its task's first step: the tasks' FIFO start
    order then keeps connect, messages and disconnect of a session in order.
    """

    Config = BridgeConfig

    def __init__(self, context: Any) -> None:
        """Take the bridge from the plugin config."""
        super().__init__(context)
        self._bridge = _bridge_of(self.config)

    async def on_broker_client_connected(
        self, *, client_id: str, client_session: Session
    ) -> None:
        """Report an authenticated session."""
        if (
            gateway_hid := client_session.attributes.get(GATEWAY_ATTRIBUTE)
        ) is not None:
            self._bridge.session_connected(gateway_hid, client_session)

    async def on_broker_client_disconnected(
        self, *, client_id: str, client_session: Session
    ) -> None:
        """Report a session that ended."""
        if (
            gateway_hid := client_session.attributes.get(GATEWAY_ATTRIBUTE)
        ) is not None:
            self._bridge.session_disconnected(gateway_hid, client_session)

    async def on_broker_client_subscribed(
        self, *, client_id: str, topic: str, qos: int
    ) -> None:
        """Report an accepted subscription (client id == gateway hid, see the auth plugin)."""
        self._bridge.session_subscribed(client_id)

    async def on_broker_message_broadcast(
        self, *, client_id: str, message: ApplicationMessage
    ) -> None:
        """Deliver an accepted PUBLISH (a broker without the direct hand-over fires this)."""
        deliver_inbound(self._bridge, client_id, message.topic, bytes(message.data))
