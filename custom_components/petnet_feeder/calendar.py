"""Calendar of a feeder's meals: the schedule as one editable calendar per feeder.

The mapping between meals and events is ``calendar_mapping.py``. Editing maps events onto
meals, which the day plan delivers one day at a time:

* A meal happens once (no repeat rule), daily, or weekly on chosen weekdays, optionally until
  a date; other rules are refused with a message that says what is possible.
* Changing or deleting one occurrence ("this event") is an exception for that date only: a
  changed occurrence becomes a one-off meal. "This and future events" ends the meal the day
  before and starts the changed one on that day (or changes the whole meal when no
  occurrence is still to come before that day: its past is in the ledger).
* Disabled meals are not shown (the actions that disable a meal also enable it again).
* The event's end is ignored; a meal happens at its start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from homeassistant.components.calendar import (
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEvent,
)
from homeassistant.components.calendar.const import (
    EVENT_DESCRIPTION,
    EVENT_RRULE,
    EVENT_START,
    EVENT_SUMMARY,
    CalendarEntityFeature,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .accounting import feeder_occurrences
from .calendar_mapping import (
    EVENT_LENGTH,
    STATUS_TEXT,
    aware,
    event_description,
    event_span,
    meal_days,
    meal_id_from_uid,
    meal_rrule,
    meal_time,
    pet_name_in,
    portion_from,
    quote,
    recurrence_day,
    result_text,
)
from .entity import PetnetEntity, PetnetEntityDescription, async_add_feeder_entities
from .errors import invalid
from .hub import PetnetConfigEntry, PetnetHub
from .meals import Meal, MealOccurrence, MealState, format_portion
from .models import Feeder
from .translate import translated

# Edits change HA's own data only; the reconciler delivers them.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PetnetCalendarEntityDescription(
    CalendarEntityDescription, PetnetEntityDescription
):
    """A feeder calendar."""


# Always available: the schedule is HA's, and edits reach the feeder once it is back.
MEALS = PetnetCalendarEntityDescription(
    key="meals", translation_key="meals", available_while_offline=True
)

# The next occurrence of a weekly meal is at most a week (plus a DST change) away.
LOOKAHEAD = timedelta(days=8)
NEAR_LOOKAHEAD = timedelta(days=2)
THIS_AND_FUTURE = "THISANDFUTURE"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the meal calendar of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetMealCalendar]:
        return [PetnetMealCalendar(hub, feeder, MEALS)]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetMealCalendar(PetnetEntity, CalendarEntity):
    """The meals of one feeder as a calendar."""

    entity_description: PetnetCalendarEntityDescription
    # Home Assistant's calendar writes the state again at the event's start and end itself.
    _shown_properties = ("event",)

    _attr_supported_features = (
        CalendarEntityFeature.CREATE_EVENT
        | CalendarEntityFeature.UPDATE_EVENT
        | CalendarEntityFeature.DELETE_EVENT
    )

    # ------------------------------------------------------------------ reading

    @property
    def event(self) -> CalendarEvent | None:
        """The meal happening now, else the next one."""
        now = dt_util.utcnow()
        # Most meals come within a day: look further only when none does.
        for ahead in (NEAR_LOOKAHEAD, LOOKAHEAD):
            for occurrence in self._occurrences(now - EVENT_LENGTH, now + ahead, now):
                if event_span(occurrence, dt_util.get_default_time_zone())[1] > now:
                    return self._calendar_event(occurrence)
        return None

    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """One event per enabled meal and day, in order, overlapping the range."""
        local_zone = dt_util.get_default_time_zone()
        start, end = aware(start_date, local_zone), aware(end_date, local_zone)
        return [
            self._calendar_event(occurrence)
            for occurrence in self._occurrences(
                start - EVENT_LENGTH, end, dt_util.utcnow()
            )
            if event_span(occurrence, local_zone)[1] > start
        ]

    def _occurrences(
        self, start: datetime, end: datetime, now: datetime
    ) -> list[MealOccurrence]:
        """Occurrences of the enabled meals with a target in [start, end)."""
        # Disabled meals are not shown; the meal actions enable them again.
        return feeder_occurrences(
            self.feeder, self.view.zone, start, end, now, self.view.window
        )

    # The event last made, by what it was made of: the state is written far more often than
    # the current event changes, and HA copies every event it is given.
    _last_event: tuple[tuple[object, ...], CalendarEvent] | None = None

    def _calendar_event(self, occurrence: MealOccurrence) -> CalendarEvent:
        meal = occurrence.meal
        start, end = event_span(occurrence, dt_util.get_default_time_zone())
        pet = self.hub.state.pets.get(meal.pet_id) if meal.pet_id else None
        description = event_description(
            format_portion(meal.portion),
            self._status(occurrence),
            pet.name if pet is not None else None,
        )
        made_of = (meal, start, end, description, occurrence.target)
        if self._last_event is not None and self._last_event[0] == made_of:
            return self._last_event[1]
        event = CalendarEvent(
            start=start,
            end=end,
            summary=meal.name,
            description=description,
            uid=str(meal.meal_id),
            recurrence_id=None
            if (rrule := meal_rrule(meal)) is None
            else occurrence.target.date().isoformat(),
            rrule=rrule,
        )
        self._last_event = (made_of, event)
        return event

    def _status(self, occurrence: MealOccurrence) -> str:
        if (result := occurrence.result) is not None:
            return result_text(
                result,
                failed=occurrence.state is MealState.FAILED,
                target=occurrence.target,
            )
        # A result, if one came anyway (say, the front button), still shows what happened.
        return STATUS_TEXT[occurrence.state]

    # ------------------------------------------------------------------ editing

    def _meal_id(self, uid: str) -> int:
        return meal_id_from_uid(uid, {meal.meal_id for meal in self.feeder.meals})

    def _meal_fields(
        self, event: dict[str, Any], current: Meal | None
    ) -> dict[str, Any]:
        """Name, time, portion and days of an event; raise without changing anything.

        Changing a meal, a description left out keeps its portion and a repeat rule left
        out keeps its days (an empty one makes it a one-off meal).
        """
        if not isinstance(start := event.get(EVENT_START), datetime):
            # A whole day: a meal needs its time.
            raise invalid("meal_needs_time")
        zone, local_zone = self.view.zone, dt_util.get_default_time_zone()
        time_s = meal_time(start, zone, local_zone)
        start_day = aware(start, local_zone).astimezone(zone).date()
        today = dt_util.utcnow().astimezone(zone).date()
        description = event.get(EVENT_DESCRIPTION)
        fields: dict[str, Any] = {}
        if current is None or EVENT_RRULE in event:
            days = meal_days(event.get(EVENT_RRULE), start_day, today, zone)
            fields = {
                "weekdays": days.weekdays,
                "first_date": days.first_date,
                "last_date": days.last_date,
            }
        if description is None and current is not None:
            portion = current.portion
        else:
            portion = portion_from(
                description, self.hub.settings.default_portion, self._cups_for_grams
            )
            fields["pet_id"] = self._pet_named(description)
        return {
            "name": event.get(EVENT_SUMMARY),
            "time_s": time_s,
            "portion": portion,
            **fields,
        }

    def _pet_named(self, description: str | None) -> str | None:
        """The pet a ``Pet:`` line names, among those this feeder feeds; None without one."""
        if description is None or (name := pet_name_in(description)) is None:
            return None
        fed = [p for p in self.hub.state.pets.values() if self.feeder.hid in p.feeders]
        for pet in fed:
            if pet.name.casefold() == name.casefold():
                return pet.pet_id
        raise invalid(
            "unknown_pet_name",
            name=quote(name),
            feeder=self.feeder.display_name,
            pets=", ".join(sorted(p.name for p in fed)) or "-",
        )

    def _cups_for_grams(self, grams: float) -> float:
        """Grams as cups with the feeder's food density, as the actions convert them."""
        if not self.feeder.g_per_tbsp:
            raise invalid(
                "grams_need_density",
                text=f"{grams:g} g",
                name=self.feeder.display_name,
            )
        return self.hub.actions.cups_for_grams(self.feeder.hid, grams)

    @translated
    async def async_create_event(self, **kwargs: Any) -> None:
        """Add a meal: once, daily or on chosen weekdays."""
        fields = self._meal_fields(kwargs, None)
        self.hub.meal_editor.add_meal(self.feeder, **fields)

    @translated
    async def async_update_event(
        self,
        uid: str,
        event: dict[str, Any],
        recurrence_id: str | None = None,
        recurrence_range: str | None = None,
    ) -> None:
        """Change a meal, one occurrence of it, or it from one occurrence on.

        A description left out keeps the meal's portion; an empty one sets the default.
        """
        meal_id = self._meal_id(uid)
        current = next(m for m in self.feeder.meals if m.meal_id == meal_id)
        fields = self._meal_fields(event, current)
        editor = self.hub.meal_editor
        if not recurrence_id:
            editor.update_meal(self.feeder, meal_id, **fields)
            return
        day = recurrence_day(recurrence_id)
        if recurrence_range == THIS_AND_FUTURE:
            editor.change_from(self.feeder, meal_id, day, fields)
            return
        # One occurrence: its repeat rule does not apply; it moves to the event's day.
        one_off = {
            "name": fields["name"],
            "time_s": fields["time_s"],
            "portion": fields["portion"],
            "first_date": self._start_day(event),
        }
        if "pet_id" in fields:
            one_off["pet_id"] = fields["pet_id"]
        editor.except_occurrence(self.feeder, meal_id, day, one_off)

    @translated
    async def async_delete_event(
        self,
        uid: str,
        recurrence_id: str | None = None,
        recurrence_range: str | None = None,
    ) -> None:
        """Delete a meal, one occurrence of it, or it from one occurrence on."""
        meal_id = self._meal_id(uid)
        editor = self.hub.meal_editor
        if not recurrence_id:
            editor.remove_meal(self.feeder, meal_id)
        elif recurrence_range == THIS_AND_FUTURE:
            editor.change_from(self.feeder, meal_id, recurrence_day(recurrence_id))
        else:
            editor.except_occurrence(
                self.feeder, meal_id, recurrence_day(recurrence_id)
            )

    def _start_day(self, event: dict[str, Any]) -> date:
        start = event[EVENT_START]
        local_zone = dt_util.get_default_time_zone()
        return aware(start, local_zone).astimezone(self.view.zone).date()
