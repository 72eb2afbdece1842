"""Tests for protocol.messages.parse_telemetry, including hostile payloads."""

from dataclasses import fields
import json
from typing import Any

import pytest

from custom_components.petnet_feeder.protocol.messages import (
    MAX_PAYLOAD_BYTES,
    SOURCE_BUTTON,
    SOURCE_REMOTE,
    SOURCE_SCHEDULE,
    FeedResult,
    Heartbeat,
    ProtocolError,
    ScheduleHash,
    SensorReading,
    UnknownTelemetry,
    parse_telemetry,
)

DEV = "5238b0c4ceb91b35119887f44f29cb489fcf044a"
STIME = 1717251300

FEED_RESULT: dict[str, Any] = {
    "_|deviceHid": DEV,
    "s|msg_type": "feed_result",
    "i|stime": STIME,
    "i|etime": STIME + 4,
    "i|pour": 1,
    "i|full": 0,
    "f|e_g": 8.0,
    "f|a_g": 7.6,
    "f|h_s": 62,
    "f|h_e": 61,
    "i|src": 4,
    "b|fail": False,
    "b|trip": False,
    "b|lrg": False,
    "b|vol": False,
    "b|bowl": True,
    "s|rid": "E0000001",
    "s|err": "",
}


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def _sensor(**fields: Any) -> SensorReading:
    # Two usable values, so that any one field can be odd on its own (a reading without any
    # usable value is refused whole).
    base = {"_|deviceHid": DEV, "s|msg_type": "sensor", "f|voltage": 4100, "i|usb": 1}
    message = base | fields
    result = parse_telemetry(_encode(message))
    assert isinstance(result, SensorReading)
    return result


def _feed(**fields: Any) -> FeedResult:
    result = parse_telemetry(_encode(FEED_RESULT | fields))
    assert isinstance(result, FeedResult)
    return result


# --------------------------------------------------------------------------- happy paths


def test_heartbeat_bytes_and_str() -> None:
    text = '{"_|deviceHid": "' + DEV + '", "s|msg_type": "hb"}'
    assert parse_telemetry(text.encode()) == Heartbeat(device_hid=DEV)
    assert parse_telemetry(text) == Heartbeat(device_hid=DEV)


def test_heartbeat_ignores_extra_fields() -> None:
    message = {"_|deviceHid": DEV, "s|msg_type": "hb", "_|timestamp": 1, "x": [1, {}]}
    assert parse_telemetry(_encode(message)) == Heartbeat(device_hid=DEV)


def test_sensor_full() -> None:
    assert _sensor(
        **{"f|voltage": 4500, "i|usb": 1, "i|chg": 0, "i|ir": 0, "i|rssi": 99}
    ) == (
        SensorReading(
            device_hid=DEV, voltage_v=4.5, usb=True, charging=False, ir=False, rssi=99
        )
    )


@pytest.mark.parametrize(
    ("raw", "volts"),
    [
        (4500, 4.5),
        (4500.0, 4.5),
        ("4500", 4.5),
        (" 4123 ", 4.123),
        ("4.5e3", 4.5),
        (0, 0.0),
        ("abc", None),
        ("", None),
        (True, None),
        (None, None),
        ([4500], None),
        ({"v": 4500}, None),
        ("nan", None),
        ("inf", None),
        ("1_000", None),
        ("0x10", None),
        (10**400, None),
    ],
)
def test_sensor_voltage_lenient(raw: Any, volts: float | None) -> None:
    assert _sensor(**{"f|voltage": raw}).voltage_v == volts


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (1, True),
        (0, False),
        (True, True),
        (False, False),
        ("1", True),
        ("0", False),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        (" False ", False),
        (2, None),
        (-1, None),
        (1.0, None),
        ("yes", None),
        ("", None),
        (None, None),
        ([1], None),
    ],
)
def test_sensor_booleans_lenient(raw: Any, value: bool | None) -> None:
    reading = _sensor(**{"i|usb": raw, "i|chg": raw, "i|ir": raw})
    assert (reading.usb, reading.charging, reading.ir) == (value, value, value)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (99, 99),
        (-67, -67),
        ("99", 99),
        ("-67", -67),
        (99.0, 99),
        ("99.0", 99),
        (99.5, None),
        ("99.5", None),
        (True, None),
        (False, None),
        ("", None),
        ("ninety", None),
        ({}, None),
        (2**60, None),
        ("9" * 30, None),
    ],
)
def test_sensor_rssi_lenient(raw: Any, value: int | None) -> None:
    assert _sensor(**{"i|rssi": raw}).rssi == value


