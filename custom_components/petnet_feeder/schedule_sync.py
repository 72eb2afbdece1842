"""Schedule sync: the triggers that make each feeder hold its meals, and what is sent (§7.6).

One :class:`ScheduleReconciler` per feeder runs the syncs (single flight, retries); this module
turns events (connect, check-in, hash, firmware or time-zone change, DST, an expired skip, an
edit) into sync requests, plans what a sync sends, and records what was delivered. Every
command goes out through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
import logging
from typing import Any
from zoneinfo import ZoneInfo

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import (
    async_track_point_in_utc_time,
    async_track_time_interval,
)

from .accounting import skip_and_pause_marks
from .clock_changes import ClockChanges
from .const import DOMAIN
from .day_plan import held_plan, next_change, occurrences_on
from .feeder_clock import FeederClock
from .meals import Meal
from .models import Feeder
from .outbox import Outbox
from .protocol import commands
from .protocol.commands import OutboundCommand
from .protocol.firmware import uses_new_schedule_api
from .protocol.messages import ScheduleHash
from .protocol.schedule import (
    ScheduleEntry,
    legacy_schedule_fits,
    schedule_commands,
    schedule_fingerprint,
)
from .reconcile import DEFAULT_HASH_INTERVAL_S, ScheduleReconciler, SyncPlan
from .repair_issues import raise_issue
from .state import FeederState, now
from .transport.base import GatewayNotConnectedError

_LOGGER = logging.getLogger(__name__)

FAMILY_AUTO = "auto"
FAMILY_LEGACY = "legacy"
FAMILY_NEW = "new"
FIRMWARE_FAMILIES = (FAMILY_AUTO, FAMILY_LEGACY, FAMILY_NEW)
# Checks for DST changes (utc_offset re-sent within a minute) and for skipped meals to restore.
TICK_INTERVAL = timedelta(minutes=1)
TOO_LONG_ISSUE = "schedule_too_long_"
NOT_STICKING_ISSUE = "schedule_not_sticking"
# An empty schedule reported this soon after a completed delivery: the delivery did not stick.
STICK_WINDOW_S = 600
# After this many such deliveries in a row, the owner is told and deliveries back off.
NOT_STICKING_AFTER = 3
MAX_HASH_INTERVAL_S = 6 * 3600

type Spawn = Callable[[Coroutine[Any, Any, Any], str], object]


def too_long_issue_id(feeder_hid: str) -> str:
    """Repair issue of a feeder whose firmware cannot take its whole schedule."""
    return f"{TOO_LONG_ISSUE}{feeder_hid}"


def not_sticking_issue_id(feeder_hid: str) -> str:
    """Repair issue of a feeder that keeps losing the schedule it is sent."""
    return f"{NOT_STICKING_ISSUE}_{feeder_hid}"


def uses_new_api(feeder: Feeder) -> bool:
    """Firmware >= 2.5.0 takes the new command sequence, unless overridden (§8)."""
    if feeder.firmware_family == FAMILY_NEW:
        return True
    if feeder.firmware_family == FAMILY_LEGACY:
        return False
    return uses_new_schedule_api(feeder.software_version)


def legacy_fits(feeder: Feeder, meals: Iterable[Meal]) -> bool:
    """Whether the single legacy command can carry these meals, whichever are skipped.

    Checked with every meal inactive: ``false`` is one byte longer than ``true``, so a
    skipped meal must never push a schedule that fits over the limit.
    """
    return legacy_schedule_fits(
        feeder.hid,
        [
            ScheduleEntry(
                meal_id=m.meal_id, time_s=m.time_s, portion=m.portion, active=False
            )
            for m in meals
        ],
    )


def schedule_entries(
    feeder: Feeder, zone: ZoneInfo, at: datetime, margin: timedelta
) -> list[ScheduleEntry]:
    """The schedule as the feeder gets it at ``at``: one day's meals (see ``day_plan``).

    Some go out inactive: a meal of tomorrow that would still fire today, a disabled meal, a
    skipped or paused occurrence (the feeder's pause, or its pet's: ``Feeder.was_paused``),
    and a meal held around a clock change.
    """
    return [
        ScheduleEntry(
            meal_id=meal.meal_id,
            time_s=feeder.clock_moves.get(meal.meal_id, (meal.time_s, 0.0))[0],
            portion=meal.portion,
            active=planned.released
            and meal.enabled
            and feeder.skipped.get(meal.meal_id, 0.0) <= planned.target.timestamp()
            and not feeder.was_paused(meal.meal_id, planned.target)
            and meal.meal_id not in feeder.clock_holds,
        )
        for planned in held_plan(feeder.meals, zone, at, margin).meals
        for meal in (planned.meal,)
    ]


@dataclass(frozen=True, slots=True)
class _Fingerprint:
    """A feeder's fingerprint, for its meals (the very list) and inputs, over a span."""

    meals: list[Meal]
    inputs: tuple[object, ...]
    valid_from: float
    valid_until: float
    fingerprint: str


