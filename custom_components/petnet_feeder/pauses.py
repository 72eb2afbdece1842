"""Pausing a feeder's meals while the pet is away: nothing delivered, nothing missed.

The feeder holds each occurrence that falls inside the pause *inactive* (the same form a
skipped meal takes), so it keeps its schedule but dispenses nothing then; those occurrences are
recorded as paused, never missed and never fed automatically. A pause ends when it is resumed
(the switch, or its end time).

The end time is a whole minute, and a meal exactly at the end is dispensed: it lies outside
the pause and is delivered active. The pause itself ends ``RESUME_LEAD`` before its end.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .accounting import record_meals
from .errors import invalid
from .feeder_clock import FeederClock
from .models import Feeder
from .schedule_sync import ScheduleSync
from .state import FeederState

RESUME_LEAD = timedelta(seconds=45)


class FeedingPauses:
    """Starts and ends pauses, and resumes each one on time."""

    def __init__(
        self,
        hass: HomeAssistant,
        state: FeederState,
        clock: FeederClock,
        sync: ScheduleSync,
    ) -> None:
        """Pause through ``sync`` (which delivers the inactive meals); timers on ``hass``."""
        self._hass = hass
        self._state = state
        self._clock = clock
        self._sync = sync
        self._timers: dict[str, CALLBACK_TYPE] = {}

    @callback
    def start(self) -> None:
        """Arm the resume timer of every pause with an end (one that ended meanwhile ends now)."""
        for feeder in self._state.feeders.values():
            if feeder.paused and feeder.paused_until is not None:
                self._arm(feeder)

    @callback
    def stop(self) -> None:
        """Cancel the timers (the pauses stay stored)."""
        for unsub in self._timers.values():
            unsub()
        self._timers.clear()

    @callback
    def feeder_removed(self, feeder_hid: str) -> None:
        """A deleted feeder's timer goes with it."""
        if (unsub := self._timers.pop(feeder_hid, None)) is not None:
            unsub()

    @callback
    def pause(self, feeder: Feeder, until: datetime | None = None) -> datetime | None:
        """Pause feeding now, until ``until`` (rounded down to its minute) or until resumed.

        Returns the end. Raises InvalidRequestError for an end that is not in the future.
        """
        now = dt_util.utcnow()
        end = None
        if until is not None:
            end = dt_util.as_utc(until).replace(second=0, microsecond=0)
            if end - RESUME_LEAD <= now:
                raise invalid(
                    "pause_end_passed", until=dt_util.as_local(end).isoformat()
                )
        self._record(feeder, now)
        feeder.pause(now.timestamp(), end.timestamp() if end is not None else None)
        self.feeder_removed(feeder.hid)
        if end is not None:
            self._arm(feeder)
        self._changed(feeder, "feeding paused")
        return end

    @callback
    def resume(self, feeder: Feeder) -> None:
        """End the pause now."""
        if not feeder.paused:
            return
        now = dt_util.utcnow()
        self._record(feeder, now)
        feeder.resume(now.timestamp())
        self.feeder_removed(feeder.hid)
        self._changed(feeder, "feeding resumed")

    @callback
    def check(self) -> None:
        """Resume every pause whose end has come (the timers' backstop, every minute)."""
        due = dt_util.utcnow() + RESUME_LEAD
        for feeder in list(self._state.feeders.values()):
            if (
                feeder.paused
                and feeder.paused_until is not None
                and feeder.paused_until <= due.timestamp()
            ):
                self.resume(feeder)

    def _arm(self, feeder: Feeder) -> None:
        assert feeder.paused_until is not None
        at = dt_util.utc_from_timestamp(feeder.paused_until) - RESUME_LEAD
        hid = feeder.hid

        @callback
        def resume_due(_now: datetime) -> None:
            self._timers.pop(hid, None)
            if (current := self._state.feeders.get(hid)) is not None:
                self.resume(current)

        if at <= dt_util.utcnow():
            resume_due(at)
            return
        self._timers[hid] = async_track_point_in_utc_time(self._hass, resume_due, at)

    def _record(self, feeder: Feeder, now: datetime) -> None:
        # What was due before the pause changed stays as it was.
        record_meals(feeder, self._clock.zone(feeder), now, self._clock.window)

    def _changed(self, feeder: Feeder, reason: str) -> None:
        self._sync.request_sync(feeder, reason)
        self._state.notify(feeder.hid)
        self._state.schedule_save()
