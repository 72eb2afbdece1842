"""Identities and topic names of a simulated feeder (protocol §1, §4.2)."""

from __future__ import annotations

import hashlib

UID_PREFIX = "smartfeeder-"
DEVICE_UID_SUFFIX = "-prod"


def hid_for_uid(uid: str) -> str:
    """Return the hid a FeederNet-style server mints for a uid (SHA-1, §1.3).

    The feeder itself never computes this; it only stands in for "the hid the
    cloud gave me earlier" when a feeder skips registration.
    """
    return hashlib.sha1(uid.encode()).hexdigest()  # noqa: S324 - protocol value, not security


def device_uid_for(gateway_uid: str) -> str:
    """Return the device uid of a gateway uid (§1.2)."""
    return gateway_uid + DEVICE_UID_SUFFIX


def uid_for_index(index: int, *, namespace: str = "feeder-sim") -> str:
    """Return a stable gateway uid ``smartfeeder-<12 hex>`` for a fleet index."""
    digest = hashlib.sha256(f"{namespace}:{index}".encode()).hexdigest()
    return f"{UID_PREFIX}{digest[:12]}"


def telemetry_topic(gateway_hid: str) -> str:
    """Topic the feeder publishes telemetry on (dotted, one level)."""
    return f"krs.tel.gts.{gateway_hid}"


def api_request_topic(gateway_hid: str) -> str:
    """Topic the feeder publishes API requests on (dotted, one level)."""
    return f"krs.api.gts.{gateway_hid}"


def command_topic(gateway_hid: str) -> str:
    """Topic the feeder receives commands on (slashed)."""
    return f"krs/cmd/stg/{gateway_hid}"


def api_reply_topic(gateway_hid: str) -> str:
    """Topic the feeder receives API replies on (slashed)."""
    return f"krs/api/stg/{gateway_hid}"


def mqtt_username(gateway_hid: str) -> str:
    """Return the MQTT username of a gateway (§4.1)."""
    return f"/pegasus:{gateway_hid}"
