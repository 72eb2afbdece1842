"""Schedule encoding for both firmware families (protocol §7)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
import hashlib
import itertools
import json
from typing import Any, Final

from .commands import (
    MAX_COMMAND_BYTES,
    Command,
    build_command,
    command_size,
    validate_portion,
)

SECONDS_PER_DAY: Final = 86_400
_NOON_S: Final = 43_200

CMD_SCHEDULE: Final = "schedule"
CMD_SCHEDULE_CLEAR: Final = "schedule_clear"
CMD_SCHEDULE_MOD_START: Final = "schedule_mod_start"
CMD_SCHEDULE_ADD: Final = "schedule_add"
CMD_SCHEDULE_MOD_END: Final = "schedule_mod_end"


def _check_meal_id(meal_id: object) -> int:
    if isinstance(meal_id, bool) or not isinstance(meal_id, int) or meal_id < 1:
        raise ValueError(f"meal id must be a positive integer, got {meal_id!r:.60}")
    return meal_id


def _check_time(time_s: object) -> int:
    # 86400 ("24:00PM") was an upstream UI bug, so the day ends at 86399.
    if (
        isinstance(time_s, bool)
        or not isinstance(time_s, int)
        or not 0 <= time_s < SECONDS_PER_DAY
    ):
        raise ValueError(
            f"meal time must be an integer in 0..86399 s, got {time_s!r:.60}"
        )
    return time_s


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """One daily meal as the feeder sees it; ``portion`` is normalised to a 1/16-cup multiple."""

    meal_id: int
    time_s: int
    portion: float
    active: bool

    def __post_init__(self) -> None:
        """Validate the values so that a bad meal never reaches the wire."""
        _check_meal_id(self.meal_id)
        _check_time(self.time_s)
        if not isinstance(self.active, bool):
            # ValueError, not TypeError: callers treat every bad user input alike.
            raise ValueError(f"active must be a bool, got {self.active!r:.60}")  # noqa: TRY004
        # Frozen dataclass: normalising float noise needs object.__setattr__.
        object.__setattr__(self, "portion", validate_portion(self.portion))


def feeding_id(device_hid: str, meal_id: int, time_s: int) -> str:
    """Return the event's ``feeding_id`` (§7.2).

    Quirks kept on purpose: the hour is 24-hour and unpadded yet gets an AM/PM suffix, and
    seconds are dropped (66600 -> ``18:30PM``).
    """
    _check_meal_id(meal_id)
    _check_time(time_s)
    hour = time_s // 3600
    minute = (time_s // 60) % 60
    suffix = "AM" if time_s < _NOON_S else "PM"
    return f"{device_hid[:16]}_feed{meal_id}_{hour}:{minute:02d}{suffix}"


def _ordered(entries: Iterable[ScheduleEntry]) -> list[ScheduleEntry]:
    ordered = sorted(entries, key=lambda entry: (entry.time_s, entry.meal_id))
    meal_ids = [entry.meal_id for entry in ordered]
    if len(set(meal_ids)) != len(meal_ids):
        # Duplicate ids would give two events the same feeding_id.
        raise ValueError("schedule contains duplicate meal ids")
    return ordered


def schedule_events(
    device_hid: str, entries: Iterable[ScheduleEntry]
) -> list[dict[str, Any]]:
    """Return the event objects in §7.1 key order, sorted by (time, meal id)."""
    return [
        {
            "active": entry.active,
            "automatic": True,
            "feeding_id": feeding_id(device_hid, entry.meal_id, entry.time_s),
            # FEED<index> is the position in this list, not the user's meal name.
            "name": f"FEED{index}",
            "portion": entry.portion,
            "reminder": True,
            "time": entry.time_s,
        }
        for index, entry in enumerate(_ordered(entries))
    ]


def _hid_supply(command_hids: Sequence[str] | None, count: int) -> Iterator[str | None]:
    """Yield the caller's command hids (tests pin them) or None for fresh random ones."""
    if command_hids is None:
        return itertools.repeat(None)
    if len(command_hids) != count:
        raise ValueError(f"expected {count} command hids, got {len(command_hids)}")
    return iter(command_hids)


def legacy_schedule_fits(device_hid: str, entries: Iterable[ScheduleEntry]) -> bool:
    """Tell whether the single legacy ``schedule`` command stays within MAX_COMMAND_BYTES."""
    events = schedule_events(device_hid, entries)
    return command_size(device_hid, CMD_SCHEDULE, events) <= MAX_COMMAND_BYTES


def legacy_schedule_commands(
    device_hid: str,
    entries: Iterable[ScheduleEntry],
    *,
    command_hids: Sequence[str] | None = None,
) -> list[Command]:
    """Return the one ``schedule`` command of firmware < 2.5.0 (§7.4).

    Raises ValueError if it would exceed MAX_COMMAND_BYTES (see legacy_schedule_fits).
    """
    hids = _hid_supply(command_hids, 1)
    events = schedule_events(device_hid, entries)
    return [build_command(device_hid, CMD_SCHEDULE, events, command_hid=next(hids))]


def new_schedule_commands(
    device_hid: str,
    entries: Iterable[ScheduleEntry],
    *,
    command_hids: Sequence[str] | None = None,
) -> list[Command]:
    """Return clear, mod_start, one add per event and mod_end for firmware >= 2.5.0 (§7.5).

    One ``schedule_add`` per event keeps every message small, whatever the meal count.
    """
    events = schedule_events(device_hid, entries)
    hids = _hid_supply(command_hids, len(events) + 3)
    commands = [
        build_command(device_hid, CMD_SCHEDULE_CLEAR, {}, command_hid=next(hids)),
        build_command(
            device_hid,
            CMD_SCHEDULE_MOD_START,
            {"size": len(events)},
            command_hid=next(hids),
        ),
    ]
    commands.extend(
        build_command(
            device_hid,
            CMD_SCHEDULE_ADD,
            [{"index": index, "data": event}],
            command_hid=next(hids),
        )
        for index, event in enumerate(events)
    )
    commands.append(
        build_command(device_hid, CMD_SCHEDULE_MOD_END, {}, command_hid=next(hids))
    )
    return commands


def schedule_commands(
    device_hid: str,
    entries: Iterable[ScheduleEntry],
    *,
    new_api: bool,
    command_hids: Sequence[str] | None = None,
) -> list[Command]:
    """Return the sync sequence for the firmware family (``utc_offset`` is not included)."""
    if new_api:
        return new_schedule_commands(device_hid, entries, command_hids=command_hids)
    return legacy_schedule_commands(device_hid, entries, command_hids=command_hids)


def schedule_fingerprint(device_hid: str, entries: Iterable[ScheduleEntry]) -> str:
    """Return the MD5 of the §7.4-form event array: our "schedule in sync" marker (§7.6)."""
    text = json.dumps(schedule_events(device_hid, entries))
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()
