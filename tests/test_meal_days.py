"""A meal's days: repeat rules read from the calendar, written back, and stored."""

from __future__ import annotations

from datetime import UTC, date

import pytest

from custom_components.petnet_feeder.calendar_mapping import (
    MealDays,
    event_description,
    meal_days,
    meal_rrule,
    pet_name_in,
    portion_line,
    recurrence_day,
)
from custom_components.petnet_feeder.errors import InvalidRequestError
from custom_components.petnet_feeder.meals import Meal, share_a_day

MONDAY = date(2026, 3, 2)
TODAY = date(2026, 3, 1)


@pytest.mark.parametrize(
    ("rrule", "start", "expected"),
    [
        (None, MONDAY, MealDays(None, MONDAY, MONDAY)),
        ("", MONDAY, MealDays(None, MONDAY, MONDAY)),
        ("FREQ=DAILY", TODAY, MealDays(None, None, None)),
        ("RRULE:FREQ=DAILY;INTERVAL=1", MONDAY, MealDays(None, MONDAY, None)),
        ("FREQ=WEEKLY;BYDAY=MO,WE", TODAY, MealDays(frozenset({0, 2}), None, None)),
        ("FREQ=WEEKLY", MONDAY, MealDays(frozenset({0}), MONDAY, None)),
        ("FREQ=DAILY;BYDAY=SA,SU", TODAY, MealDays(frozenset({5, 6}), None, None)),
        (
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU",
            TODAY,
            MealDays(None, None, None),
        ),
        (
            "FREQ=DAILY;UNTIL=20260310",
            TODAY,
            MealDays(None, None, date(2026, 3, 10)),
        ),
        (
            "FREQ=WEEKLY;BYDAY=MO;UNTIL=20260316T055959Z",
            TODAY,
            MealDays(frozenset({0}), None, date(2026, 3, 16)),
        ),
        ("FREQ=DAILY;COUNT=3", MONDAY, MealDays(None, MONDAY, date(2026, 3, 4))),
        (
            "FREQ=WEEKLY;BYDAY=MO,FR;COUNT=3",
            MONDAY,
            MealDays(frozenset({0, 4}), MONDAY, date(2026, 3, 9)),
        ),
    ],
)
def test_accepted_rules(rrule: str | None, start: date, expected: MealDays) -> None:
    assert meal_days(rrule, start, TODAY, UTC) == expected


@pytest.mark.parametrize(
    "rrule",
    [
        "FREQ=MONTHLY;BYMONTHDAY=1",
        "FREQ=YEARLY",
        "FREQ=DAILY;INTERVAL=2",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO",
        "FREQ=MONTHLY;BYDAY=1MO",
        "FREQ=WEEKLY;BYDAY=1MO",
        "FREQ=DAILY;BYHOUR=7,19",
        "FREQ=DAILY;FREQ=DAILY",
        "FREQ=DAILY;UNTIL=20260101",
        "not a rule",
        "FREQ=DAILY;INTERVAL=x",
    ],
)
def test_refused_rules_say_what_is_possible(rrule: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        meal_days(rrule, MONDAY, TODAY, UTC)
    assert caught.value.translation_key == "unsupported_recurrence"


def test_rules_written_back_read_the_same() -> None:
    meals = [
        Meal(1, "Daily", 25200, 0.25),
        Meal(2, "Weekdays", 25200, 0.25, weekdays=frozenset(range(5))),
        Meal(3, "Until", 25200, 0.25, last_date=date(2026, 4, 1)),
        Meal(4, "Once", 25200, 0.25, first_date=MONDAY, last_date=MONDAY),
    ]
    assert [meal_rrule(meal) for meal in meals] == [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        "FREQ=DAILY;UNTIL=20260401",
        None,
    ]
    for meal in meals:
        days = meal_days(meal_rrule(meal), MONDAY, TODAY, UTC)
        assert (days.weekdays, days.last_date) == (meal.weekdays, meal.last_date)


def test_recurrence_ids() -> None:
    assert recurrence_day("2026-03-02") == MONDAY
    assert recurrence_day("20260302") == MONDAY
    assert recurrence_day("20260302T070000") == MONDAY
    with pytest.raises(InvalidRequestError):
        recurrence_day("yesterday")


def test_days_of_a_meal() -> None:
    meal = Meal(
        1,
        "Weekday breakfast",
        25200,
        0.25,
        weekdays=frozenset({0, 1, 2, 3, 4}),
        first_date=MONDAY,
        last_date=date(2026, 3, 13),
        except_dates=frozenset({date(2026, 3, 4)}),
        pet_id="rex",
    )
    on = [d for d in range(1, 16) if meal.occurs_on(date(2026, 3, d))]
    assert on == [2, 3, 5, 6, 9, 10, 11, 12, 13]
    assert Meal.from_dict(meal.to_dict()) == meal
    assert (
        Meal.from_dict(
            {"meal_id": 1, "name": "Old", "time_s": 0, "portion": 0.25}
        ).weekdays
        is None
    )
    with pytest.raises(ValueError, match="weekdays"):
        Meal(1, "x", 0, 0.25, weekdays=frozenset({7}))
    with pytest.raises(ValueError, match="before"):
        Meal(1, "x", 0, 0.25, first_date=MONDAY, last_date=TODAY)


def test_meals_share_a_day_only_where_their_days_meet() -> None:
    monday = Meal(1, "Mon", 25200, 0.25, weekdays=frozenset({0}))
    tuesday = Meal(2, "Tue", 25200, 0.25, weekdays=frozenset({1}))
    daily = Meal(3, "Daily", 25200, 0.25)
    once_tuesday = Meal(
        4, "Once", 25200, 0.25, first_date=date(2026, 3, 3), last_date=date(2026, 3, 3)
    )
    replaced = Meal(5, "Daily", 25200, 0.25, except_dates=frozenset({date(2026, 3, 3)}))
    assert not share_a_day(monday, tuesday)
    assert share_a_day(monday, daily)
    assert not share_a_day(monday, once_tuesday)
    assert share_a_day(tuesday, once_tuesday)
    # The daily meal's Tuesday was replaced by the one-off: they never meet.
    assert not share_a_day(replaced, once_tuesday)


def test_a_pet_line_names_the_pet_and_is_not_the_portion() -> None:
    assert pet_name_in("1/4 cup\nPet: Mochi\n\n— Dispensed on time · 30.4 g") == "Mochi"
    assert pet_name_in("pet:  Biscuit the Second ") == "Biscuit the Second"
    assert pet_name_in("1/4 cup\n\n— Pet: not a pet line") is None
    assert pet_name_in("1/4 cup") is None
    assert portion_line("Pet: Mochi\n1/4 cup") == "1/4 cup"
    assert event_description("1/4 cup", "Upcoming", "Mochi") == (
        "1/4 cup\nPet: Mochi\n\n— Upcoming"
    )
