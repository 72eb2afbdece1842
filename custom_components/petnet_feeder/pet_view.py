"""One pet as its entities and diagnostics read it: its day over all the feeders that feed it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from homeassistant.util import dt as dt_util

from .accounting import DayTotals, local_midnight, pet_day_totals, pet_last_fed
from .feeder_clock import FeederClock
from .models import Feeder
from .pets import Pet
from .state import FeederState


class PetView:
    """Read-only: what is known about one pet, derived on demand."""

    def __init__(self, pet_id: str, state: FeederState, clock: FeederClock) -> None:
        """Look at the pet ``pet_id`` (as it is now) through the parts that know about it."""
        self.pet_id = pet_id
        self._state = state
        self._clock = clock

    @property
    def pet(self) -> Pet | None:
        """The pet, None once it was removed."""
        return self._state.pets.get(self.pet_id)

    @property
    def feeders(self) -> list[Feeder]:
        """The feeders that feed it (those still known)."""
        if (pet := self.pet) is None:
            return []
        return [
            feeder
            for hid in pet.feeders
            if (feeder := self._state.feeders.get(hid)) is not None
        ]

    @property
    def now(self) -> datetime:
        """The current instant (UTC)."""
        return dt_util.utcnow()

    @property
    def zone(self) -> ZoneInfo:
        """Where its day starts: its first feeder's zone, else Home Assistant's."""
        if feeders := self.feeders:
            return self._clock.zone(feeders[0])
        return self._clock.home_zone()

    @property
    def start_of_today(self) -> datetime:
        """Local midnight in its zone: where today's totals start."""
        return local_midnight(self.now, self.zone)

    @property
    def today(self) -> DayTotals:
        """Its meals today on all its feeders, each feeder's day in its own zone."""
        now, window = self.now, self._clock.window
        days = [
            pet_day_totals(feeder, self.pet_id, self._clock.zone(feeder), now, window)
            for feeder in self.feeders
        ]
        return DayTotals(
            grams=round(sum(day.grams for day in days), 1),
            meals_dispensed=sum(day.meals_dispensed for day in days),
            meals_planned=sum(day.meals_planned for day in days),
        )

    @property
    def target_percent(self) -> float | None:
        """Today's grams as a share of its daily target; None without a target."""
        if (pet := self.pet) is None or not pet.target_g:
            return None
        return round(self.today.grams / pet.target_g * 100, 1)

    @property
    def last_fed(self) -> datetime | None:
        """When the dispense of its latest dispensed meal started, on any of its feeders."""
        now, window = self.now, self._clock.window
        starts = [
            result.start_ms
            for feeder in self.feeders
            if (
                result := pet_last_fed(
                    feeder, self.pet_id, self._clock.zone(feeder), now, window
                )
            )
            is not None
        ]
        return datetime.fromtimestamp(max(starts) / 1000, UTC) if starts else None

    @property
    def paused(self) -> bool:
        """Its meals are paused now (on any of its feeders)."""
        return any(feeder.pet_paused(self.pet_id) for feeder in self.feeders)

    @property
    def paused_until(self) -> datetime | None:
        """When its pause ends, if it has an end."""
        for feeder in self.feeders:
            if feeder.pet_paused(self.pet_id):
                until = feeder.pet_pauses[self.pet_id].until
                return dt_util.utc_from_timestamp(until) if until is not None else None
        return None