class _FeederSync:
    """The reconciler's view of one feeder (its ``SyncTarget``)."""

    def __init__(self, sync: ScheduleSync, feeder_hid: str) -> None:
        self._sync = sync
        self._hid = feeder_hid

    def plan(self) -> SyncPlan:
        return self._sync.plan(self._hid)

    async def send(self, command: OutboundCommand) -> None:
        await self._sync.async_send(self._hid, command)

    def is_connected(self) -> bool:
        return self._sync.is_connected(self._hid)

    def synced(self, fingerprint: str) -> None:
        self._sync.synced(self._hid, fingerprint)

    def state_changed(self) -> None:
        self._sync.state_changed(self._hid)


class ScheduleSync:
    """Keeps every feeder holding the schedule Home Assistant has."""

    def __init__(
        self,
        hass: HomeAssistant,
        state: FeederState,
        clock: FeederClock,
        outbox: Outbox,
        spawn: Spawn,
    ) -> None:
        """Create no reconciler yet; ``start`` does."""
        self._hass = hass
        self._state = state
        self._clock = clock
        self._outbox = outbox
        self._spawn = spawn
        self._reconcilers: dict[str, ScheduleReconciler] = {}
        # What the running sync of each feeder sends: its utc_offset, and whether it
        # carries the schedule (a sync that only sets the clock leaves the feeder's own).
        # And the meals ([id, time_s, portion]) of the day it delivers.
        self._planned: dict[str, tuple[int, bool, list[list[Any]] | None]] = {}
        self._unsub_tick: CALLBACK_TYPE | None = None
        # Per feeder: the timer that delivers the next day's meals when the plan changes.
        self._plan_timers: dict[str, CALLBACK_TYPE] = {}
        self._stopping = False
        self._fingerprints: dict[str, _Fingerprint] = {}
        self.reconciler_options: dict[str, Any] = {}
        # Deliveries in a row that the feeder lost again within STICK_WINDOW_S, per feeder.
        self._not_sticking: dict[str, int] = {}
        self._clock_changes = ClockChanges(hass, clock, self._offset_changed)

    # ------------------------------------------------------------------ lifecycle

    @callback
    def start(self) -> None:
        """Create a reconciler for every feeder; owed syncs run once their gateway connects."""
        for feeder in self._state.feeders.values():
            self.feeder_added(feeder)
            if feeder.sync_pending:
                feeder.sync_owed_since = feeder.sync_owed_since or now()
                self._reconcilers[feeder.hid].request("restart")
        self._unsub_tick = async_track_time_interval(
            self._hass, self._tick, TICK_INTERVAL, cancel_on_shutdown=True
        )

    async def async_stop(self) -> None:
        """Stop every reconciler and timer."""
        # A sync that completes while the reconcilers stop arms no new plan timer.
        self._stopping = True
        if self._unsub_tick is not None:
            self._unsub_tick()
            self._unsub_tick = None
        self._clock_changes.stop()
        for reconciler in list(self._reconcilers.values()):
            await reconciler.async_stop()
        self._reconcilers.clear()
        for unsub in self._plan_timers.values():
            unsub()
        self._plan_timers.clear()

    @callback
    def feeder_added(self, feeder: Feeder) -> None:
        """Give a feeder its reconciler, and follow its day plan."""
        if feeder.hid not in self._reconcilers:
            self._reconcilers[feeder.hid] = ScheduleReconciler(
                name=feeder.hid,
                target=_FeederSync(self, feeder.hid),
                **self.reconciler_options,
            )
        self._arm_plan_change(feeder)

    @callback
    def feeder_removed(self, feeder_hid: str) -> None:
        """Stop the reconciler of a feeder that was deleted."""
        if (reconciler := self._reconcilers.pop(feeder_hid, None)) is not None:
            self._spawn(reconciler.async_stop(), "stop reconciler")
        if (unsub := self._plan_timers.pop(feeder_hid, None)) is not None:
            unsub()
        self._fingerprints.pop(feeder_hid, None)
        self._not_sticking.pop(feeder_hid, None)
        self._clock_changes.forget(feeder_hid)
        ir.async_delete_issue(self._hass, DOMAIN, not_sticking_issue_id(feeder_hid))

    def reconciler(self, feeder_hid: str) -> ScheduleReconciler:
        """The reconciler of a feeder."""
        return self._reconcilers[feeder_hid]

    # ------------------------------------------------------------------ queries

    def entries(
        self, feeder: Feeder, at: datetime | None = None
    ) -> list[ScheduleEntry]:
        """What the feeder should hold now (or ``at``)."""
        moment = at or datetime.fromtimestamp(now(), UTC)
        return schedule_entries(
            feeder, self._clock.zone(feeder), moment, self._clock.window
        )

    def fingerprint(self, feeder: Feeder, at: datetime | None = None) -> str:
        """MD5 of the events the feeder should hold now (or ``at``) (§7.6).

        Asked for on every state write of the schedule's entities: kept while its inputs
        stay the same and until the day plan can change.
        """
        moment = at or datetime.fromtimestamp(now(), UTC)
        zone = self._clock.zone(feeder)
        inputs = (
            zone,
            self._clock.window,
            skip_and_pause_marks(feeder),
            tuple(feeder.clock_moves.items()),
            tuple(feeder.clock_holds.items()),
        )
        stamp = moment.timestamp()
        cached = self._fingerprints.get(feeder.hid)
        if (
            cached is not None
            and cached.meals is feeder.meals
            and cached.valid_from <= stamp < cached.valid_until
            and cached.inputs == inputs
        ):
            return cached.fingerprint
        fingerprint = schedule_fingerprint(feeder.hid, self.entries(feeder, moment))
        until = next_change(feeder.meals, zone, moment, self._clock.window)
        self._fingerprints[feeder.hid] = _Fingerprint(
            feeder.meals, inputs, stamp, until.timestamp(), fingerprint
        )
        return fingerprint

    def day_signature(self, feeder: Feeder, day: date) -> list[list[Any]]:
        """The meals (id, time, portion) of local ``day``, as ``held_meals`` records them."""
        held = occurrences_on(feeder.meals, day, self._clock.zone(feeder))
        return [[meal.meal_id, meal.time_s, meal.portion] for meal, _ in held]

    def tomorrow_delivered(self, feeder: Feeder) -> bool:
        """The feeder holds tomorrow's meals (also when tomorrow is like today)."""
        if not self.in_sync(feeder) or feeder.held_meals is None:
            return False
        zone = self._clock.zone(feeder)
        tomorrow = datetime.fromtimestamp(now(), UTC).astimezone(
            zone
        ).date() + timedelta(days=1)
        return [list(entry) for entry in feeder.held_meals] == self.day_signature(
            feeder, tomorrow
        )

    def in_sync(self, feeder: Feeder) -> bool:
        """The last completed sync delivered exactly what HA has now, and none is owed."""
        return (
            not feeder.sync_pending
            and feeder.synced_fingerprint == self.fingerprint(feeder)
        )

    # ------------------------------------------------------------------ triggers

    def request_sync(
        self, feeder: Feeder, reason: str, *, debounce: bool = False
    ) -> None:
        """A sync is owed: now, or (``debounce``, for edits) after a short pause."""
        feeder.sync_pending = True
        feeder.sync_owed_since = feeder.sync_owed_since or now()
        self._state.changed(feeder)
        if (reconciler := self._reconcilers.get(feeder.hid)) is not None:
            reconciler.request(reason, debounce=debounce)

    @callback
    def check_plans(self) -> None:
        """Owe a sync to every feeder whose day plan changed (the timers' backstop)."""
        moment = datetime.fromtimestamp(now(), UTC)
        for feeder in list(self._state.feeders.values()):
            if self._plan_moved(feeder, moment):
                self.request_sync(feeder, "next day's meals")

    def _plan_moved(self, feeder: Feeder, moment: datetime) -> bool:
        """The feeder holds what was delivered, but the plan is another one now."""
        return (
            not feeder.sync_pending
            and feeder.synced_fingerprint is not None
            and feeder.synced_fingerprint != self.fingerprint(feeder, moment)
        )

    @callback
    def _arm_plan_change(self, feeder: Feeder) -> None:
        """Deliver the plan again at the instant it changes (the minute check backs it up).

        A sync owed from that very instant keeps the feeder from looking out of sync
        between the change and the delivery.
        """
        hid = feeder.hid
        if (unsub := self._plan_timers.pop(hid, None)) is not None:
            unsub()
        if not feeder.meals or self._stopping:
            return
        at = next_change(
            feeder.meals,
            self._clock.zone(feeder),
            datetime.fromtimestamp(now(), UTC),
            self._clock.window,
        )

        @callback
        def plan_changed(moment: datetime) -> None:
            self._plan_timers.pop(hid, None)
            if (current := self._state.feeders.get(hid)) is None:
                return
            if self._plan_moved(current, moment):
                self.request_sync(current, "next day's meals")
            else:
                self._arm_plan_change(current)

        self._plan_timers[hid] = async_track_point_in_utc_time(
            self._hass, plan_changed, at
        )

    def gateway_connected(self, gateway_hid: str) -> None:
        """A (re)connected session gets utc_offset and the schedule (§7.6)."""
        for feeder in self._state.feeders_of(gateway_hid):
            if (reconciler := self._reconcilers.get(feeder.hid)) is not None:
                reconciler.connected()

    def gateway_disconnected(self, gateway_hid: str) -> None:
        """A sync that was running is incomplete; it restarts after reconnect."""
        for feeder in self._state.feeders_of(gateway_hid):
            if (reconciler := self._reconcilers.get(feeder.hid)) is not None:
                reconciler.disconnected()

    def checkin(self, gateway_hid: str) -> None:
        """A check-in marks the gateway's feeders "sync pending" (it precedes MQTT)."""
        for feeder in self._state.feeders_of(gateway_hid):
            self.request_sync(feeder, "check-in")

    def firmware_changed(self, feeder: Feeder) -> None:
        """The firmware family may have changed: resend in the right form."""
        self.request_sync(feeder, "firmware changed")

    def hash_received(self, feeder: Feeder, message: ScheduleHash) -> None:
        """Empty hash: the feeder lost its schedule (§5.5); a new hash may reveal drift.

        Hash-triggered syncs are rate limited; one the limit holds back runs when it allows
        (the reconciler defers it), and until then the schedule shows as not in sync.
        """
        if (reconciler := self._reconcilers.get(feeder.hid)) is None:
            return
        if message.is_empty:
            if feeder.meals:
                self._note_lost_delivery(feeder, reconciler)
                self._resync_from_hash(
                    feeder,
                    reconciler,
                    "empty schedule hash",
                    "Feeder %s reports an empty schedule; restoring it",
                )
            return
        md5 = message.local_md5
        if feeder.expected_hash is None:
            if feeder.last_synced_at is not None and self.in_sync(feeder):
                feeder.expected_hash = md5
        elif md5 != feeder.expected_hash and self.in_sync(feeder):
            self._resync_from_hash(
                feeder,
                reconciler,
                "schedule hash changed",
                "Feeder %s reports a schedule that differs from the last one; resyncing",
            )

    def _note_lost_delivery(
        self, feeder: Feeder, reconciler: ScheduleReconciler
    ) -> None:
        """Count a delivery the feeder lost at once; back off and tell the owner if it repeats.

        A feeder whose empty schedule keeps coming back (it reboots, or drops what it was
        sent) would otherwise get a full delivery every hash interval, forever. From the
        NOT_STICKING_AFTER-th in a row the interval doubles each time (capped), and a repair
        suggests the schedule-commands override; both end once a delivery sticks.
        """
        hid = feeder.hid
        delivered = feeder.last_synced_at
        if delivered is None or now() - delivered >= STICK_WINDOW_S:
            self._not_sticking[hid] = 0
            return
        count = self._not_sticking.get(hid, 0) + 1
        self._not_sticking[hid] = count
        if count < NOT_STICKING_AFTER:
            return
        base = self._base_hash_interval()
        reconciler.hash_interval_s = min(
            base * 2 ** (count - NOT_STICKING_AFTER + 1), MAX_HASH_INTERVAL_S
        )
        issue_id = not_sticking_issue_id(hid)
        if ir.async_get(self._hass).async_get_issue(DOMAIN, issue_id) is None:
            _LOGGER.warning(
                "Feeder %s lost its schedule right after %d deliveries in a row; "
                "deliveries back off (next in at most %.0f s)",
                hid,
                count,
                reconciler.hash_interval_s,
            )
        raise_issue(
            self._hass,
            issue_id,
            NOT_STICKING_ISSUE,
            {
                "feeder": feeder.display_name,
                "count": str(count),
                "family": "new" if uses_new_api(feeder) else "legacy",
                "firmware": feeder.software_version or "unknown",
            },
        )

    def _base_hash_interval(self) -> float:
        base = self.reconciler_options.get(
            "hash_min_interval_s", DEFAULT_HASH_INTERVAL_S
        )
        return float(base)

    def _offset_changed(self, feeder_hid: str) -> None:
        # The minute check may have sent the new offset already: a second sync would clear
        # the schedule again in the very minute a moved meal is due.
        if (
            (feeder := self._state.feeders.get(feeder_hid)) is not None
            and not feeder.sync_pending
            and feeder.sent_utc_offset != self._clock.utc_offset(feeder)
        ):
            self.request_sync(feeder, "utc offset changed")

    def _delivery_stuck(self, feeder: Feeder, at: float) -> None:
        """A delivery that was not lost within STICK_WINDOW_S: the back-off ends."""
        hid = feeder.hid
        if not self._not_sticking.get(hid):
            return
        delivered = feeder.last_synced_at
        lost_since = (
            feeder.last_hash == ""
            and feeder.last_hash_at is not None
            and delivered is not None
            and feeder.last_hash_at >= delivered
        )
        if delivered is None or lost_since or at - delivered < STICK_WINDOW_S:
            return
        self._not_sticking[hid] = 0
        if (reconciler := self._reconcilers.get(hid)) is not None:
            reconciler.hash_interval_s = self._base_hash_interval()
        ir.async_delete_issue(self._hass, DOMAIN, not_sticking_issue_id(hid))
        _LOGGER.info("Feeder %s keeps its schedule again", hid)

    def _resync_from_hash(
        self,
        feeder: Feeder,
        reconciler: ScheduleReconciler,
        reason: str,
        message: str,
    ) -> None:
        feeder.synced_fingerprint = None  # what the feeder holds is not what was sent
        if reconciler.request_from_hash(reason):
            _LOGGER.info(message, feeder.hid)
        else:
            _LOGGER.debug("%s (feeder %s); the sync is deferred", reason, feeder.hid)
        self._state.changed(feeder)

    @callback
    def _tick(self, now_utc: datetime) -> None:
        """Resend utc_offset after a DST change; restore skipped meals whose time has passed."""
        for feeder in list(self._state.feeders.values()):
            self._delivery_stuck(feeder, now_utc.timestamp())
            expired = [
                k for k, until in feeder.skipped.items() if until <= now_utc.timestamp()
            ]
            for meal_id in expired:
                feeder.log_skip(meal_id, feeder.skipped.pop(meal_id))
            released = self._clock_changes.release_due(feeder, now_utc)
            self._clock_changes.watch(feeder, now_utc)
            if expired or released:
                self.request_sync(feeder, "skipped or held meal restored")
            elif (
                # An owed sync sends the current offset anyway (and an offline feeder
                # would otherwise be marked again every minute).
                not feeder.sync_pending
                and feeder.sent_utc_offset is not None
                and feeder.sent_utc_offset != self._clock.utc_offset(feeder)
            ):
                self.request_sync(feeder, "utc offset changed")

    # ------------------------------------------------------------------ one feeder's sync

    def is_connected(self, feeder_hid: str) -> bool:
        """Whether the feeder's gateway holds a session."""
        feeder = self._state.feeders.get(feeder_hid)
        return feeder is not None and self._outbox.is_connected(feeder.gateway_hid)

    def plan(self, feeder_hid: str) -> SyncPlan:
        """What a sync of the feeder sends now."""
        feeder = self._state.feeders[feeder_hid]
        offset = self._clock.utc_offset(feeder)
        self._clock_changes.adjust(feeder, offset)
        planned: list[OutboundCommand] = [commands.utc_offset(feeder.hid, offset)]
        entries = self.entries(feeder)
        fingerprint = schedule_fingerprint(feeder.hid, entries)
        # A feeder HA never gave a schedule keeps the one it holds (it may still feed from
        # the old cloud's) until the user makes one here; only its clock is set.
        carries_schedule = bool(feeder.meals) or feeder.schedule_owned
        new_api = uses_new_api(feeder)
        if (
            carries_schedule
            and not new_api
            and not legacy_schedule_fits(feeder.hid, entries)
        ):
            # The firmware turned out to be legacy (re-registration, override) after the
            # meals were made: set the clock, tell the user, and stay "not in sync".
            carries_schedule = False
            fingerprint = ""
            self._report_too_long(feeder)
        else:
            ir.async_delete_issue(self._hass, DOMAIN, too_long_issue_id(feeder.hid))
        if carries_schedule:
            planned.extend(schedule_commands(feeder.hid, entries, new_api=new_api))
        if feeder.g_per_tbsp and feeder.tbsp_per_feeding:
            planned.append(
                commands.budget(
                    feeder.hid,
                    recipe_number=feeder.recipe_number,
                    tbsp_per_feeding=feeder.tbsp_per_feeding,
                    g_per_tbsp=feeder.g_per_tbsp,
                    budget_tbsp=feeder.tbsp_per_feeding,
                )
            )
        # The meals of the day delivered, at their own times (not moved by a clock change).
        times = {meal.meal_id: meal.time_s for meal in feeder.meals}
        self._planned[feeder_hid] = (
            offset,
            carries_schedule,
            [[e.meal_id, times[e.meal_id], e.portion] for e in entries],
        )
        return SyncPlan(commands=planned, fingerprint=fingerprint)

    def _report_too_long(self, feeder: Feeder) -> None:
        _LOGGER.warning(
            "Feeder %s (firmware %s) cannot take its %d meals in one legacy schedule "
            "command; only its clock was set",
            feeder.hid,
            feeder.software_version or "unknown",
            len(feeder.meals),
        )
        raise_issue(
            self._hass,
            too_long_issue_id(feeder.hid),
            "schedule_too_long",
            {
                "feeder": feeder.display_name,
                "firmware": feeder.software_version or "unknown",
                "count": str(len(feeder.meals)),
            },
            severity=ir.IssueSeverity.ERROR,
        )

    async def async_send(self, feeder_hid: str, command: OutboundCommand) -> None:
        """Send one command of a sync; a feeder that reports on commands must report it.

        Where the transport cannot tell (HA's MQTT: the broker acknowledges), a sync cut off
        half-way (the feeder reconnected unseen, say) then fails and is retried from its
        first command instead of counting as delivered.
        """
        if (feeder := self._state.feeders.get(feeder_hid)) is None:
            raise GatewayNotConnectedError(feeder_hid)
        await self._outbox.async_send(feeder.gateway_hid, command, must_confirm=True)

    def synced(self, feeder_hid: str, fingerprint: str) -> None:
        """Record what a completed sync delivered."""
        if (feeder := self._state.feeders.get(feeder_hid)) is None:
            return
        offset, carried_schedule, held = self._planned.pop(
            feeder_hid, (None, False, None)
        )
        feeder.last_synced_at = now()
        feeder.synced_fingerprint = fingerprint or None
        feeder.sent_utc_offset = offset
        feeder.schedule_owned = feeder.schedule_owned or carried_schedule
        feeder.expected_hash = None
        if carried_schedule:
            feeder.held_meals = held
        self._arm_plan_change(feeder)
        _LOGGER.debug("Schedule of feeder %s delivered", feeder_hid)
        self._state.schedule_save()

    def state_changed(self, feeder_hid: str) -> None:
        """Mirror whether a sync is owed into the feeder (stored, shown)."""
        if (feeder := self._state.feeders.get(feeder_hid)) is None:
            return
        reconciler = self._reconcilers.get(feeder_hid)
        feeder.sync_pending = (
            reconciler.pending if reconciler is not None else feeder.sync_pending
        )
        feeder.sync_owed_since = (
            (feeder.sync_owed_since or now()) if feeder.sync_pending else None
        )
        self._state.changed(feeder)
