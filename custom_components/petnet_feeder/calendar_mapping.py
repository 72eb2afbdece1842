"""How meals map onto calendar events and back (pure: no Home Assistant import).

Every enabled meal is an event of one minute at its time of day in the feeder's zone: daily,
weekly on its weekdays, or once, as the meal's days say. The description is the portion
(``1/4 cup``), a blank line, then the status of that day's meal after a dash
(``— Dispensed on time · 30.4 g``, §9.5). Reading an event back accepts what the day plan can
deliver: no repeat, a daily repeat or a weekly one on chosen weekdays (optionally ending), a
time of day, and a portion on the description's first line (in cups, tablespoons or grams);
the rest of the description, the status shown with it included, is never read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
import math
import re

from ical.types.recur import Frequency, Recur

from .errors import InvalidRequestError, invalid
from .meals import Meal, MealOccurrence, MealState, parse_portion
from .protocol.messages import FeedResult

EVENT_LENGTH = timedelta(minutes=1)
DAILY = "FREQ=DAILY"
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_RULE_PARTS = frozenset({"FREQ", "INTERVAL", "BYDAY", "UNTIL", "COUNT", "WKST"})
# A COUNT beyond ten years of days ends no sooner than the meal would be replaced anyway.
_MAX_COUNT = 3660
# How much of the user's text an error message repeats.
QUOTE_LENGTH = 60
_MEAL_ID = re.compile(r"[0-9]{1,9}")
# An amount in grams: "20 g", "20g", "12.5 grams".
_GRAMS = re.compile(
    r"\s*(?:portion\s*[:=]?\s*)?([0-9]{1,4}(?:\.[0-9]{1,3})?)\s*(?:g|grams?)\.?\s*",
    re.IGNORECASE,
)

STATUS_TEXT = {
    MealState.SKIPPED: "Skipped",
    MealState.UPCOMING: "Upcoming",
    MealState.DUE: "Due",
    MealState.MISSED: "Missed",
    MealState.UNCONFIRMED: "Unconfirmed (Home Assistant was not running)",
    MealState.PAUSED: "Paused",
}


def quote(text: str) -> str:
    """The user's text, on one line and cut short, for an error message."""
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_LENGTH else f"{text[: QUOTE_LENGTH - 1]}…"


def aware(moment: datetime, local_zone: tzinfo) -> datetime:
    """A datetime without a zone is in HA's zone (as HA's calendar API assumes)."""
    return moment.replace(tzinfo=local_zone) if moment.tzinfo is None else moment


@dataclass(frozen=True, slots=True)
class MealDays:
    """The days an event's repeat rule gives a meal (see :class:`.meals.Meal`)."""

    weekdays: frozenset[int] | None
    first_date: date | None
    last_date: date | None


def _refuse(rrule: str) -> InvalidRequestError:
    return invalid("unsupported_recurrence", rrule=quote(rrule))


