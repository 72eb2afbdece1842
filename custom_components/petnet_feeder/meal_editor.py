"""Editing meals: validation and commit of every change to a feeder's meals (§7).

An edit is checked as a whole (count, legacy capacity) before anything changes; a committed
edit asks the schedule sync to deliver it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .accounting import record_meals
from .day_plan import busiest_days
from .errors import invalid
from .feeder_clock import FeederClock
from .meals import Meal, meal_target, share_a_day
from .models import Feeder
from .protocol import commands
from .protocol.firmware import uses_new_schedule_api
from .schedule_sync import (
    FAMILY_AUTO,
    FAMILY_LEGACY,
    FIRMWARE_FAMILIES,
    ScheduleSync,
    legacy_fits,
    uses_new_api,
)
from .state import now

# Meals one day may hold (each is one entry of the feeder's schedule that day).
MAX_MEALS = 20
# Meals a feeder may have in all: daily, weekly and one-off ones that are still to come.
MAX_MEALS_IN_ALL = 100
MAX_NAME_LENGTH = 64
# The keys of a meal's days (see meals.Meal).
DAY_FIELDS = ("weekdays", "first_date", "last_date", "except_dates", "pet_id")


def validated_meal(
    meal_id: int,
    name: object,
    time_s: object,
    portion: object,
    enabled: object,
    days: Mapping[str, Any] | None = None,
) -> Meal:
    """Build a meal from user input or raise InvalidRequestError saying what is accepted.

    ``days`` holds the optional day fields (weekdays, first and last date, exceptions, pet).
    """
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise invalid("invalid_meal_name", max=MAX_NAME_LENGTH)
    if (
        isinstance(time_s, bool)
        or not isinstance(time_s, int)
        or not 0 <= time_s < 86400
    ):
        raise invalid("invalid_meal_time", time=time_s)
    try:
        cups = commands.validate_portion(portion)
    except (TypeError, ValueError) as err:
        raise invalid("invalid_portion", portion=portion) from err
    if not isinstance(enabled, bool):
        raise invalid("invalid_meal_enabled")
    extra = {key: value for key, value in (days or {}).items() if key in DAY_FIELDS}
    try:
        # The feeder's schedule has minute resolution in the UI; seconds are dropped.
        return Meal(
            meal_id=meal_id,
            name=name.strip(),
            time_s=time_s - time_s % 60,
            portion=cups,
            enabled=enabled,
            **extra,
        )
    except (TypeError, ValueError) as err:
        raise invalid("invalid_meal_days", error=str(err)) from err


def _check_minute_free(
    feeder: Feeder, meal: Meal, others: Iterable[Meal] | None = None
) -> None:
    """Refuse a meal at the minute of another meal (the feeder's, or ``others``).

    Two meals at one minute would be one dispense time on the feeder, and a dispense could
    not tell which of them it was. A meal may keep its own minute.
    """
    for other in feeder.meals if others is None else others:
        if (
            other.meal_id != meal.meal_id
            and other.time_s == meal.time_s
            and share_a_day(other, meal)
        ):
            raise invalid(
                "meal_time_taken",
                name=feeder.display_name,
                meal=other.name,
                time=f"{meal.time_s // 3600:02d}:{meal.time_s // 60 % 60:02d}",
            )


class MealEditor:
    """Adds, changes, removes and skips meals; sets a feeder's zone and command family."""

    def __init__(self, clock: FeederClock, sync: ScheduleSync) -> None:
        """Read the time from ``clock``; deliver committed edits through ``sync``."""
        self._clock = clock
        self._sync = sync

    def add_meal(
        self,
        feeder: Feeder,
        *,
        name: str,
        time_s: int,
        portion: float,
        enabled: bool = True,
        **days: Any,
    ) -> Meal:
        """Add a meal (daily, unless ``days`` say otherwise); ids are never reused."""
        meal = validated_meal(feeder.next_meal_id, name, time_s, portion, enabled, days)
        self._check_to_come(feeder, meal)
        _check_minute_free(feeder, meal)
        self._commit(feeder, [*feeder.meals, meal], "meal added")
        feeder.next_meal_id += 1
        return meal

    def update_meal(self, feeder: Feeder, meal_id: int, **changes: Any) -> Meal:
        """Change some fields of a meal.

        None keeps a field, except for the day fields and the pet, which are set as given
        (``pet_id=None`` clears the pet); fields left out keep their value.
        """
        current = self._meal(feeder, meal_id)
        values = current.to_dict()
        values.update(
            {
                key: value
                for key, value in changes.items()
                if value is not None and key not in DAY_FIELDS
            }
        )
        days = {key: getattr(current, key) for key in DAY_FIELDS}
        # Day fields are set as given: None clears them (every day, no end, no pet).
        days.update({key: changes[key] for key in DAY_FIELDS if key in changes})
        meal = validated_meal(
            meal_id,
            values["name"],
            values["time_s"],
            values["portion"],
            values["enabled"],
            days,
        )
        self._check_to_come(feeder, meal)
        _check_minute_free(feeder, meal)
        self._commit(
            feeder,
            [meal if m.meal_id == meal_id else m for m in feeder.meals],
            "meal changed",
        )
        return meal

    def remove_meal(self, feeder: Feeder, meal_id: int) -> None:
        """Delete a meal."""
        self._meal(feeder, meal_id)
        self._commit(
            feeder, [m for m in feeder.meals if m.meal_id != meal_id], "meal removed"
        )

    def set_schedule(
        self, feeder: Feeder, meals: Iterable[Mapping[str, Any]]
    ) -> list[Meal]:
        """Replace the whole schedule; every meal gets a new id."""
        first = feeder.next_meal_id
        built = [
            validated_meal(
                first + i,
                m.get("name"),
                m.get("time_s"),
                m.get("portion"),
                m.get("enabled", True),
                m,
            )
            for i, m in enumerate(meals)
        ]
        for i, meal in enumerate(built):
            _check_minute_free(feeder, meal, built[:i])
        self._commit(feeder, built, "schedule replaced")
        feeder.next_meal_id = first + len(built)
        return built

    def skip_next_meal(self, feeder: Feeder) -> tuple[Meal, datetime]:
        """Disable only the next occurrence; the meal comes back once its time has passed."""
        upcoming = self._clock.next_meal(feeder)
        if upcoming is None:
            raise invalid("no_meal_to_skip")
        meal, target = upcoming
        self._record(feeder)
        if (current := feeder.skipped.get(meal.meal_id)) is not None:
            # Skipping the occurrence after an already skipped one: both stay skipped.
            feeder.log_skip(meal.meal_id, current)
        feeder.skipped[meal.meal_id] = (target + self._clock.window).timestamp()
        self._sync.request_sync(feeder, "meal skipped")
        return meal, target

    def set_time_zone(self, feeder: Feeder, zone: str | None) -> None:
        """Set the zone the feeder's meal times are in (None: HA's zone)."""
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise invalid("invalid_time_zone", zone=zone) from err
        if feeder.time_zone != zone:
            self._record(feeder)
            feeder.time_zone = zone
            self._sync.request_sync(feeder, "time zone changed")

    def set_firmware_family(self, feeder: Feeder, family: str) -> None:
        """Override which schedule commands the feeder gets."""
        if family not in FIRMWARE_FAMILIES:
            raise invalid("invalid_firmware_family", family=family)
        if family == FAMILY_LEGACY or (
            family == FAMILY_AUTO and not uses_new_schedule_api(feeder.software_version)
        ):
            for day_meals in busiest_days(feeder.meals, self._today(feeder)):
                if not legacy_fits(feeder, day_meals):
                    raise invalid("legacy_schedule_too_long", count=len(day_meals))
        if feeder.firmware_family != family:
            feeder.firmware_family = family
            self._sync.request_sync(feeder, "firmware family changed")

    def clear_pet(self, feeder: Feeder, pet_id: str) -> None:
        """The pet's meals on this feeder stay, for no pet (what was due keeps its pet)."""
        if not any(meal.pet_id == pet_id for meal in feeder.meals):
            return
        self._record(feeder)
        feeder.meals = [
            replace(meal, pet_id=None) if meal.pet_id == pet_id else meal
            for meal in feeder.meals
        ]

    def _commit(self, feeder: Feeder, meals: list[Meal], reason: str) -> None:
        """Replace the meals after checking each day they give; nothing changes on error.

        Meals that have ended are dropped (the ledger keeps their past), and so are
        exceptions of days gone by. Each day must fit the feeder: at most MAX_MEALS, and the
        legacy command's length for legacy firmware.
        """
        today = self._today(feeder)
        meals = [
            meal
            if not meal.except_dates
            else replace(
                meal, except_dates=frozenset(d for d in meal.except_dates if d >= today)
            )
            for meal in meals
            if meal.last_date is None or meal.last_date >= today
        ]
        if len(meals) > MAX_MEALS_IN_ALL:
            raise invalid("too_many_meals_in_all", max=MAX_MEALS_IN_ALL)
        for day_meals in busiest_days(meals, today):
            if len(day_meals) > MAX_MEALS:
                raise invalid("too_many_meals", max=MAX_MEALS)
            if not uses_new_api(feeder) and not legacy_fits(feeder, day_meals):
                raise invalid("legacy_schedule_too_long", count=len(day_meals))
        # What was due under the meals as they were stays in the ledger as it was.
        self._record(feeder)
        before = {m.meal_id: m.time_s for m in feeder.meals}
        at = now()
        feeder.meal_since = {
            m.meal_id: at
            if before.get(m.meal_id) != m.time_s
            else feeder.meal_since.get(m.meal_id, 0.0)
            for m in meals
        }
        feeder.meals = sorted(meals, key=lambda m: (m.time_s, m.meal_id))
        kept = {m.meal_id for m in meals}
        feeder.skipped = {k: v for k, v in feeder.skipped.items() if k in kept}
        feeder.clock_holds = {k: v for k, v in feeder.clock_holds.items() if k in kept}
        feeder.clock_moves = {k: v for k, v in feeder.clock_moves.items() if k in kept}
        self._sync.request_sync(feeder, reason, debounce=True)

    # ------------------------------------------------------------------ one occurrence

    def except_occurrence(
        self,
        feeder: Feeder,
        meal_id: int,
        day: date,
        replacement: Mapping[str, Any] | None = None,
    ) -> Meal | None:
        """Delete or change one occurrence ("this event"); the meal's other days stay.

        The changed occurrence becomes a one-off meal (``replacement``: name, time_s,
        portion, and the date it moves to as first_date), returned. A one-off meal's only
        occurrence is the meal itself.
        """
        meal = self._meal(feeder, meal_id)
        if not meal.occurs_on(day):
            raise invalid("unknown_occurrence", recurrence_id=day.isoformat())
        zone = self._clock.zone(feeder)
        if meal_target(day, meal.time_s, zone).timestamp() <= now():
            # Its outcome is in the ledger already; the past is not edited.
            raise invalid("occurrence_passed", recurrence_id=day.isoformat())
        if meal.is_one_off:
            if replacement is None:
                self.remove_meal(feeder, meal_id)
                return None
            return self.update_meal(feeder, meal_id, **replacement)
        kept = replace(meal, except_dates=meal.except_dates | {day})
        meals = [kept if m.meal_id == meal_id else m for m in feeder.meals]
        added: Meal | None = None
        if replacement is not None:
            moved_to = replacement.get("first_date") or day
            days = {"first_date": moved_to, "last_date": moved_to}
            days["pet_id"] = replacement.get("pet_id", meal.pet_id)
            added = validated_meal(
                feeder.next_meal_id,
                replacement.get("name", meal.name),
                replacement.get("time_s", meal.time_s),
                replacement.get("portion", meal.portion),
                meal.enabled,
                days,
            )
        return self._commit_adding(feeder, meals, added, "one meal changed")

    def change_from(
        self,
        feeder: Feeder,
        meal_id: int,
        day: date,
        changes: Mapping[str, Any] | None = None,
    ) -> Meal | None:
        """Change or (``changes`` None) end a meal from ``day`` on ("this and future").

        When no occurrence is still to come before ``day``, the whole meal changes (its past
        is in the ledger). Otherwise it ends the day before, and (for a change) a new meal
        with ``changes`` starts on ``day``; that one is returned.
        """
        meal = self._meal(feeder, meal_id)
        if not self._comes_before(feeder, meal, day):
            if changes is None:
                self.remove_meal(feeder, meal_id)
                return None
            return self.update_meal(feeder, meal_id, **changes)
        ended = replace(meal, last_date=day - timedelta(days=1))
        meals = [ended if m.meal_id == meal_id else m for m in feeder.meals]
        added: Meal | None = None
        if changes is not None:
            fields = {**meal.to_dict(), **changes}
            days = {key: getattr(meal, key) for key in DAY_FIELDS}
            days.update({key: changes[key] for key in DAY_FIELDS if key in changes})
            days["first_date"] = max(day, days.get("first_date") or day)
            days["except_dates"] = frozenset(
                d for d in meal.except_dates if d >= days["first_date"]
            )
            added = validated_meal(
                feeder.next_meal_id,
                fields["name"],
                fields["time_s"],
                fields["portion"],
                fields["enabled"],
                days,
            )
        return self._commit_adding(feeder, meals, added, "meal changed from a day on")

    def _commit_adding(
        self, feeder: Feeder, meals: list[Meal], added: Meal | None, reason: str
    ) -> Meal | None:
        """Commit ``meals`` with ``added`` (a new meal, with the next id) if there is one."""
        if added is not None:
            self._check_to_come(feeder, added)
            _check_minute_free(feeder, added, meals)
            meals = [*meals, added]
        self._commit(feeder, meals, reason)
        if added is not None:
            feeder.next_meal_id += 1
        return added

    def _comes_before(self, feeder: Feeder, meal: Meal, day: date) -> bool:
        """Whether the meal has an occurrence still to come before local ``day``."""
        zone = self._clock.zone(feeder)
        moment = datetime.fromtimestamp(now(), UTC)
        current = moment.astimezone(zone).date()
        last = min(day - timedelta(days=1), meal.last_date or day)
        while current <= last:
            if (
                meal.occurs_on(current)
                and meal_target(current, meal.time_s, zone) > moment
            ):
                return True
            current += timedelta(days=1)
        return False

    def _check_to_come(self, feeder: Feeder, meal: Meal) -> None:
        """Refuse a meal whose last occurrence is past already (it would never happen)."""
        if meal.last_date is None:
            return
        zone = self._clock.zone(feeder)
        last = meal.last_date
        while not meal.occurs_on(last) and last > (meal.first_date or last):
            last -= timedelta(days=1)
        if meal_target(last, meal.time_s, zone).timestamp() <= now():
            raise invalid("meal_in_the_past", date=meal.last_date.isoformat())

    def _today(self, feeder: Feeder) -> date:
        zone = self._clock.zone(feeder)
        return datetime.fromtimestamp(now(), UTC).astimezone(zone).date()

    def _record(self, feeder: Feeder) -> None:
        record_meals(
            feeder,
            self._clock.zone(feeder),
            datetime.fromtimestamp(now(), UTC),
            self._clock.window,
        )

    @staticmethod
    def _meal(feeder: Feeder, meal_id: int) -> Meal:
        for meal in feeder.meals:
            if meal.meal_id == meal_id:
                return meal
        raise invalid("unknown_meal", meal_id=meal_id)