def test_feed_result_full() -> None:
    result = _feed()
    assert result == FeedResult(
        device_hid=DEV,
        start_ms=STIME * 1000,
        end_ms=(STIME + 4) * 1000,
        pour=1,
        full=0,
        grams_expected=8.0,
        grams_actual=7.6,
        hopper_start=62.0,
        hopper_end=61.0,
        source=SOURCE_REMOTE,
        fail=False,
        trip=False,
        lrg=False,
        vol=False,
        bowl=True,
        recipe_id="E0000001",
        error="",
    )


def test_feed_result_minimal() -> None:
    message = {"_|deviceHid": DEV, "s|msg_type": "feed_result", "i|stime": STIME}
    result = parse_telemetry(_encode(message))
    assert isinstance(result, FeedResult)
    assert result.start_ms == STIME * 1000
    assert all(
        value is None
        for key, value in result.to_dict().items()
        if key not in ("device_hid", "start_ms")
    )


def test_source_constants() -> None:
    assert (SOURCE_REMOTE, SOURCE_BUTTON, SOURCE_SCHEDULE) == (4, 5, 6)
    assert FeedResult.SOURCE_SCHEDULE == SOURCE_SCHEDULE
    assert FeedResult.SOURCE_BUTTON == SOURCE_BUTTON


@pytest.mark.parametrize(
    ("field", "raw", "attribute", "value"),
    [
        ("i|pour", "2", "pour", 2),
        ("i|pour", "x", "pour", None),
        ("i|full", True, "full", None),
        ("f|e_g", "8.5", "grams_expected", 8.5),
        ("f|e_g", False, "grams_expected", None),
        ("f|e_g", "8g", "grams_expected", None),
        ("f|a_g", [7.6], "grams_actual", None),
        ("f|h_s", "62", "hopper_start", 62.0),
        ("f|h_e", {}, "hopper_end", None),
        ("i|src", "6", "source", 6),
        ("i|src", 6.0, "source", 6),
        ("i|src", 6.5, "source", None),
        ("b|fail", 1, "fail", True),
        ("b|fail", "true", "fail", True),
        ("b|fail", "0", "fail", False),
        ("b|fail", "maybe", "fail", None),
        ("b|trip", 5, "trip", None),
        ("b|lrg", None, "lrg", None),
        ("b|vol", "1", "vol", True),
        ("b|bowl", 0, "bowl", False),
        ("s|rid", 1, "recipe_id", None),
        ("s|rid", "x" * 257, "recipe_id", None),
        ("s|err", "jam", "error", "jam"),
        ("s|err", ["jam"], "error", None),
        ("s|err", None, "error", None),
    ],
)
def test_feed_result_fields_lenient(
    field: str, raw: Any, attribute: str, value: Any
) -> None:
    assert getattr(_feed(**{field: raw}), attribute) == value


@pytest.mark.parametrize(
    ("raw", "start_ms"),
    [
        (STIME, STIME * 1000),
        (str(STIME), STIME * 1000),
        (float(STIME), STIME * 1000),
        (f"{STIME}.0", STIME * 1000),
        (1_420_070_400, 1_420_070_400_000),
        (4_102_444_800, 4_102_444_800_000),
    ],
)
def test_feed_result_start_time_forms(raw: Any, start_ms: int) -> None:
    assert _feed(**{"i|stime": raw, "i|etime": None}).start_ms == start_ms


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "soon",
        True,
        0,
        -1,
        -STIME,
        1_420_070_399,  # before 2015
        4_102_444_801,  # after 2100
        STIME * 1000,  # milliseconds instead of seconds
        10**30,
        STIME + 0.5,
        [STIME],
        {"t": STIME},
        "1e999",
    ],
)
def test_feed_result_unusable_start_time(raw: Any) -> None:
    with pytest.raises(ProtocolError, match="i\\|stime"):
        parse_telemetry(_encode(FEED_RESULT | {"i|stime": raw}))


