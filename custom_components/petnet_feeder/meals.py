"""Meals: when they happen and what became of them (protocol §7.1-7.2, §9.4, §9.5).

Pure Python (standard library only), so it can be tested without Home Assistant.

Time rules used throughout:

* A meal time is seconds since **local** midnight (§7.1). Its target on a day is the wall-clock
  time ``day 00:00 + time_s`` in the feeder's zone, resolved with ``fold=0`` (:func:`meal_target`).
* Every comparison between instants is done in integer epoch milliseconds. Python compares two
  datetimes that share a ``tzinfo`` by wall time, ignoring the UTC offset and ``fold``, which is
  wrong around DST changes; epoch arithmetic is not.
* Every datetime passed in (``now``, ``start``, ``end``, ``after``) must be timezone-aware; a naive
  one raises :class:`ValueError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from fractions import Fraction
import functools
import math
import re
from typing import Any, Final, Self
from zoneinfo import ZoneInfo

from .protocol.messages import SOURCE_SCHEDULE, FeedResult

SECONDS_PER_DAY: Final = 86400
DEFAULT_WINDOW: Final = timedelta(minutes=5)
# A meal is missed only this long after its window closed: a result may still be on its way.
DELIVERY_SLACK: Final = timedelta(minutes=2)

CAPACITY_CUPS: Final = 20.5
TBSP_PER_CUP: Final = 16

# The feeder dispenses in steps of 1/16 cup (glossary: "Portion").
PORTION_STEPS_PER_CUP: Final = 16

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_ONE_DAY: Final = timedelta(days=1)
_ONE_SECOND: Final = timedelta(seconds=1)
_SLACK_MS: Final = DELIVERY_SLACK // _ONE_MS

# How many earlier local days evaluate_day looks at for meals that may claim a result first.
_LOOKBACK_DAYS: Final = 2
# How many local days next_occurrence searches after the day of `after`: a week, and the DST
# change that can push a weekly meal's occurrence to the eighth day.
_LOOKAHEAD_DAYS: Final = 8


# --------------------------------------------------------------------------- the meal model


WEEKDAYS: Final = range(7)  # Monday is 0, as date.weekday() counts


@dataclass(frozen=True, slots=True)
class Meal:
    """A scheduled meal, as the integration stores it.

    ``meal_id`` is the feeder-wide stable id (§7.2), ``time_s`` the seconds since local midnight
    (0…86399, §7.1), ``portion`` the amount in cups. Which local days it happens on:

    * ``weekdays`` (Monday 0 … Sunday 6): only on these weekdays; None: every day.
    * ``first_date`` / ``last_date``: not before / not after these dates (inclusive); a
      one-off meal has both on its one day.
    * ``except_dates``: days whose occurrence was deleted or replaced ("this event").

    ``pet_id`` is the pet the meal is for, if any. The constructor checks types, the time
    range, the days and that the portion is a finite number; the portion's allowed range is
    the caller's business.
    """

    meal_id: int
    name: str
    time_s: int
    portion: float
    enabled: bool = True
    weekdays: frozenset[int] | None = None
    first_date: date | None = None
    last_date: date | None = None
    except_dates: frozenset[date] = frozenset()
    pet_id: str | None = None

    def __post_init__(self) -> None:
        """Check the fields and store the portion as a float."""
        for label, value in (("meal_id", self.meal_id), ("time_s", self.time_s)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{label} must be an integer, got {value!r}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {self.name!r}")
        if not isinstance(self.enabled, bool):
            raise TypeError(f"enabled must be a bool, got {self.enabled!r}")
        if isinstance(self.portion, bool) or not isinstance(self.portion, int | float):
            raise TypeError(f"portion must be a number, got {self.portion!r}")
        if not 0 <= self.time_s < SECONDS_PER_DAY:
            raise ValueError(f"time_s must be in 0..86399, got {self.time_s}")
        if not math.isfinite(self.portion):
            raise ValueError(f"portion must be finite, got {self.portion}")
        object.__setattr__(self, "portion", float(self.portion))
        if self.weekdays is not None:
            days = frozenset(self.weekdays)
            if not days or any(
                isinstance(d, bool) or not isinstance(d, int) or d not in WEEKDAYS
                for d in days
            ):
                raise ValueError(
                    f"weekdays must be some of 0..6, got {self.weekdays!r}"
                )
            object.__setattr__(self, "weekdays", days)
        for label, day in (
            ("first_date", self.first_date),
            ("last_date", self.last_date),
        ):
            if day is not None and (
                isinstance(day, datetime) or not isinstance(day, date)
            ):
                raise TypeError(f"{label} must be a date, got {day!r}")
        if (
            self.first_date is not None
            and self.last_date is not None
            and self.last_date < self.first_date
        ):
            raise ValueError(
                f"last_date {self.last_date} is before first_date {self.first_date}"
            )
        excepted = frozenset(self.except_dates)
        if any(isinstance(d, datetime) or not isinstance(d, date) for d in excepted):
            raise TypeError(f"except_dates must be dates, got {self.except_dates!r}")
        object.__setattr__(self, "except_dates", excepted)
        if self.pet_id is not None and not isinstance(self.pet_id, str):
            raise TypeError(f"pet_id must be a string, got {self.pet_id!r}")

    @property
    def is_one_off(self) -> bool:
        """Whether the meal happens on one day only."""
        return self.first_date is not None and self.first_date == self.last_date

    def occurs_on(self, day: date) -> bool:
        """Whether the meal has an occurrence on local ``day`` (enabled or not)."""
        if self.first_date is not None and day < self.first_date:
            return False
        if self.last_date is not None and day > self.last_date:
            return False
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        return day not in self.except_dates

    def to_dict(self) -> dict[str, Any]:
        """Return the stored (JSON-serialisable) form; days and pet only where set."""
        data: dict[str, Any] = {
            "meal_id": self.meal_id,
            "name": self.name,
            "time_s": self.time_s,
            "portion": self.portion,
            "enabled": self.enabled,
        }
        if self.weekdays is not None:
            data["weekdays"] = sorted(self.weekdays)
        if self.first_date is not None:
            data["first_date"] = self.first_date.isoformat()
        if self.last_date is not None:
            data["last_date"] = self.last_date.isoformat()
        if self.except_dates:
            data["except_dates"] = sorted(d.isoformat() for d in self.except_dates)
        if self.pet_id is not None:
            data["pet_id"] = self.pet_id
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Load the stored form; unknown keys are ignored, missing optional ones default.

        A stored form without days (an older one) is a daily meal. Raises
        :class:`ValueError` when a required key is missing or a value is invalid.
        """
        try:
            weekdays = data.get("weekdays")
            first, last = data.get("first_date"), data.get("last_date")
            return cls(
                meal_id=data["meal_id"],
                name=data["name"],
                time_s=data["time_s"],
                portion=data["portion"],
                enabled=data.get("enabled", True),
                weekdays=frozenset(weekdays) if weekdays is not None else None,
                first_date=date.fromisoformat(first) if first else None,
                last_date=date.fromisoformat(last) if last else None,
                except_dates=frozenset(
                    date.fromisoformat(d) for d in data.get("except_dates") or ()
                ),
                pet_id=data.get("pet_id"),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"invalid stored meal: {err}") from err


