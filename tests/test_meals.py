"""Tests for meals.py: meal targets, meal status (§9.5), portions and the hopper (§9.4)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from custom_components.petnet_feeder.meals import (
    CAPACITY_CUPS,
    TBSP_PER_CUP,
    Meal,
    MealOccurrence,
    MealState,
    cups_for_grams,
    evaluate_day,
    format_portion,
    hopper_level,
    meal_target,
    next_occurrence,
    occurrences_between,
    parse_portion,
)
from custom_components.petnet_feeder.protocol.messages import FeedResult

CHICAGO = ZoneInfo("America/Chicago")
KOLKATA = ZoneInfo("Asia/Kolkata")
BERLIN = ZoneInfo("Europe/Berlin")
DEV = "5238b0c4ceb91b35119887f44f29cb489fcf044a"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
W = timedelta(minutes=5)
W_MS = 300_000
SLACK_MS = 120_000  # DELIVERY_SLACK


def ms(moment: datetime) -> int:
    """Epoch ms of an aware datetime."""
    return round(moment.timestamp() * 1000)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def at_ms(epoch_ms: int) -> datetime:
    """The UTC datetime of an epoch ms value (exact)."""
    return EPOCH + timedelta(milliseconds=epoch_ms)


def fr(
    start_ms: int,
    *,
    source: int | None = 6,
    fail: bool | None = False,
    grams: float | None = 8.0,
    error: str | None = None,
) -> FeedResult:
    return FeedResult(
        device_hid=DEV,
        start_ms=start_ms,
        end_ms=start_ms + 4000,
        pour=None,
        full=None,
        grams_expected=grams,
        grams_actual=None,
        hopper_start=None,
        hopper_end=None,
        source=source,
        fail=fail,
        trip=None,
        lrg=None,
        vol=None,
        bowl=None,
        recipe_id=None,
        error=error,
    )


def meal(
    meal_id: int, hh: int, mm: int, *, enabled: bool = True, portion: float = 0.25
) -> Meal:
    return Meal(
        meal_id=meal_id,
        name=f"meal{meal_id}",
        time_s=hh * 3600 + mm * 60,
        portion=portion,
        enabled=enabled,
    )


def by_id(occurrences: list[MealOccurrence]) -> dict[int, MealOccurrence]:
    return {occ.meal.meal_id: occ for occ in occurrences}


# --------------------------------------------------------------------------- §13 worked example

BREAKFAST = Meal(meal_id=1, name="Breakfast", time_s=25200, portion=0.25)
DINNER = Meal(meal_id=2, name="Dinner", time_s=66600, portion=0.25)
EXAMPLE_DAY = date(2024, 6, 1)
SCHEDULED_BREAKFAST = fr(1717243203_000, source=6, grams=32.0)
REMOTE_SNACK = fr(1717251300_000, source=4, grams=8.0)


def test_worked_example_status() -> None:
    now = datetime.fromtimestamp(1717251300, tz=UTC)  # 09:15 CDT
    occurrences = evaluate_day(
        [DINNER, BREAKFAST],
        [REMOTE_SNACK, SCHEDULED_BREAKFAST],
        EXAMPLE_DAY,
        CHICAGO,
        now,
    )
    assert [occ.meal.name for occ in occurrences] == ["Breakfast", "Dinner"]
    breakfast, dinner = occurrences
    assert ms(breakfast.target) == 1717243200000
    assert ms(dinner.target) == 1717284600000
    assert breakfast.target.tzinfo is CHICAGO
    assert (breakfast.target.hour, breakfast.target.minute) == (7, 0)
    assert breakfast.state is MealState.DISPENSED
    assert breakfast.result is SCHEDULED_BREAKFAST
    assert dinner.state is MealState.UPCOMING
    assert dinner.result is None
    # The 09:15 remote feed matches no meal.
    assert all(occ.result is not REMOTE_SNACK for occ in occurrences)


def test_worked_example_hopper() -> None:
    reference_ms = 1717243200000 - 3_600_000  # set before breakfast
    level = hopper_level(
        100, reference_ms, [SCHEDULED_BREAKFAST, REMOTE_SNACK], g_per_tbsp=8
    )
    # (20.5 - 40/8/16) / 20.5 * 100 = 98.48 -> truncated to 98
    assert level == 98.0
    assert isinstance(level, float)


def test_remote_feed_alone_matches_nothing() -> None:
    now = datetime.fromtimestamp(1717251300, tz=UTC)
    breakfast, _ = evaluate_day(
        [BREAKFAST, DINNER], [REMOTE_SNACK], EXAMPLE_DAY, CHICAGO, now
    )
    assert breakfast.state is MealState.MISSED
    assert breakfast.result is None


# --------------------------------------------------------------------------- matching rules

DAY = date(2024, 6, 1)
T7 = 1717243200000  # 2024-06-01 07:00 CDT
LATE = datetime(2024, 6, 3, tzinfo=UTC)  # long after every meal of DAY


@pytest.mark.parametrize(
    ("offset_ms", "matched"),
    [
        (0, True),
        (-W_MS, True),
        (W_MS, True),
        (-W_MS + 1, True),
        (W_MS - 1, True),
        (-W_MS - 1, False),
        (W_MS + 1, False),
        (-W_MS - 1000, False),
        (W_MS + 1000, False),
        (3_600_000, False),
    ],
)
def test_window_edges_inclusive(offset_ms: int, matched: bool) -> None:
    result = fr(T7 + offset_ms)
    (occ,) = evaluate_day([meal(1, 7, 0)], [result], DAY, CHICAGO, LATE)
    if matched:
        assert occ.state is MealState.DISPENSED
        assert occ.result is result
    else:
        assert occ.state is MealState.MISSED
        assert occ.result is None


@pytest.mark.parametrize(
    ("window", "offset_ms", "matched"),
    [
        (timedelta(minutes=10), 600_000, True),
        (timedelta(minutes=10), 600_001, False),
        (timedelta(0), 0, True),
        (timedelta(0), 1, False),
        (timedelta(seconds=30), -30_000, True),
        (timedelta(seconds=30), -31_000, False),
    ],
)
def test_custom_window(window: timedelta, offset_ms: int, matched: bool) -> None:
    result = fr(T7 + offset_ms)
    (occ,) = evaluate_day([meal(1, 7, 0)], [result], DAY, CHICAGO, LATE, window)
    assert (occ.result is result) is matched


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        # A schedule result beats a closer remote one.
        ([fr(T7, source=4), fr(T7 + 240_000, source=6)], 1),
        ([fr(T7 + 240_000, source=6), fr(T7, source=5)], 0),
        ([fr(T7, source=None), fr(T7 - 299_000, source=6)], 1),
        # Among schedule results the closest wins.
        ([fr(T7 - 120_000), fr(T7 + 60_000)], 1),
        ([fr(T7 + 60_000), fr(T7 - 120_000)], 0),
        # Equal distance: the earlier start wins, whatever the input order.
        ([fr(T7 + 60_000), fr(T7 - 60_000)], 1),
        ([fr(T7 - 60_000), fr(T7 + 60_000)], 0),
        # Manual (4), button (5) and unknown sources never satisfy a meal (§9.5).
        ([fr(T7 + 200_000, source=4), fr(T7 - 100_000, source=5)], None),
        ([fr(T7 + 10_000, source=4), fr(T7, source=None)], None),
        # A schedule result outside the window does not count.
        ([fr(T7 + W_MS + 1, source=6), fr(T7 + 200_000, source=4)], None),
    ],
)
def test_candidate_preference(results: list[FeedResult], expected: int | None) -> None:
    (occ,) = evaluate_day([meal(1, 7, 0)], results, DAY, CHICAGO, LATE)
    if expected is None:
        assert occ.result is None
        assert occ.state is MealState.MISSED
    else:
        assert occ.result is results[expected]


def test_one_result_goes_to_the_nearest_of_two_close_meals() -> None:
    early, later = meal(2, 7, 0), meal(1, 7, 3)
    result = fr(T7 + 120_000)  # 07:02: in both windows, nearer to 07:03
    now = datetime(2024, 6, 1, 7, 20, tzinfo=CHICAGO)
    occurrences = evaluate_day([later, early], [result], DAY, CHICAGO, now)
    assert [occ.meal.meal_id for occ in occurrences] == [2, 1]
    assert occurrences[0].result is None
    assert occurrences[0].state is MealState.MISSED
    assert occurrences[1].result is result
    assert occurrences[1].state is MealState.DISPENSED


def test_close_meals_each_get_their_own_result() -> None:
    first, second = fr(T7 + 10_000), fr(T7 + 185_000)
    occurrences = by_id(
        evaluate_day(
            [meal(1, 7, 0), meal(2, 7, 3)], [second, first], DAY, CHICAGO, LATE
        )
    )
    assert occurrences[1].result is first
    assert occurrences[2].result is second


def test_a_remote_feed_near_a_meal_never_takes_its_place() -> None:
    scheduled, remote = fr(T7 + 150_000, source=6), fr(T7 + 170_000, source=4)
    occurrences = by_id(
        evaluate_day(
            [meal(1, 7, 0), meal(2, 7, 3)], [remote, scheduled], DAY, CHICAGO, LATE
        )
    )
    # 07:02:30 is nearer to 07:03; the Feed now beside it satisfies nothing.
    assert occurrences[2].result is scheduled
    assert occurrences[1].result is None
    assert occurrences[1].state is MealState.MISSED


def test_equal_targets_lower_meal_id_first() -> None:
    result = fr(T7)
    occurrences = evaluate_day(
        [meal(5, 7, 0), meal(3, 7, 0)], [result], DAY, CHICAGO, LATE
    )
    assert [occ.meal.meal_id for occ in occurrences] == [3, 5]
    assert occurrences[0].result is result
    assert occurrences[1].result is None
    assert occurrences[1].state is MealState.MISSED


def test_duplicate_equal_results_are_distinct() -> None:
    one, two = fr(T7), fr(T7)
    occurrences = evaluate_day(
        [meal(1, 7, 0), meal(2, 7, 0)], [one, two], DAY, CHICAGO, LATE
    )
    assert occurrences[0].result is one
    assert occurrences[1].result is two


@pytest.mark.parametrize(
    ("results", "state", "index"),
    [
        ([fr(T7, fail=True, error="jam")], MealState.FAILED, 0),
        ([fr(T7, fail=None)], MealState.DISPENSED, 0),
        ([fr(T7, fail=False)], MealState.DISPENSED, 0),
        # The schedule result is preferred even when it failed (§9.5: prefer source 6).
        ([fr(T7, source=4), fr(T7 + 60_000, fail=True)], MealState.FAILED, 1),
        # A failed schedule result loses to a closer successful schedule result.
        ([fr(T7 + 100_000, fail=True), fr(T7 + 1000)], MealState.DISPENSED, 1),
    ],
)
def test_failed_result(results: list[FeedResult], state: MealState, index: int) -> None:
    now = at_ms(T7 - 3_600_000)  # even before T
    (occ,) = evaluate_day([meal(1, 7, 0)], results, DAY, CHICAGO, now)
    assert occ.state is state
    assert occ.result is results[index]


@pytest.mark.parametrize(
    ("now_offset_ms", "window", "state"),
    [
        (-3_600_000, W, MealState.UPCOMING),
        (-1, W, MealState.UPCOMING),
        (0, W, MealState.DUE),
        (1, W, MealState.DUE),
        (W_MS, W, MealState.DUE),
        # Missed only once the delivery slack after the window has passed too.
        (W_MS + 1, W, MealState.DUE),
        (W_MS + SLACK_MS, W, MealState.DUE),
        (W_MS + SLACK_MS + 1, W, MealState.MISSED),
        (86_400_000, W, MealState.MISSED),
        (540_000, timedelta(minutes=10), MealState.DUE),
        (600_000 + SLACK_MS, timedelta(minutes=10), MealState.DUE),
        (600_001 + SLACK_MS, timedelta(minutes=10), MealState.MISSED),
        (0, timedelta(0), MealState.DUE),
        (SLACK_MS + 1, timedelta(0), MealState.MISSED),
    ],
)
def test_upcoming_due_missed_boundaries(
    now_offset_ms: int, window: timedelta, state: MealState
) -> None:
    now = at_ms(T7 + now_offset_ms)
    (occ,) = evaluate_day([meal(1, 7, 0)], [], DAY, CHICAGO, now, window)
    assert occ.state is state
    assert occ.result is None


def test_now_in_other_zones_is_compared_as_an_instant() -> None:
    # 07:02 CDT expressed in three zones gives the same state.
    for now in (
        datetime(2024, 6, 1, 7, 2, tzinfo=CHICAGO),
        datetime(2024, 6, 1, 12, 2, tzinfo=UTC),
        datetime(2024, 6, 1, 17, 32, tzinfo=KOLKATA),
    ):
        (occ,) = evaluate_day([meal(1, 7, 0)], [], DAY, CHICAGO, now)
        assert occ.state is MealState.DUE


def test_disabled_meal_is_not_evaluated_and_takes_nothing() -> None:
    disabled, enabled = meal(1, 7, 0, enabled=False), meal(2, 7, 2)
    result = fr(T7)  # exactly on the disabled meal's target
    now = datetime(2024, 6, 1, 7, 30, tzinfo=CHICAGO)
    occurrences = evaluate_day([enabled, disabled], [result], DAY, CHICAGO, now)
    assert [occ.meal.meal_id for occ in occurrences] == [1, 2]
    assert occurrences[0].state is MealState.DISABLED
    assert occurrences[0].result is None
    assert ms(occurrences[0].target) == T7
    assert occurrences[1].state is MealState.DISPENSED
    assert occurrences[1].result is result


@pytest.mark.parametrize("now_hour", [0, 7, 23])
def test_disabled_meal_state_ignores_now(now_hour: int) -> None:
    now = datetime(2024, 6, 1, now_hour, tzinfo=CHICAGO)
    (occ,) = evaluate_day([meal(1, 7, 0, enabled=False)], [], DAY, CHICAGO, now)
    assert occ.state is MealState.DISABLED


def test_results_order_by_target_then_meal_id() -> None:
    meals = [meal(4, 18, 30), meal(9, 7, 0), meal(2, 12, 0), meal(1, 18, 30)]
    occurrences = evaluate_day(meals, [], DAY, CHICAGO, LATE)
    assert [occ.meal.meal_id for occ in occurrences] == [9, 2, 1, 4]


def test_no_meals_gives_empty_list() -> None:
    assert evaluate_day([], [fr(T7)], DAY, CHICAGO, LATE) == []


def test_naive_now_and_negative_window_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate_day([meal(1, 7, 0)], [], DAY, CHICAGO, datetime(2024, 6, 1, 8))  # noqa: DTZ001
    with pytest.raises(ValueError, match="negative"):
        evaluate_day([meal(1, 7, 0)], [], DAY, CHICAGO, LATE, timedelta(seconds=-1))


# --------------------------------------------------------------------------- around midnight

# (zone, UTC instant of D 00:05 local, UTC instant of D 23:55 local) for D = 2024-06-01.
MIDNIGHT_CASES = [
    pytest.param(
        CHICAGO, utc(2024, 6, 1, 5, 5), utc(2024, 6, 2, 4, 55), id="America/Chicago"
    ),
    pytest.param(
        KOLKATA, utc(2024, 5, 31, 18, 35), utc(2024, 6, 1, 18, 25), id="Asia/Kolkata"
    ),
]


@pytest.mark.parametrize(("tz", "early_utc", "late_utc"), MIDNIGHT_CASES)
def test_meals_either_side_of_midnight(
    tz: ZoneInfo, early_utc: datetime, late_utc: datetime
) -> None:
    early, late = meal(2, 0, 5), meal(1, 23, 55)
    day_ms = 86_400_000
    prev_late = fr(ms(late_utc) - day_ms + 60_000)  # 23:56 on the day before
    this_early = fr(ms(early_utc) + 30_000)  # 00:05:30
    this_late = fr(ms(late_utc) + 45_000)  # 23:55:45
    next_early = fr(ms(early_utc) + day_ms - 20_000)  # 00:04:40 the day after
    results = [next_early, this_late, prev_late, this_early]
    now = late_utc + timedelta(days=2)

    occurrences = evaluate_day([late, early], results, DAY, tz, now)
    assert [occ.meal.meal_id for occ in occurrences] == [2, 1]
    assert ms(occurrences[0].target) == ms(early_utc)
    assert ms(occurrences[1].target) == ms(late_utc)
    assert occurrences[0].target.date() == DAY
    assert occurrences[1].target.date() == DAY
    assert occurrences[0].result is this_early
    assert occurrences[1].result is this_late

    # The neighbouring days get their own results.
    before = by_id(evaluate_day([late, early], results, DAY - timedelta(1), tz, now))
    after = by_id(evaluate_day([late, early], results, DAY + timedelta(1), tz, now))
    assert before[1].result is prev_late
    assert after[2].result is next_early


@pytest.mark.parametrize(("tz", "early_utc", "late_utc"), MIDNIGHT_CASES)
def test_results_of_neighbouring_days_do_not_match(
    tz: ZoneInfo, early_utc: datetime, late_utc: datetime
) -> None:
    early, late = meal(2, 0, 5), meal(1, 23, 55)
    day_ms = 86_400_000
    # Only the previous day's 23:55 and the next day's 00:05 dispensed.
    results = [fr(ms(late_utc) - day_ms), fr(ms(early_utc) + day_ms)]
    now = late_utc + timedelta(days=2)
    occurrences = evaluate_day([late, early], results, DAY, tz, now)
    assert [occ.state for occ in occurrences] == [MealState.MISSED, MealState.MISSED]


@pytest.mark.parametrize("tz", [CHICAGO, KOLKATA])
def test_result_at_midnight_goes_to_the_earlier_meal(tz: ZoneInfo) -> None:
    early, late = meal(2, 0, 5), meal(1, 23, 55)
    midnight = datetime(2024, 6, 1, tzinfo=tz)  # 5 min from both meals
    result = fr(ms(midnight))
    now = midnight + timedelta(days=1)
    before = by_id(evaluate_day([late, early], [result], DAY - timedelta(1), tz, now))
    today = by_id(evaluate_day([late, early], [result], DAY, tz, now))
    assert before[1].result is result
    assert before[1].state is MealState.DISPENSED
    assert today[2].result is None
    assert today[2].state is MealState.MISSED
    # With the 23:55 meal disabled, the 00:05 meal gets it.
    off = meal(1, 23, 55, enabled=False)
    today = by_id(evaluate_day([off, early], [result], DAY, tz, now))
    assert today[2].result is result


# --------------------------------------------------------------------------- DST


@pytest.mark.parametrize(
    ("day", "hhmm", "expected_utc", "wall", "offset_h"),
    [
        # Spring forward, America/Chicago 2024-03-10 02:00 CST -> 03:00 CDT.
        (date(2024, 3, 10), (0, 0), utc(2024, 3, 10, 6, 0), (0, 0), -6),
        (date(2024, 3, 10), (1, 30), utc(2024, 3, 10, 7, 30), (1, 30), -6),
        (date(2024, 3, 10), (2, 0), utc(2024, 3, 10, 8, 0), (3, 0), -5),
        # Inside the gap: the first minute after it (the feeder is sent that time then).
        (date(2024, 3, 10), (2, 30), utc(2024, 3, 10, 8, 0), (3, 0), -5),
        (date(2024, 3, 10), (3, 0), utc(2024, 3, 10, 8, 0), (3, 0), -5),
        (date(2024, 3, 10), (7, 0), utc(2024, 3, 10, 12, 0), (7, 0), -5),
        (date(2024, 3, 9), (7, 0), utc(2024, 3, 9, 13, 0), (7, 0), -6),
        # Fall back, 2024-11-03 02:00 CDT -> 01:00 CST: 01:xx happens twice.
        (date(2024, 11, 3), (0, 30), utc(2024, 11, 3, 5, 30), (0, 30), -5),
        (date(2024, 11, 3), (1, 0), utc(2024, 11, 3, 6, 0), (1, 0), -5),
        (date(2024, 11, 3), (1, 30), utc(2024, 11, 3, 6, 30), (1, 30), -5),
        (date(2024, 11, 3), (2, 0), utc(2024, 11, 3, 8, 0), (2, 0), -6),
        (date(2024, 11, 3), (7, 0), utc(2024, 11, 3, 13, 0), (7, 0), -6),
        (date(2024, 11, 2), (7, 0), utc(2024, 11, 2, 12, 0), (7, 0), -5),
    ],
)
def test_meal_target_on_dst_days(
    day: date,
    hhmm: tuple[int, int],
    expected_utc: datetime,
    wall: tuple[int, int],
    offset_h: int,
) -> None:
    target = meal_target(day, hhmm[0] * 3600 + hhmm[1] * 60, CHICAGO)
    assert target.tzinfo is CHICAGO
    # (Not `target == expected_utc`: Python never finds an ambiguous time equal across zones.)
    assert ms(target) == ms(expected_utc)
    assert target.astimezone(UTC) == expected_utc
    assert (target.hour, target.minute) == wall
    assert target.utcoffset() == timedelta(hours=offset_h)
    assert target.fold == 0


@pytest.mark.parametrize(
    ("tz", "day", "time_s", "expected_utc"),
    [
        (ZoneInfo("UTC"), date(2024, 6, 1), 0, utc(2024, 6, 1)),
        (ZoneInfo("UTC"), date(2024, 6, 1), 86399, utc(2024, 6, 1, 23, 59, 59)),
        (KOLKATA, date(2024, 6, 1), 0, utc(2024, 5, 31, 18, 30)),
        (KOLKATA, date(2024, 6, 1), 86399, utc(2024, 6, 1, 18, 29, 59)),
        (BERLIN, date(2024, 3, 31), 9000, utc(2024, 3, 31, 1, 0)),  # 02:30: gap's end
        (BERLIN, date(2024, 10, 27), 9000, utc(2024, 10, 27, 0, 30)),  # first 02:30
    ],
)
def test_meal_target_other_zones(
    tz: ZoneInfo, day: date, time_s: int, expected_utc: datetime
) -> None:
    assert ms(meal_target(day, time_s, tz)) == ms(expected_utc)


@pytest.mark.parametrize("time_s", [-1, 86400, 100_000])
def test_meal_target_rejects_out_of_range_time(time_s: int) -> None:
    with pytest.raises(ValueError):
        meal_target(DAY, time_s, CHICAGO)


@pytest.mark.parametrize(
    ("day", "result_utc", "matched"),
    [
        # 07:00 CDT on the spring-forward day is 12:00 UTC.
        (date(2024, 3, 10), utc(2024, 3, 10, 12, 0, 30), True),
        # A feeder still on CST fires at 13:00 UTC: outside the window.
        (date(2024, 3, 10), utc(2024, 3, 10, 13, 0, 0), False),
        # 07:00 CST on the fall-back day is 13:00 UTC.
        (date(2024, 11, 3), utc(2024, 11, 3, 12, 59, 0), True),
        # A feeder still on CDT fires at 12:00 UTC.
        (date(2024, 11, 3), utc(2024, 11, 3, 12, 0, 0), False),
    ],
)
def test_matching_on_dst_days(day: date, result_utc: datetime, matched: bool) -> None:
    result = fr(ms(result_utc))
    now = utc(day.year, day.month, day.day + 1, 12)
    (occ,) = evaluate_day([meal(1, 7, 0)], [result], day, CHICAGO, now)
    assert (occ.result is result) is matched
    assert occ.state is (MealState.DISPENSED if matched else MealState.MISSED)


def test_matching_in_spring_forward_gap() -> None:
    result = fr(ms(utc(2024, 3, 10, 8, 0, 20)))  # 03:00:20 CDT, the first minute after
    now = utc(2024, 3, 10, 9)
    (occ,) = evaluate_day([meal(1, 2, 30)], [result], date(2024, 3, 10), CHICAGO, now)
    assert occ.result is result
    assert (occ.target.hour, occ.target.minute) == (3, 0)


@pytest.mark.parametrize(
    ("result_utc", "matched"),
    [
        (utc(2024, 11, 3, 6, 31), True),  # the first 01:31 (CDT)
        (utc(2024, 11, 3, 7, 31), False),  # the second 01:31 (CST)
    ],
)
def test_matching_in_fall_back_overlap(result_utc: datetime, matched: bool) -> None:
    result = fr(ms(result_utc))
    now = utc(2024, 11, 3, 12)
    (occ,) = evaluate_day([meal(1, 1, 30)], [result], date(2024, 11, 3), CHICAGO, now)
    assert (occ.result is result) is matched


@pytest.mark.parametrize(
    ("hhmm", "now", "state"),
    [
        # `now` shares the target's tzinfo but not its fold: compared as instants.
        (
            (1, 30),
            datetime(2024, 11, 3, 1, 29, tzinfo=CHICAGO, fold=0),
            MealState.UPCOMING,
        ),
        ((1, 30), datetime(2024, 11, 3, 1, 32, tzinfo=CHICAGO, fold=0), MealState.DUE),
        (
            (1, 30),
            datetime(2024, 11, 3, 1, 29, tzinfo=CHICAGO, fold=1),
            MealState.MISSED,
        ),
        (
            (1, 30),
            datetime(2024, 11, 3, 1, 31, tzinfo=CHICAGO, fold=1),
            MealState.MISSED,
        ),
        # 02:30 on the spring-forward day is 03:00 CDT, the first minute after the gap.
        ((2, 30), datetime(2024, 3, 10, 1, 59, tzinfo=CHICAGO), MealState.UPCOMING),
        ((2, 30), datetime(2024, 3, 10, 3, 2, tzinfo=CHICAGO), MealState.DUE),
        ((2, 30), datetime(2024, 3, 10, 3, 8, tzinfo=CHICAGO), MealState.MISSED),
    ],
)
def test_state_uses_instants_around_dst(
    hhmm: tuple[int, int], now: datetime, state: MealState
) -> None:
    (occ,) = evaluate_day([meal(1, *hhmm)], [], now.date(), CHICAGO, now)
    assert occ.state is state


# --------------------------------------------------------------------------- occurrences_between


def test_occurrences_between_spanning_month_end_and_fall_back() -> None:
    breakfast, lunch_off, dinner = (
        meal(1, 7, 0),
        meal(3, 12, 0, enabled=False),
        meal(2, 18, 30),
    )
    days = [date(2024, 10, 30) + timedelta(days=n) for n in range(6)]  # Oct 30 .. Nov 4

    def as_utc(day: date, hh: int, mm: int) -> datetime:
        offset = 5 if day < date(2024, 11, 3) else 6
        return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC) + timedelta(
            hours=offset
        )

    results = []
    for day in days:
        if day not in (date(2024, 10, 31), date(2024, 11, 4)):
            results.append(fr(ms(as_utc(day, 18, 30)) + 20_000))
        results.append(
            fr(ms(as_utc(day, 7, 0)) - 10_000, fail=day == date(2024, 11, 3))
        )
    start = datetime(2024, 10, 30, tzinfo=CHICAGO)
    end = datetime(2024, 11, 5, tzinfo=CHICAGO)
    now = datetime(2024, 11, 4, 12, tzinfo=CHICAGO)

    occurrences = occurrences_between(
        [dinner, lunch_off, breakfast], results, start, end, CHICAGO, now
    )
    assert len(occurrences) == 18
    targets = [ms(occ.target) for occ in occurrences]
    assert targets == sorted(targets)
    assert len(set(targets)) == 18
    assert [occ.target.date() for occ in occurrences] == [
        d for d in days for _ in range(3)
    ]
    assert [occ.meal.meal_id for occ in occurrences] == [1, 3, 2] * 6
    for occ in occurrences:
        hh, mm = divmod(occ.meal.time_s // 60, 60)
        assert (occ.target.hour, occ.target.minute) == (hh, mm)
        assert ms(occ.target) == ms(as_utc(occ.target.date(), hh, mm))
    breakfast_utc_hours = [occ.target.astimezone(UTC).hour for occ in occurrences[::3]]
    assert breakfast_utc_hours == [12, 12, 12, 12, 13, 13]

    states = {(occ.target.date(), occ.meal.meal_id): occ.state for occ in occurrences}
    assert states[date(2024, 10, 31), 2] is MealState.MISSED
    assert states[date(2024, 11, 3), 1] is MealState.FAILED
    assert states[date(2024, 11, 4), 1] is MealState.DISPENSED
    assert states[date(2024, 11, 4), 2] is MealState.UPCOMING
    assert states[date(2024, 11, 1), 2] is MealState.DISPENSED
    assert all(states[d, 3] is MealState.DISABLED for d in days)


def test_occurrences_between_berlin_spring_forward_on_month_end() -> None:
    # Europe/Berlin moves to CEST on 2024-03-31, the last day of the month.
    night = meal(1, 2, 30)
    start = utc(2024, 3, 29)
    end = utc(2024, 4, 2, 12)
    occurrences = occurrences_between([night], [], start, end, BERLIN, start)
    assert [occ.target.astimezone(UTC) for occ in occurrences] == [
        utc(2024, 3, 29, 1, 30),
        utc(2024, 3, 30, 1, 30),
        utc(2024, 3, 31, 1, 0),  # 02:30 does not exist: 03:00 CEST, the gap's end
        utc(2024, 4, 1, 0, 30),
        utc(2024, 4, 2, 0, 30),
    ]
    assert [occ.target.date() for occ in occurrences] == [
        date(2024, 3, 29),
        date(2024, 3, 30),
        date(2024, 3, 31),
        date(2024, 4, 1),
        date(2024, 4, 2),
    ]
    assert all(occ.state is MealState.UPCOMING for occ in occurrences)


def test_occurrences_between_bounds_are_half_open() -> None:
    breakfast, dinner = meal(1, 7, 0), meal(2, 18, 30)
    start = datetime(2024, 6, 1, 7, 0, tzinfo=CHICAGO)
    end = datetime(2024, 6, 2, 7, 0, tzinfo=CHICAGO)
    occurrences = occurrences_between(
        [breakfast, dinner], [], start, end, CHICAGO, LATE
    )
    assert [(occ.target.day, occ.meal.meal_id) for occ in occurrences] == [
        (1, 1),
        (1, 2),
    ]
    shifted = occurrences_between(
        [breakfast, dinner],
        [],
        start + timedelta(milliseconds=1),
        end + timedelta(milliseconds=1),
        CHICAGO,
        LATE,
    )
    assert [(occ.target.day, occ.meal.meal_id) for occ in shifted] == [(1, 2), (2, 1)]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (utc(2024, 6, 2), utc(2024, 6, 1)),
        (utc(2024, 6, 1), utc(2024, 6, 1)),
        (utc(2024, 6, 1, 12, 1), utc(2024, 6, 1, 23)),  # no target inside
    ],
)
def test_occurrences_between_empty(start: datetime, end: datetime) -> None:
    assert occurrences_between([meal(1, 7, 0)], [], start, end, CHICAGO, LATE) == []


def test_occurrences_between_agrees_with_evaluate_day() -> None:
    tz = KOLKATA
    meals = [meal(1, 23, 55), meal(2, 0, 5), meal(3, 12, 0)]
    results = [fr(ms(datetime(2024, 6, d, tzinfo=tz))) for d in range(1, 5)] + [
        fr(ms(datetime(2024, 6, 2, 12, 3, tzinfo=tz)), source=4)
    ]
    now = datetime(2024, 6, 4, 12, tzinfo=tz)
    start, end = datetime(2024, 6, 1, tzinfo=tz), datetime(2024, 6, 5, tzinfo=tz)
    between = occurrences_between(meals, results, start, end, tz, now)
    per_day = [
        occ
        for d in range(1, 5)
        for occ in evaluate_day(meals, results, date(2024, 6, d), tz, now)
    ]
    assert between == per_day
    # Each midnight result is taken exactly once: by the 23:55 meal before it.
    taken = [occ.result for occ in between if occ.result is not None]
    assert len(taken) == len({id(r) for r in taken})
    assert {occ.meal.meal_id for occ in between if occ.result in results[1:4]} == {1}


# --------------------------------------------------------------------------- next_occurrence


@pytest.mark.parametrize(
    ("after", "expected_id", "expected_local"),
    [
        (datetime(2024, 6, 1, 23, 0, tzinfo=CHICAGO), 1, (2024, 6, 2, 7, 0)),
        (datetime(2024, 6, 1, 7, 0, tzinfo=CHICAGO), 2, (2024, 6, 1, 18, 30)),
        (datetime(2024, 6, 1, 6, 59, 59, tzinfo=CHICAGO), 1, (2024, 6, 1, 7, 0)),
        (datetime(2024, 6, 1, 18, 30, tzinfo=CHICAGO), 1, (2024, 6, 2, 7, 0)),
        # 2024-06-02 04:00 UTC is still 2024-06-01 23:00 in Chicago.
        (utc(2024, 6, 2, 4, 0), 1, (2024, 6, 2, 7, 0)),
        (utc(2024, 6, 1, 4, 0), 1, (2024, 6, 1, 7, 0)),
    ],
)
def test_next_occurrence(
    after: datetime, expected_id: int, expected_local: tuple[int, ...]
) -> None:
    found = next_occurrence(
        [meal(2, 18, 30), meal(1, 7, 0), meal(3, 12, 0, enabled=False)], after, CHICAGO
    )
    assert found is not None
    found_meal, target = found
    assert found_meal.meal_id == expected_id
    assert target.tzinfo is CHICAGO
    assert target.timetuple()[:5] == expected_local
    assert ms(target) > ms(after)


def test_next_occurrence_across_midnight_in_kolkata() -> None:
    after = datetime(2024, 6, 1, 23, 59, tzinfo=KOLKATA)
    found = next_occurrence([meal(1, 0, 5), meal(2, 23, 58)], after, KOLKATA)
    assert found is not None
    assert found[0].meal_id == 1
    assert ms(found[1]) == ms(utc(2024, 6, 1, 18, 35))


def test_next_occurrence_across_spring_forward() -> None:
    after = datetime(2024, 3, 9, 23, 0, tzinfo=CHICAGO)
    found = next_occurrence([meal(1, 2, 30)], after, CHICAGO)
    assert found is not None
    assert ms(found[1]) == ms(utc(2024, 3, 10, 8, 0))
    assert (found[1].hour, found[1].minute) == (3, 0)


def test_next_occurrence_in_fall_back_overlap() -> None:
    # After the first 01:30 the next one is a day later, not the repeated 01:30 CST.
    after = datetime(2024, 11, 3, 1, 30, tzinfo=CHICAGO, fold=0)
    found = next_occurrence([meal(1, 1, 30)], after, CHICAGO)
    assert found is not None
    assert ms(found[1]) == ms(utc(2024, 11, 4, 7, 30))


def test_next_occurrence_equal_targets_lower_id() -> None:
    found = next_occurrence([meal(7, 7, 0), meal(4, 7, 0)], LATE, CHICAGO)
    assert found is not None
    assert found[0].meal_id == 4


@pytest.mark.parametrize(
    "meals", [[], [meal(1, 7, 0, enabled=False)], [meal(1, 7, 0, enabled=False)] * 3]
)
def test_next_occurrence_none_without_enabled_meals(meals: list[Meal]) -> None:
    assert next_occurrence(meals, LATE, CHICAGO) is None


# --------------------------------------------------------------------------- portions


@pytest.mark.parametrize(
    ("text", "cups"),
    [
        ("1/4 cup", 0.25),
        ("0.25", 0.25),
        ("0.25 cups", 0.25),
        ("1 1/2 cups", 1.5),
        ("4 tbsp", 0.25),
        ("4 tablespoons", 0.25),
        ("1 tablespoon", 0.0625),
        ("portion: 1/8", 0.125),
        ("Portion: 1/4 cup", 0.25),
        ("PORTION 3/4 CUPS", 0.75),
        ("  1/2 CUP  ", 0.5),
        ("1/4cup", 0.25),
        ("2 Tbsp.", 0.125),
        ("2 tbs", 0.125),
        ("8 tbsps", 0.5),
        (".5", 0.5),
        ("2", 2.0),
        ("1 cup", 1.0),
        ("1-1/2 cups", 1.5),
        ("3 / 8 cup", 0.375),
        ("½ cup", 0.5),
        ("1½ cups", 1.5),
        ("⅛", 0.125),
        ("1/16 cup", 0.0625),
        ("Breakfast\nportion: 1/4 cup", 0.25),
        ("1 cup\nportion: 1/8", 0.125),
        ("notes here\n3/8 cup\n1 cup", 0.375),
        ("Feed the cat\r\n 1 1/4 cups \r\n", 1.25),
    ],
)
def test_parse_portion(text: str, cups: float) -> None:
    assert parse_portion(text) == pytest.approx(cups)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "lots",
        "cup",
        "1/0",
        "1/0 cup",
        "1 1/0 cups",
        "1 3/2 cups",
        "-1 cup",
        "-0.25",
        "+1 cup",
        "NaN",
        "nan cups",
        "inf",
        "Infinity",
        "-inf",
        "1e3",
        "1e309",
        "0x10",
        "1..5",
        "1/4/8",
        "1/4 tsp",
        "10 grams",
        "1/4 cups of kibble",
        "one cup",
        "\u0661",  # Arabic-Indic digit one
        "99999",
        "12345 cups",
        "1" * 5000,
        "1 " * 5000,
        "\n" * 100,
    ],
)
def test_parse_portion_garbage_is_none(text: str) -> None:
    assert parse_portion(text) is None


@pytest.mark.parametrize(
    ("text", "cups"), [("0", 0.0), ("0/4 cup", 0.0), ("9999 cups", 9999.0)]
)
def test_parse_portion_does_not_check_range(text: str, cups: float) -> None:
    assert parse_portion(text) == cups


def test_parse_portion_non_string_is_none() -> None:
    assert parse_portion(None) is None  # type: ignore[arg-type]
    assert parse_portion(0.25) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cups", "text"),
    [
        (0.25, "1/4 cup"),
        (1.5, "1 1/2 cups"),
        (0.0625, "1/16 cup"),
        (0.125, "1/8 cup"),
        (0.1875, "3/16 cup"),
        (0.375, "3/8 cup"),
        (0.5, "1/2 cup"),
        (0.75, "3/4 cup"),
        (1, "1 cup"),
        (1.0625, "1 1/16 cups"),
        (2, "2 cups"),
        (2.25, "2 1/4 cups"),
        (0, "0 cups"),
        (0.26, "1/4 cup"),
        (0.3, "5/16 cup"),
    ],
)
def test_format_portion(cups: float, text: str) -> None:
    assert format_portion(cups) == text


@pytest.mark.parametrize("steps", range(65))
def test_format_parse_round_trip(steps: int) -> None:
    cups = steps / 16
    assert parse_portion(format_portion(cups)) == cups


@pytest.mark.parametrize("cups", [-0.0625, float("nan"), float("inf")])
def test_format_portion_rejects_bad_amounts(cups: float) -> None:
    with pytest.raises(ValueError):
        format_portion(cups)


# --------------------------------------------------------------------------- grams and hopper


@pytest.mark.parametrize(
    ("cups", "g_per_tbsp", "grams"),
    [(0.25, 8, 32.0), (1, 10, 160.0), (0.0625, 7.5, 7.5), (0, 8, 0.0)],
)
def test_cups_for_grams(cups: float, g_per_tbsp: float, grams: float) -> None:
    assert cups_for_grams(grams, g_per_tbsp) == pytest.approx(cups)


@pytest.mark.parametrize("g_per_tbsp", [0, -1, float("nan"), float("inf")])
def test_cups_for_grams_needs_a_density(g_per_tbsp: float) -> None:
    with pytest.raises(ValueError):
        cups_for_grams(32, g_per_tbsp)


def test_constants() -> None:
    assert CAPACITY_CUPS == 20.5
    assert TBSP_PER_CUP == 16


def test_hopper_protocol_vector() -> None:
    results = [fr(1_000_000 + n * 1000, grams=5.0) for n in range(100)]
    # (20.5 - 500/10/16) / 20.5 * 100 = 84.76: upstream int() gives 84.
    assert hopper_level(100, 0, results, g_per_tbsp=10) == 84.0


@pytest.mark.parametrize(
    ("reference_pct", "results", "g_per_tbsp", "expected"),
    [
        (100, [], 8, 100.0),
        (50, [], 8, 50.0),
        (150, [], 8, 100.0),  # never above 100
        (-10, [], 8, 0.0),
        (100, [fr(2000, grams=100_000.0)], 8, 0.0),  # over-consumption clamps to 0
        (10, [fr(2000, grams=800.0)], 8, 0.0),
        # Exactly 10 % used (2.05 cups = 32.8 tbsp = 328 g): stays 90, not 89.
        (100, [fr(2000, grams=328.0)], 10, 90.0),
        (100, [fr(2000, grams=32.0, fail=True)], 8, 100.0),  # failed counts 0 g
        (100, [fr(2000, grams=None)], 8, 100.0),
        (100, [fr(2000, grams=-500.0)], 8, 100.0),
        (100, [fr(2000, grams=float("nan"))], 8, 100.0),
        # 32 g at 8 g/tbsp = 1/4 cup: 100 - 0.25/20.5*100 = 98.78 -> 98
        (100, [fr(2000, grams=32.0, fail=None)], 8, 98.0),
        (100, [fr(999, grams=5000.0), fr(1000, grams=32.0)], 8, 98.0),
    ],
)
def test_hopper_level(
    reference_pct: float,
    results: list[FeedResult],
    g_per_tbsp: float,
    expected: float,
) -> None:
    assert hopper_level(reference_pct, 1000, results, g_per_tbsp) == expected


def test_hopper_ignores_results_before_reference() -> None:
    before = fr(999, grams=32.0)
    at = fr(1000, grams=32.0)
    assert hopper_level(100, 1000, [before], 8) == 100.0
    # 100 - 0.25/20.5*100 = 98.78 -> 98
    assert hopper_level(100, 1000, [before, at], 8) == 98.0


@pytest.mark.parametrize("g_per_tbsp", [None, 0, -8, float("nan"), float("inf")])
def test_hopper_needs_a_recipe(g_per_tbsp: float | None) -> None:
    assert hopper_level(100, 0, [fr(1000)], g_per_tbsp) is None


def test_hopper_needs_a_finite_reference() -> None:
    assert hopper_level(float("nan"), 0, [], 8) is None


def test_hopper_accepts_any_iterable() -> None:
    results = (fr(1000 + n, grams=32.0) for n in range(2))
    assert hopper_level(100, 0, results, 8) == 97.0  # 100 - 0.5/20.5*100 = 97.56


# --------------------------------------------------------------------------- meal model


def test_meal_dict_round_trip() -> None:
    original = Meal(meal_id=3, name="Lunch", time_s=43200, portion=0.5, enabled=False)
    data = original.to_dict()
    assert data == {
        "meal_id": 3,
        "name": "Lunch",
        "time_s": 43200,
        "portion": 0.5,
        "enabled": False,
    }
    assert Meal.from_dict(data) == original


def test_meal_from_dict_defaults_and_extra_keys() -> None:
    loaded = Meal.from_dict(
        {"meal_id": 1, "name": "B", "time_s": 0, "portion": 1, "future": "x"}
    )
    assert loaded.enabled is True
    assert loaded.portion == 1.0
    assert isinstance(loaded.portion, float)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "B", "time_s": 0, "portion": 0.25},
        {"meal_id": 1, "time_s": 0, "portion": 0.25},
        {"meal_id": 1, "name": "B", "portion": 0.25},
        {"meal_id": 1, "name": "B", "time_s": 0},
        {"meal_id": 1, "name": "B", "time_s": 86400, "portion": 0.25},
        {"meal_id": 1, "name": "B", "time_s": -1, "portion": 0.25},
        {"meal_id": 1, "name": "B", "time_s": "25200", "portion": 0.25},
        {"meal_id": 1, "name": "B", "time_s": 25200.0, "portion": 0.25},
        {"meal_id": True, "name": "B", "time_s": 0, "portion": 0.25},
        {"meal_id": 1, "name": None, "time_s": 0, "portion": 0.25},
        {"meal_id": 1, "name": "B", "time_s": 0, "portion": "0.25"},
        {"meal_id": 1, "name": "B", "time_s": 0, "portion": float("nan")},
        {"meal_id": 1, "name": "B", "time_s": 0, "portion": True},
        {"meal_id": 1, "name": "B", "time_s": 0, "portion": 0.25, "enabled": "yes"},
    ],
)
def test_meal_from_dict_rejects_bad_data(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Meal.from_dict(data)


def test_meal_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BREAKFAST.time_s = 0  # type: ignore[misc]


def test_meal_state_values() -> None:
    assert [state.value for state in MealState] == [
        "dispensed",
        "failed",
        "upcoming",
        "due",
        "missed",
        "disabled",
        "skipped",
        "unconfirmed",
        "paused",
    ]
    assert MealState("missed") is MealState.MISSED


# --------------------------------------------------------------------------- who gets credit (§9.5)

T15 = 1717272000000  # 2024-06-01 15:00 CDT


def test_a_feed_now_before_a_meal_never_dispenses_it_early() -> None:
    """Feed now at 15:08, a meal at 15:11: the meal is still to come, then due, then missed."""
    feed_now = fr(T15 + 8 * 60_000, source=4)
    for minute, state in ((9, MealState.UPCOMING), (12, MealState.DUE)):
        (occ,) = evaluate_day(
            [meal(1, 15, 11)], [feed_now], DAY, CHICAGO, at_ms(T15 + minute * 60_000)
        )
        assert occ.state is state
        assert occ.result is None
    (occ,) = evaluate_day([meal(1, 15, 11)], [feed_now], DAY, CHICAGO, LATE)
    assert occ.state is MealState.MISSED


def test_a_button_press_at_meal_time_hides_no_missed_meal() -> None:
    press = fr(T15, source=5)  # perhaps the pet
    (occ,) = evaluate_day([meal(1, 15, 0)], [press], DAY, CHICAGO, LATE)
    assert occ.state is MealState.MISSED
    assert occ.result is None


def test_a_meal_created_after_its_time_takes_nothing_from_the_meal_that_had_it() -> (
    None
):
    """15:04 dispense of the 15:06 meal; a meal for 15:03 created at 15:12 never existed today."""
    dispensed = fr(T15 + 4 * 60_000)
    created = (T15 + 12 * 60_000) / 1000
    meals = [meal(1, 15, 6), meal(2, 15, 3)]
    occurrences = by_id(
        evaluate_day(meals, [dispensed], DAY, CHICAGO, LATE, since={2: created})
    )
    assert occurrences[1].result is dispensed
    assert 2 not in occurrences
    # The next day the new meal exists like any other.
    tomorrow = by_id(
        evaluate_day(
            meals, [], DAY + timedelta(days=1), CHICAGO, LATE, since={2: created}
        )
    )
    assert set(tomorrow) == {1, 2}


def test_a_meal_due_while_home_assistant_was_stopped_is_unconfirmed() -> None:
    breakfast = meal(1, 7, 0)
    stopped = ((T7 - 3_600_000) / 1000, (T7 + 600_000) / 1000)  # 06:00 to 07:10
    (occ,) = evaluate_day([breakfast], [], DAY, CHICAGO, LATE, unheard=[stopped])
    assert occ.state is MealState.UNCONFIRMED
    # A stop that ended before the meal, or began after its due span, changes nothing.
    for period in (
        ((T7 - 7_200_000) / 1000, (T7 - W_MS - 1000) / 1000),
        ((T7 + W_MS + SLACK_MS + 1000) / 1000, (T7 + 7_200_000) / 1000),
    ):
        (occ,) = evaluate_day([breakfast], [], DAY, CHICAGO, LATE, unheard=[period])
        assert occ.state is MealState.MISSED
    # The result the feeder replays once it is heard again settles it.
    replayed = fr(T7 + 2000)
    (occ,) = evaluate_day(
        [breakfast], [replayed], DAY, CHICAGO, LATE, unheard=[stopped]
    )
    assert occ.state is MealState.DISPENSED
