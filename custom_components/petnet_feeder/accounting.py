"""Food accounting of a feeder: what it dispensed today, its meals today, its hopper (§9.4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .meals import MealOccurrence, MealState, hopper_level, occurrences_between
from .models import Feeder
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


def today_occurrences(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> list[MealOccurrence]:
    """Today's meal occurrences (enabled meals) in the feeder's zone."""
    start = local_midnight(now, zone)
    end = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=zone)
    results = [row.result for row in feeder.history]
    return [
        occurrence
        for occurrence in occurrences_between(
            feeder.meals, results, start, end, zone, now, window
        )
        if occurrence.state is not MealState.DISABLED and _was_due(feeder, occurrence)
    ]


def _was_due(feeder: Feeder, occurrence: MealOccurrence) -> bool:
    """A meal added or moved after its time today was never due today."""
    return occurrence.target.timestamp() >= feeder.meal_since.get(
        occurrence.meal.meal_id, 0.0
    )


def day_totals(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> DayTotals:
    """Grams dispensed since local midnight and today's meals dispensed / planned."""
    since_ms = int(local_midnight(now, zone).timestamp() * 1000)
    grams = sum(
        (
            dispensed_grams(row.result)
            for row in feeder.history
            if row.result.start_ms >= since_ms
        ),
        0.0,
    )
    occurrences = today_occurrences(feeder, zone, now, window)
    return DayTotals(
        grams=round(grams, 1),
        meals_dispensed=sum(1 for o in occurrences if o.state is MealState.DISPENSED),
        meals_planned=len(occurrences),
    )


def last_meal_status(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> MealState | None:
    """Status of the latest meal whose time has come (within a day); upcoming if none has yet."""
    start = now - timedelta(days=1)
    results = [row.result for row in feeder.history]
    occurrences = [
        o
        for o in occurrences_between(
            feeder.meals, results, start, now + timedelta(days=1), zone, now, window
        )
        if o.state is not MealState.DISABLED and _was_due(feeder, o)
    ]
    if not occurrences:
        return None
    passed = [o for o in occurrences if o.target <= now]
    return passed[-1].state if passed else MealState.UPCOMING


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