def share_a_day(first: Meal, second: Meal) -> bool:
    """Whether two meals can both happen on one local day.

    Exceptions count only where the meals share less than two weeks.
    """
    low = max((d for d in (first.first_date, second.first_date) if d), default=None)
    high = min((d for d in (first.last_date, second.last_date) if d), default=None)
    if low is not None and high is not None:
        if high < low:
            return False
        if (high - low).days < 14:
            return any(
                first.occurs_on(day) and second.occurs_on(day)
                for day in (
                    low + timedelta(days=n) for n in range((high - low).days + 1)
                )
            )
    days_first = first.weekdays if first.weekdays is not None else frozenset(WEEKDAYS)
    days_second = (
        second.weekdays if second.weekdays is not None else frozenset(WEEKDAYS)
    )
    return bool(days_first & days_second)


class MealState(StrEnum):
    """What became of a meal occurrence (§9.5)."""

    DISPENSED = "dispensed"
    FAILED = "failed"
    UPCOMING = "upcoming"
    DUE = "due"
    MISSED = "missed"
    DISABLED = "disabled"
    # Skipped by the user (skip next meal): known where skips are, not from results alone.
    SKIPPED = "skipped"
    # Home Assistant could not hear the feeder while the meal was due (it was stopped): it may
    # have been dispensed. A late or replayed result makes it dispensed.
    UNCONFIRMED = "unconfirmed"
    # The owner paused feeding (away, at the vet): not delivered, never missed.
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class MealOccurrence:
    """One meal on one local day: its target instant, its state and the result it matched."""

    meal: Meal
    target: datetime
    state: MealState
    result: FeedResult | None