def meal_days(rrule: str | None, start: date, today: date, zone: tzinfo) -> MealDays:
    """The days of a meal whose event starts on local ``start`` and repeats by ``rrule``.

    Accepted: no rule (a one-off meal on ``start``); ``FREQ=DAILY``; ``FREQ=WEEKLY`` with
    ``BYDAY`` weekdays (or the start's weekday), or ``FREQ=DAILY`` limited by ``BYDAY``; each
    with ``INTERVAL=1`` at most, and optionally ending (``UNTIL`` or ``COUNT``). A repeat that
    starts after ``today`` starts on ``start``. Anything else raises InvalidRequestError
    saying what is possible. The rule is read by the ``ical`` package; only the parts listed
    are let through, because it ignores the parts it does not know (``BYHOUR``, say).
    """
    if rrule is None or not rrule.strip():
        return MealDays(None, start, start)
    text = rrule.strip()
    if text[:6].upper() == "RRULE:":
        text = text[6:]
    keys = [part.partition("=")[0].strip().upper() for part in text.split(";") if part]
    if len(set(keys)) != len(keys) or not set(keys) <= _RULE_PARTS:
        raise _refuse(rrule)
    try:
        recur = Recur.from_rrule(text)
    except (ValueError, TypeError, AttributeError, KeyError) as err:
        raise _refuse(rrule) from err
    if (
        recur.interval != 1
        or recur.freq not in (Frequency.DAILY, Frequency.WEEKLY)
        or any(day.occurrence is not None for day in recur.by_weekday)
        or (recur.count is not None and recur.count < 1)
    ):
        raise _refuse(rrule)
    weekdays = (
        frozenset(_WEEKDAYS.index(day.weekday.value) for day in recur.by_weekday)
        or None
    )
    if weekdays is None and recur.freq is Frequency.WEEKLY:
        weekdays = frozenset({start.weekday()})
    if weekdays == frozenset(range(7)):
        weekdays = None
    last: date | None = None
    if isinstance(recur.until, datetime):
        until = recur.until
        last = (until.astimezone(zone) if until.tzinfo else until).date()
    elif isinstance(recur.until, date):
        last = recur.until
    elif recur.count is not None:
        last = _nth_day(start, weekdays, min(recur.count, _MAX_COUNT))
    if last is not None and last < start:
        raise _refuse(rrule)
    return MealDays(weekdays, start if start > today else None, last)


def _nth_day(start: date, weekdays: frozenset[int] | None, count: int) -> date:
    """The date of the ``count``-th day from ``start`` on that is one of ``weekdays``."""
    if weekdays is None:
        return start + timedelta(days=count - 1)
    day, found = start, 0
    while True:
        if day.weekday() in weekdays:
            found += 1
            if found == count:
                return day
        day += timedelta(days=1)


def meal_rrule(meal: Meal) -> str | None:
    """The repeat rule of a meal's event; None for a one-off meal."""
    if meal.is_one_off:
        return None
    rule = DAILY
    if meal.weekdays is not None:
        days = ",".join(_WEEKDAYS[day] for day in sorted(meal.weekdays))
        rule = f"FREQ=WEEKLY;BYDAY={days}"
    if meal.last_date is not None:
        rule += f";UNTIL={meal.last_date:%Y%m%d}"
    return rule


def recurrence_day(recurrence_id: str) -> date:
    """The local date of one occurrence, as the calendar named it (``2026-12-05``)."""
    text = recurrence_id.strip()
    try:
        return date.fromisoformat(text[:10] if "-" in text[:10] else text[:8])
    except ValueError as err:
        raise invalid("unknown_occurrence", recurrence_id=quote(recurrence_id)) from err


def meal_time(start: date | datetime, zone: tzinfo, local_zone: tzinfo) -> int:
    """Seconds since local midnight in the feeder's zone (minute resolution)."""
    if not isinstance(start, datetime):
        raise invalid("meal_needs_time")
    local = aware(start, local_zone).astimezone(zone)
    return local.hour * 3600 + local.minute * 60


def portion_line(description: str | None) -> str | None:
    """The description's first line that is neither blank nor the pet's: the portion."""
    if description is None:
        return None
    return next(
        (
            line.strip()
            for line in description.splitlines()
            if line.strip() and not _PET_LINE.fullmatch(line)
        ),
        None,
    )


def grams_in(line: str) -> float | None:
    """The grams a portion line gives (``20 g``), None if it is not in grams."""
    match = _GRAMS.fullmatch(line)
    return float(match.group(1)) if match else None


def portion_from(
    description: str | None,
    default: float,
    cups_for_grams: Callable[[float], float],
) -> float:
    """The portion on a description's first line, the default one when there is none.

    Only that line is read: what follows (the status the calendar shows under the portion,
    or the owner's notes) never becomes part of the meal. Grams go through
    ``cups_for_grams``, which raises when the feeder cannot convert them.
    """
    if (line := portion_line(description)) is None:
        return default
    if (grams := grams_in(line)) is not None:
        return cups_for_grams(grams)
    if (portion := parse_portion(line)) is None:
        raise invalid("invalid_portion_text", text=quote(description or line))
    return portion


