"""Inbound messages: telemetry (protocol §5.1-5.6) and tunnelled API requests (§5.7).

Everything here treats the payload as hostile: size, encoding, JSON syntax, nesting and every
field are checked, and the only exception that escapes is :class:`ProtocolError`. Fields are
read leniently (§5.1): a mistyped optional field becomes None instead of losing the message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
import json
import math
import re
from typing import Any, ClassVar, Final, Self
from urllib.parse import urlsplit

from .ids import is_safe_id

MAX_PAYLOAD_BYTES: Final = 65536

# Feed times outside this window (epoch s) are clock garbage or the wrong unit (e.g. ms).
# What a feeder can report; a value outside its range is dropped (the message's other values
# are kept). Voltage in mV; rssi in an unknown unit (U2), so both dBm and percent pass;
# grams up to far more than the largest portion; hopper and pour values in unknown units (U1).
PLAUSIBLE_RANGES: Final[dict[str, tuple[float, float]]] = {
    "f|voltage": (0.0, 10_000.0),
    "i|rssi": (-127.0, 100.0),
    "f|e_g": (0.0, 5_000.0),
    "f|a_g": (0.0, 5_000.0),
    "f|h_s": (0.0, 10_000.0),
    "f|h_e": (0.0, 10_000.0),
    "i|pour": (0.0, 10_000.0),
    "i|full": (0.0, 10_000.0),
}
MIN_PLAUSIBLE_EPOCH_S: Final = 1_420_070_400  # 2015-01-01T00:00:00Z
MAX_PLAUSIBLE_EPOCH_S: Final = 4_102_444_800  # 2100-01-01T00:00:00Z

# Source codes of a dispense (`i|src`).
SOURCE_REMOTE: Final = 4
SOURCE_BUTTON: Final = 5
SOURCE_SCHEDULE: Final = 6

MSG_TYPE_HEARTBEAT: Final = "hb"
MSG_TYPE_SENSOR: Final = "sensor"
MSG_TYPE_FEED_RESULT: Final = "feed_result"
MSG_TYPE_HASH: Final = "hash"

# MD5 of zero bytes: a feeder reporting it holds no schedule.
EMPTY_MD5: Final = "d41d8cd98f00b204e9800998ecf8427e"

# Bounds that keep one odd feeder from filling storage or logs.
MAX_TEXT_LENGTH: Final = 256
MAX_MSG_TYPE_LENGTH: Final = 64
MAX_REQUEST_ID_LENGTH: Final = 256
# Integers beyond this cannot round-trip through JavaScript/JSON consumers exactly.
_MAX_SAFE_INT: Final = 2**53

_DEVICE_HID_KEY: Final = "_|deviceHid"
_MSG_TYPE_KEY: Final = "s|msg_type"
_LOCAL_MD5_NAME: Final = "local_md5"

_INTEGER_TEXT = re.compile(r"[+-]?\d{1,18}")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?")
_MAX_NUMBER_TEXT_LENGTH: Final = 40
_BOOL_TEXT: Final = {"true": True, "false": False, "1": True, "0": False}


class ProtocolError(ValueError):
    """An inbound message that cannot be used; the caller logs it and drops it.

    ``msg_type`` is the message's ``s|msg_type`` when the parser got that far (for the log).
    """

    def __init__(self, message: str, *, msg_type: str | None = None) -> None:
        """Keep the reason and, if known, the message type."""
        super().__init__(message)
        self.msg_type = msg_type


# --------------------------------------------------------------------------- decoding


def _refuse_constant(name: str) -> float:
    raise ProtocolError(f"{name} is not allowed in JSON")


def _finite_float(text: str) -> float:
    # float("1e999") is inf: as unwelcome as a literal Infinity.
    value = float(text)
    if not math.isfinite(value):
        raise ProtocolError(f"number {text[:20]} is out of range")
    return value


def _decode_object(payload: bytes | str) -> dict[str, Any]:
    """Decode a payload into a JSON object, or raise ProtocolError."""
    if isinstance(payload, str):
        # Each character is at least one byte: refuse before copying a huge string.
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ProtocolError(f"payload exceeds {MAX_PAYLOAD_BYTES} bytes")
        try:
            data = payload.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ProtocolError("payload is not valid Unicode") from err
    else:
        data = bytes(payload)
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD_BYTES} bytes"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProtocolError("payload is not UTF-8") from err
    try:
        value = json.loads(
            text.removeprefix("\ufeff"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except RecursionError as err:
        raise ProtocolError("payload is nested too deeply") from err
    except ValueError as err:  # JSONDecodeError, refused constants, over-long integers
        raise ProtocolError(f"payload is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise ProtocolError(
            f"payload is not a JSON object (got {type(value).__name__})"
        )
    return value


# --------------------------------------------------------------------------- lenient fields


def _as_float(value: object) -> float | None:
    """Read a number; numeric strings are accepted (SDK examples send them), bools are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            return None
        result = float(value)
    elif isinstance(value, float):
        result = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_NUMBER_TEXT_LENGTH or not _NUMBER_TEXT.fullmatch(text):
            return None
        result = float(text)
    else:
        return None
    return result if math.isfinite(result) else None


