"""Calendar of a feeder's meals: the schedule as one editable calendar per feeder.

Every enabled meal is a daily recurring event of one minute at its time of day in the
feeder's zone. The description's first line is the portion (``1/4 cup``) and the second the
status of that day's meal (§9.5), so an event sent back unchanged keeps its portion.

Editing maps events onto the daily meals the feeder can hold:

* A feeder repeats every meal every day, so only daily events are accepted (no repeat rule,
  or ``FREQ=DAILY``, optionally ``INTERVAL=1``).
* Editing or deleting one occurrence, or "this and future" occurrences, edits or deletes the
  whole meal: the feeder's schedule has no exceptions.
* Disabled meals are not shown (the actions that disable a meal also enable it again).
* The event's end is ignored; a meal happens at its start.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
import math
import re
from typing import Any
from zoneinfo import ZoneInfo

from homeassistant.components.calendar import (
    EVENT_DESCRIPTION,
    EVENT_RRULE,
    EVENT_START,
    EVENT_SUMMARY,
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEntityFeature,
    CalendarEvent,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from . import PetnetConfigEntry
from .accounting import occurrence_status
from .const import DOMAIN
from .entity import PetnetEntity, async_add_feeder_entities
from .hub import PetnetHub
from .meals import (
    MealOccurrence,
    MealState,
    format_portion,
    occurrences_between,
    parse_portion,
)
from .models import Feeder
from .protocol.messages import FeedResult

# Edits change HA's own data only; the reconciler delivers them.
PARALLEL_UPDATES = 0

MEALS = CalendarEntityDescription(key="meals", translation_key="meals")

EVENT_LENGTH = timedelta(minutes=1)
DAILY = "FREQ=DAILY"
# The next occurrence of a daily meal is at most a day (plus a DST change) away.
LOOKAHEAD = timedelta(days=2)
# How much of the user's text an error message repeats.
_QUOTE_LENGTH = 60
_MEAL_ID = re.compile(r"[0-9]{1,9}")

_STATUS = {
    MealState.SKIPPED: "Skipped",
    MealState.UPCOMING: "Upcoming",
    MealState.DUE: "Due",
    MealState.MISSED: "Missed",
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the meal calendar of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetMealCalendar]:
        return [PetnetMealCalendar(hub, feeder, MEALS)]

    async_add_feeder_entities(entry, async_add_entities, build)


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders or None,
    )


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_LENGTH else f"{text[: _QUOTE_LENGTH - 1]}…"


def _aware(moment: datetime) -> datetime:
    """A datetime without a zone is in HA's zone (as HA's calendar API assumes)."""
    return dt_util.as_local(moment) if moment.tzinfo is None else moment


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
            raise _invalid("unsupported_recurrence", rrule=_quote(rrule))
        fields[key] = value.strip().upper()
    interval = fields.pop("INTERVAL", "1")
    if (
        fields.pop("FREQ", None) != "DAILY"
        or not interval.isdigit()
        or int(interval) != 1
        or fields
    ):
        raise _invalid("unsupported_recurrence", rrule=_quote(rrule))


def meal_time(start: date | datetime, zone: ZoneInfo) -> int:
    """Seconds since local midnight in the feeder's zone (minute resolution)."""
    if not isinstance(start, datetime):
        raise _invalid("meal_needs_time")
    local = _aware(start).astimezone(zone)
    return local.hour * 3600 + local.minute * 60


def portion_from(description: str | None, default: float) -> float:
    """The portion written in a description, the default one when it is empty."""
    if description is None or not description.strip():
        return default
    if (portion := parse_portion(description)) is None:
        raise _invalid("invalid_portion_text", text=_quote(description))
    return portion


def _span(occurrence: MealOccurrence) -> tuple[datetime, datetime]:
    """Start and end of a meal's event, in HA's zone like every calendar event.

    The end is one real minute after the start. HA checks an event's length on the wall
    clock, though, and in the hour that repeats when DST ends a meal at xx:59 (first pass)
    would end at xx:00 of the second pass, before its start on the wall clock; that event
    ends one wall-clock minute after its start instead (an hour and a minute later).
    """
    start = dt_util.as_local(occurrence.target)
    end = dt_util.as_local(occurrence.target.astimezone(UTC) + EVENT_LENGTH)
    if end.replace(tzinfo=None) <= start.replace(tzinfo=None):
        wall = start.replace(tzinfo=None, fold=0) + EVENT_LENGTH
        end = dt_util.as_local(wall.replace(tzinfo=start.tzinfo).astimezone(UTC))
    return start, end


def _grams(result: FeedResult) -> float | None:
    for grams in (result.grams_actual, result.grams_expected):
        if grams is not None and math.isfinite(grams) and grams >= 0:
            return grams
    return None