# --------------------------------------------------------------------------- time helpers


def epoch_ms(moment: datetime) -> int:
    """Return the epoch milliseconds of an aware datetime (exact, fold-aware)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got {moment!r}")
    return (moment - _EPOCH) // _ONE_MS


def window_ms_of(window: timedelta) -> int:
    """Return a window's length in milliseconds; a negative window raises ValueError."""
    if window < timedelta(0):
        raise ValueError(f"window must not be negative, got {window}")
    return window // _ONE_MS


# Pure, and asked for again on every state write.
@functools.lru_cache(maxsize=4096, typed=True)
def meal_target(day: date, time_s: int, tz: ZoneInfo) -> datetime:
    """Return the aware instant of the wall-clock time ``day 00:00 + time_s`` in ``tz``.

    The addition is wall-clock arithmetic (so 07:00 is 07:00 on DST days too) and the wall time
    is resolved with ``fold=0``:

    * a time inside the **spring-forward gap** does not exist; it resolves to the first instant
      after the gap, so the meal is due at the first minute the clock shows again.
      America/Chicago on 2024-03-10: 02:30 → 03:00 CDT (08:00 UTC).
    * a time inside the **fall-back overlap** happens twice; it resolves to the first (earlier,
      daylight-time) instant. America/Chicago on 2024-11-03: 01:30 → 01:30 CDT (06:30 UTC),
      not 01:30 CST.

    The result is normalised (converted through UTC back to ``tz``), so its wall time, offset and
    ``fold`` always describe a real instant.
    """
    if isinstance(time_s, bool) or not isinstance(time_s, int):
        raise TypeError(f"time_s must be an integer, got {time_s!r}")
    if not 0 <= time_s < SECONDS_PER_DAY:
        raise ValueError(f"time_s must be in 0..86399, got {time_s}")
    wall = datetime.combine(day, time()) + timedelta(seconds=time_s)
    instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        # The wall time does not exist (the clocks jumped over it): the first instant after
        # the gap, where the later offset starts. fold=1 reads it with that later offset,
        # which lands before the gap; the change lies between the two readings.
        low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
        later = instant.astimezone(tz).utcoffset()
        while instant - low > _ONE_SECOND:
            middle = low + (instant - low) / 2
            if middle.astimezone(tz).utcoffset() == later:
                instant = middle
            else:
                low = middle
        instant = instant.replace(microsecond=0)
    return instant.astimezone(tz)


# --------------------------------------------------------------------------- meal status (§9.5)


@dataclass(slots=True)
class Slot:
    """An enabled meal on one day, during matching."""

    meal: Meal
    day: date
    target: datetime
    target_ms: int
    result: FeedResult | None = None


def enabled_slots(
    meals: Sequence[Meal],
    day: date,
    tz: ZoneInfo,
    since: Mapping[int, float] | None = None,
) -> list[Slot]:
    """The enabled meals' occurrences on ``day``; with ``since``, only those due by then.

    ``since`` maps a meal id to when (epoch seconds) the meal got its current time: an
    earlier occurrence never existed, so it is never shown, counted or credited.
    """
    slots = []
    for meal in meals:
        if meal.enabled and meal.occurs_on(day):
            target = meal_target(day, meal.time_s, tz)
            target_ms = epoch_ms(target)
            if since is not None and target_ms < since.get(meal.meal_id, 0.0) * 1000:
                continue
            slots.append(Slot(meal, day, target, target_ms))
    return slots


