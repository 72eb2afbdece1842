"""Meal schedules: edits from HA, and the triggers that make each feeder hold them (§7.6).

The hub owns one ScheduleManager; it keeps one ScheduleReconciler per feeder and turns hub events
(connect, check-in, hash, firmware or time-zone change, DST) into sync requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
import logging
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .const import CONFIRM_TIMEOUT_S, DOMAIN
from .meals import Meal, next_occurrence
from .models import Feeder
from .protocol import commands, topics
from .protocol.firmware import uses_new_schedule_api
from .protocol.messages import ScheduleHash
from .protocol.schedule import (
    ScheduleEntry,
    legacy_schedule_fits,
    schedule_commands,
    schedule_fingerprint,
)
from .reconcile import OutboundCommand, ScheduleReconciler, SyncPlan
from .transport.base import GatewayNotConnectedError

if TYPE_CHECKING:
    from .hub import PetnetHub

_LOGGER = logging.getLogger(__name__)

MAX_MEALS = 20
MAX_NAME_LENGTH = 64
FAMILY_AUTO = "auto"
FAMILY_LEGACY = "legacy"
FAMILY_NEW = "new"
FIRMWARE_FAMILIES = (FAMILY_AUTO, FAMILY_LEGACY, FAMILY_NEW)
# Checks for DST changes (utc_offset re-sent within a minute) and for skipped meals to restore.
TICK_INTERVAL = timedelta(minutes=1)
SKIP_LOG_LIMIT = 50
TOO_LONG_ISSUE = "schedule_too_long_"


class CommandFailedError(Exception):
    """The feeder reported a command of a sync as failed."""


def too_long_issue_id(feeder_hid: str) -> str:
    """Repair issue of a feeder whose firmware cannot take its whole schedule."""
    return f"{TOO_LONG_ISSUE}{feeder_hid}"


def _invalid(key: str, **placeholders: Any) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={k: str(v) for k, v in placeholders.items()},
    )


def validated_meal(
    meal_id: int, name: object, time_s: object, portion: object, enabled: object
) -> Meal:
    """Build a meal from user input or raise a translated error saying what is accepted."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise _invalid("invalid_meal_name", max=MAX_NAME_LENGTH)
    if (
        isinstance(time_s, bool)
        or not isinstance(time_s, int)
        or not 0 <= time_s < 86400
    ):
        raise _invalid("invalid_meal_time", time=time_s)
    try:
        cups = commands.validate_portion(portion)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise _invalid("invalid_portion", portion=portion) from err
    if not isinstance(enabled, bool):
        raise _invalid("invalid_meal_enabled")
    # The feeder's schedule has minute resolution in the UI; seconds are dropped.
    return Meal(
        meal_id=meal_id,
        name=name.strip(),
        time_s=time_s - time_s % 60,
        portion=cups,
        enabled=enabled,
    )


