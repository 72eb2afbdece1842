"""Food accounting of a feeder: what it dispensed today, its meals today, its hopper (§9.4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from . import ledger, occurrence_cache
from .meals import MealOccurrence, MealState, hopper_level
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


def feeder_occurrences(
    feeder: Feeder,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    now: datetime,
    window: timedelta,
    *,
    include_disabled: bool = False,
) -> list[MealOccurrence]:
    """The feeder's meal occurrences with a target in [start, end): the one account.

    Calendar, sensors, repairs, automatic feeding and the history action all read this.
    """
    return occurrence_cache.occurrences(
        feeder.ledger,
        feeder.meals,
        [row.result for row in feeder.history],
        start,
        end,
        zone,
        now,
        window,
        # A meal added or moved after its time was never due then.
        since=feeder.meal_since,
        unheard=feeder.unheard,
        was_skipped=feeder.was_skipped,
        was_paused=feeder.was_paused,
        marks=skip_and_pause_marks(feeder),
        include_disabled=include_disabled,
    )


def skip_and_pause_marks(feeder: Feeder) -> tuple[object, ...]:
    """The skips and pauses (the feeder's and its pets'), as a value that changes with them."""
    return (
        tuple(sorted(feeder.skipped.items())),
        tuple(tuple(entry) for entry in feeder.skip_log),
        feeder.feeding_pause.marks(),
        tuple(
            sorted(
                (pet_id, pause.marks()) for pet_id, pause in feeder.pet_pauses.items()
            )
        ),
    )


def record_meals(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> None:
    """Record the occurrences whose time has come and settle the open ones.

    Called by the minute check, when a result arrives, and before the meals are edited (so
    that what was due under the old meals stays as it was).
    """
    ledger.record(
        feeder.ledger,
        feeder.meals,
        zone,
        now,
        since=feeder.meal_since,
        was_skipped=feeder.was_skipped,
        was_paused=feeder.was_paused,
    )
    ledger.occurrences(
        feeder.ledger,
        feeder.meals,
        [row.result for row in feeder.history],
        now,
        now,
        zone,
        now,
        window,
        since=feeder.meal_since,
        unheard=feeder.unheard,
        was_skipped=feeder.was_skipped,
        was_paused=feeder.was_paused,
        settle=True,
    )


def today_occurrences(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> list[MealOccurrence]:
    """Today's meal occurrences (enabled meals that were or will be due) in the feeder's zone."""
    start = local_midnight(now, zone)
    end = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=zone)
    return feeder_occurrences(feeder, zone, start, end, now, window)


def _counted(occurrences: list[MealOccurrence]) -> tuple[int, int]:
    """Meals dispensed and meals planned: a skipped or paused one is not planned."""
    states = [o.state for o in occurrences]
    return (
        states.count(MealState.DISPENSED),
        sum(
            1 for state in states if state not in (MealState.SKIPPED, MealState.PAUSED)
        ),
    )


def day_totals(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> DayTotals:
    """Grams dispensed since local midnight and today's meals dispensed / planned.

    A skipped or paused meal is not planned (unless it was dispensed anyway).
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
    dispensed, planned = _counted(today_occurrences(feeder, zone, now, window))
    return DayTotals(
        grams=round(grams, 1), meals_dispensed=dispensed, meals_planned=planned
    )


def pet_day_totals(
    feeder: Feeder, pet_id: str, zone: ZoneInfo, now: datetime, window: timedelta
) -> DayTotals:
    """A pet's meals on this feeder today: grams they dispensed, dispensed and planned.

    Only the pet's scheduled meals count (a Feed now or a press of the button is nobody's),
    each occurrence with the pet it had when it was due.
    """
    mine = [
        o
        for o in today_occurrences(feeder, zone, now, window)
        if o.meal.pet_id == pet_id
    ]
    grams = sum(
        (
            dispensed_grams(o.result)
            for o in mine
            if o.state is MealState.DISPENSED and o.result is not None
        ),
        0.0,
    )
    dispensed, planned = _counted(mine)
    return DayTotals(
        grams=round(grams, 1), meals_dispensed=dispensed, meals_planned=planned
    )


def pet_last_fed(
    feeder: Feeder, pet_id: str, zone: ZoneInfo, now: datetime, window: timedelta
) -> FeedResult | None:
    """The dispense of the pet's latest meal on this feeder that was dispensed, if any.

    Today first (the usual answer, read by the day's sensors anyway), else the whole ledger.
    """
    start = local_midnight(now, zone)
    for since in (start, now - timedelta(days=ledger.LEDGER_DAYS)):
        for occurrence in reversed(
            feeder_occurrences(
                feeder, zone, since, now + timedelta(seconds=1), now, window
            )
        ):
            if (
                occurrence.meal.pet_id == pet_id
                and occurrence.state is MealState.DISPENSED
                and occurrence.result is not None
            ):
                return occurrence.result
    return None


def last_meal_status(
    feeder: Feeder, zone: ZoneInfo, now: datetime, window: timedelta
) -> MealState | None:
    """Status of the latest meal whose time has come (within a day); upcoming if none has yet."""
    occurrences = feeder_occurrences(
        feeder, zone, now - timedelta(days=1), now + timedelta(days=1), now, window
    )
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
