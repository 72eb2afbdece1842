"""Outbound command envelopes for ``krs/cmd/stg/<gw>`` (protocol §6).

The bytes match FeederNet's ``json.dumps`` output exactly (default separators, key order as
in §6.1-6.2), because the §13 test vectors depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import math
from typing import Final, Protocol

from .ids import COMMAND_HID_LENGTH, is_safe_id, new_command_hid

# The SDK's receive buffer is 1200 bytes; leave room for the topic and MQTT header (§7.5).
MAX_COMMAND_BYTES: Final = 1000

PORTION_STEP: Final = 1 / 16  # one tablespoon, in cups
MIN_PORTION: Final = PORTION_STEP
MAX_PORTION: Final = 2.0
# Slack for float noise such as 0.1 + 0.2 style sums, measured in steps.
_PORTION_TOLERANCE_STEPS: Final = 1e-6

MAX_RECIPE_NUMBER: Final = 9_999_999
MAX_TBSP_PER_FEEDING: Final = round(MAX_PORTION / PORTION_STEP)
MAX_G_PER_TBSP: Final = 1000
MAX_BUDGET_TBSP: Final = 9999
# Real zones span UTC-12 to UTC+14.
MAX_UTC_OFFSET_S: Final = 14 * 3600


class OutboundCommand(Protocol):
    """Anything that can be sent as a command: :class:`Command` fits structurally."""

    @property
    def name(self) -> str:
        """Command name, e.g. ``utc_offset``."""

    @property
    def hid(self) -> str:
        """The command's own id."""

    @property
    def payload(self) -> bytes:
        """The whole envelope as bytes."""


@dataclass(frozen=True, slots=True)
class Command:
    """A ready-to-publish command: its name, its id and the whole envelope as bytes."""

    name: str
    hid: str
    payload: bytes


def _encode_envelope(
    device_hid: str, command: str, args: object, command_hid: str
) -> bytes:
    envelope = {
        "hid": command_hid,
        "name": "SendCommand",
        "encrypted": False,
        "parameters": {
            "deviceHid": device_hid,
            "command": command,
            # The payload is JSON text inside JSON, as FeederNet sends it.
            "payload": json.dumps(args, allow_nan=False),
        },
    }
    return json.dumps(envelope, allow_nan=False).encode("utf-8")


def command_size(device_hid: str, command: str, args: object) -> int:
    """Return how many bytes the envelope of this command will have (hids are fixed-size)."""
    return len(_encode_envelope(device_hid, command, args, "x" * COMMAND_HID_LENGTH))


def build_command(
    device_hid: str, command: str, args: object, *, command_hid: str | None = None
) -> Command:
    """Build the ``SendCommand`` envelope; raise ValueError for bad ids or oversize output."""
    if not is_safe_id(device_hid):
        raise ValueError(f"device hid {device_hid!r:.60} is not a valid id")
    if not is_safe_id(command):
        raise ValueError(f"command name {command!r:.60} is not a valid name")
    hid = new_command_hid() if command_hid is None else command_hid
    if not is_safe_id(hid):
        raise ValueError(f"command hid {hid!r:.60} is not a valid id")
    payload = _encode_envelope(device_hid, command, args, hid)
    if len(payload) > MAX_COMMAND_BYTES:
        raise ValueError(
            f"{command} command would be {len(payload)} bytes, "
            f"over the {MAX_COMMAND_BYTES}-byte limit"
        )
    return Command(name=command, hid=hid, payload=payload)


def _require_int(name: str, value: object, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise ValueError(
            f"{name} must be an integer in {low}..{high}, got {value!r:.60}"
        )
    return value


def validate_portion(cups: object) -> float:
    """Return ``cups`` as an exact multiple of 1/16 cup within [1/16, 2], or raise ValueError."""
    if (
        isinstance(cups, bool)
        or not isinstance(cups, int | float)
        or not math.isfinite(cups)
    ):
        raise ValueError(f"portion must be a finite number of cups, got {cups!r:.60}")
    steps_exact = cups / PORTION_STEP
    steps = round(steps_exact)
    if abs(steps_exact - steps) > _PORTION_TOLERANCE_STEPS:
        raise ValueError(f"portion {cups} cups is not a multiple of 1/16 cup")
    portion = steps * PORTION_STEP
    if not MIN_PORTION <= portion <= MAX_PORTION:
        raise ValueError(
            f"portion {cups} cups is outside {MIN_PORTION}..{MAX_PORTION} cups"
        )
    return portion


def recipe_id(number: int) -> str:
    """Return the recipe id the feeder accepts: ``E`` plus 7 zero-padded digits (§6.3)."""
    return f"E{_require_int('recipe number', number, 1, MAX_RECIPE_NUMBER):07d}"


def feed(
    device_hid: str, portion_cups: float, *, command_hid: str | None = None
) -> Command:
    """Dispense ``portion_cups`` now."""
    return build_command(
        device_hid,
        "feed",
        {"portion": validate_portion(portion_cups)},
        command_hid=command_hid,
    )


def reboot(device_hid: str, *, command_hid: str | None = None) -> Command:
    """Restart the feeder."""
    return build_command(device_hid, "reboot", {}, command_hid=command_hid)


def button_enable_remote(
    device_hid: str, enable: bool, *, command_hid: str | None = None
) -> Command:
    """Turn the front (manual-feed) button on or off."""
    if not isinstance(enable, bool):
        # ValueError, not TypeError: callers treat every bad user input alike.
        raise ValueError(f"enable must be a bool, got {enable!r:.60}")  # noqa: TRY004
    return build_command(
        device_hid, "button_enable_remote", {"enable": enable}, command_hid=command_hid
    )


def utc_offset(
    device_hid: str, offset_s: int, *, command_hid: str | None = None
) -> Command:
    """Set the feeder clock offset in seconds east of UTC."""
    offset = _require_int("utc offset", offset_s, -MAX_UTC_OFFSET_S, MAX_UTC_OFFSET_S)
    return build_command(
        device_hid, "utc_offset", {"utc_offset": offset}, command_hid=command_hid
    )


def budget(
    device_hid: str,
    *,
    recipe_number: int,
    tbsp_per_feeding: int,
    g_per_tbsp: int,
    budget_tbsp: int,
    command_hid: str | None = None,
) -> Command:
    """Send the recipe, the front-button portion (tbsp) and the food density (§6.3)."""
    args = {
        "recipe": recipe_id(recipe_number),
        "tbsp_per_feeding": _require_int(
            "tbsp_per_feeding", tbsp_per_feeding, 1, MAX_TBSP_PER_FEEDING
        ),
        "g_per_tbsp": _require_int("g_per_tbsp", g_per_tbsp, 1, MAX_G_PER_TBSP),
        "budget_tbsp": _require_int("budget_tbsp", budget_tbsp, 1, MAX_BUDGET_TBSP),
    }
    return build_command(device_hid, "budget", args, command_hid=command_hid)
