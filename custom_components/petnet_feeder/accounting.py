"""Food accounting of a feeder: what it dispensed today, its meals today, its hopper (§9.4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .meals import MealOccurrence, MealState, hopper_level
from .models import Feeder
from .occurrence_cache import occurrences_between
from .protocol.messages import FeedResult


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One local day of a feeder."""

    grams: float
    meals_dispensed: int
    meals_planned: int


def dispensed_grams(result: FeedResult) -> float:
    """Grams a result put in the bowl: measured if known, else intended; a failure counts 0."""
    if result.fail:
        return 0.0
    grams = (
        result.grams_actual
        if result.grams_actual is not None
        else result.grams_expected
    )
    return max(0.0, grams or 0.0)


def local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    """Start of the feeder's local day containing now."""
    return datetime.combine(now.astimezone(zone).date(), time(), tzinfo=zone)


def occurrence_status(feeder: Feeder, occurrence: MealOccurrence) -> MealState:
    """What became of an occurrence, a skip included: skipped unless a result came anyway."""
    if occurrence.result is None and feeder.was_skipped(
        occurrence.meal.meal_id, occurrence.target
    ):
        return MealState.SKIPPED
    return occurrence.state


def today_occurrences(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> list[MealOccurrence]:
    """Today's meal occurrences (enabled meals that were due) in the feeder's zone."""
    start = local_midnight(now, zone)
    end = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=zone)
    return _due_occurrences(feeder, start, end, zone, now, window)


def _due_occurrences(
    feeder: Feeder,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    now: datetime,
    window: timedelta,
) -> list[MealOccurrence]:
    # A meal added or moved after its time today was never due today (since=meal_since).
    return [
        occurrence
        for occurrence in occurrences_between(
            feeder.meals,
            [row.result for row in feeder.history],
            start,
            end,
            zone,
            now,
            window,
            since=feeder.meal_since,
            unheard=feeder.unheard,
        )
        if occurrence.state is not MealState.DISABLED
    ]


def day_totals(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> DayTotals:
    """Grams dispensed since local midnight and today's meals dispensed / planned.

    A skipped meal is not planned (unless it was dispensed anyway).
    """
    since_ms = int(local_midnight(now, zone).timestamp() * 1000)
    grams = sum(
        (
            dispensed_grams(row.result)
            for row in feeder.history
            if row.result.start_ms >= since_ms
        ),
        0.0,
    )
    states = [
        occurrence_status(feeder, o)
        for o in today_occurrences(feeder, zone, now, window)
    ]
    return DayTotals(
        grams=round(grams, 1),
        meals_dispensed=states.count(MealState.DISPENSED),
        meals_planned=sum(1 for state in states if state is not MealState.SKIPPED),
    )


def last_meal_status(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> MealState | None:
    """Status of the latest meal whose time has come (within a day); upcoming if none has yet."""
    occurrences = _due_occurrences(
        feeder, now - timedelta(days=1), now + timedelta(days=1), zone, now, window
    )
    if not occurrences:
        return None
    passed = [o for o in occurrences if o.target <= now]
    return occurrence_status(feeder, passed[-1]) if passed else MealState.UPCOMING


def hopper_percent(feeder: Feeder) -> float | None:
    """Estimated hopper level, unknown until a reference and a recipe are set."""
    if feeder.hopper_reference_pct is None or feeder.hopper_reference_ms is None:
        return None
    return hopper_level(
        feeder.hopper_reference_pct,
        feeder.hopper_reference_ms,
        (row.result for row in feeder.history),
        feeder.g_per_tbsp,
    )


def last_feed(feeder: Feeder) -> FeedResult | None:
    """The newest feed result."""
    return feeder.history[0].result if feeder.history else None
