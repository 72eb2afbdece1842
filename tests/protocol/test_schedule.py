"""Tests for protocol.schedule: feeding ids, event order and both sync sequences."""

import hashlib
import json
from typing import Any

import pytest

from custom_components.petnet_feeder.protocol.commands import MAX_COMMAND_BYTES
from custom_components.petnet_feeder.protocol.ids import hid_from_uid
from custom_components.petnet_feeder.protocol.schedule import (
    ScheduleEntry,
    feeding_id,
    legacy_schedule_commands,
    legacy_schedule_fits,
    new_schedule_commands,
    schedule_commands,
    schedule_events,
    schedule_fingerprint,
)

DEV = "5238b0c4ceb91b35119887f44f29cb489fcf044a"


def _parameters(payload: bytes) -> dict[str, Any]:
    parameters: dict[str, Any] = json.loads(payload)["parameters"]
    return parameters


@pytest.mark.parametrize(
    ("time_s", "expected"),
    [
        (0, "5238b0c4ceb91b35_feed7_0:00AM"),
        (3600, "5238b0c4ceb91b35_feed7_1:00AM"),
        (43199, "5238b0c4ceb91b35_feed7_11:59AM"),
        (43200, "5238b0c4ceb91b35_feed7_12:00PM"),
        (66600, "5238b0c4ceb91b35_feed7_18:30PM"),
        (86399, "5238b0c4ceb91b35_feed7_23:59PM"),
        (59, "5238b0c4ceb91b35_feed7_0:00AM"),  # seconds are dropped
        (3659, "5238b0c4ceb91b35_feed7_1:00AM"),
    ],
)
def test_feeding_id_table(time_s: int, expected: str) -> None:
    assert feeding_id(DEV, 7, time_s) == expected


def test_feeding_id_upstream_vector() -> None:
    device = hid_from_uid("smartfeeder-4b09fa082bbd-prod")
    assert feeding_id(device, 1, 3600) == "c3d89400068631f8_feed1_1:00AM"


