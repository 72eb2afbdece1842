"""Identifiers: hids, API keys, command ids and the fixed cloud constants."""

from __future__ import annotations

import hashlib
import re
import secrets
import string

# The value the real cloud handed out (protocol §1.5); the feeder signs HTTP requests with it and
# nobody checks the signatures, so it is the same for every gateway.
SECRET_KEY = "gEhFrm2hRvW2Km47lgt9xRBCtT9uH2Lx77WxYliNGJI="  # noqa: S105 (public constant)

# The Petnet application's hid in Arrow Connect (§1.6); only shown in gateway listings.
APPLICATION_HID = "38973487e8241ea4483e88ef8ca7934c8663dc25"

MAX_ID_LENGTH = 128
# A feeder's device uid is its gateway uid plus this (§1.2).
DEVICE_UID_SUFFIX = "-prod"
COMMAND_HID_LENGTH = 32
_HID_SPACE = 26**COMMAND_HID_LENGTH

# Ids end up in MQTT topics, storage keys and file-like paths, so only a boring alphabet is
# allowed: no "/", ".", "+", "#", whitespace or control characters.
_SAFE_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}")


def hid_from_uid(uid: str) -> str:
    """Mint the hid for a feeder-chosen uid: lowercase hex SHA-1 of its UTF-8 bytes (§1.3).

    Only used to mint new hids: hids the feeder presents are opaque and never checked against
    a uid, because the real cloud did not use SHA-1.
    """
    return hashlib.sha1(uid.encode("utf-8"), usedforsecurity=False).hexdigest()


def device_uid_for(gateway_uid: str) -> str:
    """The uid of the one device a gateway carries (§1.2)."""
    return f"{gateway_uid}{DEVICE_UID_SUFFIX}"


def gateway_uid_of(device_uid: str) -> str | None:
    """The gateway uid a device uid belongs to, or None if it does not follow §1.2."""
    if device_uid.endswith(DEVICE_UID_SUFFIX) and len(device_uid) > len(
        DEVICE_UID_SUFFIX
    ):
        return device_uid[: -len(DEVICE_UID_SUFFIX)]
    return None


def new_api_key() -> str:
    """Return a fresh per-gateway apiKey: 64 lowercase hex characters (32 random bytes)."""
    return secrets.token_hex(32)


def new_command_hid() -> str:
    """Return a fresh command id: 32 random lowercase ASCII letters (§1.8).

    One draw of a number below 26**32, written in base 26 (a draw per letter cost 32 reads
    of the system's random source).
    """
    number = secrets.randbelow(_HID_SPACE)
    letters = []
    for _ in range(COMMAND_HID_LENGTH):
        number, digit = divmod(number, 26)
        letters.append(string.ascii_lowercase[digit])
    return "".join(letters)


def is_safe_id(value: object) -> bool:
    """Tell whether ``value`` is a string of 1 to 128 characters from ``[A-Za-z0-9_-]``."""
    return isinstance(value, str) and _SAFE_ID.fullmatch(value) is not None


def device_pri(device_hid: str) -> str:
    """Return the Arrow resource name of a device (§1.7)."""
    return f"arw:krn:dev:{device_hid}"
