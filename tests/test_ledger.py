"""The meal ledger on its own: what was due stays as it was, whatever the meals become."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from zoneinfo import ZoneInfo

import pytest

from custom_components.petnet_feeder.ledger import (
    LEDGER_DAYS,
    SETTLE_DAYS,
    LedgerEntry,
    MealLedger,
    occurrences,
    record,
)
from custom_components.petnet_feeder.meals import Meal, MealOccurrence, MealState
from custom_components.petnet_feeder.protocol.messages import (
    SOURCE_BUTTON,
    SOURCE_SCHEDULE,
    FeedResult,
)

CHICAGO = ZoneInfo("America/Chicago")
WINDOW = timedelta(minutes=5)
BREAKFAST = Meal(1, "Breakfast", 7 * 3600, 0.25)
DINNER = Meal(2, "Dinner", 18 * 3600, 0.5)


def local(day: int, hhmm: str, month: int = 6) -> datetime:
    hour, minute = (int(part) for part in hhmm.split(":"))
    return datetime(2024, month, day, hour, minute, tzinfo=CHICAGO)


def dispensed_at(moment: datetime, source: int = SOURCE_SCHEDULE) -> FeedResult:
    start_ms = int(moment.timestamp() * 1000)
    return FeedResult.from_dict(
        {
            "device_hid": "feeder",
            "start_ms": start_ms,
            "end_ms": start_ms + 4000,
            "source": source,
            "grams_expected": 30.0,
        }
    )


def started_at(moment: datetime) -> MealLedger:
    """A ledger whose meals existed from ``moment``."""
    return MealLedger(recorded_until=moment.timestamp())


def account(
    ledger: MealLedger,
    meals: list[Meal],
    results: list[FeedResult],
    start: datetime,
    end: datetime,
    now: datetime,
    **kwargs: object,
) -> list[tuple[str, str, MealState]]:
    found = occurrences(
        ledger, meals, results, start, end, CHICAGO, now, WINDOW, **kwargs
    )
    return [summary(o) for o in found]


def summary(occurrence: MealOccurrence) -> tuple[str, str, MealState]:
    when = occurrence.target.astimezone(CHICAGO).strftime("%d %H:%M")
    return occurrence.meal.name, when, occurrence.state


def test_moving_a_meal_keeps_its_dispensed_occurrence() -> None:
    ledger = started_at(local(1, "00:00"))
    results = [dispensed_at(local(1, "07:00"))]
    noon = local(1, "12:00")
    # Recorded before the edit (the editor does this), with the meals as they were.
    record(ledger, [BREAKFAST], CHICAGO, noon)
    moved = Meal(1, "Breakfast", 19 * 3600, 0.25)
    assert account(
        ledger, [moved], results, local(1, "00:00"), local(3, "00:00"), noon
    ) == [
        ("Breakfast", "01 07:00", MealState.DISPENSED),
        ("Breakfast", "01 19:00", MealState.UPCOMING),
        ("Breakfast", "02 19:00", MealState.UPCOMING),
    ]


def test_deleting_a_meal_keeps_its_past() -> None:
    ledger = started_at(local(1, "00:00"))
    evening = local(2, "20:00")
    record(ledger, [BREAKFAST, DINNER], CHICAGO, evening)
    shown = account(
        ledger, [BREAKFAST], [], local(1, "00:00"), local(3, "12:00"), evening
    )
    assert ("Dinner", "01 18:00", MealState.MISSED) in shown
    assert ("Dinner", "02 18:00", MealState.MISSED) in shown
    assert ("Breakfast", "03 07:00", MealState.UPCOMING) in shown
    assert not [
        name for name, when, _ in shown if name == "Dinner" and when > "02 18:00"
    ]


def test_a_meal_added_after_its_time_has_no_occurrence_that_day() -> None:
    # At 15:12 a 15:00 meal is added; the 15:04 schedule dispense belongs to the meal that
    # existed then (15:04), and the new meal starts tomorrow.
    early = Meal(1, "Snack", 15 * 3600 + 240, 0.125)
    late_add = Meal(2, "Tea", 15 * 3600, 0.125)
    ledger = started_at(local(1, "00:00"))
    at_1512 = local(1, "15:12")
    results = [dispensed_at(local(1, "15:04"))]
    record(ledger, [early], CHICAGO, at_1512)
    since = {early.meal_id: 0.0, late_add.meal_id: at_1512.timestamp()}
    shown = account(
        ledger,
        [early, late_add],
        results,
        local(1, "00:00"),
        local(2, "16:00"),
        at_1512,
        since=since,
    )
    assert shown == [
        ("Snack", "01 15:04", MealState.DISPENSED),
        ("Tea", "02 15:00", MealState.UPCOMING),
        ("Snack", "02 15:04", MealState.UPCOMING),
    ]


def test_a_result_before_its_time_credits_the_coming_occurrence() -> None:
    # The feeder's clock runs 20 s ahead: its result arrives before HA recorded the meal.
    ledger = started_at(local(1, "06:00"))
    before = local(1, "06:59") + timedelta(seconds=45)
    results = [dispensed_at(local(1, "06:59") + timedelta(seconds=40))]
    record(ledger, [BREAKFAST], CHICAGO, before)
    assert ledger.entries == []
    assert account(
        ledger, [BREAKFAST], results, local(1, "00:00"), local(2, "00:00"), before
    ) == [("Breakfast", "01 07:00", MealState.DISPENSED)]
    # Once recorded and settled, the entry holds it.
    after = local(1, "07:01")
    record(ledger, [BREAKFAST], CHICAGO, after)
    occurrences(
        ledger, [BREAKFAST], results, after, after, CHICAGO, after, WINDOW, settle=True
    )
    assert [(e.state, e.result) for e in ledger.entries] == [
        (MealState.DISPENSED, results[0])
    ]


def test_a_button_press_never_satisfies_a_recorded_meal() -> None:
    ledger = started_at(local(1, "00:00"))
    later = local(1, "08:00")
    record(ledger, [BREAKFAST], CHICAGO, later)
    results = [dispensed_at(local(1, "07:00"), SOURCE_BUTTON)]
    assert account(
        ledger, [BREAKFAST], results, local(1, "00:00"), local(1, "12:00"), later
    ) == [("Breakfast", "01 07:00", MealState.MISSED)]


def test_a_skip_is_recorded_with_the_occurrence() -> None:
    ledger = started_at(local(1, "00:00"))
    skipped_until = (local(1, "07:00") + WINDOW).timestamp()

    def was_skipped(meal_id: int, target: datetime) -> bool:
        return target.timestamp() < skipped_until

    record(ledger, [BREAKFAST], CHICAGO, local(2, "08:00"), was_skipped=was_skipped)
    assert [e.skipped for e in ledger.entries] == [True, False]
    assert account(
        ledger, [BREAKFAST], [], local(1, "00:00"), local(3, "00:00"), local(2, "08:00")
    ) == [
        ("Breakfast", "01 07:00", MealState.SKIPPED),
        ("Breakfast", "02 07:00", MealState.MISSED),
    ]


def test_settled_entries_keep_their_outcome_when_the_results_are_gone() -> None:
    ledger = started_at(local(1, "00:00"))
    results = [dispensed_at(local(1, "07:00"))]
    now = local(1, "08:00")
    record(ledger, [BREAKFAST], CHICAGO, now)
    occurrences(
        ledger, [BREAKFAST], results, now, now, CHICAGO, now, WINDOW, settle=True
    )
    later = now + timedelta(days=SETTLE_DAYS, hours=1)
    record(ledger, [BREAKFAST], CHICAGO, later)
    occurrences(
        ledger, [BREAKFAST], results, later, later, CHICAGO, later, WINDOW, settle=True
    )
    assert ledger.entries[0].final
    # The history no longer has the result (it is bounded); the ledger still knows.
    shown = occurrences(
        ledger,
        [BREAKFAST],
        [],
        local(1, "00:00"),
        local(2, "00:00"),
        CHICAGO,
        later,
        WINDOW,
    )
    assert [(o.state, o.result) for o in shown] == [(MealState.DISPENSED, results[0])]


def test_only_so_many_days_are_kept_and_a_long_stop_records_no_more() -> None:
    ledger = started_at(local(1, "00:00"))
    far = local(1, "12:00") + timedelta(days=200)
    record(ledger, [BREAKFAST, DINNER], CHICAGO, far)
    days = {entry.day for entry in ledger.entries}
    assert len(days) <= LEDGER_DAYS + 1
    assert (
        min(e.target_s for e in ledger.entries)
        >= (far - timedelta(days=LEDGER_DAYS)).timestamp()
    )


def test_recording_twice_adds_nothing() -> None:
    ledger = started_at(local(1, "00:00"))
    now = local(2, "12:00")
    assert len(record(ledger, [BREAKFAST, DINNER], CHICAGO, now)) == 3
    assert record(ledger, [BREAKFAST, DINNER], CHICAGO, now) == []


@pytest.mark.parametrize(
    ("zone", "day", "time_s", "expected_local"),
    [
        # The meal in the repeated span is recorded once, at its first pass.
        ("America/Chicago", (2024, 11, 3), 5400, "01:30 CDT"),
        # The meal inside the skipped hour is recorded once, at the first minute after it.
        ("America/Chicago", (2024, 3, 10), 9000, "03:00 CDT"),
        ("Australia/Lord_Howe", (2024, 4, 7), 6300, "01:45 +11"),
        ("Australia/Lord_Howe", (2024, 10, 6), 7500, "02:30 +11"),
    ],
)
def test_one_entry_per_meal_and_day_across_clock_changes(
    zone: str, day: tuple[int, int, int], time_s: int, expected_local: str
) -> None:
    tz = ZoneInfo(zone)
    meal = Meal(1, "Night", time_s, 0.125)
    ledger = MealLedger(recorded_until=datetime(*day, tzinfo=tz).timestamp() - 86400)
    record(ledger, [meal], tz, datetime(*day, tzinfo=tz) + timedelta(days=1, hours=12))
    on_the_day = [e for e in ledger.entries if e.day.timetuple()[:3] == day]
    assert len(on_the_day) == 1
    target = datetime.fromtimestamp(on_the_day[0].target_s, UTC).astimezone(tz)
    assert target.strftime("%H:%M %Z") == expected_local


def test_stored_form_round_trips_and_bad_entries_are_left_out() -> None:
    ledger = started_at(local(1, "00:00"))
    now = local(1, "20:00")
    record(ledger, [BREAKFAST, DINNER], CHICAGO, now)
    results = [dispensed_at(local(1, "07:00"))]
    occurrences(
        ledger,
        [BREAKFAST, DINNER],
        results,
        now,
        now,
        CHICAGO,
        now,
        WINDOW,
        settle=True,
    )
    ledger.entries[1].missed_reason = "offline"
    stored = json.loads(json.dumps(ledger.to_dict()))
    stored["entries"].append({"meal_id": "x"})
    loaded = MealLedger.from_dict(stored)
    assert loaded == ledger
    assert [(e.state, e.missed_reason) for e in loaded.entries] == [
        (MealState.DISPENSED, None),
        (MealState.MISSED, "offline"),
    ]
    with pytest.raises(ValueError):
        LedgerEntry.from_dict({**stored["entries"][0], "state": "eaten"})