def test_feed_result_missing_start_time() -> None:
    message = {k: v for k, v in FEED_RESULT.items() if k != "i|stime"}
    with pytest.raises(ProtocolError, match="i\\|stime"):
        parse_telemetry(_encode(message))


@pytest.mark.parametrize(
    ("raw", "end_ms"),
    [
        (STIME + 4, (STIME + 4) * 1000),
        (STIME, STIME * 1000),
        (str(STIME + 4), (STIME + 4) * 1000),
        (STIME - 1, None),  # before the start
        (0, None),
        (-5, None),
        (10**30, None),
        (STIME * 1000, None),
        ("later", None),
        (None, None),
    ],
)
def test_feed_result_end_time(raw: Any, end_ms: int | None) -> None:
    assert _feed(**{"i|etime": raw}).end_ms == end_ms


def test_feed_result_dict_round_trip() -> None:
    result = _feed()
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    # Everything but the note of dropped implausible values, which is not stored.
    assert list(data) == [f.name for f in fields(FeedResult) if f.name != "implausible"]
    assert data["start_ms"] == STIME * 1000
    assert FeedResult.from_dict(json.loads(json.dumps(data))) == result


def test_feed_result_from_dict_tolerates_odd_optional_values() -> None:
    data = _feed().to_dict() | {"grams_actual": "x", "fail": "true", "end_ms": None}
    restored = FeedResult.from_dict(data)
    assert restored.grams_actual is None
    assert restored.fail is True
    assert restored.end_ms is None


