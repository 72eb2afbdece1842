"""Editing meals: validation and commit of every change to a feeder's meals (§7).

An edit is checked as a whole (count, legacy capacity) before anything changes; a committed
edit asks the schedule sync to deliver it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .accounting import record_meals
from .errors import invalid
from .feeder_clock import FeederClock
from .meals import Meal
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

MAX_MEALS = 20
MAX_NAME_LENGTH = 64


def validated_meal(
    meal_id: int,
    name: object,
    time_s: object,
    portion: object,
    enabled: object,
    *,
    pet_id: str | None = None,
) -> Meal:
    """Build a meal from user input or raise InvalidRequestError saying what is accepted."""
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
    # The feeder's schedule has minute resolution in the UI; seconds are dropped.
    return Meal(
        meal_id=meal_id,
        name=name.strip(),
        time_s=time_s - time_s % 60,
        portion=cups,
        enabled=enabled,
        pet_id=pet_id,
    )


def _check_minute_free(
    feeder: Feeder, meal: Meal, others: Iterable[Meal] | None = None
) -> None:
    """Refuse a meal at the minute of another meal (the feeder's, or ``others``).

    Two meals at one minute would be one dispense time on the feeder, and a dispense could
    not tell which of them it was. A meal may keep its own minute.
    """
    for other in feeder.meals if others is None else others:
        if other.meal_id != meal.meal_id and other.time_s == meal.time_s:
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
        pet_id: str | None = None,
    ) -> Meal:
        """Add a daily meal; ids are never reused."""
        meal = validated_meal(
            feeder.next_meal_id, name, time_s, portion, enabled, pet_id=pet_id
        )
        _check_minute_free(feeder, meal)
        self._commit(feeder, [*feeder.meals, meal], "meal added")
        feeder.next_meal_id += 1
        return meal

    def update_meal(self, feeder: Feeder, meal_id: int, **changes: Any) -> Meal:
        """Change some fields of a meal (None keeps a field; ``pet_id=None`` clears the pet)."""
        current = self._meal(feeder, meal_id)
        values = {
            "name": current.name,
            "time_s": current.time_s,
            "portion": current.portion,
            "enabled": current.enabled,
        }
        values.update(
            {k: v for k, v in changes.items() if v is not None and k != "pet_id"}
        )
        built = validated_meal(
            meal_id,
            values["name"],
            values["time_s"],
            values["portion"],
            values["enabled"],
            pet_id=changes.get("pet_id", current.pet_id),
        )
        # The meal's other fields (its days) stay as they are.
        meal = replace(
            current,
            name=built.name,
            time_s=built.time_s,
            portion=built.portion,
            enabled=built.enabled,
            pet_id=built.pet_id,
        )
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
                pet_id=m.get("pet_id"),
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
        if (
            family == FAMILY_LEGACY
            or (
                family == FAMILY_AUTO
                and not uses_new_schedule_api(feeder.software_version)
            )
        ) and not legacy_fits(feeder, feeder.meals):
            raise invalid("legacy_schedule_too_long", count=len(feeder.meals))
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
        """Replace the meals after checking the whole schedule; nothing changes on error."""
        if len(meals) > MAX_MEALS:
            raise invalid("too_many_meals", max=MAX_MEALS)
        if not uses_new_api(feeder) and not legacy_fits(feeder, meals):
            raise invalid("legacy_schedule_too_long", count=len(meals))
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
