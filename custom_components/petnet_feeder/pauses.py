"""Pausing a feeder's meals while the pet is away: nothing delivered, nothing missed.

The feeder holds each occurrence that falls inside the pause *inactive* (the same form a
skipped meal takes), so it keeps its schedule but dispenses nothing then; those occurrences are
recorded as paused, never missed and never fed automatically. A pause ends when it is resumed
(the switch, or its end time).

A pet is paused the same way on each feeder that feeds it: only that pet's meals are held
inactive there (``Feeder.pet_pauses``); ``Feeder.was_paused`` answers for both kinds.

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
from .pets import Pet
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
        # The resume timers of pet pauses: (feeder hid, pet id) -> its timer.
        self._pet_timers: dict[tuple[str, str], CALLBACK_TYPE] = {}

    @callback
    def start(self) -> None:
        """Arm the resume timer of every pause with an end (one that ended meanwhile ends now)."""
        for feeder in list(self._state.feeders.values()):
            if feeder.paused and feeder.paused_until is not None:
                self._arm(feeder)
            for pet_id, pause in list(feeder.pet_pauses.items()):
                if pause.current and pause.until is not None:
                    self._arm_pet(feeder, pet_id)

    @callback
    def stop(self) -> None:
        """Cancel the timers (the pauses stay stored)."""
        for unsub in (*self._timers.values(), *self._pet_timers.values()):
            unsub()
        self._timers.clear()
        self._pet_timers.clear()

    @callback
    def feeder_removed(self, feeder_hid: str) -> None:
        """A deleted feeder's timers go with it."""
        self._cancel(feeder_hid)
        for key in [key for key in self._pet_timers if key[0] == feeder_hid]:
            self._cancel_pet(*key)

    @callback
    def pause(self, feeder: Feeder, until: datetime | None = None) -> datetime | None:
        """Pause feeding now, until ``until`` (rounded down to its minute) or until resumed.

        Returns the end. Raises InvalidRequestError for an end that is not in the future.
        """
        now = dt_util.utcnow()
        end = _end(until, now)
        self._record(feeder, now)
        feeder.pause(now.timestamp(), _stamp(end))
        self._cancel(feeder.hid)
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
        self._cancel(feeder.hid)
        self._changed(feeder, "feeding resumed")

    @callback
    def pause_pet(self, pet: Pet, until: datetime | None = None) -> datetime | None:
        """Pause the pet's meals now on each feeder that feeds it, until ``until`` or resumed.

        Returns the end. Raises InvalidRequestError for an end that is not in the future,
        or for a pet that no feeder feeds (there is nothing to pause).
        """
        feeders = self._feeders_of(pet)
        if not feeders:
            raise invalid("pet_has_no_feeder", pet=pet.name)
        now = dt_util.utcnow()
        end = _end(until, now)
        for feeder in feeders:
            self._pause_pet_on(feeder, pet.pet_id, now, end)
        return end

    @callback
    def resume_pet(self, pet: Pet) -> None:
        """End the pet's pause now, on each of its feeders."""
        for feeder in self._feeders_of(pet):
            self.resume_pet_on(feeder, pet.pet_id)

    @callback
    def resume_pet_on(self, feeder: Feeder, pet_id: str) -> None:
        """End a pet's pause on one feeder now (also when it stops feeding the pet)."""
        if not feeder.pet_paused(pet_id):
            return
        now = dt_util.utcnow()
        self._record(feeder, now)
        feeder.resume_pet(pet_id, now.timestamp())
        self._cancel_pet(feeder.hid, pet_id)
        self._changed(feeder, "pet resumed")
        self._state.notify_pet(pet_id)

    @callback
    def extend_pet_pause(self, pet: Pet, feeder: Feeder) -> None:
        """A paused pet's new feeder holds the pet's meals too, until the same end."""
        paused = [f for f in self._feeders_of(pet) if f.pet_paused(pet.pet_id)]
        if not paused or feeder.pet_paused(pet.pet_id):
            return
        until = paused[0].pet_pauses[pet.pet_id].until
        now = dt_util.utcnow()
        end = dt_util.utc_from_timestamp(until) if until is not None else None
        self._pause_pet_on(feeder, pet.pet_id, now, end)

    def _pause_pet_on(
        self, feeder: Feeder, pet_id: str, now: datetime, end: datetime | None
    ) -> None:
        self._record(feeder, now)
        feeder.pause_pet(pet_id, now.timestamp(), _stamp(end))
        self._cancel_pet(feeder.hid, pet_id)
        if end is not None:
            self._arm_pet(feeder, pet_id)
        self._changed(feeder, "pet paused")
        self._state.notify_pet(pet_id)

    @callback
    def check(self) -> None:
        """Resume every pause whose end has come (the timers' backstop, every minute)."""
        due = (dt_util.utcnow() + RESUME_LEAD).timestamp()
        for feeder in list(self._state.feeders.values()):
            if (
                feeder.paused
                and feeder.paused_until is not None
                and feeder.paused_until <= due
            ):
                self.resume(feeder)
            for pet_id, pause in list(feeder.pet_pauses.items()):
                if pause.current and pause.until is not None and pause.until <= due:
                    self.resume_pet_on(feeder, pet_id)

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

    def _arm_pet(self, feeder: Feeder, pet_id: str) -> None:
        until = feeder.pet_pauses[pet_id].until
        assert until is not None
        at = dt_util.utc_from_timestamp(until) - RESUME_LEAD
        key = (feeder.hid, pet_id)

        @callback
        def resume_due(_now: datetime) -> None:
            self._pet_timers.pop(key, None)
            if (current := self._state.feeders.get(key[0])) is not None:
                self.resume_pet_on(current, pet_id)

        if at <= dt_util.utcnow():
            resume_due(at)
            return
        self._pet_timers[key] = async_track_point_in_utc_time(
            self._hass, resume_due, at
        )

    def _cancel(self, feeder_hid: str) -> None:
        if (unsub := self._timers.pop(feeder_hid, None)) is not None:
            unsub()

    def _cancel_pet(self, feeder_hid: str, pet_id: str) -> None:
        if (unsub := self._pet_timers.pop((feeder_hid, pet_id), None)) is not None:
            unsub()

    def _feeders_of(self, pet: Pet) -> list[Feeder]:
        return [
            feeder
            for hid in pet.feeders
            if (feeder := self._state.feeders.get(hid)) is not None
        ]

    def _record(self, feeder: Feeder, now: datetime) -> None:
        # What was due before the pause changed stays as it was.
        record_meals(feeder, self._clock.zone(feeder), now, self._clock.window)

    def _changed(self, feeder: Feeder, reason: str) -> None:
        self._sync.request_sync(feeder, reason)
        self._state.notify(feeder.hid)
        self._state.schedule_save()


def _end(until: datetime | None, now: datetime) -> datetime | None:
    """A pause's end: ``until`` rounded down to its minute; it must be in the future."""
    if until is None:
        return None
    end = dt_util.as_utc(until).replace(second=0, microsecond=0)
    if end - RESUME_LEAD <= now:
        raise invalid("pause_end_passed", until=dt_util.as_local(end).isoformat())
    return end


def _stamp(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None