@pytest.mark.parametrize(
    ("meal_id", "time_s"), [(0, 0), (-1, 0), (1, -1), (1, 86400), (True, 0), (1, 1.5)]
)
def test_feeding_id_rejects(meal_id: Any, time_s: Any) -> None:
    with pytest.raises(ValueError):
        feeding_id(DEV, meal_id, time_s)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"meal_id": 0}, "meal id"),
        ({"meal_id": -3}, "meal id"),
        ({"meal_id": True}, "meal id"),
        ({"meal_id": 1.0}, "meal id"),
        ({"time_s": -1}, "meal time"),
        ({"time_s": 86400}, "meal time"),
        ({"time_s": 3600.0}, "meal time"),
        ({"portion": 0}, "portion"),
        ({"portion": 0.1}, "portion"),
        ({"portion": 2.5}, "portion"),
        ({"active": 1}, "active"),
        ({"active": None}, "active"),
    ],
)
def test_schedule_entry_validation(kwargs: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "meal_id": 1,
        "time_s": 0,
        "portion": 0.25,
        "active": True,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        ScheduleEntry(**values)


def test_schedule_entry_normalises_portion() -> None:
    entry = ScheduleEntry(meal_id=1, time_s=0, portion=0.1 * 3 / 1.2, active=True)
    assert entry.portion == 0.25
    assert repr(entry.portion) == "0.25"


def test_schedule_entry_bounds_accepted() -> None:
    entry = ScheduleEntry(meal_id=1, time_s=86399, portion=2, active=False)
    assert (entry.time_s, entry.portion, entry.active) == (86399, 2.0, False)


def test_upstream_legacy_vector_7_4() -> None:
    device = hid_from_uid("smartfeeder-895ae773737d-prod")
    assert device.startswith("93c346ad8d668ef6")
    entries = [ScheduleEntry(meal_id=1, time_s=3600, portion=0.0625, active=True)]
    [command] = legacy_schedule_commands(device, entries)
    assert command.name == "schedule"
    assert _parameters(command.payload) == {
        "deviceHid": device,
        "command": "schedule",
        "payload": (
            '[{"active": true, "automatic": true, '
            '"feeding_id": "93c346ad8d668ef6_feed1_1:00AM", "name": "FEED0", '
            '"portion": 0.0625, "reminder": true, "time": 3600}]'
        ),
    }


def test_events_sorted_by_time_then_meal_id() -> None:
    entries = [
        ScheduleEntry(meal_id=5, time_s=66600, portion=0.25, active=True),
        ScheduleEntry(meal_id=9, time_s=25200, portion=0.5, active=False),
        ScheduleEntry(meal_id=3, time_s=25200, portion=0.125, active=True),
    ]
    events = schedule_events(DEV, entries)
    assert [(e["name"], e["feeding_id"]) for e in events] == [
        ("FEED0", "5238b0c4ceb91b35_feed3_7:00AM"),
        ("FEED1", "5238b0c4ceb91b35_feed9_7:00AM"),
        ("FEED2", "5238b0c4ceb91b35_feed5_18:30PM"),
    ]
    # Disabled meals are still sent.
    assert events[1]["active"] is False
    assert list(events[0]) == [
        "active",
        "automatic",
        "feeding_id",
        "name",
        "portion",
        "reminder",
        "time",
    ]
    assert events[0]["automatic"] is True
    assert events[0]["reminder"] is True


def test_events_order_independent_of_input_order() -> None:
    entries = [
        ScheduleEntry(meal_id=i, time_s=(i * 7919) % 86400, portion=0.0625, active=True)
        for i in range(1, 11)
    ]
    forward = schedule_events(DEV, entries)
    backward = schedule_events(DEV, list(reversed(entries)))
    assert forward == backward
    times = [event["time"] for event in forward]
    assert times == sorted(times)


def test_duplicate_meal_ids_refused() -> None:
    entries = [
        ScheduleEntry(meal_id=1, time_s=0, portion=0.25, active=True),
        ScheduleEntry(meal_id=1, time_s=60, portion=0.25, active=True),
    ]
    with pytest.raises(ValueError, match="duplicate"):
        schedule_events(DEV, entries)


def test_empty_schedules() -> None:
    [legacy] = legacy_schedule_commands(DEV, [])
    assert _parameters(legacy.payload)["payload"] == "[]"
    new = new_schedule_commands(DEV, [])
    assert [c.name for c in new] == [
        "schedule_clear",
        "schedule_mod_start",
        "schedule_mod_end",
    ]
    assert _parameters(new[1].payload)["payload"] == '{"size": 0}'


def test_new_sequence_shape() -> None:
    entries = [
        ScheduleEntry(meal_id=i, time_s=i * 3600, portion=0.125, active=True)
        for i in range(1, 4)
    ]
    commands = new_schedule_commands(DEV, entries)
    assert [c.name for c in commands] == [
        "schedule_clear",
        "schedule_mod_start",
        "schedule_add",
        "schedule_add",
        "schedule_add",
        "schedule_mod_end",
    ]
    events = schedule_events(DEV, entries)
    for index, command in enumerate(commands[2:5]):
        assert json.loads(_parameters(command.payload)["payload"]) == [
            {"index": index, "data": events[index]}
        ]
    assert len({c.hid for c in commands}) == len(commands)


def test_schedule_commands_dispatch() -> None:
    entries = [ScheduleEntry(meal_id=1, time_s=0, portion=0.25, active=True)]
    assert [c.name for c in schedule_commands(DEV, entries, new_api=False)] == [
        "schedule"
    ]
    assert [c.name for c in schedule_commands(DEV, entries, new_api=True)] == [
        "schedule_clear",
        "schedule_mod_start",
        "schedule_add",
        "schedule_mod_end",
    ]


def test_command_hids_count_must_match() -> None:
    entries = [ScheduleEntry(meal_id=1, time_s=0, portion=0.25, active=True)]
    with pytest.raises(ValueError, match="expected 4 command hids"):
        new_schedule_commands(DEV, entries, command_hids=["a" * 32])
    with pytest.raises(ValueError, match="expected 1 command hids"):
        legacy_schedule_commands(DEV, entries, command_hids=[])


def _meals(count: int) -> list[ScheduleEntry]:
    # Worst case for size: long meal ids, afternoon times, two-decimal-ish portions.
    return [
        ScheduleEntry(
            meal_id=1_000_000 + i, time_s=86399 - i * 60, portion=1.9375, active=True
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [1, 20])
def test_new_api_sync_every_command_within_limit(count: int) -> None:
    commands = new_schedule_commands(DEV, _meals(count))
    assert len(commands) == count + 3
    sizes = [len(command.payload) for command in commands]
    assert max(sizes) <= MAX_COMMAND_BYTES
    # One event per add keeps messages near 400 bytes.
    assert max(sizes) < 500


def test_legacy_size_limit() -> None:
    assert legacy_schedule_fits(DEV, _meals(1))
    assert not legacy_schedule_fits(DEV, _meals(20))
    with pytest.raises(ValueError, match="1000-byte limit"):
        legacy_schedule_commands(DEV, _meals(20))
    largest = max(n for n in range(1, 21) if legacy_schedule_fits(DEV, _meals(n)))
    [command] = legacy_schedule_commands(DEV, _meals(largest))
    assert len(command.payload) <= MAX_COMMAND_BYTES
    assert not legacy_schedule_fits(DEV, _meals(largest + 1))


def test_legacy_fits_agrees_with_builder() -> None:
    for count in range(10):
        meals = _meals(count)
        fits = legacy_schedule_fits(DEV, meals)
        if fits:
            assert legacy_schedule_commands(DEV, meals)
        else:
            with pytest.raises(ValueError):
                legacy_schedule_commands(DEV, meals)


def test_fingerprint_is_md5_of_events_json() -> None:
    entries = [
        ScheduleEntry(meal_id=1, time_s=25200, portion=0.25, active=True),
        ScheduleEntry(meal_id=2, time_s=66600, portion=0.25, active=True),
    ]
    expected_text = (
        '[{"active": true, "automatic": true, "feeding_id": "5238b0c4ceb91b35_feed1_7:00AM", '
        '"name": "FEED0", "portion": 0.25, "reminder": true, "time": 25200}, '
        '{"active": true, "automatic": true, "feeding_id": "5238b0c4ceb91b35_feed2_18:30PM", '
        '"name": "FEED1", "portion": 0.25, "reminder": true, "time": 66600}]'
    )
    assert (
        schedule_fingerprint(DEV, entries)
        == hashlib.md5(expected_text.encode()).hexdigest()
    )
    assert schedule_fingerprint(DEV, list(reversed(entries))) == schedule_fingerprint(
        DEV, entries
    )


def test_fingerprint_changes_with_schedule() -> None:
    base = [ScheduleEntry(meal_id=1, time_s=25200, portion=0.25, active=True)]
    variants = [
        [ScheduleEntry(meal_id=1, time_s=25260, portion=0.25, active=True)],
        [ScheduleEntry(meal_id=1, time_s=25200, portion=0.3125, active=True)],
        [ScheduleEntry(meal_id=1, time_s=25200, portion=0.25, active=False)],
        [ScheduleEntry(meal_id=2, time_s=25200, portion=0.25, active=True)],
        [],
    ]
    fingerprints = {schedule_fingerprint(DEV, v) for v in [base, *variants]}
    assert len(fingerprints) == len(variants) + 1
    assert schedule_fingerprint(DEV, []) == hashlib.md5(b"[]").hexdigest()
