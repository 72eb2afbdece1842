"""The schedule a simulated feeder holds, and schedule event checks (§7).

Model of the new API (§7.5), which no capture documents: ``schedule_add``
writes its events straight into the held schedule at their ``index``;
``schedule_mod_start {size}`` opens a modification and ``schedule_mod_end``
closes it, dropping events whose index is ``>= size``. So an incomplete
sequence (a ``mod_start`` without ``mod_end``, or adds without ``mod_start``)
still keeps every event that was added, as the brief asks. Sequence problems
are reported as protocol errors by the caller.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, TypeIs

EVENT_KEYS = (
    "active",
    "automatic",
    "feeding_id",
    "name",
    "portion",
    "reminder",
    "time",
)
SECONDS_PER_DAY = 86400
_FEEDING_ID = re.compile(
    r"^([0-9a-f]{16})_feed([1-9][0-9]*)_([0-9]{1,2}):([0-9]{2})(AM|PM)$"
)


def is_int(value: object) -> TypeIs[int]:
    """Return True for a JSON integer (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeIs[int | float]:
    """Return True for a JSON number (bool excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_event(event: Any, index: int, device_hid: str) -> list[str]:
    """Check one schedule event against §7.1/§7.2; return the problems found."""
    where = f"event {index}"
    if not isinstance(event, dict):
        return [f"{where}: not an object: {event!r}"]
    errors: list[str] = []
    if tuple(event) != EVENT_KEYS:
        errors.append(
            f"{where}: keys {list(event)} != {list(EVENT_KEYS)} (names and order, §7.1)"
        )
    errors.extend(
        f"{where}: {key} is not a boolean: {event[key]!r}"
        for key in ("active", "automatic", "reminder")
        if key in event and not isinstance(event[key], bool)
    )
    if "name" in event and event["name"] != f"FEED{index}":
        errors.append(f"{where}: name {event['name']!r} != 'FEED{index}'")
    portion = event.get("portion")
    if "portion" in event and (not is_number(portion) or portion <= 0):
        errors.append(f"{where}: portion is not a positive number: {portion!r}")
    time_s = event.get("time")
    time_ok = is_int(time_s) and 0 <= time_s < SECONDS_PER_DAY
    if "time" in event and not time_ok:
        errors.append(f"{where}: time is not an integer in 0..86399: {time_s!r}")
    feeding_id = event.get("feeding_id")
    if "feeding_id" in event:
        errors.extend(
            _check_feeding_id(
                where, feeding_id, time_s if time_ok else None, device_hid
            )
        )
    return errors


def _check_feeding_id(
    where: str, feeding_id: Any, time_s: int | None, device_hid: str
) -> list[str]:
    if not isinstance(feeding_id, str) or not (match := _FEEDING_ID.match(feeding_id)):
        return [
            f"{where}: feeding_id {feeding_id!r} does not match <dev16>_feed<id>_<H>:<MM><AM|PM>"
        ]
    errors = []
    if match.group(1) != device_hid[:16]:
        errors.append(
            f"{where}: feeding_id prefix {match.group(1)!r} != device hid[:16]"
        )
    if time_s is not None:
        expected = f"{time_s // 3600}:{(time_s // 60) % 60:02d}{'AM' if time_s < 43200 else 'PM'}"
        got = f"{match.group(3)}:{match.group(4)}{match.group(5)}"
        if got != expected:
            errors.append(
                f"{where}: feeding_id time {got!r} != {expected!r} for time {time_s}"
            )
    return errors


def schedule_md5(events: list[dict[str, Any]]) -> str:
    """Return the simulator's local_md5: MD5 of ``json.dumps(events)``, "" when empty.

    The real algorithm is unknown (§5.5); this one is stable, which is all the
    server may rely on.
    """
    if not events:
        return ""
    return hashlib.md5(json.dumps(events).encode()).hexdigest()  # noqa: S324 - protocol value


class HeldSchedule:
    """The schedule events the feeder holds, keyed by index."""

    def __init__(self) -> None:
        """Start empty, with no modification open."""
        self._slots: dict[int, dict[str, Any]] = {}
        self._mod_size: int | None = None
        self._mod_added: list[int] = []

    @property
    def events(self) -> list[dict[str, Any]]:
        """Return the held events in index order (a new list)."""
        return [self._slots[i] for i in sorted(self._slots)]

    @property
    def modification_open(self) -> bool:
        """Return True between ``schedule_mod_start`` and ``schedule_mod_end``."""
        return self._mod_size is not None

    def replace(self, events: list[dict[str, Any]]) -> None:
        """Hold exactly these events (legacy ``schedule`` command, or a preset)."""
        self._slots = dict(enumerate(events))
        self._mod_size = None
        self._mod_added = []

    def clear(self) -> None:
        """Forget every event and any open modification."""
        self.replace([])

    def mod_start(self, size: int) -> list[str]:
        """Open a modification of ``size`` events."""
        errors = []
        if self._mod_size is not None:
            errors.append(
                f"schedule_mod_start while a modification of {self._mod_size} is open "
                f"({len(self._mod_added)} added)"
            )
        self._mod_size = size
        self._mod_added = []
        return errors

    def add(self, index: int, event: dict[str, Any]) -> list[str]:
        """Store one event at ``index``."""
        errors = []
        if self._mod_size is None:
            errors.append(
                f"schedule_add (index {index}) outside schedule_mod_start/end"
            )
        else:
            if index >= self._mod_size:
                errors.append(
                    f"schedule_add index {index} >= announced size {self._mod_size}"
                )
            if index in self._mod_added:
                errors.append(
                    f"schedule_add index {index} added twice in one modification"
                )
            self._mod_added.append(index)
        self._slots[index] = event
        return errors

    def mod_end(self) -> list[str]:
        """Close the modification; drop events beyond the announced size."""
        if self._mod_size is None:
            return ["schedule_mod_end without schedule_mod_start"]
        size, added = self._mod_size, self._mod_added
        self._mod_size = None
        self._mod_added = []
        self._slots = {i: e for i, e in self._slots.items() if i < size}
        if sorted(added) != list(range(size)):
            return [
                f"schedule_mod_end after adds {added}, expected indexes 0..{size - 1}"
            ]
        return []

    def due(self, minute_of_day: int) -> list[tuple[int, dict[str, Any]]]:
        """Return the active events whose time falls in this minute of the day."""
        return [
            (index, event)
            for index, event in sorted(self._slots.items())
            if event.get("active") is True
            and is_int(event.get("time"))
            and event["time"] // 60 == minute_of_day
        ]
