"""The transport contract between the hub and the feeders' MQTT sessions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol


class GatewayNotConnectedError(Exception):
    """The gateway has no connected MQTT session (or lost it before acknowledging)."""


class TransportHandler(Protocol):
    """What a transport calls back into; implemented by the hub."""

    def api_key_for(self, gateway_hid: str) -> str | None:
        """Return the gateway's MQTT password, or None for an unknown gateway (sync, fast)."""

    def on_message(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Take one authenticated, ACL-checked inbound message (sync, non-blocking)."""

    def on_gateway_connected(self, gateway_hid: str) -> None:
        """An authenticated session of the gateway is up."""

    def on_gateway_disconnected(self, gateway_hid: str) -> None:
        """The gateway's session went away."""


class Transport(ABC):
    """Carries messages between the hub and the feeders."""

    # Whether a returned publish means the feeder itself acknowledged it (its PUBACK).
    confirms_delivery = True

    @abstractmethod
    async def async_start(self, *, serve: bool = True) -> None:
        """Start listening / subscribing; with ``serve=False`` a listener binds, not accepts."""

    async def async_start_serving(self) -> None:  # noqa: B027 (only listeners defer)
        """Accept connections on the listeners ``async_start(serve=False)`` bound."""

    @abstractmethod
    async def async_stop(self) -> None:
        """Close every listener, connection and task the transport started."""

    @abstractmethod
    async def async_publish(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 without retain and return once the gateway acknowledged (PUBACK).

        Raises GatewayNotConnectedError when the gateway has no session, TimeoutError when the
        acknowledgement does not come in time.
        """

    @abstractmethod
    def is_connected(self, gateway_hid: str) -> bool:
        """Tell whether the gateway has a connected session."""

    @abstractmethod
    def gateway_added(self, gateway_hid: str) -> None:
        """Learn about a gateway that is new or (re)booting (it registered or checked in over HTTP).

        Transports that subscribe per gateway do it here; a transport without broker sessions
        treats the gateway as disconnected until its next message.
        """

    def gateway_removed(self, gateway_hid: str) -> None:  # noqa: B027 (optional hook)
        """Forget a gateway whose key was revoked: end its session, stop listening to it.

        Its login is refused from now on anyway (``api_key_for`` answers None).
        """