def credit_slots(
    slots: Sequence[Slot], results: Sequence[FeedResult], window_ms: int
) -> None:
    """Give each slot at most one schedule result, and each result at most one slot.

    Only schedule-source results (``i|src`` 6) satisfy a meal (§9.5): a Feed now or a press of
    the front button (perhaps by the pet) must never hide a missed meal. A result goes to the
    slot nearest to its start; pairs are settled nearest first, ties by the earlier start, then
    the earlier target, then the lower meal id, then the earlier position in ``results``.
    """
    pairs: list[tuple[int, int, int, int, int, int]] = []
    for slot_index, slot in enumerate(slots):
        for result_index, result in enumerate(results):
            if result.source != SOURCE_SCHEDULE:
                continue
            delta = abs(result.start_ms - slot.target_ms)
            if delta <= window_ms:
                pairs.append(
                    (
                        delta,
                        result.start_ms,
                        slot.target_ms,
                        slot.meal.meal_id,
                        result_index,
                        slot_index,
                    )
                )
    pairs.sort()
    taken_results: set[int] = set()
    for *_, result_index, slot_index in pairs:
        slot = slots[slot_index]
        if slot.result is None and result_index not in taken_results:
            taken_results.add(result_index)
            slot.result = results[result_index]


def _first_independent(slots: Sequence[Slot], upto: int, window_ms: int) -> int:
    """Return the latest index ``i <= upto`` from which matching does not depend on ``slots[:i]``.

    Matching is greedy in target order, so later meals never change what earlier meals take.
    Earlier meals can only take a result from a later meal when their windows overlap. If every
    window before ``i`` ends before the window of ``slots[i]`` starts (``slots`` is sorted by
    target), matching from ``i`` gives exactly what matching from the very beginning gives.
    """
    prefix_end: list[int] = []
    for slot in slots[:upto]:
        end = slot.target_ms + window_ms
        prefix_end.append(max(prefix_end[-1], end) if prefix_end else end)
    for index in range(upto, 0, -1):
        if prefix_end[index - 1] < slots[index].target_ms - window_ms:
            return index
    return 0


def slot_state(
    slot: Slot,
    now_ms: int,
    window_ms: int,
    unheard: Sequence[tuple[float, float]] = (),
) -> MealState:
    """The state of a slot at ``now_ms`` from its result, its time and the unheard periods."""
    if slot.result is not None:
        return MealState.FAILED if slot.result.fail is True else MealState.DISPENSED
    if now_ms < slot.target_ms:
        return MealState.UPCOMING
    due_until_ms = slot.target_ms + window_ms + _SLACK_MS
    if now_ms <= due_until_ms:
        return MealState.DUE
    if any(
        since * 1000 <= due_until_ms and slot.target_ms - window_ms <= until * 1000
        for since, until in unheard
    ):
        return MealState.UNCONFIRMED
    return MealState.MISSED