def _as_int(value: object) -> int | None:
    """Read an integer; integral floats and numeric strings are accepted, bools are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        result = int(value.strip())
    else:
        number = _as_float(value)
        if number is None or not number.is_integer():
            return None
        result = int(number)
    return result if abs(result) <= _MAX_SAFE_INT else None


def _as_bool(value: object) -> bool | None:
    """Read a boolean from true/false, 0/1, "true"/"false" or "0"/"1"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        return _BOOL_TEXT.get(value.strip().lower())
    return None


def _as_text(value: object) -> str | None:
    """Read a bounded string."""
    if isinstance(value, str) and len(value) <= MAX_TEXT_LENGTH:
        return value
    return None


def _as_epoch_s(value: object) -> int | None:
    """Read a plausible epoch-seconds timestamp."""
    seconds = _as_int(value)
    if seconds is None or not MIN_PLAUSIBLE_EPOCH_S <= seconds <= MAX_PLAUSIBLE_EPOCH_S:
        return None
    return seconds


def _required_device_hid(message: Mapping[str, Any]) -> str:
    device_hid = message.get(_DEVICE_HID_KEY)
    if device_hid is None:
        raise ProtocolError(f"{_DEVICE_HID_KEY} is missing")
    if not is_safe_id(device_hid):
        raise ProtocolError(f"{_DEVICE_HID_KEY} is not a valid id")
    return str(device_hid)


# --------------------------------------------------------------------------- telemetry


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """``hb``: the feeder is alive (§5.2)."""

    msg_type: ClassVar[str] = MSG_TYPE_HEARTBEAT
    device_hid: str


@dataclass(frozen=True, slots=True)
class SensorReading:
    """``sensor``: power and signal state (§5.3); missing or odd fields are None."""

    msg_type: ClassVar[str] = MSG_TYPE_SENSOR
    device_hid: str
    voltage_v: float | None
    usb: bool | None
    charging: bool | None
    ir: bool | None
    rssi: int | None
    # Wire keys whose values were out of range, and so dropped.
    implausible: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedResult:
    """``feed_result``: one dispense, whatever caused it (§5.4). Times are epoch ms."""

    msg_type: ClassVar[str] = MSG_TYPE_FEED_RESULT
    SOURCE_REMOTE: ClassVar[int] = SOURCE_REMOTE
    SOURCE_BUTTON: ClassVar[int] = SOURCE_BUTTON
    SOURCE_SCHEDULE: ClassVar[int] = SOURCE_SCHEDULE

    device_hid: str
    start_ms: int
    end_ms: int | None
    pour: int | None
    full: int | None
    grams_expected: float | None
    grams_actual: float | None
    hopper_start: float | None
    hopper_end: float | None
    source: int | None
    fail: bool | None
    trip: bool | None
    lrg: bool | None
    vol: bool | None
    bowl: bool | None
    recipe_id: str | None
    error: str | None
    # Wire keys whose values were out of range, and so dropped (not stored).
    implausible: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict keyed by field name, for storage."""
        data = asdict(self)
        del data["implausible"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a result from :meth:`to_dict` output; odd optional values become None."""
        device_hid = data.get("device_hid")
        if not is_safe_id(device_hid):
            raise ValueError("stored feed result has no valid device_hid")
        start_ms = _as_int(data.get("start_ms"))
        if start_ms is None:
            raise ValueError("stored feed result has no valid start_ms")
        optional = {
            name: convert(data.get(name)) for name, convert in _STORED_OPTIONAL_FIELDS
        }
        return cls(device_hid=str(device_hid), start_ms=start_ms, **optional)


