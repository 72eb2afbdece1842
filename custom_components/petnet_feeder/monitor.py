"""Was my pet fed? Feeding events, missed meals and offline feeders (§9.5).

Every newly stored feed result is handed to the monitor; a minute tick looks for meals whose
window passed without a dispense and for feeders that stayed silent too long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
from typing import Any, Protocol

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .accounting import feeder_occurrences, last_meal_status, record_meals
from .const import DOMAIN
from .feeder_clock import FeederClock
from .ledger import MISSED_OFFLINE, MISSED_SILENT
from .meals import Meal, MealOccurrence, MealState
from .models import Feeder, MissedMeal
from .protocol.messages import SOURCE_BUTTON, SOURCE_REMOTE, SOURCE_SCHEDULE, FeedResult
from .repair_issues import raise_issue
from .schedule_sync import ScheduleSync
from .state import FeederState

_LOGGER = logging.getLogger(__name__)

EVENT_SCHEDULED = "scheduled"
EVENT_MANUAL = "manual"
EVENT_BUTTON = "button"
EVENT_FAILED = "failed"
EVENT_MISSED = "missed"
EVENT_TYPES = [EVENT_SCHEDULED, EVENT_MANUAL, EVENT_BUTTON, EVENT_FAILED, EVENT_MISSED]

# Event attributes that hold the instant of the dispense (or of the missed meal).
ATTR_STARTED = "started"
ATTR_SCHEDULED = "scheduled"
# The name of the pet a scheduled, failed or missed meal was for (absent: no pet).
ATTR_PET = "pet"

CHECK_INTERVAL = timedelta(minutes=1)
CHECK_SLICE = 50
"""Feeders the minute check visits per turn of the event loop. In one piece, the check (and the
entity updates it causes) held the loop for 0.3-0.9 s at 1000 feeders, and every heartbeat then
waited for it (``scripts/bench``: idle p99 of 0.7-0.8 s)."""
# Results older than this are stored but raise no event (a feeder replays results after a
# reconnect; an automation should not hear about yesterday's breakfast again).
EVENT_MAX_AGE = timedelta(hours=6)
# Meals whose window closed longer ago than this are not reported as missed any more.
MISS_LOOKBACK = timedelta(hours=6)
MISS_LOG_LIMIT = 200
# How long a Feed now waits for the feeder's report of the dispense.
FEED_RESULT_TIMEOUT_S = 60.0
# A gap in listening shorter than this (a reload) is not worth remembering.
UNHEARD_MIN_S = 5.0

MISSED_ISSUE = "missed_meal"
OFFLINE_ISSUE = "feeder_offline"
ZONE_ISSUE = "time_zone_unknown"
FAILED_ISSUE = "failed_dispense"


def missed_issue_id(feeder_hid: str) -> str:
    """Repair issue id of a feeder's missed meal."""
    return f"{MISSED_ISSUE}_{feeder_hid}"


def offline_issue_id(feeder_hid: str) -> str:
    """Repair issue id of a feeder that stays offline."""
    return f"{OFFLINE_ISSUE}_{feeder_hid}"


def failed_issue_id(feeder_hid: str) -> str:
    """Repair issue id of a feeder whose scheduled dispense failed."""
    return f"{FAILED_ISSUE}_{feeder_hid}"


def zone_issue_id(feeder_hid: str) -> str:
    """Repair issue id of a feeder whose time zone cannot be resolved."""
    return f"{ZONE_ISSUE}_{feeder_hid}"


def miss_key(occurrence: MealOccurrence) -> str:
    """Identify one occurrence of a meal."""
    return f"{occurrence.meal.meal_id}@{int(occurrence.target.timestamp())}"


@dataclass(frozen=True, slots=True)
class FeedingEvent:
    """What the feeding event entity shows."""

    event_type: str
    attributes: dict[str, Any]


type FeedingListener = Callable[[FeedingEvent], None]
type Spawn = Callable[[Coroutine[Any, Any, Any], str], object]


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """The options monitoring follows."""

    auto_feed_missed: bool = False
    retry_failed: bool = False
    offline_alert_minutes: int = 60