def evaluate_day(
    meals: Iterable[Meal],
    results: Iterable[FeedResult],
    day: date,
    tz: ZoneInfo,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    since: Mapping[int, float] | None = None,
    unheard: Sequence[tuple[float, float]] = (),
) -> list[MealOccurrence]:
    """Return the state of every meal on local ``day`` (§9.5), ordered by target then meal_id.

    ``results`` are one feeder's feed results (any order, any days). Rules:

    * Disabled meals are not evaluated: state DISABLED, no result, and they never take a result.
    * With ``since`` (meal id -> epoch seconds when the meal got its current time), an
      occurrence before that never existed: it is left out, and takes no result.
    * Only schedule-source results (``i|src`` 6) satisfy a meal; manual, button and unknown
      sources never do (they count as food elsewhere). A schedule result is a candidate for a
      meal when ``|start_ms - target| <= window`` (inclusive).
    * Each result satisfies at most one meal and each meal takes at most one result: pairs are
      settled nearest first (ties: the earlier start, then the earlier target, then the lower
      meal_id, then the earlier one in ``results``), so a result goes to the meal nearest to it.
    * The pairing is global across days (a result at 00:00 between a meal at 23:55 and one at
      00:05 goes to the earlier target on a tie), so
      :func:`evaluate_day` and :func:`occurrences_between` agree. The look-back starts at the
      latest point, at most two days back, before which no meal's window reaches a later meal's
      window; that is exact unless the windows chain without a gap for over two days (a window
      of hours with many meals), in which case meals older than two days are ignored.
    * A matched result gives FAILED when its ``fail`` is True, DISPENSED otherwise (also when
      ``fail`` is unknown). Without a result: UPCOMING if ``now`` < target, DUE if target <= ``now``
      <= target + window + ``DELIVERY_SLACK``, MISSED after that (a result may still be on
      its way when the window closes), or UNCONFIRMED when that span overlaps one of the
      ``unheard`` periods (epoch seconds) in which no result could arrive. Results are not
      filtered by ``now``: the caller passes the results it knows.
    """
    meal_list = list(meals)
    result_list = list(results)
    now_ms = epoch_ms(now)
    window_ms = window_ms_of(window)

    slots: list[Slot] = []
    for back in range(_LOOKBACK_DAYS, -1, -1):
        slots.extend(enabled_slots(meal_list, day - back * _ONE_DAY, tz, since))
    slots.sort(key=lambda slot: (slot.target_ms, slot.meal.meal_id))
    wanted = [index for index, slot in enumerate(slots) if slot.day == day]

    if wanted:
        begin = _first_independent(slots, wanted[0], window_ms)
        active = slots[begin : wanted[-1] + 1]
        low = active[0].target_ms - window_ms
        high = active[-1].target_ms + window_ms
        # Results outside every window can never match; keep the others (in their order).
        nearby = [r for r in result_list if low <= r.start_ms <= high]
        credit_slots(active, nearby, window_ms)

    occurrences = [
        (
            slot.target_ms,
            slot.meal.meal_id,
            MealOccurrence(
                slot.meal,
                slot.target,
                slot_state(slot, now_ms, window_ms, unheard),
                slot.result,
            ),
        )
        for slot in slots
        if slot.day == day
    ]
    for meal in meal_list:
        if not meal.enabled and meal.occurs_on(day):
            target = meal_target(day, meal.time_s, tz)
            occurrences.append(
                (
                    epoch_ms(target),
                    meal.meal_id,
                    MealOccurrence(meal, target, MealState.DISABLED, None),
                )
            )
    occurrences.sort(key=lambda item: (item[0], item[1]))
    return [occurrence for _, _, occurrence in occurrences]


def occurrences_between(
    meals: Iterable[Meal],
    results: Iterable[FeedResult],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    since: Mapping[int, float] | None = None,
    unheard: Sequence[tuple[float, float]] = (),
) -> list[MealOccurrence]:
    """Return every occurrence (disabled ones included) whose target is in ``[start, end)``.

    Each local day the range touches is evaluated with :func:`evaluate_day` (one extra day on
    each side, so no zone, DST change or month end can drop a target), and the occurrences are
    kept by their instant. Ordered by target, then meal_id. An empty or inverted range gives [].
    """
    start_ms = epoch_ms(start)
    end_ms = epoch_ms(end)
    if end_ms <= start_ms:
        return []
    meal_list = list(meals)
    result_list = list(results)
    first_day = start.astimezone(tz).date() - _ONE_DAY
    last_day = end.astimezone(tz).date() + _ONE_DAY
    found: list[tuple[int, int, MealOccurrence]] = []
    day = first_day
    while day <= last_day:
        for occurrence in evaluate_day(
            meal_list, result_list, day, tz, now, window, since, unheard
        ):
            target_ms = epoch_ms(occurrence.target)
            if start_ms <= target_ms < end_ms:
                found.append((target_ms, occurrence.meal.meal_id, occurrence))
        day += _ONE_DAY
    found.sort(key=lambda item: (item[0], item[1]))
    return [occurrence for _, _, occurrence in found]


