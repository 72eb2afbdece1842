"""How meals map onto calendar events and back (pure: no Home Assistant import).

Every enabled meal is a daily recurring event of one minute at its time of day in the feeder's
zone. The description is the portion (``1/4 cup``), a blank line, then the status of that
day's meal after a dash (``— Dispensed on time · 30.4 g``, §9.5). Reading an event back accepts only what a feeder can hold: a daily repeat,
a time of day, and a portion on the description's first line (in cups, tablespoons or grams);
the rest of the description, the status shown with it included, is never read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
import math
import re

from .errors import invalid
from .meals import MealOccurrence, MealState, parse_portion
from .protocol.messages import FeedResult

EVENT_LENGTH = timedelta(minutes=1)
DAILY = "FREQ=DAILY"
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


def check_daily(rrule: str | None) -> None:
    """Accept no rule or a daily one (``FREQ=DAILY``, ``INTERVAL=1``); raise otherwise."""
    if rrule is None or not rrule.strip():
        return
    text = rrule.strip()
    if text[:6].upper() == "RRULE:":
        text = text[6:]
    fields: dict[str, str] = {}
    for part in filter(None, (part.strip() for part in text.split(";"))):
        key, sep, value = part.partition("=")
        key = key.strip().upper()
        if not sep or key in fields:
            raise invalid("unsupported_recurrence", rrule=quote(rrule))
        fields[key] = value.strip().upper()
    interval = fields.pop("INTERVAL", "1")
    if (
        fields.pop("FREQ", None) != "DAILY"
        or not interval.isdigit()
        or int(interval) != 1
        or fields
    ):
        raise invalid("unsupported_recurrence", rrule=quote(rrule))


def meal_time(start: date | datetime, zone: tzinfo, local_zone: tzinfo) -> int:
    """Seconds since local midnight in the feeder's zone (minute resolution)."""
    if not isinstance(start, datetime):
        raise invalid("meal_needs_time")
    local = aware(start, local_zone).astimezone(zone)
    return local.hour * 3600 + local.minute * 60


def portion_line(description: str | None) -> str | None:
    """The description's first line that is not blank: where the portion is written."""
    if description is None:
        return None
    return next(
        (line.strip() for line in description.splitlines() if line.strip()), None
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


def event_description(portion: str, status: str) -> str:
    """What an event says: the portion, then (a paragraph of its own) that day's status."""
    return f"{portion}\n\n{STATUS_MARK}{status}"


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
