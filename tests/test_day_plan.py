"""The day plan: which day's meals a feeder holds, and that each occurrence fires once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from custom_components.petnet_feeder.day_plan import busiest_days, held_plan
from custom_components.petnet_feeder.meals import Meal, meal_target

CHICAGO = ZoneInfo("America/Chicago")
MARGIN = timedelta(minutes=5)
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
# A Monday.
START = date(2026, 3, 2)


def at(day: date, hhmm: str, tz: ZoneInfo = CHICAGO) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return meal_target(day, hours * 3600 + minutes * 60, tz)


def hm(hhmm: str) -> int:
    hours, minutes = map(int, hhmm.split(":"))
    return hours * 3600 + minutes * 60


def held(meals: list[Meal], moment: datetime) -> tuple[date, list[tuple[int, bool]]]:
    plan = held_plan(meals, CHICAGO, moment, MARGIN)
    return plan.day, [(p.meal.meal_id, p.released) for p in plan.meals]


def test_daily_meals_give_the_same_plan_all_day() -> None:
    meals = [
        Meal(1, "Breakfast", hm("07:00"), 0.25),
        Meal(2, "Dinner", hm("18:00"), 0.5),
    ]
    plans = {
        tuple(held(meals, at(START, clock))[1])
        for clock in ("00:00", "06:59", "07:06", "18:04", "18:05", "23:59")
    }
    assert plans == {((1, True), (2, True))}


def test_tomorrow_is_held_once_todays_last_meal_has_passed() -> None:
    meals = [
        Meal(1, "Breakfast", hm("07:00"), 0.25),
        Meal(2, "Monday lunch", hm("12:00"), 0.25, weekdays=frozenset({MON})),
        Meal(3, "Tuesday treat", hm("09:00"), 0.125, weekdays=frozenset({TUE})),
    ]
    assert held(meals, at(START, "12:04")) == (START, [(1, True), (2, True)])
    tuesday = START + timedelta(days=1)
    # 12:05: Monday's last meal has passed; Tuesday's meals fire before 12:00 only.
    assert held(meals, at(START, "12:05")) == (tuesday, [(1, True), (3, True)])


def test_a_meal_of_tomorrow_after_todays_last_is_held_inactive_until_it_has_passed() -> (
    None
):
    meals = [
        Meal(1, "Breakfast", hm("07:00"), 0.25),
        Meal(2, "Tuesday supper", hm("19:00"), 0.25, weekdays=frozenset({TUE})),
        Meal(3, "Tuesday snack", hm("21:00"), 0.25, weekdays=frozenset({TUE})),
    ]
    tuesday = START + timedelta(days=1)
    assert held(meals, at(START, "07:05")) == (
        tuesday,
        [(1, True), (2, False), (3, False)],
    )
    assert held(meals, at(START, "21:04"))[1] == [(1, True), (2, False), (3, False)]
    assert held(meals, at(START, "21:05"))[1] == [(1, True), (2, True), (3, True)]


def test_a_day_without_meals_holds_tomorrows_inactive_until_they_have_passed() -> None:
    meals = [Meal(1, "Sunday brunch", hm("10:00"), 0.5, weekdays=frozenset({SUN}))]
    saturday = START + timedelta(days=5)
    sunday = saturday + timedelta(days=1)
    assert held(meals, at(saturday, "00:00")) == (sunday, [(1, False)])
    assert held(meals, at(saturday, "10:05")) == (sunday, [(1, True)])
    assert held(meals, at(sunday, "10:04")) == (sunday, [(1, True)])
    # Sunday's meal has passed; Monday has none: the feeder holds nothing.
    assert held(meals, at(sunday, "10:05")) == (sunday + timedelta(days=1), [])


def test_one_off_meals_and_exceptions_are_held_on_their_day_only() -> None:
    wednesday = START + timedelta(days=2)
    meals = [
        Meal(1, "Breakfast", hm("07:00"), 0.25, except_dates=frozenset({wednesday})),
        Meal(
            2,
            "Late breakfast",
            hm("08:30"),
            0.25,
            first_date=wednesday,
            last_date=wednesday,
        ),
    ]
    tuesday = START + timedelta(days=1)
    assert held(meals, at(tuesday, "06:00")) == (tuesday, [(1, True)])
    # 08:30 comes after Tuesday's last meal: held inactive until it has passed on Tuesday.
    assert held(meals, at(tuesday, "07:05")) == (wednesday, [(2, False)])
    assert held(meals, at(tuesday, "08:35")) == (wednesday, [(2, True)])
    assert held(meals, at(wednesday, "08:35")) == (
        wednesday + timedelta(days=1),
        [(1, True)],
    )


def _fired(meals: list[Meal], tz: ZoneInfo, first: date, days: int) -> list[datetime]:
    """Run a feeder that repeats what it holds daily, given each minute's plan."""
    fired: list[datetime] = []
    moment = datetime.combine(first, datetime.min.time(), tz).astimezone(UTC)
    end = moment + timedelta(days=days)
    holding: dict[int, tuple[int, bool]] = {}
    while moment < end:
        local = moment.astimezone(tz)
        tod = local.hour * 3600 + local.minute * 60
        for time_s, active in holding.values():
            if active and time_s == tod:
                fired.append(local)
        # The minute check delivers after the minute's dispenses (a delivery takes time).
        plan = held_plan(meals, tz, moment, MARGIN)
        holding = {p.meal.meal_id: (p.meal.time_s, p.released) for p in plan.meals}
        moment += timedelta(minutes=1)
    return fired