@pytest.mark.parametrize(
    "data",
    [
        {"start_ms": 1},
        {"device_hid": DEV},
        {"device_hid": "../x", "start_ms": 1},
        {"device_hid": DEV, "start_ms": "soon"},
    ],
)
def test_feed_result_from_dict_requires_identity(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FeedResult.from_dict(data)


# --------------------------------------------------------------------------- hash (§5.5)


@pytest.mark.parametrize(
    "fields",
    [
        {"s|local_md5": ""},
        {"s|local_md5": None},
        {},
        {"s|local_md5": "   "},
        {"s|local_md5": "d41d8cd98f00b204e9800998ecf8427e"},
        {"s|local_md5": " D41D8CD98F00B204E9800998ECF8427E "},
        {"s|local_md5": 0},
        {"s|local_md5": []},
        {"s|local_md5": {"md5": "x"}},
        {"s|local_md5": "x" * 300},
    ],
)
def test_hash_empty(fields: dict[str, Any]) -> None:
    message = {"_|deviceHid": DEV, "s|msg_type": "hash"} | fields
    result = parse_telemetry(_encode(message))
    assert isinstance(result, ScheduleHash)
    assert result.device_hid == DEV
    assert result.is_empty


@pytest.mark.parametrize(
    ("fields", "md5"),
    [
        (
            {"s|local_md5": "0cc175b9c0f1b6a831c399e269772661"},
            "0cc175b9c0f1b6a831c399e269772661",
        ),
        (
            {"s|local_md5": " 0cc175b9c0f1b6a831c399e269772661\n"},
            "0cc175b9c0f1b6a831c399e269772661",
        ),
        # Lenient key lookup: any prefix, or none, before the last "|".
        ({"local_md5": "abc"}, "abc"),
        ({"x|local_md5": "abc"}, "abc"),
        ({"a|b|local_md5": "abc"}, "abc"),
        ({"x|local_md5": "first", "y|local_md5": "second"}, "first"),
        # The exact key wins over an earlier lenient match.
        ({"x|local_md5": "lenient", "s|local_md5": "exact"}, "exact"),
    ],
)
def test_hash_not_empty(fields: dict[str, Any], md5: str) -> None:
    message = {"_|deviceHid": DEV, "s|msg_type": "hash"} | fields
    result = parse_telemetry(_encode(message))
    assert result == ScheduleHash(device_hid=DEV, local_md5=md5)
    assert not result.is_empty


def test_hash_exact_key_null_is_empty_even_with_lenient_key() -> None:
    message = {
        "_|deviceHid": DEV,
        "s|msg_type": "hash",
        "s|local_md5": None,
        "x|local_md5": "a",
    }
    result = parse_telemetry(_encode(message))
    assert isinstance(result, ScheduleHash)
    assert result.is_empty


@pytest.mark.parametrize("device_field", [{}, {"_|deviceHid": None}])
def test_hash_without_device(device_field: dict[str, Any]) -> None:
    message = {"s|msg_type": "hash", "s|local_md5": ""} | device_field
    assert parse_telemetry(_encode(message)) == ScheduleHash(
        device_hid=None, local_md5=None
    )


@pytest.mark.parametrize("device_hid", ["", "../x", 42, ["a"], "a" * 200])
def test_hash_with_bad_device_refused(device_hid: Any) -> None:
    message = {"_|deviceHid": device_hid, "s|msg_type": "hash", "s|local_md5": ""}
    with pytest.raises(ProtocolError, match="deviceHid"):
        parse_telemetry(_encode(message))


@pytest.mark.parametrize(
    ("local_md5", "empty"),
    [
        (None, True),
        ("", True),
        (" ", True),
        ("d41d8cd98f00b204e9800998ecf8427e", True),
        ("ab", False),
    ],
)
def test_schedule_hash_is_empty_on_direct_values(
    local_md5: str | None, empty: bool
) -> None:
    assert ScheduleHash(device_hid=None, local_md5=local_md5).is_empty is empty


# --------------------------------------------------------------------------- unknown kinds


@pytest.mark.parametrize("msg_type", ["con_check", "HB", "", " hb", "feed"])
def test_unknown_kind(msg_type: str) -> None:
    message = {"_|deviceHid": DEV, "s|msg_type": msg_type}
    assert parse_telemetry(_encode(message)) == UnknownTelemetry(
        device_hid=DEV, msg_type=msg_type
    )


def test_unknown_kind_is_truncated() -> None:
    message = {"_|deviceHid": DEV, "s|msg_type": "k" * 1000}
    result = parse_telemetry(_encode(message))
    assert isinstance(result, UnknownTelemetry)
    assert result.msg_type == "k" * 64


# --------------------------------------------------------------------------- hostile payloads


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "not valid JSON"),
        (b"   ", "not valid JSON"),
        (b"not json", "not valid JSON"),
        (b'{"_|deviceHid": "a"', "not valid JSON"),
        (b"{'_|deviceHid': 'a'}", "not valid JSON"),
        (b"\xff\xfe\x00\x01", "not UTF-8"),
        (b"\x80abc", "not UTF-8"),
        (bytes(range(256)), "not UTF-8"),
        ("\ud800", "not valid Unicode"),
        (b"[]", "not a JSON object"),
        (b'[{"_|deviceHid": "a", "s|msg_type": "hb"}]', "not a JSON object"),
        (b'"hb"', "not a JSON object"),
        (b"42", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"true", "not a JSON object"),
        (b'{"s|msg_type": "hb", "f|voltage": NaN}', "NaN"),
        (b'{"s|msg_type": "hb", "f|voltage": Infinity}', "Infinity"),
        (b'{"s|msg_type": "hb", "f|voltage": -Infinity}', "Infinity"),
        (b'{"s|msg_type": "hb", "f|voltage": 1e999}', "out of range"),
        (b'{"s|msg_type": "hb", "i|rssi": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_hostile_payloads(payload: bytes | str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_telemetry(payload)


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested(opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    payload = opener * 10_000 + b"1" + closer * 10_000
    assert len(payload) <= MAX_PAYLOAD_BYTES
    with pytest.raises(ProtocolError, match="nested too deeply"):
        parse_telemetry(payload)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"f|voltage": "x", "i|usb": [1], "i|chg": {}, "i|ir": 7, "i|rssi": 1.5},
        {"f|voltage": None, "i|usb": None, "i|chg": None, "i|ir": None, "i|rssi": None},
    ],
)
def test_sensor_reading_without_any_usable_value_is_refused(
    fields: dict[str, Any],
) -> None:
    # Stored as is it would replace the last good reading with nothing.
    message = {"_|deviceHid": DEV, "s|msg_type": "sensor"} | fields
    with pytest.raises(ProtocolError, match="no usable value"):
        parse_telemetry(_encode(message))


