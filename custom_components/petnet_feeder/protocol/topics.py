"""MQTT topic names, usernames and the per-gateway topic ACL (protocol §4)."""

from __future__ import annotations

from enum import StrEnum

from .ids import is_safe_id

USERNAME_PREFIX = "/pegasus:"

# The feeder publishes to dotted names (one topic level each) and subscribes to slashed ones.
_TELEMETRY_PREFIX = "krs.tel.gts."
_API_REQUEST_PREFIX = "krs.api.gts."
_COMMAND_PREFIX = "krs/cmd/stg/"
_API_REPLY_PREFIX = "krs/api/stg/"


class InboundKind(StrEnum):
    """What a feeder-to-server topic carries."""

    TELEMETRY = "telemetry"
    API_REQUEST = "api_request"


def telemetry_topic(gateway_hid: str) -> str:
    """Return the topic a gateway publishes telemetry to."""
    return f"{_TELEMETRY_PREFIX}{gateway_hid}"


def api_request_topic(gateway_hid: str) -> str:
    """Return the topic a gateway publishes tunnelled API requests to."""
    return f"{_API_REQUEST_PREFIX}{gateway_hid}"


def command_topic(gateway_hid: str) -> str:
    """Return the topic we publish command envelopes to."""
    return f"{_COMMAND_PREFIX}{gateway_hid}"


def api_reply_topic(gateway_hid: str) -> str:
    """Return the topic we publish API acknowledgements to."""
    return f"{_API_REPLY_PREFIX}{gateway_hid}"


_INBOUND_PREFIXES = (
    (_TELEMETRY_PREFIX, InboundKind.TELEMETRY),
    (_API_REQUEST_PREFIX, InboundKind.API_REQUEST),
)


def parse_inbound_topic(topic: str) -> tuple[InboundKind, str] | None:
    """Split a feeder-to-server topic into its kind and gateway hid.

    Only the exact dotted forms are accepted; the gateway part must be a safe id, which also
    rules out extra levels and wildcards.
    """
    for prefix, kind in _INBOUND_PREFIXES:
        if topic.startswith(prefix):
            gateway_hid = topic[len(prefix) :]
            return (kind, gateway_hid) if is_safe_id(gateway_hid) else None
    return None


def gateway_from_username(username: str | None) -> str | None:
    """Return the gateway hid of an MQTT username ``/pegasus:<gw>``, or None."""
    if not isinstance(username, str) or not username.startswith(USERNAME_PREFIX):
        return None
    gateway_hid = username[len(USERNAME_PREFIX) :]
    return gateway_hid if is_safe_id(gateway_hid) else None


def may_publish(gateway_hid: str, topic: str) -> bool:
    """Tell whether a gateway session may publish to ``topic``.

    Exact comparison instead of upstream's regex: its unescaped dots let ``krs/tel/gts/<gw>``
    or ``krsXtelXgts.<gw>`` through.
    """
    return is_safe_id(gateway_hid) and topic in (
        telemetry_topic(gateway_hid),
        api_request_topic(gateway_hid),
    )


def may_subscribe(gateway_hid: str, topic: str) -> bool:
    """Tell whether a gateway session may subscribe to ``topic`` (its own two topics only)."""
    return is_safe_id(gateway_hid) and topic in (
        command_topic(gateway_hid),
        api_reply_topic(gateway_hid),
    )
