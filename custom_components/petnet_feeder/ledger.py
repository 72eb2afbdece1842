"""The meal ledger: one record per meal occurrence that was due, and what became of it (§9.5).

Pure Python (standard library only), so it can be tested without Home Assistant.

Why a ledger: a meal's past must not follow its present. Without one, every status was derived
from the meals as they are now, so moving a meal from 07:00 to 18:00 made this morning's
dispensed breakfast disappear, and deleting a meal erased its history. Here an occurrence is
*recorded* when its time comes (the monitor's minute check, and before every edit of the meals),
from the meals as they are at that moment. Edits change only what is not recorded yet.

* **Recorded** occurrences (target up to ``recorded_until``) come from the ledger, whatever the
  meals are now. A deleted meal keeps its past; a new meal has none.
* Later occurrences come from the current meals, and are recorded as their time comes.
* Crediting (which result went to which occurrence) and the state of each occurrence are computed
  by :mod:`.meals`' rules over the ledger's open entries plus the computed ones, in one pass,
  whatever range is asked for, so every reader sees the same account.
* An entry is **final** once it is ``SETTLE_DAYS`` old: its state and result are kept as they were
  last computed (the result history is bounded, its entry is not), and late results no longer move
  it. ``LEDGER_DAYS`` of entries are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Self
from zoneinfo import ZoneInfo

from .meals import (
    Meal,
    MealOccurrence,
    MealState,
    Slot,
    credit_slots,
    enabled_slots,
    epoch_ms,
    slot_state,
    window_ms_of,
)
from .protocol.messages import FeedResult

LEDGER_DAYS: Final = 35
SETTLE_DAYS: Final = 2

MISSED_OFFLINE: Final = "offline"
MISSED_SILENT: Final = "silent"

_ONE_DAY: Final = timedelta(days=1)

type WasSkipped = Callable[[int, datetime], bool]


def _never_skipped(_meal_id: int, _target: datetime) -> bool:
    return False


@dataclass(slots=True)
class LedgerEntry:
    """One occurrence of a meal: the meal as it was, its local day and time, its outcome."""

    meal_id: int
    name: str
    time_s: int
    portion: float
    day: date
    target_s: float  # epoch seconds
    skipped: bool = False
    paused: bool = False
    state: MealState = MealState.DUE
    result: FeedResult | None = None
    # Why a missed meal was missed: the feeder was offline, or online but did not dispense.
    missed_reason: str | None = None
    final: bool = False
    pet_id: str | None = None

    @property
    def meal(self) -> Meal:
        """The meal as it was when this occurrence was recorded."""
        return Meal(
            self.meal_id, self.name, self.time_s, self.portion, pet_id=self.pet_id
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the stored (JSON-serialisable) form."""
        return {
            "meal_id": self.meal_id,
            "name": self.name,
            "time_s": self.time_s,
            "portion": self.portion,
            "day": self.day.isoformat(),
            "target_s": self.target_s,
            "skipped": self.skipped,
            "paused": self.paused,
            "state": self.state.value,
            "result": self.result.to_dict() if self.result is not None else None,
            "missed_reason": self.missed_reason,
            "final": self.final,
        } | ({"pet_id": self.pet_id} if self.pet_id is not None else {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Load the stored form; raises ValueError (or KeyError, TypeError) when unreadable."""
        meal = Meal.from_dict(data)  # checks id, name, time and portion
        result = data.get("result")
        return cls(
            meal_id=meal.meal_id,
            name=meal.name,
            time_s=meal.time_s,
            portion=meal.portion,
            day=date.fromisoformat(data["day"]),
            target_s=float(data["target_s"]),
            skipped=bool(data.get("skipped", False)),
            paused=bool(data.get("paused", False)),
            state=MealState(data.get("state", MealState.DUE)),
            result=FeedResult.from_dict(result) if result else None,
            missed_reason=data.get("missed_reason"),
            final=bool(data.get("final", False)),
            pet_id=meal.pet_id,
        )


@dataclass(slots=True)
class MealLedger:
    """A feeder's recorded occurrences, ordered by target then meal id."""

    entries: list[LedgerEntry] = field(default_factory=list)
    # Every occurrence with a target up to here (epoch seconds) is recorded; None: nothing yet.
    recorded_until: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the stored form."""
        return {
            "recorded_until": self.recorded_until,
            "entries": [entry.to_dict() for entry in self.entries],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Load the stored form; unreadable entries are left out."""
        entries = []
        for raw in data.get("entries") or []:
            try:
                entries.append(LedgerEntry.from_dict(raw))
            except (KeyError, TypeError, ValueError):
                continue
        until = data.get("recorded_until")
        return cls(entries, float(until) if until is not None else None)

    def entry(self, meal_id: int, target: datetime) -> LedgerEntry | None:
        """The recorded entry of a meal at a target, if any."""
        target_s = target.timestamp()
        for entry in reversed(self.entries):
            if entry.meal_id == meal_id and entry.target_s == target_s:
                return entry
        return None


def ledger_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Where a ledger without entries begins: local midnight ``SETTLE_DAYS`` before today."""
    day = now.astimezone(tz).date() - SETTLE_DAYS * _ONE_DAY
    return datetime.combine(day, time(), tzinfo=tz)


def _cursor_ms(ledger: MealLedger, now: datetime, tz: ZoneInfo) -> int:
    """Targets after this (epoch ms) are computed from the current meals."""
    if ledger.recorded_until is None:
        return epoch_ms(ledger_start(now, tz)) - 1
    return round(ledger.recorded_until * 1000)


def _computed_slots(
    meals: Sequence[Meal],
    tz: ZoneInfo,
    after_ms: int,
    until: datetime,
    since: Mapping[int, float] | None,
) -> list[Slot]:
    """Occurrences of the current meals with a target in (after_ms, until]."""
    until_ms = epoch_ms(until)
    if until_ms <= after_ms:
        return []
    first = (
        datetime.fromtimestamp(after_ms / 1000, UTC).astimezone(tz).date() - _ONE_DAY
    )
    last = until.astimezone(tz).date() + _ONE_DAY
    slots: list[Slot] = []
    day = first
    while day <= last:
        slots.extend(
            slot
            for slot in enabled_slots(meals, day, tz, since)
            if after_ms < slot.target_ms <= until_ms
        )
        day += _ONE_DAY
    return slots


def record(
    ledger: MealLedger,
    meals: Sequence[Meal],
    tz: ZoneInfo,
    now: datetime,
    since: Mapping[int, float] | None = None,
    was_skipped: WasSkipped = _never_skipped,
    was_paused: WasSkipped = _never_skipped,
) -> list[LedgerEntry]:
    """Record every occurrence of the current meals whose time came since the last call.

    Call it with the meals as they were until ``now``: before an edit changes them, and from
    the minute check. A meal that got its time after a target (``since``) has no occurrence
    there. Returns the new entries. Entries older than ``LEDGER_DAYS`` are dropped.
    """
    # Occurrences older than the ledger keeps are not recorded at all (a long stop).
    oldest_ms = epoch_ms(now) - LEDGER_DAYS * 86_400_000
    after_ms = max(_cursor_ms(ledger, now, tz), oldest_ms)
    known = {(entry.meal_id, entry.target_s) for entry in ledger.entries}
    added = []
    for slot in _computed_slots(meals, tz, after_ms, now, since):
        target_s = slot.target_ms / 1000
        if (slot.meal.meal_id, target_s) in known:
            continue
        added.append(
            LedgerEntry(
                meal_id=slot.meal.meal_id,
                name=slot.meal.name,
                time_s=slot.meal.time_s,
                portion=slot.meal.portion,
                day=slot.day,
                target_s=target_s,
                skipped=was_skipped(slot.meal.meal_id, slot.target),
                paused=was_paused(slot.meal.meal_id, slot.target),
                pet_id=slot.meal.pet_id,
            )
        )
    ledger.recorded_until = max(epoch_ms(now), after_ms) / 1000
    if added:
        ledger.entries.extend(added)
        ledger.entries.sort(key=lambda entry: (entry.target_s, entry.meal_id))
    keep_from = (epoch_ms(now) / 1000) - LEDGER_DAYS * 86400
    if ledger.entries and ledger.entries[0].target_s < keep_from:
        ledger.entries = [e for e in ledger.entries if e.target_s >= keep_from]
    return added


@dataclass(slots=True)
class _Open:
    """An open entry during crediting: the entry and its slot."""

    entry: LedgerEntry
    slot: Slot


def occurrences(
    ledger: MealLedger,
    meals: Sequence[Meal],
    results: Iterable[FeedResult],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    now: datetime,
    window: timedelta,
    *,
    since: Mapping[int, float] | None = None,
    unheard: Sequence[tuple[float, float]] = (),
    was_skipped: WasSkipped = _never_skipped,
    was_paused: WasSkipped = _never_skipped,
    include_disabled: bool = False,
    settle: bool = False,
) -> list[MealOccurrence]:
    """Every occurrence with a target in ``[start, end)``, ordered by target then meal id.

    Recorded ones come from the ledger, later ones from the current meals. Results are
    credited over all open entries and the computed occurrences that a result can reach,
    independently of the range asked for. With ``include_disabled``, disabled meals appear
    (state DISABLED) where their time is after the recorded part. With ``settle``, the open
    entries take the state and result computed now, and those ``SETTLE_DAYS`` old become final.
    """
    now_ms = epoch_ms(now)
    window_ms = window_ms_of(window)
    cursor_ms = _cursor_ms(ledger, now, tz)
    result_list = list(results)
    final_starts = {
        entry.result.start_ms
        for entry in ledger.entries
        if entry.final and entry.result is not None
    }
    free = [r for r in result_list if r.start_ms not in final_starts]

    opened = [
        _Open(
            entry,
            Slot(
                entry.meal,
                entry.day,
                _instant(entry.target_s, tz),
                round(entry.target_s * 1000),
            ),
        )
        for entry in ledger.entries
        if not entry.final
    ]
    # Computed occurrences a result can still reach: up to the latest result's window.
    reach_ms = max((r.start_ms for r in free), default=cursor_ms) + window_ms
    reachable = _computed_slots(
        meals, tz, cursor_ms, _instant(reach_ms / 1000, tz), since
    )
    slots = [item.slot for item in opened] + reachable
    if free and slots:
        low = min(slot.target_ms for slot in slots) - window_ms
        credit_slots(
            sorted(slots, key=lambda slot: (slot.target_ms, slot.meal.meal_id)),
            [r for r in free if r.start_ms >= low],
            window_ms,
        )

    def state_of(slot: Slot, skipped: bool, paused: bool) -> MealState:
        if slot.result is None and paused:
            return MealState.PAUSED
        if slot.result is None and skipped:
            return MealState.SKIPPED
        return slot_state(slot, now_ms, window_ms, unheard)

    if settle:
        final_before = now_ms / 1000 - SETTLE_DAYS * 86400
        for item in opened:
            item.entry.state = state_of(
                item.slot, item.entry.skipped, item.entry.paused
            )
            item.entry.result = item.slot.result
            item.entry.final = item.entry.target_s < final_before

    start_ms, end_ms = epoch_ms(start), epoch_ms(end)
    found: list[tuple[int, int, MealOccurrence]] = []
    by_entry = {id(item.entry): item.slot for item in opened}
    for entry in ledger.entries:
        target_ms = round(entry.target_s * 1000)
        if not start_ms <= target_ms < end_ms:
            continue
        slot = by_entry.get(id(entry))
        if slot is None:  # final: as it was settled
            occurrence = MealOccurrence(
                entry.meal, _instant(entry.target_s, tz), entry.state, entry.result
            )
        else:
            occurrence = MealOccurrence(
                slot.meal,
                slot.target,
                state_of(slot, entry.skipped, entry.paused),
                slot.result,
            )
        found.append((target_ms, entry.meal_id, occurrence))

    credited = {(slot.meal.meal_id, slot.target_ms): slot for slot in reachable}
    lower_ms = max(start_ms - 1, cursor_ms)
    if end_ms - 1 > lower_ms:
        last = _instant((end_ms - 1) / 1000, tz)
        for slot in _computed_slots(meals, tz, lower_ms, last, since):
            slot = credited.get((slot.meal.meal_id, slot.target_ms), slot)
            skipped = was_skipped(slot.meal.meal_id, slot.target)
            paused = was_paused(slot.meal.meal_id, slot.target)
            found.append(
                (
                    slot.target_ms,
                    slot.meal.meal_id,
                    MealOccurrence(
                        slot.meal,
                        slot.target,
                        state_of(slot, skipped, paused),
                        slot.result,
                    ),
                )
            )
        if include_disabled:
            disabled = [replace(m, enabled=True) for m in meals if not m.enabled]
            for slot in _computed_slots(disabled, tz, lower_ms, last, None):
                meal = next(m for m in meals if m.meal_id == slot.meal.meal_id)
                found.append(
                    (
                        slot.target_ms,
                        meal.meal_id,
                        MealOccurrence(meal, slot.target, MealState.DISABLED, None),
                    )
                )
    found.sort(key=lambda item: (item[0], item[1]))
    return [occurrence for _, _, occurrence in found]


def _instant(epoch_s: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(tz)