def next_occurrence(
    meals: Iterable[Meal], after: datetime, tz: ZoneInfo
) -> tuple[Meal, datetime] | None:
    """Return the next enabled meal whose target is strictly after ``after``, with its target.

    Searches the local day of ``after`` and the eight days that follow (one day earlier too,
    for safety around odd offsets), and the first day of a meal that starts later. Equal
    targets: lower meal_id first. None without an enabled meal to come.
    """
    after_ms = epoch_ms(after)
    enabled = [meal for meal in meals if meal.enabled]
    first_day = after.astimezone(tz).date()
    days = [first_day + offset * _ONE_DAY for offset in range(-1, _LOOKAHEAD_DAYS + 1)]
    days.extend(
        {
            meal.first_date
            for meal in enabled
            if meal.first_date is not None and meal.first_date > days[-1]
        }
    )
    best: tuple[int, int, Meal, datetime] | None = None
    for day in days:
        for slot in enabled_slots(enabled, day, tz):
            if slot.target_ms <= after_ms:
                continue
            key = (slot.target_ms, slot.meal.meal_id, slot.meal, slot.target)
            if best is None or key[:2] < best[:2]:
                best = key
    return None if best is None else (best[2], best[3])


# --------------------------------------------------------------------------- portions

_UNICODE_FRACTIONS: Final = {
    "¼": Fraction(1, 4),
    "½": Fraction(1, 2),
    "¾": Fraction(3, 4),
    "⅛": Fraction(1, 8),
    "⅜": Fraction(3, 8),
    "⅝": Fraction(5, 8),
    "⅞": Fraction(7, 8),
}
_INT = r"[0-9]{1,4}"
_PORTION_RE: Final = re.compile(
    rf"""
    (?:portion\s*[:=]?\s*)?                                      # optional label
    (?:
        (?P<whole>{_INT})(?:\s+|\s*-\s*)(?P<mnum>{_INT})\s*/\s*(?P<mden>{_INT})  # 1 1/2
      | (?P<uwhole>{_INT})?\s*(?P<uni>[¼½¾⅛⅜⅝⅞])                  # 1½, ½
      | (?P<num>{_INT})\s*/\s*(?P<den>{_INT})                    # 1/4
      | (?P<dec>{_INT}(?:\.[0-9]{{1,6}})?|\.[0-9]{{1,6}})         # 0.25, 2, .5
    )
    \s*
    (?:
        (?P<cups>cups?|c)
      | (?P<tbsp>tbsps?|tbs|tablespoons?)
    )?
    \.?
    """,
    re.IGNORECASE | re.VERBOSE,
)
_LABEL_RE: Final = re.compile(r"\s*portion\b", re.IGNORECASE)
_MAX_LINE_LENGTH: Final = 200
_MAX_LINES: Final = 50


def _parse_line(line: str) -> float | None:
    text = line.strip()
    if not text or len(text) > _MAX_LINE_LENGTH:
        return None
    match = _PORTION_RE.fullmatch(text)
    if match is None:
        return None
    groups = match.groupdict()
    if groups["whole"] is not None:
        numerator, denominator = int(groups["mnum"]), int(groups["mden"])
        if denominator == 0 or numerator >= denominator:
            return None
        amount = int(groups["whole"]) + Fraction(numerator, denominator)
    elif groups["uni"] is not None:
        amount = int(groups["uwhole"] or 0) + _UNICODE_FRACTIONS[groups["uni"]]
    elif groups["num"] is not None:
        denominator = int(groups["den"])
        if denominator == 0:
            return None
        amount = Fraction(int(groups["num"]), denominator)
    else:
        amount = Fraction(groups["dec"])
    if groups["tbsp"] is not None:
        amount /= TBSP_PER_CUP
    return float(amount)


def parse_portion(text: str) -> float | None:
    """Parse a portion in cups from free text (e.g. a calendar event's description).

    Accepted, case-insensitive, optionally after a ``portion``/``portion:`` label: a decimal
    (``0.25``, ``.5``, ``2``), a fraction (``1/4``), a mixed number (``1 1/2``, ``1-1/2``) or a
    Unicode fraction (``½``, ``1½``), then optionally a unit: ``cup``/``cups``/``c`` (the
    default) or ``tbsp``/``tbs``/``tablespoon(s)`` (divided by 16).

    Each line is tried on its own (the whole line must be the portion): a line starting with
    ``portion`` wins, otherwise the first line that parses. Only the first 50 lines are read. Anything else, including a sign (``-1 cup``),
    ``NaN``/``inf``, exponents, a zero denominator (``1/0``), an unknown unit or a mixed number
    whose fraction is not proper, gives None. It never raises.

    The range is **not** checked: ``0`` parses as ``0.0`` and ``9999`` as ``9999.0``, and the
    caller's range/step validation must reject them. Every returned value is finite and >= 0.
    """
    if not isinstance(text, str):
        return None
    first: float | None = None
    lines = text[: _MAX_LINES * (_MAX_LINE_LENGTH + 2)].splitlines()
    for line in lines[:_MAX_LINES]:
        value = _parse_line(line)
        if value is None:
            continue
        if _LABEL_RE.match(line):
            return value
        if first is None:
            first = value
    return first


