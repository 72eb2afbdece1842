"""Strict parsing of the command envelope and its payloads (protocol §6, §7).

Every deviation from what the protocol (and the project's [D] decisions) says
a server must send is returned as a human-readable error string. The feeder
still acts on a command whose name and payload could be read, as a lenient
firmware would; the errors are for tests to assert on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import re
from typing import Any

from .schedule import is_int, is_number, validate_event

ENVELOPE_KEYS = ("hid", "name", "encrypted", "parameters")
PARAMETER_KEYS = ("deviceHid", "command", "payload")
MAX_MESSAGE_BYTES = 1000  # §7.5 [D]: no published message may exceed 1000 bytes
_COMMAND_HID = re.compile(r"^[a-z]{32}$")
_RECIPE = re.compile(r"^[A-Za-z]{1,2}[0-9]{6,7}$")
BUDGET_KEYS = ("recipe", "tbsp_per_feeding", "g_per_tbsp", "budget_tbsp")
KNOWN_COMMANDS = frozenset(
    {
        "feed",
        "button_enable_remote",
        "reboot",
        "utc_offset",
        "budget",
        "schedule",
        "schedule_clear",
        "schedule_mod_start",
        "schedule_add",
        "schedule_mod_end",
    }
)


@dataclass
class ParsedCommand:
    """What could be read from one command message."""

    hid: str = ""
    command: str = ""
    payload: Any = None
    payload_ok: bool = False
    errors: list[str] = field(default_factory=list)


def _is_json_dumps_form(text: str, value: Any) -> bool:
    """Return True if ``text`` is exactly Python's default ``json.dumps(value)``."""
    return json.dumps(value) == text


