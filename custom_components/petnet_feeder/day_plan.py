"""Which day's meals a feeder holds, and when the next day's take their place (pure Python).

A feeder repeats every meal it holds every day (§7.1); only this integration knows weekdays,
one-off meals and exceptions. So the feeder holds one local day's meals at a time:

* From local midnight until today's last meal has passed (its time plus ``margin``, the
  meal's result window), it holds **today's** meals.
* Then it holds **tomorrow's** meals. A meal of tomorrow whose time of day lies after today's
  last meal would still fire today, so those are held inactive until each of them has passed
  today (they all turn active together, at the latest at midnight, when tomorrow begins).
  A day without meals holds tomorrow's meals from its start, inactive until they have passed.

Each occurrence is dispensed exactly once: a held meal fires only at an instant of the day it
was planned for. Two days with the same meals give the same plan, and nothing is delivered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .meals import Meal, epoch_ms, meal_target

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class PlannedMeal:
    """One meal of the held day: its occurrence, and whether it may fire yet."""

    meal: Meal
    target: datetime
    # False for a meal of tomorrow that would still fire today.
    released: bool


@dataclass(frozen=True, slots=True)
class DayPlan:
    """The day whose meals the feeder holds, and those meals in time order."""

    day: date
    meals: tuple[PlannedMeal, ...]


def occurrences_on(
    meals: Iterable[Meal], day: date, tz: ZoneInfo
) -> list[tuple[Meal, datetime]]:
    """Every meal (enabled or not) that happens on local ``day``, with its instant."""
    found = [
        (meal, meal_target(day, meal.time_s, tz))
        for meal in meals
        if meal.occurs_on(day)
    ]
    found.sort(key=lambda item: (epoch_ms(item[1]), item[0].meal_id))
    return found


def held_plan(
    meals: Sequence[Meal], tz: ZoneInfo, now: datetime, margin: timedelta
) -> DayPlan:
    """The plan the feeder should hold at ``now`` (see the module's rules)."""
    today = now.astimezone(tz).date()
    todays = occurrences_on(meals, today, tz)
    last = todays[-1][1] if todays else None
    if last is not None and now < last + margin:
        return DayPlan(
            today, tuple(PlannedMeal(meal, target, True) for meal, target in todays)
        )
    tomorrow = today + _ONE_DAY
    tomorrows = occurrences_on(meals, tomorrow, tz)
    # Where each of tomorrow's meals would fire today, had it been held all day.
    fires_today = [meal_target(today, meal.time_s, tz) for meal, _ in tomorrows]
    all_passed = all(at + margin <= now for at in fires_today)
    return DayPlan(
        tomorrow,
        tuple(
            PlannedMeal(
                meal,
                target,
                all_passed or (last is not None and at <= last),
            )
            for (meal, target), at in zip(tomorrows, fires_today, strict=True)
        ),
    )


def next_change(
    meals: Sequence[Meal], tz: ZoneInfo, now: datetime, margin: timedelta
) -> datetime:
    """The next instant after ``now`` at which :func:`held_plan` may give another plan.

    Today's last meal passing, tomorrow's late meals all having passed today, or midnight.
    """
    today = now.astimezone(tz).date()
    midnight = meal_target(today + _ONE_DAY, 0, tz)
    todays = occurrences_on(meals, today, tz)
    if todays and now < todays[-1][1] + margin:
        return min(todays[-1][1] + margin, midnight)
    tomorrows = occurrences_on(meals, today + _ONE_DAY, tz)
    released_at = max(
        (meal_target(today, meal.time_s, tz) + margin for meal, _ in tomorrows),
        default=now,
    )
    return min(released_at, midnight) if released_at > now else midnight


def busiest_days(meals: Sequence[Meal], today: date) -> list[list[Meal]]:
    """The meals of each distinct day from ``today`` on: a week, and every dated meal's days.

    Checked when a limit applies per day (the legacy command's length, the meals a day may
    hold): a weekday rule repeats within a week, and only dated meals differ after that.
    """
    days = {today + offset * _ONE_DAY for offset in range(8)}
    for meal in meals:
        for bound in (meal.first_date, meal.last_date):
            if bound is not None and bound >= today:
                days.add(bound)
                days.add(bound + _ONE_DAY)
    plans: dict[tuple[int, ...], list[Meal]] = {}
    for day in sorted(days):
        held = [meal for meal in meals if meal.occurs_on(day)]
        plans.setdefault(tuple(meal.meal_id for meal in held), held)
    return list(plans.values())