def test_nested_value_in_field_is_just_a_wrong_type() -> None:
    message = {"_|deviceHid": DEV, "s|msg_type": "sensor", "i|rssi": [[[[[1]]]]]}
    assert _sensor(**{"i|rssi": message["i|rssi"]}).rssi is None


def test_oversize_payload_bytes() -> None:
    padding = "x" * (256 * 1024)
    payload = _encode({"_|deviceHid": DEV, "s|msg_type": "hb", "pad": padding})
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_telemetry(payload)
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_telemetry(payload.decode())


def test_payload_size_boundary() -> None:
    head = {"_|deviceHid": DEV, "s|msg_type": "hb", "pad": ""}
    room = MAX_PAYLOAD_BYTES - len(_encode(head))
    exact = _encode(head | {"pad": "x" * room})
    assert len(exact) == MAX_PAYLOAD_BYTES
    assert parse_telemetry(exact) == Heartbeat(device_hid=DEV)
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_telemetry(_encode(head | {"pad": "x" * (room + 1)}))


def test_multibyte_str_measured_in_bytes() -> None:
    head = {"_|deviceHid": DEV, "s|msg_type": "hb", "pad": ""}
    text = json.dumps(
        head | {"pad": "é" * (MAX_PAYLOAD_BYTES // 2)}, ensure_ascii=False
    )
    assert len(text) < MAX_PAYLOAD_BYTES < len(text.encode())
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_telemetry(text)


def test_utf8_bom_tolerated() -> None:
    payload = b"\xef\xbb\xbf" + _encode({"_|deviceHid": DEV, "s|msg_type": "hb"})
    assert parse_telemetry(payload) == Heartbeat(device_hid=DEV)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"s|msg_type": "hb"}, "deviceHid is missing"),
        ({"_|deviceHid": None, "s|msg_type": "hb"}, "deviceHid is missing"),
        ({"_|deviceHid": "", "s|msg_type": "hb"}, "not a valid id"),
        ({"_|deviceHid": "../../etc/passwd", "s|msg_type": "hb"}, "not a valid id"),
        ({"_|deviceHid": "a" * 10_240, "s|msg_type": "hb"}, "not a valid id"),
        ({"_|deviceHid": "#", "s|msg_type": "sensor"}, "not a valid id"),
        ({"_|deviceHid": "a+b", "s|msg_type": "feed_result"}, "not a valid id"),
        ({"_|deviceHid": 123, "s|msg_type": "hb"}, "not a valid id"),
        ({"_|deviceHid": True, "s|msg_type": "hb"}, "not a valid id"),
        ({"_|deviceHid": [DEV], "s|msg_type": "hb"}, "not a valid id"),
        ({"_|deviceHid": {"hid": DEV}, "s|msg_type": "hb"}, "not a valid id"),
        ({"_|deviceHid": DEV}, "msg_type is missing"),
        ({"_|deviceHid": DEV, "s|msg_type": None}, "msg_type is missing"),
        ({"_|deviceHid": DEV, "s|msg_type": 1}, "not a string"),
        ({"_|deviceHid": DEV, "s|msg_type": ["hb"]}, "not a string"),
        ({"_|deviceHid": DEV, "s|msg_type": True}, "not a string"),
        ({"_|deviceHid": DEV, "msg_type": "hb"}, "msg_type is missing"),
        ({}, "msg_type is missing"),
    ],
)
def test_required_fields(message: dict[str, Any], error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        parse_telemetry(_encode(message))


def test_protocol_error_is_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)