def parse_command(
    raw: bytes, device_hid: str, *, strict_bytes: bool = True
) -> ParsedCommand:
    """Parse and check one message received on ``krs/cmd/stg/<gw>``."""
    result = ParsedCommand()
    errors = result.errors
    if len(raw) > MAX_MESSAGE_BYTES:
        errors.append(f"message is {len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        text = raw.decode()
        envelope = json.loads(text)
    except (UnicodeDecodeError, ValueError) as err:
        errors.append(f"envelope is not UTF-8 JSON: {err}")
        return result
    if not isinstance(envelope, dict):
        errors.append(f"envelope is not an object: {type(envelope).__name__}")
        return result
    if strict_bytes and not _is_json_dumps_form(text, envelope):
        errors.append(
            "envelope bytes are not json.dumps() form (separators/escaping, §6.1)"
        )
    if tuple(envelope) != ENVELOPE_KEYS:
        errors.append(f"envelope keys {list(envelope)} != {list(ENVELOPE_KEYS)}")
    hid = envelope.get("hid")
    if isinstance(hid, str):
        result.hid = hid
    if not isinstance(hid, str) or not _COMMAND_HID.match(hid):
        errors.append(f"command hid {hid!r} is not 32 lowercase letters")
    if envelope.get("name") != "SendCommand":
        errors.append(f"name {envelope.get('name')!r} != 'SendCommand'")
    if envelope.get("encrypted") is not False:
        errors.append(f"encrypted {envelope.get('encrypted')!r} is not false")
    params = envelope.get("parameters")
    if not isinstance(params, dict):
        errors.append(f"parameters is not an object: {params!r}")
        return result
    if tuple(params) != PARAMETER_KEYS:
        errors.append(f"parameters keys {list(params)} != {list(PARAMETER_KEYS)}")
    if params.get("deviceHid") != device_hid:
        errors.append(
            f"parameters.deviceHid {params.get('deviceHid')!r} != {device_hid!r}"
        )
    command = params.get("command")
    if not isinstance(command, str) or not command:
        errors.append(f"parameters.command is not a non-empty string: {command!r}")
        return result
    result.command = command
    payload_text = params.get("payload")
    if not isinstance(payload_text, str):
        errors.append(f"{command}: payload is not a JSON string: {payload_text!r}")
        return result
    try:
        payload = json.loads(payload_text)
    except ValueError as err:
        errors.append(f"{command}: payload is not JSON: {err}")
        return result
    if strict_bytes and not _is_json_dumps_form(payload_text, payload):
        errors.append(f"{command}: payload text is not json.dumps() form (§6.1)")
    result.payload = payload
    result.payload_ok = True
    errors.extend(validate_payload(command, payload, device_hid))
    return result


def validate_payload(command: str, payload: Any, device_hid: str) -> list[str]:
    """Check a decoded payload against §6.2/§6.3/§7; unknown commands pass."""
    checker = _CHECKERS.get(command)
    if checker is None:
        return []
    return [f"{command}: {error}" for error in checker(payload, device_hid)]


def _object_with(payload: Any, keys: tuple[str, ...]) -> list[str]:
    if not isinstance(payload, dict):
        return [f"payload is not an object: {payload!r}"]
    if tuple(payload) != keys:
        return [f"payload keys {list(payload)} != {list(keys)}"]
    return []


def _check_feed(payload: Any, _dev: str) -> list[str]:
    if errors := _object_with(payload, ("portion",)):
        return errors
    portion = payload["portion"]
    if not is_number(portion):
        return [f"portion is not a number: {portion!r}"]
    sixteenths = portion * 16
    if not 1 <= sixteenths <= 32 or abs(sixteenths - round(sixteenths)) > 1e-9:
        return [f"portion {portion} is not a multiple of 1/16 cup in [1/16, 2]"]
    return []


def _check_button(payload: Any, _dev: str) -> list[str]:
    if errors := _object_with(payload, ("enable",)):
        return errors
    if not isinstance(payload["enable"], bool):
        return [f"enable is not a boolean: {payload['enable']!r}"]
    return []


def _check_empty(payload: Any, _dev: str) -> list[str]:
    return _object_with(payload, ())


def _check_utc_offset(payload: Any, _dev: str) -> list[str]:
    if errors := _object_with(payload, ("utc_offset",)):
        return errors
    offset = payload["utc_offset"]
    if not is_int(offset) or not -12 * 3600 <= offset <= 14 * 3600:
        return [f"utc_offset is not integer seconds in [-43200, 50400]: {offset!r}"]
    return []


def _check_budget(payload: Any, _dev: str) -> list[str]:
    if errors := _object_with(payload, BUDGET_KEYS):
        return errors
    errors = []
    recipe = payload["recipe"]
    if (
        not isinstance(recipe, str)
        or not _RECIPE.match(recipe)
        or not 7 <= len(recipe) <= 8
    ):
        errors.append(f"recipe {recipe!r} is not 1-2 letters + 6-7 digits (7-8 chars)")
    errors.extend(
        f"{key} is not an integer: {payload[key]!r}"
        for key in BUDGET_KEYS[1:]
        if not is_int(payload[key])
    )
    return errors


def _check_schedule(payload: Any, dev: str) -> list[str]:
    if not isinstance(payload, list):
        return [f"payload is not a list: {payload!r}"]
    errors: list[str] = []
    for index, event in enumerate(payload):
        errors.extend(validate_event(event, index, dev))
    return errors


def _check_mod_start(payload: Any, _dev: str) -> list[str]:
    if errors := _object_with(payload, ("size",)):
        return errors
    if not is_int(payload["size"]) or payload["size"] < 0:
        return [f"size is not a non-negative integer: {payload['size']!r}"]
    return []


def _check_add(payload: Any, dev: str) -> list[str]:
    if not isinstance(payload, list):
        return [f"payload is not a list: {payload!r}"]
    errors: list[str] = []
    for item in payload:
        if not isinstance(item, dict) or tuple(item) != ("index", "data"):
            errors.append(f"item is not {{index, data}}: {item!r}")
            continue
        if not is_int(item["index"]) or item["index"] < 0:
            errors.append(f"index is not a non-negative integer: {item['index']!r}")
            continue
        errors.extend(validate_event(item["data"], item["index"], dev))
    return errors


_CHECKERS = {
    "feed": _check_feed,
    "button_enable_remote": _check_button,
    "reboot": _check_empty,
    "utc_offset": _check_utc_offset,
    "budget": _check_budget,
    "schedule": _check_schedule,
    "schedule_clear": _check_empty,
    "schedule_mod_start": _check_mod_start,
    "schedule_add": _check_add,
    "schedule_mod_end": _check_empty,
}