# Wire key -> FeedResult field and how to read it; the times are handled separately.
_FEED_RESULT_WIRE_FIELDS: Final[
    tuple[tuple[str, str, Callable[[object], Any]], ...]
] = (
    ("i|pour", "pour", _as_int),
    ("i|full", "full", _as_int),
    ("f|e_g", "grams_expected", _as_float),
    ("f|a_g", "grams_actual", _as_float),
    ("f|h_s", "hopper_start", _as_float),
    ("f|h_e", "hopper_end", _as_float),
    ("i|src", "source", _as_int),
    ("b|fail", "fail", _as_bool),
    ("b|trip", "trip", _as_bool),
    ("b|lrg", "lrg", _as_bool),
    ("b|vol", "vol", _as_bool),
    ("b|bowl", "bowl", _as_bool),
    ("s|rid", "recipe_id", _as_text),
    ("s|err", "error", _as_text),
)
_STORED_OPTIONAL_FIELDS: Final[tuple[tuple[str, Callable[[object], Any]], ...]] = (
    ("end_ms", _as_int),
    *((field, convert) for _, field, convert in _FEED_RESULT_WIRE_FIELDS),
)


@dataclass(frozen=True, slots=True)
class ScheduleHash:
    """``hash``: the MD5 of the schedule the feeder holds (§5.5, format is our guess).

    ``device_hid`` None means the message named no device: it applies to the whole gateway.
    """

    msg_type: ClassVar[str] = MSG_TYPE_HASH
    device_hid: str | None
    local_md5: str | None

    @property
    def is_empty(self) -> bool:
        """Tell whether the feeder reports holding no schedule (missing, blank or MD5(""))."""
        text = (self.local_md5 or "").strip().lower()
        return text in ("", EMPTY_MD5)


@dataclass(frozen=True, slots=True)
class UnknownTelemetry:
    """A telemetry kind we do not handle; logged once per kind and dropped (§5.6)."""

    device_hid: str
    msg_type: str


Telemetry = Heartbeat | SensorReading | FeedResult | ScheduleHash | UnknownTelemetry


def _plausible[N: (int, float)](
    key: str, value: N | None, implausible: list[str]
) -> N | None:
    """The value if it lies in its key's range (PLAUSIBLE_RANGES); else None, noted."""
    if value is None or key not in PLAUSIBLE_RANGES:
        return value
    low, high = PLAUSIBLE_RANGES[key]
    if low <= value <= high:
        return value
    implausible.append(key)
    return None


def _parse_sensor(device_hid: str, message: Mapping[str, Any]) -> SensorReading:
    implausible: list[str] = []
    millivolts = _plausible(
        "f|voltage", _as_float(message.get("f|voltage")), implausible
    )
    reading = SensorReading(
        device_hid=device_hid,
        voltage_v=None if millivolts is None else millivolts / 1000,
        usb=_as_bool(message.get("i|usb")),
        charging=_as_bool(message.get("i|chg")),
        ir=_as_bool(message.get("i|ir")),
        rssi=_plausible("i|rssi", _as_int(message.get("i|rssi")), implausible),
        implausible=tuple(implausible),
    )
    # A reading without one usable value would only wipe the last good one.
    if all(
        value is None
        for value in (
            reading.voltage_v,
            reading.usb,
            reading.charging,
            reading.ir,
            reading.rssi,
        )
    ):
        raise ProtocolError("sensor reading has no usable value")
    return reading


def _parse_feed_result(device_hid: str, message: Mapping[str, Any]) -> FeedResult:
    start_s = _as_epoch_s(message.get("i|stime"))
    if start_s is None:
        raise ProtocolError("feed_result has no plausible i|stime (epoch seconds)")
    end_s = _as_epoch_s(message.get("i|etime"))
    implausible: list[str] = []
    # An end before the start is implausible: dropped (and said once), the start is enough.
    if end_s is not None and end_s < start_s:
        end_s = None
        implausible.append("i|etime")
    optional: dict[str, Any] = {
        field: _plausible(key, convert(message.get(key)), implausible)
        for key, field, convert in _FEED_RESULT_WIRE_FIELDS
    }
    return FeedResult(
        device_hid=device_hid,
        start_ms=start_s * 1000,
        end_ms=None if end_s is None else end_s * 1000,
        **optional,
        implausible=tuple(implausible),
    )


def _find_local_md5(message: Mapping[str, Any]) -> object:
    """Return the raw ``local_md5`` value, whatever its type prefix (format unconfirmed)."""
    exact_key = f"s|{_LOCAL_MD5_NAME}"
    if exact_key in message:
        return message[exact_key]
    for key, value in message.items():
        if key.rpartition("|")[2] == _LOCAL_MD5_NAME:
            return value
    return None


