"""The feeder's clock: its zone, its UTC offset, and when its next meal is due.

Sensors, the calendar, monitoring and accounting read the time of a feeder only through this.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from homeassistant.util import dt as dt_util

from .meals import Meal, next_occurrence
from .models import Feeder

_PROBE = timedelta(minutes=15)
_ONE_SECOND = timedelta(seconds=1)


class FeederClock:
    """Time as each feeder sees it."""

    def __init__(self, default_zone: Callable[[], str], grace_minutes: int) -> None:
        """``default_zone``: Home Assistant's zone, for feeders without one of their own."""
        self._default_zone = default_zone
        self.window = timedelta(minutes=grace_minutes)
        """How far from its time a dispense counts as a meal (the grace period option)."""

    def zone(self, feeder: Feeder) -> ZoneInfo:
        """The feeder's time zone, HA's when not set; UTC if the name is unknown."""
        name = feeder.time_zone or self._default_zone()
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def home_zone(self) -> ZoneInfo:
        """Home Assistant's zone (what a feeder without a zone of its own uses)."""
        try:
            return ZoneInfo(self._default_zone())
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def unknown_zone(self, feeder: Feeder) -> str | None:
        """The zone name that cannot be resolved (the feeder then runs on UTC), if any."""
        name = feeder.time_zone or self._default_zone()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return name
        return None

    def utc_offset(self, feeder: Feeder) -> int:
        """Seconds east of UTC in the feeder's zone right now."""
        offset = dt_util.now(self.zone(feeder)).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def last_change(
        self, feeder: Feeder, before: datetime, within: timedelta
    ) -> tuple[datetime, int] | None:
        """The latest change of the feeder's UTC offset in ``(before - within, before]``.

        Returns the first instant of the new offset and the change in seconds (negative when
        the clocks went back), or None. Zones change their offset at most a few times a year:
        probing every 15 minutes finds any change, and halving pins it to the second.
        """
        zone = self.zone(feeder)

        def offset(moment: datetime) -> int:
            utc_offset = moment.astimezone(zone).utcoffset()
            return int(utc_offset.total_seconds()) if utc_offset is not None else 0

        high = before.astimezone(UTC)
        floor = high - within
        now_offset = offset(high)
        low = high
        while low > floor:
            low = max(low - _PROBE, floor)
            if offset(low) != now_offset:
                break
        else:
            return None
        # offset(low) differs from offset(high): the change lies in (low, high].
        while high - low > _ONE_SECOND:
            middle = low + (high - low) / 2
            if offset(middle) == now_offset:
                high = middle
            else:
                low = middle
        return high, now_offset - offset(low)

    def change_within(
        self, feeder: Feeder, after: datetime, within: timedelta
    ) -> datetime | None:
        """The first instant of a new UTC offset in ``(after, after + within]``, if any."""
        zone = self.zone(feeder)
        low = after.astimezone(UTC)
        high = low + within
        before = low.astimezone(zone).utcoffset()
        if high.astimezone(zone).utcoffset() == before:
            return None
        while high - low > _ONE_SECOND:
            middle = low + (high - low) / 2
            if middle.astimezone(zone).utcoffset() == before:
                low = middle
            else:
                high = middle
        return high.replace(microsecond=0) + (
            _ONE_SECOND if high.microsecond else timedelta(0)
        )

    def next_meal(self, feeder: Feeder) -> tuple[Meal, datetime] | None:
        """The next enabled meal and when it is due; a skipped or paused one does not count.

        None while feeding is paused without an end. A meal of a paused pet counts from the
        end of that pet's pause (not at all while it has none).
        """
        now = dt_util.utcnow()
        zone = self.zone(feeder)
        if feeder.paused:
            if feeder.paused_until is None:
                return None
            # The first meal at or after the end of the pause.
            now = max(now, dt_util.utc_from_timestamp(feeder.paused_until - 1))
        found: list[tuple[Meal, datetime]] = []
        for meal in feeder.meals:
            after = max(
                now, dt_util.utc_from_timestamp(feeder.skipped.get(meal.meal_id, 0))
            )
            if meal.pet_id is not None and feeder.pet_paused(meal.pet_id):
                if (pet_until := feeder.pet_pauses[meal.pet_id].until) is None:
                    continue
                after = max(after, dt_util.utc_from_timestamp(pet_until - 1))
            if upcoming := next_occurrence([meal], after, zone):
                found.append(upcoming)
        if not found:
            return None
        return min(found, key=lambda item: (item[1], item[0].meal_id))
