"""occurrence_cache gives exactly what ledger.occurrences gives, at every instant.

Plain pytest: no Home Assistant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from custom_components.petnet_feeder import ledger, meals, occurrence_cache
from custom_components.petnet_feeder.ledger import MealLedger
from custom_components.petnet_feeder.meals import Meal
from custom_components.petnet_feeder.protocol.messages import FeedResult

CHICAGO = ZoneInfo("America/Chicago")
MEALS = (
    Meal(meal_id=1, name="Breakfast", time_s=7 * 3600, portion=0.25),
    Meal(meal_id=2, name="Lunch", time_s=12 * 3600, portion=0.125),
    Meal(meal_id=3, name="Late", time_s=23 * 3600 + 59 * 60, portion=0.125),
    Meal(meal_id=4, name="Off", time_s=15 * 3600, portion=0.125, enabled=False),
    # Inside the spring-forward gap of 2024-03-10.
    Meal(meal_id=5, name="Gap", time_s=2 * 3600 + 30 * 60, portion=0.125),
)


def result(at: datetime, *, fail: bool = False) -> FeedResult:
    start_ms = int(at.timestamp() * 1000)
    return FeedResult.from_dict(
        {
            "device_hid": "1" * 40,
            "start_ms": start_ms,
            "end_ms": start_ms + 5000,
            "source": 6,
            "grams_expected": 32.0,
            "grams_actual": 30.0,
            "fail": fail,
        }
    )


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    occurrence_cache.clear()


@pytest.mark.parametrize("day", ["2024-06-01", "2024-03-10", "2024-11-03"])
def test_the_same_answer_as_meals_at_every_instant(day: str) -> None:
    midnight = datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=CHICAGO)
    results = (
        result(midnight + timedelta(hours=7, seconds=3)),
        result(midnight + timedelta(hours=12, minutes=4), fail=True),
    )
    since = {2: (midnight + timedelta(hours=1)).timestamp()}
    # As they come back from storage: lists.
    unheard = [
        [
            (midnight + timedelta(hours=23)).timestamp(),
            (midnight + timedelta(hours=23, minutes=30)).timestamp(),
        ]
    ]
    window = timedelta(minutes=5)
    # Every 10 minutes over two days, and a millisecond either side of each instant where a
    # state changes; with the calendar's moving range and a fixed one.
    instants = [midnight + timedelta(minutes=10 * step) for step in range(-6, 2 * 144)]
    late = window + meals.DELIVERY_SLACK
    for offset in range(3):
        day_of = midnight.date() + timedelta(days=offset)
        for meal in MEALS:
            target = meals.meal_target(day_of, meal.time_s, CHICAGO)
            instants.extend(
                edge + timedelta(milliseconds=delta_ms)
                for edge in (target, target + late + timedelta(milliseconds=1))
                for delta_ms in (-1, 0, 1)
            )
    # A ledger recorded up to 09:00 of the day: earlier occurrences come from it.
    book = MealLedger(recorded_until=(midnight - timedelta(days=1)).timestamp())
    ledger.record(book, MEALS, CHICAGO, midnight + timedelta(hours=9), since=since)
    for now in sorted(instants):
        for start, end in (
            (now - timedelta(minutes=1), now + timedelta(days=2)),
            (midnight, midnight + timedelta(days=1)),
        ):
            args = (book, MEALS, results, start, end, CHICAGO, now, window)
            kwargs = {"since": since, "unheard": unheard}
            assert occurrence_cache.occurrences(
                *args,
                **kwargs,
                was_skipped=never,
                was_paused=never,
                marks=(),
            ) == ledger.occurrences(*args, **kwargs), now


def never(_meal_id: int, _target: datetime) -> bool:
    return False


def test_one_computation_serves_the_calls_until_a_state_can_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    computed: list[datetime] = []
    original = ledger.occurrences

    def counting(*args: object, **kwargs: object) -> list[meals.MealOccurrence]:
        computed.append(args[6])  # type: ignore[arg-type]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "occurrences", counting)
    book = MealLedger()
    now = datetime(2024, 6, 1, 13, 0, tzinfo=UTC)  # 08:00 in Chicago: Lunch is next

    def ask(at: datetime, results: tuple[FeedResult, ...] = ()) -> None:
        occurrence_cache.occurrences(
            book,
            MEALS,
            results,
            at - timedelta(minutes=1),
            at + timedelta(days=2),
            CHICAGO,
            at,
            timedelta(minutes=5),
            since=None,
            unheard=(),
            was_skipped=never,
            was_paused=never,
            marks=(),
        )

    for seconds in range(0, 3600, 60):
        ask(now + timedelta(seconds=seconds))
    assert len(computed) == 1
    # A new result is a new input, and so is a newly recorded occurrence.
    ask(now, (result(now),))
    assert len(computed) == 2
    ledger.record(book, MEALS, CHICAGO, now)
    ask(now, (result(now),))
    assert len(computed) == 3