@pytest.mark.parametrize("zone", ["America/Chicago", "Europe/Berlin", "UTC"])
def test_every_occurrence_fires_exactly_once_over_five_weeks(zone: str) -> None:
    tz = ZoneInfo(zone)
    first = date(2026, 3, 2)
    meals = [
        Meal(
            1,
            "Breakfast",
            hm("07:00"),
            0.25,
            except_dates=frozenset({date(2026, 3, 11)}),
        ),
        Meal(
            2,
            "Weekday lunch",
            hm("12:30"),
            0.25,
            weekdays=frozenset({MON, TUE, WED, THU, FRI}),
        ),
        Meal(3, "Weekend brunch", hm("10:00"), 0.5, weekdays=frozenset({SAT, SUN})),
        Meal(4, "Friday late snack", hm("23:55"), 0.125, weekdays=frozenset({FRI})),
        Meal(5, "Midnight", hm("00:00"), 0.125, weekdays=frozenset({SUN})),
        Meal(
            6,
            "Vet day",
            hm("16:00"),
            0.25,
            first_date=date(2026, 3, 18),
            last_date=date(2026, 3, 18),
        ),
        Meal(
            7,
            "Tuesday supper",
            hm("20:00"),
            0.25,
            weekdays=frozenset({TUE}),
            last_date=date(2026, 3, 24),
        ),
    ]
    days = 35
    expected = sorted(
        meal_target(first + timedelta(days=n), meal.time_s, tz)
        for n in range(days)
        for meal in meals
        if meal.occurs_on(first + timedelta(days=n))
    )
    fired = _fired(meals, tz, first, days)
    assert [f.astimezone(UTC) for f in fired] == [e.astimezone(UTC) for e in expected]


def test_busiest_days_cover_every_distinct_day() -> None:
    meals = [
        Meal(1, "Breakfast", hm("07:00"), 0.25),
        Meal(2, "Monday lunch", hm("12:00"), 0.25, weekdays=frozenset({MON})),
        Meal(
            3,
            "Party",
            hm("15:00"),
            0.25,
            first_date=date(2026, 6, 1),
            last_date=date(2026, 6, 1),
        ),
    ]
    plans = busiest_days(meals, START)
    assert sorted(tuple(m.meal_id for m in plan) for plan in plans) == [
        (1,),
        (1, 2),
        (1, 2, 3),
    ]