def format_portion(cups: float) -> str:
    """Format cups as text that :func:`parse_portion` reads back: ``1/4 cup``, ``1 1/2 cups``.

    The amount is rounded to the nearest 1/16 cup (the feeder's step; an exact half step goes
    to the even step) and the fraction reduced.
    Up to one cup the unit is ``cup``, otherwise (and for zero) ``cups``. Raises
    :class:`ValueError` for a negative or non-finite amount.
    """
    if not math.isfinite(cups) or cups < 0:
        raise ValueError(f"portion must be a finite amount >= 0, got {cups}")
    steps = round(cups * PORTION_STEPS_PER_CUP)
    whole, part = divmod(steps, PORTION_STEPS_PER_CUP)
    fraction = Fraction(part, PORTION_STEPS_PER_CUP)
    if whole and part:
        number = f"{whole} {fraction.numerator}/{fraction.denominator}"
    elif part:
        number = f"{fraction.numerator}/{fraction.denominator}"
    else:
        number = str(whole)
    unit = "cup" if 0 < steps <= PORTION_STEPS_PER_CUP else "cups"
    return f"{number} {unit}"


# --------------------------------------------------------------------------- grams and hopper


def _check_density(g_per_tbsp: float) -> None:
    if not math.isfinite(g_per_tbsp) or g_per_tbsp <= 0:
        raise ValueError(f"g_per_tbsp must be a finite number > 0, got {g_per_tbsp}")


def cups_for_grams(grams: float, g_per_tbsp: float) -> float:
    """Return the cups that ``grams`` of food weighing ``g_per_tbsp`` fill (1 cup = 16 tbsp).

    Raises :class:`ValueError` when ``g_per_tbsp`` is not a finite number > 0.
    """
    _check_density(g_per_tbsp)
    return grams / g_per_tbsp / TBSP_PER_CUP


def hopper_level(
    reference_pct: float,
    reference_ms: int,
    results: Iterable[FeedResult],
    g_per_tbsp: float | None,
) -> float | None:
    """Estimate the hopper fill level in % (§9.4) from the user's last reference.

    level = (reference/100 * 20.5 cups - cups dispensed since the reference) / 20.5 * 100, where
    the cups come from the **expected** grams (``f|e_g``) of the results with
    ``start_ms >= reference_ms``. Failed results (``fail`` True) and results without expected
    grams (or with a negative or non-finite value) count as 0 g.

    The level is clamped to 0..100 and then **truncated** to a whole percent (``math.floor`` of
    a value >= 0, like upstream's ``int()``), returned as a float such as ``84.0``; the protocol's
    test vector (100 %, 10 g/tbsp, 100 x 5 g → 84.76) must give 84, which rounding would not.
    Returns None without a usable recipe (``g_per_tbsp`` None, <= 0 or not finite) or when
    ``reference_pct`` is not finite.
    """
    if g_per_tbsp is None or not math.isfinite(g_per_tbsp) or g_per_tbsp <= 0:
        return None
    if not math.isfinite(reference_pct):
        return None
    grams = 0.0
    for result in results:
        if result.start_ms < reference_ms or result.fail is True:
            continue
        expected = result.grams_expected
        if expected is not None and math.isfinite(expected) and expected > 0:
            grams += expected
    cups_used = cups_for_grams(grams, g_per_tbsp)
    level = (reference_pct / 100 * CAPACITY_CUPS - cups_used) / CAPACITY_CUPS * 100
    level = min(100.0, max(0.0, level))
    # Round away float noise first, so an exact 90 computed as 89.999999999 stays 90.
    return float(math.floor(round(level, 9)))