class ScheduleManager:
    """Schedules of every feeder and the reconcilers that deliver them."""

    def __init__(self, hass: HomeAssistant, hub: PetnetHub) -> None:
        """Create the manager; start() creates the reconcilers."""
        self._hass = hass
        self._hub = hub
        self._reconcilers: dict[str, ScheduleReconciler] = {}
        # What the running sync of each feeder sends: its utc_offset, and whether it
        # carries the schedule (a sync that only sets the clock leaves the feeder's own).
        self._planned: dict[str, tuple[int, bool]] = {}
        self._unsub_tick: CALLBACK_TYPE | None = None
        self.reconciler_options: dict[str, Any] = {}
        self.confirm_timeout_s = CONFIRM_TIMEOUT_S

    # ------------------------------------------------------------------ lifecycle

    @callback
    def start(self) -> None:
        """Create a reconciler for every feeder; owed syncs run once their gateway connects."""
        for feeder in self._hub.feeders.values():
            self.feeder_added(feeder)
            if feeder.sync_pending:
                self._reconcilers[feeder.hid].request("restart")
        self._unsub_tick = async_track_time_interval(
            self._hass, self._tick, TICK_INTERVAL, cancel_on_shutdown=True
        )

    async def async_stop(self) -> None:
        """Stop every reconciler and timer."""
        if self._unsub_tick is not None:
            self._unsub_tick()
            self._unsub_tick = None
        for reconciler in list(self._reconcilers.values()):
            await reconciler.async_stop()
        self._reconcilers.clear()

    @callback
    def feeder_added(self, feeder: Feeder) -> None:
        """Give a feeder its reconciler."""
        if feeder.hid in self._reconcilers:
            return
        hid = feeder.hid
        self._reconcilers[hid] = ScheduleReconciler(
            name=hid,
            plan=lambda: self._plan(hid),
            send=lambda command: self._send(hid, command),
            is_connected=lambda: self._connected(hid),
            on_synced=lambda fingerprint: self._synced(hid, fingerprint),
            on_state_change=lambda: self._state_changed(hid),
            **self.reconciler_options,
        )

    @callback
    def feeder_removed(self, feeder_hid: str) -> None:
        """Stop the reconciler of a feeder that was deleted."""
        if (reconciler := self._reconcilers.pop(feeder_hid, None)) is not None:
            self._hub.entry.async_create_background_task(
                self._hass, reconciler.async_stop(), f"{DOMAIN} stop reconciler"
            )

    def reconciler(self, feeder_hid: str) -> ScheduleReconciler:
        """The reconciler of a feeder."""
        return self._reconcilers[feeder_hid]

    # ------------------------------------------------------------------ queries

    @property
    def window(self) -> timedelta:
        """How far from its time a dispense counts as a meal (the grace period option)."""
        return timedelta(minutes=self._hub.settings.grace_minutes)

    def zone(self, feeder: Feeder) -> ZoneInfo:
        """The feeder's time zone, HA's when not set; UTC if the name is unknown."""
        name = feeder.time_zone or self._hass.config.time_zone
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def uses_new_api(self, feeder: Feeder) -> bool:
        """Firmware >= 2.5.0 takes the new command sequence, unless overridden."""
        if feeder.firmware_family == FAMILY_NEW:
            return True
        if feeder.firmware_family == FAMILY_LEGACY:
            return False
        return uses_new_schedule_api(feeder.software_version)

    def entries(self, feeder: Feeder) -> list[ScheduleEntry]:
        """The schedule as the feeder gets it: a skipped meal goes out disabled."""
        return [
            ScheduleEntry(
                meal_id=meal.meal_id,
                time_s=meal.time_s,
                portion=meal.portion,
                active=meal.enabled and meal.meal_id not in feeder.skipped,
            )
            for meal in feeder.meals
        ]

    def fingerprint(self, feeder: Feeder) -> str:
        """MD5 of the events the feeder should hold (§7.6)."""
        return schedule_fingerprint(feeder.hid, self.entries(feeder))

    def in_sync(self, feeder: Feeder) -> bool:
        """The last completed sync delivered exactly what HA has now, and none is owed."""
        return (
            not feeder.sync_pending
            and feeder.synced_fingerprint == self.fingerprint(feeder)
        )

    def utc_offset(self, feeder: Feeder) -> int:
        """Seconds east of UTC in the feeder's zone right now."""
        offset = dt_util.now(self.zone(feeder)).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def next_meal(self, feeder: Feeder) -> tuple[Meal, datetime] | None:
        """The next enabled meal and when it is due; a skipped occurrence does not count."""
        now = dt_util.utcnow()
        zone = self.zone(feeder)
        found: list[tuple[Meal, datetime]] = []
        for meal in feeder.meals:
            skipped_until = dt_util.utc_from_timestamp(
                feeder.skipped.get(meal.meal_id, 0)
            )
            if upcoming := next_occurrence([meal], max(now, skipped_until), zone):
                found.append(upcoming)
        if not found:
            return None
        return min(found, key=lambda item: (item[1], item[0].meal_id))

    # ------------------------------------------------------------------ edits

    @staticmethod
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

    def _commit(self, feeder: Feeder, meals: list[Meal], reason: str) -> None:
        """Replace the meals after checking the whole schedule; nothing changes on error."""
        if len(meals) > MAX_MEALS:
            raise _invalid("too_many_meals", max=MAX_MEALS)
        if not self.uses_new_api(feeder) and not self.legacy_fits(feeder, meals):
            raise _invalid("legacy_schedule_too_long", count=len(meals))
        before = {m.meal_id: m.time_s for m in feeder.meals}
        now = time.time()
        feeder.meal_since = {
            m.meal_id: now
            if before.get(m.meal_id) != m.time_s
            else feeder.meal_since.get(m.meal_id, 0.0)
            for m in meals
        }
        feeder.meals = sorted(meals, key=lambda m: (m.time_s, m.meal_id))
        feeder.skipped = {
            k: v
            for k, v in feeder.skipped.items()
            if any(m.meal_id == k for m in meals)
        }
        self._changed(feeder, reason, debounce=True)

    def _new_id(self, feeder: Feeder) -> int:
        meal_id = feeder.next_meal_id
        feeder.next_meal_id += 1
        return meal_id

    def _meal(self, feeder: Feeder, meal_id: int) -> Meal:
        for meal in feeder.meals:
            if meal.meal_id == meal_id:
                return meal
        raise _invalid("unknown_meal", meal_id=meal_id)

    def add_meal(
        self,
        feeder: Feeder,
        *,
        name: str,
        time_s: int,
        portion: float,
        enabled: bool = True,
    ) -> Meal:
        """Add a daily meal; ids are never reused."""
        meal = validated_meal(feeder.next_meal_id, name, time_s, portion, enabled)
        self._commit(feeder, [*feeder.meals, meal], "meal added")
        self._new_id(feeder)
        return meal

    def update_meal(self, feeder: Feeder, meal_id: int, **changes: Any) -> Meal:
        """Change some fields of a meal."""
        current = self._meal(feeder, meal_id)
        values = {
            "name": current.name,
            "time_s": current.time_s,
            "portion": current.portion,
            "enabled": current.enabled,
        }
        values.update({k: v for k, v in changes.items() if v is not None})
        meal = validated_meal(
            meal_id,
            values["name"],
            values["time_s"],
            values["portion"],
            values["enabled"],
        )
        self._commit(
            feeder,
            [meal if m.meal_id == meal_id else m for m in feeder.meals],
            "meal changed",
        )
        return meal

    def remove_meal(self, feeder: Feeder, meal_id: int) -> None:
        """Delete a meal."""
        self._meal(feeder, meal_id)
        self._commit(
            feeder, [m for m in feeder.meals if m.meal_id != meal_id], "meal removed"
        )

    def set_schedule(
        self, feeder: Feeder, meals: Iterable[Mapping[str, Any]]
    ) -> list[Meal]:
        """Replace the whole schedule; every meal gets a new id."""
        first = feeder.next_meal_id
        built = [
            validated_meal(
                first + i,
                m.get("name"),
                m.get("time_s"),
                m.get("portion"),
                m.get("enabled", True),
            )
            for i, m in enumerate(meals)
        ]
        self._commit(feeder, built, "schedule replaced")
        feeder.next_meal_id = first + len(built)
        return built

    def skip_next_meal(self, feeder: Feeder) -> tuple[Meal, datetime]:
        """Disable only the next occurrence; the meal comes back once its time has passed."""
        upcoming = self.next_meal(feeder)
        if upcoming is None:
            raise _invalid("no_meal_to_skip")
        meal, target = upcoming
        if (current := feeder.skipped.get(meal.meal_id)) is not None:
            # Skipping the occurrence after an already skipped one: both stay skipped.
            self._log_skip(feeder, meal.meal_id, current)
        feeder.skipped[meal.meal_id] = (target + self.window).timestamp()
        self._changed(feeder, "meal skipped", debounce=False)
        return meal, target

    @staticmethod
    def _log_skip(feeder: Feeder, meal_id: int, until: float) -> None:
        """Remember a skip that is no longer current, so it still shows as skipped."""
        feeder.skip_log.append((meal_id, until))
        del feeder.skip_log[:-SKIP_LOG_LIMIT]

    def set_time_zone(self, feeder: Feeder, zone: str | None) -> None:
        """Set the zone the feeder's meal times are in (None: HA's zone)."""
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise _invalid("invalid_time_zone", zone=zone) from err
        if feeder.time_zone != zone:
            feeder.time_zone = zone
            self._changed(feeder, "time zone changed", debounce=False)

    def set_firmware_family(self, feeder: Feeder, family: str) -> None:
        """Override which schedule commands the feeder gets."""
        if family not in FIRMWARE_FAMILIES:
            raise _invalid("invalid_firmware_family", family=family)
        if (
            family == FAMILY_LEGACY
            or (
                family == FAMILY_AUTO
                and not uses_new_schedule_api(feeder.software_version)
            )
        ) and not self.legacy_fits(feeder, feeder.meals):
            raise _invalid("legacy_schedule_too_long", count=len(feeder.meals))
        if feeder.firmware_family != family:
            feeder.firmware_family = family
            self._changed(feeder, "firmware family changed", debounce=False)

    def request_sync(self, feeder: Feeder, reason: str) -> None:
        """Ask for a full sync now (the sync button and action)."""
        self._changed(feeder, reason, debounce=False)

    def _changed(self, feeder: Feeder, reason: str, *, debounce: bool) -> None:
        feeder.sync_pending = True
        self._hub.schedule_save()
        self._hub.notify(feeder.hid)
        if (reconciler := self._reconcilers.get(feeder.hid)) is not None:
            reconciler.request(reason, debounce=debounce)

    # ------------------------------------------------------------------ hub events

    def gateway_connected(self, gateway_hid: str) -> None:
        """A (re)connected session gets utc_offset and the schedule (§7.6)."""
        for feeder in self._hub.feeders_of(gateway_hid):
            if (reconciler := self._reconcilers.get(feeder.hid)) is not None:
                reconciler.connected()

    def gateway_disconnected(self, gateway_hid: str) -> None:
        """A sync that was running is incomplete; it restarts after reconnect."""
        for feeder in self._hub.feeders_of(gateway_hid):
            if (reconciler := self._reconcilers.get(feeder.hid)) is not None:
                reconciler.disconnected()

    def checkin(self, gateway_hid: str) -> None:
        """A check-in marks the gateway's feeders "sync pending" (it precedes MQTT)."""
        for feeder in self._hub.feeders_of(gateway_hid):
            self._changed(feeder, "check-in", debounce=False)

    def firmware_changed(self, feeder: Feeder) -> None:
        """The firmware family may have changed: resend in the right form."""
        self._changed(feeder, "firmware changed", debounce=False)

    def hash_received(self, feeder: Feeder, message: ScheduleHash) -> None:
        """Empty hash: the feeder lost its schedule (§5.5); a new hash may reveal drift.

        Hash-triggered syncs are rate limited; one the limit holds back runs when it allows
        (the reconciler defers it), and until then the schedule shows as not in sync.
        """
        if (reconciler := self._reconcilers.get(feeder.hid)) is None:
            return
        if message.is_empty:
            if feeder.meals:
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
        self._hub.schedule_save()
        self._hub.notify(feeder.hid)

    # ------------------------------------------------------------------ reconciler callbacks

    def _connected(self, feeder_hid: str) -> bool:
        feeder = self._hub.feeders.get(feeder_hid)
        return feeder is not None and self._hub.is_connected(feeder.gateway_hid)

    def _plan(self, feeder_hid: str) -> SyncPlan:
        feeder = self._hub.feeders[feeder_hid]
        offset = self.utc_offset(feeder)
        planned: list[OutboundCommand] = [commands.utc_offset(feeder.hid, offset)]
        entries = self.entries(feeder)
        fingerprint = schedule_fingerprint(feeder.hid, entries)
        # A feeder HA never gave a schedule keeps the one it holds (it may still feed from
        # the old cloud's) until the user makes one here; only its clock is set.
        carries_schedule = bool(entries) or feeder.schedule_owned
        new_api = self.uses_new_api(feeder)
        if (
            carries_schedule
            and not new_api
            and not self.legacy_fits(feeder, feeder.meals)
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
        self._planned[feeder_hid] = (offset, carries_schedule)
        return SyncPlan(commands=planned, fingerprint=fingerprint)

    def _report_too_long(self, feeder: Feeder) -> None:
        _LOGGER.warning(
            "Feeder %s (firmware %s) cannot take its %d meals in one legacy schedule "
            "command; only its clock was set",
            feeder.hid,
            feeder.software_version or "unknown",
            len(feeder.meals),
        )
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            too_long_issue_id(feeder.hid),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="schedule_too_long",
            translation_placeholders={
                "feeder": feeder.display_name,
                "firmware": feeder.software_version or "unknown",
                "count": str(len(feeder.meals)),
            },
        )

    async def _send(self, feeder_hid: str, command: OutboundCommand) -> None:
        """Publish one command of a sync, and make sure the feeder got it.

        Where the transport cannot tell (HA's MQTT: the broker acknowledges), a feeder that
        reports on its commands must report this one. A sync cut off half-way (the feeder
        reconnected unseen, say) then fails and is retried from its first command instead
        of counting as delivered.
        """
        feeder = self._hub.feeders.get(feeder_hid)
        transport = self._hub.transport
        if feeder is None or transport is None:
            raise GatewayNotConnectedError(feeder_hid)
        confirmations = self._hub.confirmations
        waiter = None
        if not transport.confirms_delivery and confirmations.reports_status(
            feeder.gateway_hid
        ):
            waiter = confirmations.expect(command.hid, feeder.gateway_hid)
        else:
            confirmations.sent(command.hid, feeder.gateway_hid)
        try:
            await transport.async_publish(
                feeder.gateway_hid,
                topics.command_topic(feeder.gateway_hid),
                command.payload,
            )
            if waiter is not None:
                try:
                    async with asyncio.timeout(self.confirm_timeout_s):
                        status = await waiter
                except TimeoutError:
                    raise TimeoutError(
                        f"the feeder did not report on {command.name} ({command.hid}) "
                        f"within {self.confirm_timeout_s:g} s"
                    ) from None
                if status == "failed":
                    raise CommandFailedError(
                        f"the feeder reported {command.name} ({command.hid}) as failed"
                    )
        finally:
            if waiter is not None:
                confirmations.forget(command.hid)
        _LOGGER.debug(
            "Sent %s (%s) to feeder %s", command.name, command.hid, feeder_hid
        )

    def _synced(self, feeder_hid: str, fingerprint: str) -> None:
        if (feeder := self._hub.feeders.get(feeder_hid)) is None:
            return
        offset, carried_schedule = self._planned.pop(feeder_hid, (None, False))
        feeder.last_synced_at = time.time()
        feeder.synced_fingerprint = fingerprint or None
        feeder.sent_utc_offset = offset
        feeder.schedule_owned = feeder.schedule_owned or carried_schedule
        feeder.expected_hash = None
        _LOGGER.debug("Schedule of feeder %s delivered", feeder_hid)
        self._hub.schedule_save()

    def _state_changed(self, feeder_hid: str) -> None:
        if (feeder := self._hub.feeders.get(feeder_hid)) is None:
            return
        reconciler = self._reconcilers.get(feeder_hid)
        feeder.sync_pending = (
            reconciler.pending if reconciler is not None else feeder.sync_pending
        )
        self._hub.schedule_save()
        self._hub.notify(feeder_hid)

    @callback
    def _tick(self, now: datetime) -> None:
        """Resend utc_offset after a DST change; restore skipped meals whose time has passed."""
        for feeder in list(self._hub.feeders.values()):
            expired = [
                k for k, until in feeder.skipped.items() if until <= now.timestamp()
            ]
            for meal_id in expired:
                self._log_skip(feeder, meal_id, feeder.skipped.pop(meal_id))
            if expired:
                self._changed(feeder, "skipped meal restored", debounce=False)
            elif (
                # An owed sync sends the current offset anyway (and an offline feeder
                # would otherwise be marked again every minute).
                not feeder.sync_pending
                and feeder.sent_utc_offset is not None
                and feeder.sent_utc_offset != self.utc_offset(feeder)
            ):
                self._changed(feeder, "utc offset changed", debounce=False)
