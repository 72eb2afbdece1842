"""Pure-function tests: identities, envelope checks, schedule model, versions."""

from __future__ import annotations

import json

import pytest

from feeder_sim.envelope import parse_command
from feeder_sim.ids import device_uid_for, hid_for_uid, uid_for_index
from feeder_sim.schedule import HeldSchedule, schedule_md5, validate_event
from feeder_sim.versions import parse_version, uses_new_schedule_api

pytestmark = pytest.mark.usefixtures("socket_enabled")

DEV = "5238b0c4ceb91b35119887f44f29cb489fcf044a"


def event(
    index: int, time_s: int, meal: int = 1, **changes: object
) -> dict[str, object]:
    h, m = time_s // 3600, (time_s // 60) % 60
    base: dict[str, object] = {
        "active": True,
        "automatic": True,
        "feeding_id": f"{DEV[:16]}_feed{meal}_{h}:{m:02d}{'AM' if time_s < 43200 else 'PM'}",
        "name": f"FEED{index}",
        "portion": 0.25,
        "reminder": True,
        "time": time_s,
    }
    return base | changes


def test_hid_vectors() -> None:
    assert (
        hid_for_uid("smartfeeder-795ae773737d")
        == "488533283e3f06ca4ae929fd01f50a9259dd393f"
    )
    assert hid_for_uid(device_uid_for("smartfeeder-795ae773737d")) == DEV
    assert (
        hid_for_uid("smartfeeder-4b09fa082bbd-prod")
        == "c3d89400068631f8138a57286982bea94370693d"
    )


def test_uid_for_index_is_stable_and_well_formed() -> None:
    uids = [uid_for_index(i) for i in range(50)]
    assert uids == [uid_for_index(i) for i in range(50)]
    assert len(set(uids)) == 50
    assert all(
        len(u) == len("smartfeeder-") + 12 and int(u[12:], 16) >= 0 for u in uids
    )
    assert uid_for_index(0, namespace="other") != uids[0]


@pytest.mark.parametrize(
    ("time_s", "suffix"),
    [
        (0, "0:00AM"),
        (3600, "1:00AM"),
        (43199, "11:59AM"),
        (43200, "12:00PM"),
        (66600, "18:30PM"),
        (86399, "23:59PM"),
    ],
)
def test_feeding_id_vectors_are_accepted(time_s: int, suffix: str) -> None:
    ev = event(0, time_s, meal=7)
    assert ev["feeding_id"] == f"5238b0c4ceb91b35_feed7_{suffix}"
    assert validate_event(ev, 0, DEV) == []


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"name": "FEED1"}, "name"),
        ({"time": 86400}, "time"),
        ({"time": 3600.0}, "time"),
        ({"active": 1}, "active is not a boolean"),
        ({"portion": "0.25"}, "portion"),
        ({"feeding_id": "5238b0c4ceb91b35_feed1_07:00AM"}, "feeding_id time"),
        ({"feeding_id": "0000000000000000_feed1_7:00AM"}, "prefix"),
        ({"feeding_id": "5238b0c4ceb91b35_feed1_7:00"}, "does not match"),
    ],
)
def test_bad_events_are_reported(changes: dict[str, object], fragment: str) -> None:
    errors = validate_event(event(0, 25200) | changes, 0, DEV)
    assert any(fragment in e for e in errors), errors


def test_event_key_order_is_checked() -> None:
    ev = event(0, 25200)
    reordered = {k: ev[k] for k in reversed(list(ev))}
    assert any("keys" in e for e in validate_event(reordered, 0, DEV))


def test_held_schedule_new_api_model() -> None:
    held = HeldSchedule()
    assert held.mod_start(2) == []
    assert held.add(0, event(0, 25200)) == []
    # Incomplete: what was added is kept.
    assert held.events == [event(0, 25200)]
    assert held.add(1, event(1, 66600, meal=2)) == []
    assert held.mod_end() == []
    assert [e["time"] for e in held.events] == [25200, 66600]
    # A shrinking modification without clear drops the tail at mod_end.
    held.mod_start(1)
    held.add(0, event(0, 3600))
    assert held.mod_end() == []
    assert [e["time"] for e in held.events] == [3600]
    assert "outside" in held.add(3, event(3, 7200))[0]
    assert held.mod_end() == ["schedule_mod_end without schedule_mod_start"]
    held.mod_start(2)
    held.add(0, event(0, 3600))
    assert "expected indexes 0..1" in held.mod_end()[0]
    held.clear()
    assert held.events == []