class PetnetMealCalendar(PetnetEntity, CalendarEntity):
    """The meals of one feeder as a calendar."""

    _attr_supported_features = (
        CalendarEntityFeature.CREATE_EVENT
        | CalendarEntityFeature.UPDATE_EVENT
        | CalendarEntityFeature.DELETE_EVENT
    )

    @property
    def available(self) -> bool:
        """Always: the schedule is HA's, and edits reach the feeder once it is back."""
        return True

    # ------------------------------------------------------------------ reading

    @property
    def event(self) -> CalendarEvent | None:
        """The meal happening now, else the next one."""
        now = dt_util.utcnow()
        for occurrence in self._occurrences(now - EVENT_LENGTH, now + LOOKAHEAD, now):
            if _span(occurrence)[1].timestamp() > now.timestamp():
                return self._calendar_event(occurrence)
        return None

    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """One event per enabled meal and day, in order, overlapping the range."""
        start, end = _aware(start_date), _aware(end_date)
        return [
            self._calendar_event(occurrence)
            for occurrence in self._occurrences(
                start - EVENT_LENGTH, end, dt_util.utcnow()
            )
            if _span(occurrence)[1].timestamp() > start.timestamp()
        ]

    def _occurrences(
        self, start: datetime, end: datetime, now: datetime
    ) -> list[MealOccurrence]:
        """Occurrences of the enabled meals with a target in [start, end)."""
        feeder = self.feeder
        return [
            occurrence
            for occurrence in occurrences_between(
                feeder.meals,
                [row.result for row in feeder.history],
                start,
                end,
                self.hub.schedules.zone(feeder),
                now,
                self.hub.schedules.window,
            )
            # Disabled meals are not shown; the meal actions enable them again.
            if occurrence.state is not MealState.DISABLED
            # Before a meal had its time it was not planned: such an occurrence is shown
            # only where a dispense matched it, never as missed.
            and (
                occurrence.result is not None
                or feeder.was_due(occurrence.meal.meal_id, occurrence.target)
            )
        ]

    def _calendar_event(self, occurrence: MealOccurrence) -> CalendarEvent:
        meal = occurrence.meal
        start, end = _span(occurrence)
        return CalendarEvent(
            start=start,
            end=end,
            summary=meal.name,
            description=f"{format_portion(meal.portion)}\n{self._status(occurrence)}",
            uid=str(meal.meal_id),
            recurrence_id=occurrence.target.date().isoformat(),
            rrule=DAILY,
        )

    def _status(self, occurrence: MealOccurrence) -> str:
        result = occurrence.result
        if result is not None:
            if occurrence.state is MealState.FAILED:
                return f"Failed: {result.error or 'unknown error'}"
            # In HA's zone, like the event it describes.
            at = dt_util.as_local(
                dt_util.utc_from_timestamp(result.start_ms / 1000)
            ).strftime("%H:%M")
            grams = _grams(result)
            return (
                f"Dispensed at {at} · {grams:.1f} g"
                if grams is not None
                else f"Dispensed at {at}"
            )
        # A result, if one came anyway (say, the front button), still shows what happened.
        return _STATUS[occurrence_status(self.feeder, occurrence)]

    # ------------------------------------------------------------------ editing

    def _meal_id(self, uid: str) -> int:
        if _MEAL_ID.fullmatch(uid) and any(
            meal.meal_id == int(uid) for meal in self.feeder.meals
        ):
            return int(uid)
        raise _invalid("unknown_meal", meal_id=_quote(uid))

    def _meal_fields(
        self, event: dict[str, Any], current_portion: float | None
    ) -> dict[str, Any]:
        """Name, time and portion of an event; raise without changing anything."""
        if not isinstance(start := event.get(EVENT_START), date):
            raise _invalid("meal_needs_time")
        time_s = meal_time(start, self.hub.schedules.zone(self.feeder))
        check_daily(event.get(EVENT_RRULE))
        description = event.get(EVENT_DESCRIPTION)
        if description is None and current_portion is not None:
            portion = current_portion
        else:
            portion = portion_from(description, self.hub.settings.default_portion)
        return {
            "name": event.get(EVENT_SUMMARY),
            "time_s": time_s,
            "portion": portion,
        }

    async def async_create_event(self, **kwargs: Any) -> None:
        """Add a daily meal."""
        fields = self._meal_fields(kwargs, None)
        self.hub.schedules.add_meal(self.feeder, **fields)

    async def async_update_event(
        self,
        uid: str,
        event: dict[str, Any],
        recurrence_id: str | None = None,
        recurrence_range: str | None = None,
    ) -> None:
        """Change a meal; one occurrence or "this and future" changes the whole meal.

        A description left out keeps the meal's portion; an empty one sets the default.
        """
        meal_id = self._meal_id(uid)
        current = next(m for m in self.feeder.meals if m.meal_id == meal_id)
        fields = self._meal_fields(event, current.portion)
        self.hub.schedules.update_meal(self.feeder, meal_id, **fields)

    async def async_delete_event(
        self,
        uid: str,
        recurrence_id: str | None = None,
        recurrence_range: str | None = None,
    ) -> None:
        """Delete a meal; one occurrence or "this and future" deletes the whole meal."""
        self.hub.schedules.remove_meal(self.feeder, self._meal_id(uid))