def _parse_hash(message: Mapping[str, Any]) -> ScheduleHash:
    device_hid = (
        None if message.get(_DEVICE_HID_KEY) is None else _required_device_hid(message)
    )
    raw = _find_local_md5(message)
    # Anything that is not a usable string counts as "no schedule": a resync is harmless.
    local_md5 = raw.strip() if isinstance(raw, str) else None
    if local_md5 is not None and not 0 < len(local_md5) <= MAX_TEXT_LENGTH:
        local_md5 = None
    return ScheduleHash(device_hid=device_hid, local_md5=local_md5)


def parse_telemetry(payload: bytes | str) -> Telemetry:
    """Parse a message from ``krs.tel.gts.<gw>``; raise ProtocolError if it is unusable."""
    message = _decode_object(payload)
    msg_type = message.get(_MSG_TYPE_KEY)
    if not isinstance(msg_type, str):
        raise ProtocolError(f"{_MSG_TYPE_KEY} is missing or not a string")
    # Truncated because callers log it and key "seen kinds" by it.
    msg_type = msg_type[:MAX_MSG_TYPE_LENGTH]
    try:
        if msg_type == MSG_TYPE_HASH:
            return _parse_hash(message)
        device_hid = _required_device_hid(message)
        if msg_type == MSG_TYPE_HEARTBEAT:
            return Heartbeat(device_hid=device_hid)
        if msg_type == MSG_TYPE_SENSOR:
            return _parse_sensor(device_hid, message)
        if msg_type == MSG_TYPE_FEED_RESULT:
            return _parse_feed_result(device_hid, message)
    except ProtocolError as err:
        err.msg_type = msg_type
        raise
    return UnknownTelemetry(device_hid=device_hid, msg_type=msg_type)


# --------------------------------------------------------------------------- API requests

_API_EVENT_NAME: Final = "GatewayToServer_ApiRequest"
_COMMAND_STATUS_PATH = re.compile(
    r"/api/v1/core/events/(?P<hid>[^/]+)/(?P<status>received|succeeded|failed)"
)
_CHECKIN_PATH = re.compile(r"/api/v1/kronos/gateways/(?P<gw>[^/]+)/checkin")


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """An HTTP call tunnelled over MQTT (§5.7). ``method`` is upper-cased."""

    request_id: str | int
    uri: str | None
    method: str | None


def parse_api_request(payload: bytes | str) -> ApiRequest:
    """Parse a message from ``krs.api.gts.<gw>``; raise ProtocolError if it is unusable."""
    message = _decode_object(payload)
    request_id = message.get("requestId")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        raise ProtocolError("requestId is missing or not a string or integer")
    if isinstance(request_id, str) and len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise ProtocolError(
            f"requestId is longer than {MAX_REQUEST_ID_LENGTH} characters"
        )
    if isinstance(request_id, int) and abs(request_id) > _MAX_SAFE_INT:
        raise ProtocolError("requestId is an implausibly large integer")
    parameters = message.get("parameters")
    if not isinstance(parameters, dict):
        parameters = {}
    method = _as_text(parameters.get("method"))
    return ApiRequest(
        request_id=request_id,
        uri=_as_text(parameters.get("uri")),
        method=None if method is None else method.strip().upper(),
    )


def api_ack(request_id: str | int) -> bytes:
    """Return the byte-exact ``"OK"`` reply for ``krs/api/stg/<gw>`` (§5.7)."""
    return json.dumps(
        {
            "requestId": request_id,
            "eventName": _API_EVENT_NAME,
            "encrypted": False,
            "parameters": {"status": "OK"},
        }
    ).encode("utf-8")


def _uri_path(uri: object) -> str | None:
    """Return the path of a request uri (absolute or not), without query or trailing slash."""
    if not isinstance(uri, str):
        return None
    try:
        path = urlsplit(uri).path
    except ValueError:
        return None
    return path.removesuffix("/")


def command_status_from_uri(uri: str | None) -> tuple[str, str] | None:
    """Return ``(command_hid, status)`` for ``/api/v1/core/events/<hid>/<status>``, or None."""
    path = _uri_path(uri)
    match = None if path is None else _COMMAND_STATUS_PATH.fullmatch(path)
    if match is None or not is_safe_id(match["hid"]):
        return None
    return (match["hid"], match["status"])


def checkin_gateway_from_uri(uri: str | None) -> str | None:
    """Return the gateway hid of ``/api/v1/kronos/gateways/<gw>/checkin``, or None."""
    path = _uri_path(uri)
    match = None if path is None else _CHECKIN_PATH.fullmatch(path)
    if match is None or not is_safe_id(match["gw"]):
        return None
    return str(match["gw"])