# Home Assistant's event dialog shows a description as HTML text, which runs its lines
# together (frontend 20250411.0 of HA 2025.4, 20260128.6 of HA 2026.2): the dash keeps portion
# and status apart there, as the blank line does in the event editor.
STATUS_MARK = "— "
# A line of the description that names the meal's pet.
PET_LABEL = "Pet:"
_PET_LINE = re.compile(r"\s*pet\s*:\s*(\S.{0,63}?)\s*", re.IGNORECASE)
_MAX_DESCRIPTION_LINES = 50


def event_description(portion: str, status: str, pet: str | None = None) -> str:
    """What an event says: the portion (and the pet), then that day's status on its own."""
    pet_line = f"\n{PET_LABEL} {pet}" if pet else ""
    return f"{portion}{pet_line}\n\n{STATUS_MARK}{status}"


def pet_name_in(description: str) -> str | None:
    """The pet a description names on a ``Pet: <name>`` line, if any (the first such line)."""
    for line in description.splitlines()[:_MAX_DESCRIPTION_LINES]:
        if not line.lstrip().startswith(STATUS_MARK.strip()) and (
            match := _PET_LINE.fullmatch(line)
        ):
            return match.group(1)
    return None


def meal_id_from_uid(uid: str, meal_ids: set[int]) -> int:
    """The meal an event's uid names; InvalidRequestError for any other uid."""
    if _MEAL_ID.fullmatch(uid) and int(uid) in meal_ids:
        return int(uid)
    raise invalid("unknown_meal", meal_id=quote(uid))


def event_span(
    occurrence: MealOccurrence, local_zone: tzinfo
) -> tuple[datetime, datetime]:
    """Start and end of a meal's event, in HA's zone like every calendar event.

    The end is one real minute after the start. HA checks an event's length on the wall
    clock, though, and in the hour that repeats when DST ends a meal at xx:59 (first pass)
    would end at xx:00 of the second pass, before its start on the wall clock; that event
    ends one wall-clock minute after its start instead (an hour and a minute later).
    """
    start = occurrence.target.astimezone(local_zone)
    end = (occurrence.target.astimezone(UTC) + EVENT_LENGTH).astimezone(local_zone)
    if end.replace(tzinfo=None) <= start.replace(tzinfo=None):
        wall = start.replace(tzinfo=None, fold=0) + EVENT_LENGTH
        end = wall.replace(tzinfo=start.tzinfo).astimezone(UTC).astimezone(local_zone)
    return start, end


def grams_of(result: FeedResult) -> float | None:
    """The grams a dispense weighed (or was meant to), if the feeder said."""
    for grams in (result.grams_actual, result.grams_expected):
        if grams is not None and math.isfinite(grams) and grams >= 0:
            return grams
    return None


def _minutes_text(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def result_text(result: FeedResult, *, failed: bool, target: datetime) -> str:
    """What the calendar says about a meal's dispense, against the meal's time.

    ``on time`` within the meal's minute, else whole minutes late or early: never a clock
    time, which would be 24-hour in a 12-hour frontend or the reverse (Home Assistant keeps
    that choice per user, in the frontend); the event itself shows the meal's time in the
    user's own format.
    """
    if failed:
        return f"Failed: {result.error or 'unknown error'}"
    offset_s = result.start_ms / 1000 - target.timestamp()
    if 0 <= offset_s < 60:
        when = "on time"
    elif offset_s > 0:
        when = f"{_minutes_text(math.floor(offset_s / 60))} late"
    else:
        when = f"{_minutes_text(math.ceil(-offset_s / 60))} early"
    grams = grams_of(result)
    return (
        f"Dispensed {when} · {grams:.1f} g"
        if grams is not None
        else f"Dispensed {when}"
    )