def test_due_and_md5() -> None:
    held = HeldSchedule()
    held.replace(
        [
            event(0, 25200),
            event(1, 25230, meal=2, active=False),
            event(2, 25260, meal=3),
        ]
    )
    assert [i for i, _ in held.due(25200 // 60)] == [0]
    assert [i for i, _ in held.due(25260 // 60)] == [2]
    assert schedule_md5([]) == ""
    assert len(schedule_md5(held.events)) == 32
    assert schedule_md5(held.events) == schedule_md5(
        json.loads(json.dumps(held.events))
    )


def envelope_bytes(**changes: object) -> bytes:
    env: dict[str, object] = {
        "hid": "riwnlvmhecfehvhapsfijaenrltskewq",
        "name": "SendCommand",
        "encrypted": False,
        "parameters": {
            "deviceHid": DEV,
            "command": "feed",
            "payload": '{"portion": 0.0625}',
        },
    }
    return json.dumps(env | changes).encode()


def test_envelope_from_the_spec_is_clean() -> None:
    raw = (
        b'{"hid": "riwnlvmhecfehvhapsfijaenrltskewq", "name": "SendCommand", "encrypted": false, '
        b'"parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "feed", '
        b'"payload": "{\\"portion\\": 0.0625}"}}'
    )
    parsed = parse_command(raw, DEV)
    assert parsed.errors == []
    assert (parsed.hid, parsed.command, parsed.payload) == (
        "riwnlvmhecfehvhapsfijaenrltskewq",
        "feed",
        {"portion": 0.0625},
    )


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (envelope_bytes(name="ServerToGateway_DeviceCommand"), "name"),
        (envelope_bytes(encrypted=0), "encrypted"),
        (envelope_bytes(hid="abc"), "32 lowercase"),
        (
            envelope_bytes(
                parameters={
                    "deviceHid": "x",
                    "command": "feed",
                    "payload": '{"portion": 0.0625}',
                }
            ),
            "deviceHid",
        ),
        (
            envelope_bytes(
                parameters={
                    "deviceHid": DEV,
                    "command": "feed",
                    "payload": {"portion": 0.0625},
                }
            ),
            "not a JSON string",
        ),
        (
            envelope_bytes(
                parameters={
                    "deviceHid": DEV,
                    "command": "feed",
                    "payload": '{"portion":0.0625}',
                }
            ),
            "payload text",
        ),
        (
            envelope_bytes(
                parameters={
                    "deviceHid": DEV,
                    "command": "feed",
                    "payload": '{"portion": 0.05}',
                }
            ),
            "multiple of 1/16",
        ),
        (
            envelope_bytes(
                parameters={
                    "deviceHid": DEV,
                    "command": "utc_offset",
                    "payload": '{"utc_offset": -5}',
                }
            ),
            "",
        ),
        (
            envelope_bytes(
                parameters={
                    "deviceHid": DEV,
                    "command": "utc_offset",
                    "payload": '{"utc_offset": -5.0}',
                }
            ),
            "integer seconds",
        ),
        (
            envelope_bytes(
                parameters={
                    "deviceHid": DEV,
                    "command": "budget",
                    "payload": json.dumps(
                        {
                            "recipe": "1",
                            "tbsp_per_feeding": 1,
                            "g_per_tbsp": 8,
                            "budget_tbsp": 3,
                        }
                    ),
                }
            ),
            "recipe",
        ),
        (
            json.dumps(
                {"hid": "riwnlvmhecfehvhapsfijaenrltskewq"}, separators=(",", ":")
            ).encode(),
            "json.dumps() form",
        ),
        (b"not json", "not UTF-8 JSON"),
        (b"[]", "not an object"),
        (envelope_bytes(extra=1), "envelope keys"),
        (b" " * 1001, "> 1000"),
    ],
)
def test_envelope_violations(raw: bytes, fragment: str) -> None:
    errors = parse_command(raw, DEV).errors
    if fragment:
        assert any(fragment in e for e in errors), errors
    else:
        assert errors == []


def test_versions() -> None:
    assert parse_version("2.8.0") == (2, 8, 0)
    assert parse_version("2.4") == (2, 4, 0)
    assert parse_version("2.4.16-beta") == (2, 4, 16)
    assert parse_version("junk") is None
    assert uses_new_schedule_api("2.5.0")
    assert not uses_new_schedule_api("2.4.20")
    assert not uses_new_schedule_api(None)