class Feeding(Protocol):
    """What monitoring may ask of a feeder: feed a missed meal."""

    async def async_feed(self, feeder_hid: str, portion: float) -> None:
        """Dispense a portion now."""


class FeedingMonitor:
    """Turns feed results and silence into events, repair issues and recovery."""

    def __init__(
        self,
        hass: HomeAssistant,
        state: FeederState,
        clock: FeederClock,
        sync: ScheduleSync,
        feeding: Feeding,
        settings: MonitorSettings,
        spawn: Spawn,
    ) -> None:
        """Create the monitor; start() begins the minute checks."""
        self._hass = hass
        self._state = state
        self._clock = clock
        self._sync = sync
        self._feeding = feeding
        self.settings = settings
        self._spawn = spawn
        self._listeners: dict[str, set[FeedingListener]] = {}
        self._unsub: CALLBACK_TYPE | None = None
        self._signatures: dict[str, tuple[Any, ...]] = {}
        # The occurrence behind each feeder's open failed-dispense issue (its key).
        self._failures: dict[str, str] = {}
        # Failed meals to dispense once more (the retry option): feeder -> (key, portion).
        self._retries: dict[str, tuple[str, float]] = {}
        # Who waits for the result of a Feed now, per feeder.
        self._feed_waiters: dict[str, list[asyncio.Future[FeedResult]]] = {}
        self._checks: list[Callable[[], None]] = []
        self._check_task: asyncio.Task[None] | None = None

    @callback
    def start(self) -> None:
        """Raise unresolved missed-meal issues again; check every minute from now on.

        The issues are not persistent: HA keeps only whether one was ignored across a
        restart, so each one still unresolved is raised again from the stored feeder.
        """
        at = dt_util.utcnow().timestamp()
        for feeder in self._state.feeders.values():
            # Home Assistant was stopped (or the entry unloaded): nothing sent meanwhile
            # could arrive, so meals due then are unconfirmed, not missed.
            if (
                feeder.heard_until is not None
                and at - feeder.heard_until > UNHEARD_MIN_S
            ):
                feeder.note_unheard(feeder.heard_until, at)
            feeder.heard_until = at
            if feeder.open_miss is not None:
                self._raise_missed_issue(feeder, feeder.open_miss)
            self._check_zone(feeder)
        self._unsub = async_track_time_interval(
            self._hass, self._async_minute, CHECK_INTERVAL, cancel_on_shutdown=True
        )

    @callback
    def stop(self) -> None:
        """Stop the minute checks; what arrives from now on is not heard (until start)."""
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        if self._check_task is not None:
            self._check_task.cancel()
            self._check_task = None
        at = dt_util.utcnow().timestamp()
        for feeder in self._state.feeders.values():
            feeder.heard_until = at

    @callback
    def async_subscribe(
        self, feeder_hid: str, listener: FeedingListener
    ) -> CALLBACK_TYPE:
        """Call listener with every feeding event of the feeder."""
        listeners = self._listeners.setdefault(feeder_hid, set())
        listeners.add(listener)
        return lambda: listeners.discard(listener)

    @callback
    def feeder_removed(self, feeder_hid: str) -> None:
        """A deleted feeder's repair issues go with it."""
        ir.async_delete_issue(self._hass, DOMAIN, missed_issue_id(feeder_hid))
        ir.async_delete_issue(self._hass, DOMAIN, offline_issue_id(feeder_hid))
        ir.async_delete_issue(self._hass, DOMAIN, zone_issue_id(feeder_hid))
        ir.async_delete_issue(self._hass, DOMAIN, failed_issue_id(feeder_hid))
        self._failures.pop(feeder_hid, None)
        self._retries.pop(feeder_hid, None)
        self._signatures.pop(feeder_hid, None)

    def pet_name(self, meal: Meal | None) -> str | None:
        """The name of the pet a meal is (or was) for, while that pet exists."""
        if meal is None or meal.pet_id is None:
            return None
        pet = self._state.pets.get(meal.pet_id)
        return pet.name if pet is not None else None

    def _fire(self, feeder: Feeder, event: FeedingEvent) -> None:
        for listener in list(self._listeners.get(feeder.hid, ())):
            listener(event)

    # ------------------------------------------------------------------ results

    def occurrence_of(
        self, feeder: Feeder, result: FeedResult
    ) -> MealOccurrence | None:
        """The scheduled meal a result was matched to, if any (§9.5)."""
        start = dt_util.utc_from_timestamp(result.start_ms / 1000)
        window = self._clock.window
        for occurrence in self._occurrences(
            feeder,
            start - window - timedelta(days=1),
            start + window + timedelta(minutes=1),
        ):
            if occurrence.result == result:
                return occurrence
        return None

    def _occurrences(
        self, feeder: Feeder, start: datetime, end: datetime
    ) -> list[MealOccurrence]:
        return feeder_occurrences(
            feeder,
            self._clock.zone(feeder),
            start,
            end,
            dt_util.utcnow(),
            self._clock.window,
        )

    def _record(self, feeder: Feeder) -> None:
        """Bring the feeder's meal ledger up to now."""
        record_meals(
            feeder, self._clock.zone(feeder), dt_util.utcnow(), self._clock.window
        )

    @contextlib.contextmanager
    def feed_result(self, feeder_hid: str) -> Iterator[asyncio.Future[FeedResult]]:
        """A future for the next remote (Feed now) result of the feeder, while in the block.

        Enter before sending the feed, so that a quick result is not missed.
        """
        waiter: asyncio.Future[FeedResult] = asyncio.get_running_loop().create_future()
        waiters = self._feed_waiters.setdefault(feeder_hid, [])
        waiters.append(waiter)
        try:
            yield waiter
        finally:
            waiters.remove(waiter)
            if not waiters:
                self._feed_waiters.pop(feeder_hid, None)
            waiter.cancel()

    async def async_feed_and_wait(
        self, feeder_hid: str, portion: float
    ) -> FeedResult | None:
        """Feed now, then wait (at most FEED_RESULT_TIMEOUT_S) for the feeder's report of it.

        None when no report came in time (the feeder may not report, or report later).
        """
        with self.feed_result(feeder_hid) as waiter:
            await self._feeding.async_feed(feeder_hid, portion)
            try:
                async with asyncio.timeout(FEED_RESULT_TIMEOUT_S):
                    return await waiter
            except TimeoutError:
                return None

    @callback
    def result_stored(self, feeder: Feeder, result: FeedResult) -> None:
        """A new feed result: fire its event, and resolve the missed meal if it is one.

        The missed meal's issue is resolved when that meal or a later one is dispensed; an
        older result (replayed after a reconnect) leaves it as it is.
        """
        if result.source == SOURCE_REMOTE:
            for waiter in self._feed_waiters.get(feeder.hid, ()):
                if not waiter.done():
                    waiter.set_result(result)
        self._record(feeder)
        occurrence = self.occurrence_of(feeder, result)
        if (
            (miss := feeder.open_miss) is not None
            and occurrence is not None
            and occurrence.state is MealState.DISPENSED
            and occurrence.target.timestamp() >= miss.target
        ):
            self._resolve_miss(feeder)
        if (
            occurrence is not None
            and occurrence.state is MealState.DISPENSED
            and feeder.hid in self._failures
        ):
            # A later meal (or the failed one, retried by the schedule) went well.
            self._resolve_failure(feeder.hid)
        started = dt_util.utc_from_timestamp(result.start_ms / 1000)
        if dt_util.utcnow() - started > EVENT_MAX_AGE:
            return
        if occurrence is not None and occurrence.state is MealState.FAILED:
            self._raise_failed_issue(feeder, occurrence, result)
        if result.fail:
            event_type = EVENT_FAILED
        elif result.source == SOURCE_SCHEDULE:
            event_type = EVENT_SCHEDULED
        elif result.source == SOURCE_BUTTON:
            event_type = EVENT_BUTTON
        else:
            event_type = EVENT_MANUAL
        meal = occurrence.meal if occurrence is not None else None
        pet = self.pet_name(meal)
        self._fire(
            feeder,
            FeedingEvent(
                event_type,
                {
                    **({ATTR_PET: pet} if pet is not None else {}),
                    "grams_expected": result.grams_expected,
                    "grams_actual": result.grams_actual,
                    "portion": meal.portion if meal else None,
                    "meal_name": meal.name if meal else None,
                    "source": source_name(result.source),
                    ATTR_STARTED: started.isoformat(),
                    "error": (result.error or None) if result.fail else None,
                    # A late result of a meal already reported missed (and perhaps fed).
                    "reported_missed": occurrence is not None
                    and miss_key(occurrence) in feeder.misses,
                },
            ),
        )

    # ------------------------------------------------------------------ checks

    def add_check(self, check: Callable[[], None]) -> None:
        """Run ``check`` with every minute check, before the feeders are looked at."""
        self._checks.append(check)

    @callback
    def _async_minute(self, now: datetime) -> None:
        """The timer's check, CHECK_SLICE feeders per turn of the loop.

        Started eagerly: a fleet of up to CHECK_SLICE feeders is checked before this returns.
        A check still going when the next minute comes covers that minute.
        """
        if self._check_task is not None and not self._check_task.done():
            return
        self._check_task = self._hass.async_create_task(
            self._async_check_in_slices(),
            "petnet_feeder minute check",
            eager_start=True,
        )

    async def _async_check_in_slices(self) -> None:
        at, feeders = self._begin_check()
        for index, feeder in enumerate(feeders):
            if index and not index % CHECK_SLICE:
                await asyncio.sleep(0)
            if self._state.feeders.get(feeder.hid) is feeder:  # not removed meanwhile
                self._check_feeder(feeder, at)
        self._end_check(feeders)

    @callback
    def _async_check(self) -> None:
        at, feeders = self._begin_check()
        for feeder in feeders:
            self._check_feeder(feeder, at)
        self._end_check(feeders)

    def _begin_check(self) -> tuple[float, list[Feeder]]:
        """Run the added checks; the moment and the feeders to visit."""
        for check in self._checks:
            check()
        return dt_util.utcnow().timestamp(), list(self._state.feeders.values())

    def _end_check(self, feeders: list[Feeder]) -> None:
        if feeders:
            self._state.schedule_save(lazy=True)

    def _check_feeder(self, feeder: Feeder, at: float) -> None:
        feeder.heard_until = at  # written with the next (lazy) save
        self._check_zone(feeder)
        self._record(feeder)
        self._check_missed(feeder)
        self._retry_failed(feeder)
        self._check_offline(feeder)
        self._refresh_if_day_changed(feeder)

    def _refresh_if_day_changed(self, feeder: Feeder) -> None:
        """Entities derived from the clock (today's totals, meal status) refresh when it moves."""
        zone = self._clock.zone(feeder)
        now = dt_util.utcnow()
        window = self._clock.window
        signature = (
            now.astimezone(zone).date(),
            last_meal_status(feeder, zone, now, window),
            self._clock.next_meal(feeder),
        )
        if self._signatures.get(feeder.hid) != signature:
            self._signatures[feeder.hid] = signature
            self._state.notify(feeder.hid)

    @callback
    def async_check_now(self) -> None:
        """Run the checks at once, in one piece (also used by tests)."""
        self._async_check()

    def _check_missed(self, feeder: Feeder) -> None:
        now = dt_util.utcnow()
        for occurrence in self._occurrences(feeder, now - MISS_LOOKBACK, now):
            if occurrence.state is not MealState.MISSED:
                continue
            key = miss_key(occurrence)
            if key in feeder.misses:
                continue
            feeder.misses[key] = "missed"
            while len(feeder.misses) > MISS_LOG_LIMIT:
                del feeder.misses[next(iter(feeder.misses))]
            self._report_missed(feeder, occurrence)

    def _report_missed(self, feeder: Feeder, occurrence: MealOccurrence) -> None:
        online = self._state.is_online(feeder)
        meal = occurrence.meal
        if (entry := feeder.ledger.entry(meal.meal_id, occurrence.target)) is not None:
            entry.missed_reason = MISSED_SILENT if online else MISSED_OFFLINE
        key = miss_key(occurrence)
        local = occurrence.target.astimezone(self._clock.zone(feeder))
        _LOGGER.warning(
            "Feeder %s missed %s at %s (feeder %s)",
            feeder.hid,
            meal.name,
            local.strftime("%H:%M"),
            "online" if online else "offline",
        )
        pet = self.pet_name(meal)
        self._fire(
            feeder,
            FeedingEvent(
                EVENT_MISSED,
                {
                    **({ATTR_PET: pet} if pet is not None else {}),
                    "portion": meal.portion,
                    "meal_name": meal.name,
                    ATTR_SCHEDULED: occurrence.target.isoformat(),
                    "grams_expected": None,
                    "grams_actual": None,
                    "source": "schedule",
                    "error": None,
                },
            ),
        )
        # One issue per feeder: a later miss replaces the earlier one's, and its fix feeds
        # the later meal (two missed portions at once would be too much food).
        feeder.open_miss = MissedMeal(
            key=key,
            meal_id=meal.meal_id,
            meal_name=meal.name,
            portion=meal.portion,
            target=occurrence.target.timestamp(),
            online=online,
            pet_id=meal.pet_id,
        )
        self._raise_missed_issue(feeder, feeder.open_miss)
        # The feeder may have lost its schedule or its clock: deliver both again.
        self._sync.request_sync(feeder, "missed meal")
        if self.settings.auto_feed_missed and online:
            self._spawn(
                self.async_feed_missed(feeder.hid, key, meal.portion),
                "feed missed meal",
            )

    def _raise_missed_issue(self, feeder: Feeder, miss: MissedMeal) -> None:
        target = dt_util.utc_from_timestamp(miss.target)
        local = target.astimezone(self._clock.zone(feeder))
        placeholders = {
            "feeder": feeder.display_name,
            "meal": miss.meal_name,
            "time": local.strftime("%H:%M"),
        }
        key = "missed_meal_online" if miss.online else "missed_meal_offline"
        pet = self._state.pets.get(miss.pet_id) if miss.pet_id is not None else None
        if pet is not None:
            # The same text, naming the pet the meal was for.
            key = f"{key}_pet"
            placeholders["pet"] = pet.name
        raise_issue(
            self._hass,
            missed_issue_id(feeder.hid),
            key,
            placeholders,
            data={
                "feeder_hid": feeder.hid,
                "miss": miss.key,
                "portion": miss.portion,
                "scheduled": target.isoformat(),
            },
        )

    def _raise_failed_issue(
        self, feeder: Feeder, occurrence: MealOccurrence, result: FeedResult
    ) -> None:
        """A scheduled dispense failed: tell the owner, and offer to try once more."""
        meal = occurrence.meal
        key = miss_key(occurrence)
        local = occurrence.target.astimezone(self._clock.zone(feeder))
        _LOGGER.warning(
            "Feeder %s could not dispense %s at %s: %s",
            feeder.hid,
            meal.name,
            local.strftime("%H:%M"),
            result.error or "unknown error",
        )
        self._failures[feeder.hid] = key
        placeholders = {
            "feeder": feeder.display_name,
            "meal": meal.name,
            "time": local.strftime("%H:%M"),
            "error": result.error or "unknown",
            "expected": _grams_text(result.grams_expected),
            "measured": _grams_text(result.grams_actual),
        }
        translation_key = FAILED_ISSUE
        if (pet := self.pet_name(meal)) is not None:
            translation_key = f"{FAILED_ISSUE}_pet"
            placeholders["pet"] = pet
        raise_issue(
            self._hass,
            failed_issue_id(feeder.hid),
            translation_key,
            placeholders,
            data={"feeder_hid": feeder.hid, "key": key, "portion": meal.portion},
        )
        if self.settings.retry_failed:
            # Tried by the next minute check, not from inside the handling of the result.
            self._retries[feeder.hid] = (key, meal.portion)

    def _retry_failed(self, feeder: Feeder) -> None:
        """With the option, dispense a failed meal's portion once more while it is online.

        Once: the retry marks the occurrence fed, so neither it nor the fix flow repeats.
        """
        if feeder.hid not in self._retries or not self._state.is_online(feeder):
            return
        key, portion = self._retries.pop(feeder.hid)
        if self._failures.get(feeder.hid) == key:
            self._spawn(
                self.async_retry_failed(feeder.hid, key, portion),
                "retry failed dispense",
            )

    def _resolve_failure(self, feeder_hid: str) -> None:
        self._failures.pop(feeder_hid, None)
        ir.async_delete_issue(self._hass, DOMAIN, failed_issue_id(feeder_hid))

    async def async_retry_failed(
        self, feeder_hid: str, key: str, portion: float
    ) -> bool:
        """Dispense a failed meal's portion once more; False if that was done already.

        Raises like :meth:`async_feed_missed`.
        """
        fed = await self.async_feed_missed(feeder_hid, key, portion)
        if self._failures.get(feeder_hid) == key:
            self._resolve_failure(feeder_hid)
        return fed

    def _resolve_miss(self, feeder: Feeder) -> None:
        feeder.open_miss = None
        ir.async_delete_issue(self._hass, DOMAIN, missed_issue_id(feeder.hid))
        self._state.schedule_save()

    async def async_feed_missed(
        self, feeder_hid: str, key: str, portion: float
    ) -> bool:
        """Feed a missed meal's portion once; False if it was fed already.

        Raises InvalidRequestError for a feeder that is not known (any more), and
        FeederUnreachableError when the feeder is not connected (then it can be tried again).
        """
        feeder = self._state.feeder(feeder_hid)
        if feeder.misses.get(key) == "fed":
            return False
        # Marked before sending: a second request while the first is in flight must not feed.
        feeder.misses[key] = "fed"
        try:
            await self._feeding.async_feed(feeder_hid, portion)
        except Exception:
            feeder.misses[key] = "missed"
            raise
        if feeder.open_miss is not None and feeder.open_miss.key == key:
            self._resolve_miss(feeder)
        else:
            self._state.schedule_save()
        return True

    def _check_zone(self, feeder: Feeder) -> None:
        """A zone that cannot be resolved is never silently UTC: the owner is told."""
        issue_id = zone_issue_id(feeder.hid)
        if (zone := self._clock.unknown_zone(feeder)) is None:
            ir.async_delete_issue(self._hass, DOMAIN, issue_id)
            return
        if ir.async_get(self._hass).async_get_issue(DOMAIN, issue_id) is None:
            _LOGGER.warning(
                "Feeder %s: time zone %r is unknown; its meal times are taken as UTC",
                feeder.hid,
                zone,
            )
        raise_issue(
            self._hass,
            issue_id,
            ZONE_ISSUE,
            {"feeder": feeder.display_name, "zone": zone},
            severity=ir.IssueSeverity.ERROR,
        )

    def _check_offline(self, feeder: Feeder) -> None:
        issue_id = offline_issue_id(feeder.hid)
        limit = self.settings.offline_alert_minutes * 60
        silent_for = (
            None
            if feeder.last_seen is None
            else dt_util.utcnow().timestamp() - feeder.last_seen
        )
        if self._state.is_online(feeder) or silent_for is None or silent_for < limit:
            ir.async_delete_issue(self._hass, DOMAIN, issue_id)
            return
        raise_issue(
            self._hass,
            issue_id,
            "feeder_offline",
            {
                "feeder": feeder.display_name,
                "minutes": str(int(silent_for // 60)),
            },
        )


def _grams_text(grams: float | None) -> str:
    return "unknown" if grams is None else f"{grams:.1f} g"


def source_name(source: int | None) -> str:
    """What caused a dispense, as shown in attributes and action responses."""
    return {
        SOURCE_SCHEDULE: "schedule",
        SOURCE_BUTTON: "button",
        SOURCE_REMOTE: "remote",
    }.get(source or 0, "unknown")
