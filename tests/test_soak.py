"""Soak: a simulated fleet over simulated days, HA's account of every meal against the truth.

A real hass (the suite's fixtures: bundled broker, simulated feeders over TLS) runs on a frozen
clock that this module moves. Every simulated feeder runs its held schedule on its own clock
(UTC plus the offset it was sent) and records each dispense it made, whether or not its result
reached Home Assistant (``SimulatedFeeder.dispense_log``): that is the ground truth. A seeded
fault script (``random.Random(seed)``) reboots feeders, cuts their power for hours, drops MQTT
right after a sync started, restarts Home Assistant (unload, time passes, set up again on the
same storage), makes dispenses fail, presses the button and feeds now near meals, and adds,
moves, disables, removes and skips meals. The run is two segments of ``days / 2`` each, one
around each daylight-saving change in America/Chicago (2024-03-10 and 2024-11-03); half the
fleet runs legacy firmware 2.3.2, half 2.8.0.

The clock moves in 30 s steps from a minute before each meal slot until its window, the
delivery slack and 90 s have passed, and around each clock change; in between it jumps to the
next thing due (a slot, a fault, a minute in which any feeder's own clock reaches a meal it
holds: a meal dispensed at an unplanned time is seen too). Feeders connect with MQTT keep-alive
0, so a jump does not look like a dead session. Every meal of the fleet sits on one of
``SLOTS`` (edits move meals between slots).

**Occurrence**: one planned meal on one local day, from the soak's own plan (meal times with
when they were set, enabled or not, removed or not), counted when its target lies inside a
segment. Each is judged once its window plus the delivery slack plus a minute have passed:

* truth: the feeder's schedule dispenses of that meal (its ``feeding_id``) on that local day
  within two hours of the target: ``ok`` (not failed) and ``failed`` ones.
* HA's account: the occurrence's state as the integration shows it then
  (``feeder_occurrences``: the meal ledger every entity reads), and whether the monitor
  reported it missed (a ``missed`` feeding event, or the key in ``Feeder.misses``).

Counters (keys of the JSON report):

* ``occurrences``: occurrences judged.
* ``dispensed_once`` / ``dispensed_twice``: truth ``ok`` is 1 / 2 or more.
* ``missed_reported``: nothing dispensed (not skipped by the user), and HA reported it missed.
* ``missed_unreported``: nothing dispensed, not skipped, and HA neither reported it missed nor
  showed it unconfirmed.
* ``missed_unexplained``: nothing dispensed, not skipped, and neither a power cut of that
  feeder nor HA being down covers its window: the feeder should have fed it.
* ``wrong_credit``: HA shows it dispensed or failed with a result that is not one of this
  occurrence's own schedule dispenses (a button press, Feed now, or another meal's result).
* ``unconfirmed``: HA shows it unconfirmed (it could not hear the feeder then).
* ``failed`` / ``skipped``: the feeder only reported failed dispenses of it / the user
  skipped it (context for the other counts).
* ``mismatches``: every occurrence where HA's state is not what the truth calls for, with
  details: dispensed -> ``dispensed`` (``unconfirmed`` if its result was lost while HA was
  down); failed only -> ``failed`` (same exception); nothing and skipped -> ``skipped``;
  nothing -> ``missed`` (``unconfirmed`` when HA was down during its window). A meal dispensed
  twice, a skipped meal dispensed, a missed meal without a report, a report of a miss that
  was not one (or of no planned occurrence), and a schedule dispense that belongs to no
  occurrence (``stray``) are mismatches too.
* ``missed``: every occurrence nothing was dispensed for (not skipped), with HA's state and
  the faults on that feeder in the six hours before (to tell a miss from its cause).
* ``faults``: how many of each fault the script injected; ``sim_days``, ``feeders``, ``wall_s``.

Parameters come from the environment (``scripts/soak`` sets them): SOAK_DAYS (1), SOAK_FEEDERS
(5), SOAK_SEED (1), SOAK_JSON (a file for the report), SOAK_STRICT (1: assert a clean run),
SOAK_TIMEOUT (300 s), SOAK_DEBUG (print syncs that never settled).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace
import datetime as dt
import json
import os
from pathlib import Path
import random
import re
import sys
import time
from typing import Any
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.petnet_feeder.accounting import feeder_occurrences
from custom_components.petnet_feeder.const import DOMAIN, TRANSPORT_BUNDLED
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.meals import DELIVERY_SLACK, MealState, meal_target
from custom_components.petnet_feeder.monitor import EVENT_MISSED, FeedingEvent
from feeder_sim import SimulatedFeeder
from feeder_sim.mqtt_client import MqttError

from .helpers.feeders import device_id, wait_for_feeder

ZONE_NAME = "America/Chicago"
ZONE = ZoneInfo(ZONE_NAME)
# The clock changes the two segments are centred on.
CHANGES = (
    dt.datetime(2024, 3, 10, 8, 0, tzinfo=dt.UTC),  # 02:00 CST -> 03:00 CDT
    dt.datetime(2024, 11, 3, 7, 0, tzinfo=dt.UTC),  # 02:00 CDT -> 01:00 CST
)
# Every meal sits on one of these local times: 01:30 repeats in November, 02:30 never comes
# in March.
SLOTS = (
    "01:30",
    "02:30",
    "06:00",
    "07:00",
    "07:30",
    "12:00",
    "17:30",
    "18:00",
    "21:00",
)
PORTIONS = (0.125, 0.25, 0.5)
WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PLANNER_EDITS = (
    "weekly_meal_added",
    "one_off_added",
    "occurrence_deleted",
    "occurrence_moved",
    "feeding_paused",
    "feeding_resumed",
)
STEP_S = 30
# Syncs start at once (no debounce timer, which the frozen loop would never fire), unpaced.
RECONCILER_OPTIONS = {"debounce_s": 0, "pacing_s": 0}
FEED_ID = re.compile(r"_feed(\d+)_")
SRC_SCHEDULE = 6


def _slot_s(slot: str) -> int:
    hours, minutes = slot.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def _local_day(at: float) -> dt.date:
    return dt.datetime.fromtimestamp(at, ZONE).date()


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


# ----------------------------------------------------------------- the plan and the fleet


@dataclass
class Version:
    """A meal's time while it held it: occurrences from ``since`` until ``until``.

    Only on ``weekdays`` (None: every day), only on ``date`` (a one-off meal), never on
    ``except_dates`` (occurrences deleted or moved one at a time).
    """

    time_s: int
    enabled: bool
    since: float
    until: float = float("inf")
    weekdays: frozenset[int] | None = None
    date: dt.date | None = None
    except_dates: set[dt.date] = field(default_factory=set)

    def occurs_on(self, day: dt.date) -> bool:
        if self.date is not None and day != self.date:
            return False
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        return day not in self.except_dates

    def then(self, now: float, **changes: Any) -> Version:
        """The next version from ``now`` on: the same days unless changed."""
        return replace(
            self,
            since=now,
            until=float("inf"),
            except_dates=set(self.except_dates),
            **changes,
        )


@dataclass
class Sim:
    """A simulated feeder and what the soak planned for it."""

    feeder: SimulatedFeeder
    name: str
    legacy: bool
    mode: str = "on"  # on | power_out | ha_down
    power_back: float | None = None
    plan: dict[int, list[Version]] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)
    skips: set[tuple[int, int]] = field(default_factory=set)  # (meal id, target s)
    missed_events: set[tuple[int, int]] = field(default_factory=set)
    last_heartbeat: float = 0.0
    meal_count: int = 0
    fault_log: list[tuple[float, str]] = field(default_factory=list)
    powered_off: list[tuple[float, float]] = field(default_factory=list)
    ran_minute: int = 0  # the epoch minute the feeder last ran its schedule in
    # Feeding paused: [from, until) (epoch s); the last one open (until inf) until resumed.
    pauses: list[list[float]] = field(default_factory=list)


@dataclass(order=True)
class Fault:
    """One scripted fault: at ``at`` (epoch s), of ``kind``, on feeder ``index``."""

    at: float
    kind: str = field(compare=False)
    index: int = field(compare=False, default=-1)
    arg: Any = field(compare=False, default=None)


class Soak:
    """Drives the fleet through the simulated days and judges every occurrence."""

    def __init__(
        self,
        hass: HomeAssistant,
        freezer: FrozenDateTimeFactory,
        hub: PetnetHub,
        make_feeder: Any,
        *,
        days: float,
        feeders: int,
        seed: int,
    ) -> None:
        self.hass = hass
        self.freezer = freezer
        self.hub = hub
        self.make_feeder = make_feeder
        self.days = days
        self.count = feeders
        self.rng = random.Random(seed)
        self.sims: list[Sim] = []
        self.window_s = 0
        self.faults: Counter[str] = Counter()
        self.script: list[Fault] = []
        self.ha_down: list[tuple[float, float]] = []
        self.ha_up = True
        self.judged: set[tuple[int, int, int]] = set()
        self.claimed: set[tuple[int, int]] = set()  # (sim index, dispense index)
        self.report: Counter[str] = Counter()
        self.mismatches: list[dict[str, Any]] = []
        # Every occurrence nothing was dispensed for, with the faults before it (triage).
        self.missed: list[dict[str, Any]] = []
        self.segment: tuple[float, float] = (0.0, 0.0)

    # ------------------------------------------------------------- helpers

    @property
    def now(self) -> float:
        return dt_util.utcnow().timestamp()

    def move_to(self, at: float) -> None:
        self.freezer.move_to(dt.datetime.fromtimestamp(at, dt.UTC))

    def slot_targets(self, start: float, end: float) -> list[float]:
        """Every slot's target instants in [start, end)."""
        first = dt.datetime.fromtimestamp(start, ZONE).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(end, ZONE).date() + dt.timedelta(days=1)
        found = []
        day = first
        while day <= last:
            for slot in SLOTS:
                at = meal_target(day, _slot_s(slot), ZONE).timestamp()
                if start <= at < end:
                    found.append(at)
            day += dt.timedelta(days=1)
        return sorted(found)

    def regions(self, start: float, end: float) -> list[tuple[float, float]]:
        """When the clock moves in small steps: around each slot and each clock change."""
        tail = self.window_s + DELIVERY_SLACK.total_seconds() + 90
        spans = [(at - 60, at + tail) for at in self.slot_targets(start, end)]
        spans += [
            (change.timestamp() - 120, change.timestamp() + 180)
            for change in CHANGES
            if start <= change.timestamp() < end
        ]
        return sorted(spans)

    def in_region(self, at: float, spans: list[tuple[float, float]]) -> bool:
        return any(low <= at <= high for low, high in spans)

    def feeder_due(self, sim: Sim, after: float) -> float | None:
        """The next minute (epoch s) after ``after`` at which the feeder's clock reaches a meal."""
        feeder = sim.feeder
        offset = feeder.effective_utc_offset
        best = None
        for event in feeder.schedule:
            if event.get("active") is not True or not isinstance(
                event.get("time"), int
            ):
                continue
            local = after + offset
            day_start = local - local % 86400
            at = day_start + event["time"] // 60 * 60 - offset
            # A minute already begun counts until the feeder ran its schedule in it.
            while at + 60 <= after or at // 60 <= sim.ran_minute:
                at += 86400
            at = max(at, after + 1)
            best = at if best is None else min(best, at)
        return best

    def meal_id_of(self, record: dict[str, Any]) -> int | None:
        match = FEED_ID.search(str(record.get("feeding_id") or ""))
        return int(match.group(1)) if match else None

    # ------------------------------------------------------------- HA side

    async def heartbeat(self, sim: Sim) -> None:
        feeder = sim.feeder
        if not (self.ha_up and feeder.connected) or sim.last_heartbeat >= self.now:
            return
        now = self.now
        try:
            await feeder.send_heartbeat()
        except MqttError:
            return
        sim.last_heartbeat = now
        await wait_for_feeder(
            self.hub,
            feeder.device_hid,
            lambda f: f.last_heartbeat is not None and f.last_heartbeat >= now,
        )

    async def settle_ha(self) -> None:
        """Run the minute check; let every sync it (or anything) asked for finish.

        HA's loop follows the frozen clock, so a timer (a retry's backoff) never comes due by
        itself: while a sync is still owed the clock moves on a second at a time, for at most
        two minutes (then the run goes on; the soak's results show what that cost).
        """
        if not self.ha_up:
            return
        self.hub.monitor.async_check_now()
        await self.hass.async_block_till_done()
        ticks = 0
        for _ in range(2000):
            busy = [
                reconciler
                for sim in self.sims
                if sim.feeder.device_hid in self.hub.state.feeders
                and sim.feeder.connected
                and not (
                    reconciler := self.hub.sync.reconciler(sim.feeder.device_hid)
                )._is_idle()
            ]
            if not busy:
                return
            if any(r._run_token is not None for r in busy) or ticks >= 120:
                # A sync runs: let its messages travel (real time; the frozen clock stays,
                # or its PUBACK timeouts would fire).
                await self.hass.async_add_executor_job(time.sleep, 0.002)
                continue
            # Only timers left (a retry's backoff): move the clock to them.
            ticks += 1
            self.freezer.tick(1)
            async_fire_time_changed(self.hass)
            await self.hass.async_block_till_done()
        self.faults["sync_not_settled"] += 1
        if os.environ.get("SOAK_DEBUG"):
            for r in busy:
                print("STUCK", dt_util.utcnow(), vars(r), file=sys.__stderr__)

    def use_options(self) -> None:
        """Quick syncs, for reconcilers made from now on and those set up with the entry.

        A pause between commands is an asyncio sleep, which the frozen loop never ends.
        """
        self.hub.sync.reconciler_options = RECONCILER_OPTIONS
        for reconciler in self.hub.sync._reconcilers.values():
            reconciler._debounce_s = 0.0
            reconciler._pacing_s = 0.0

    def subscribe(self) -> None:
        for sim in self.sims:

            @callback
            def listen(event: FeedingEvent, sim: Sim = sim) -> None:
                if event.event_type == EVENT_MISSED:
                    meal_id = sim.names.get(event.attributes.get("meal_name") or "")
                    scheduled = dt.datetime.fromisoformat(event.attributes["scheduled"])
                    if meal_id is not None:
                        sim.missed_events.add((meal_id, int(scheduled.timestamp())))

            self.hub.monitor.async_subscribe(sim.feeder.device_hid, listen)

    async def call(self, service: str, sim: Sim, **data: Any) -> Any:
        return await self.hass.services.async_call(
            DOMAIN,
            service,
            {"device_id": device_id(self.hass, sim.feeder), **data},
            blocking=True,
        )

    async def restart_ha(self, down_s: float) -> None:
        """Unload the entry, let time pass (feeders keep feeding, unheard), set it up again."""
        entry = self.hub.entry
        assert await self.hass.config_entries.async_unload(entry.entry_id)
        await self.hass.async_block_till_done()
        self.ha_up = False
        down_at = self.now
        for sim in self.sims:
            await sim.feeder.drop()
            if sim.mode == "on":
                sim.mode = "ha_down"
        await self.live_until(down_at + down_s)
        assert await self.hass.config_entries.async_setup(entry.entry_id)
        await self.hass.async_block_till_done()
        self.hub = entry.runtime_data
        self.use_options()
        self.ha_up = True
        self.ha_down.append((down_at, self.now))
        self.subscribe()
        for sim in self.sims:
            if sim.mode == "ha_down":
                sim.mode = "on"
                await self.reconnect(sim)
        await self.settle_ha()

    async def reconnect(self, sim: Sim) -> None:
        feeder = sim.feeder
        if not feeder.connected:
            await feeder.connect()
            await feeder.send_hash()
        await self.heartbeat(sim)

    # ------------------------------------------------------------- setup

    async def add_meal(
        self,
        sim: Sim,
        slot: str,
        portion: float,
        *,
        weekdays: frozenset[int] | None = None,
        date: dt.date | None = None,
    ) -> int:
        sim.meal_count += 1
        name = f"Meal {sim.meal_count}"
        days: dict[str, Any] = {}
        if weekdays is not None:
            days["weekdays"] = [WEEKDAY_CODES[day] for day in sorted(weekdays)]
        if date is not None:
            days["date"] = date.isoformat()
        await self.call("add_meal", sim, name=name, time=slot, portion=portion, **days)
        stored = self.hub.state.feeders[sim.feeder.device_hid]
        meal_id = next(meal.meal_id for meal in stored.meals if meal.name == name)
        sim.names[name] = meal_id
        sim.plan[meal_id] = [
            Version(_slot_s(slot), True, self.now, weekdays=weekdays, date=date)
        ]
        await self.settle_ha()
        return meal_id

    def live(self, sim: Sim) -> dict[int, Version]:
        """Each meal's current version, for meals not removed (nor one-off and over)."""
        today = _local_day(self.now)
        return {
            meal_id: versions[-1]
            for meal_id, versions in sim.plan.items()
            if versions[-1].until == float("inf")
            and (versions[-1].date is None or versions[-1].date >= today)
        }

    def free_slots(self, sim: Sim) -> list[str]:
        used = {version.time_s for version in self.live(sim).values()}
        return [slot for slot in SLOTS if _slot_s(slot) not in used]

    def next_day_of(self, version: Version) -> dt.date | None:
        """The first day from today whose occurrence is at least an hour away."""
        today = _local_day(self.now)
        for ahead in range(8):
            day = today + dt.timedelta(days=ahead)
            at = meal_target(day, version.time_s, ZONE).timestamp()
            if version.occurs_on(day) and at > self.now + 3600:
                return day
        return None

    async def plan_edit(self, sim: Sim, kind: str) -> bool:
        """The planner's edits: weekly and one-off meals, one occurrence, pauses."""
        stored = self.hub.state.feeders[sim.feeder.device_hid]
        now = self.now
        if kind == "weekly_meal_added":
            free = self.free_slots(sim)
            if not free or len(self.live(sim)) >= 4:
                return False
            days = frozenset(self.rng.sample(range(7), self.rng.randint(1, 5)))
            await self.add_meal(
                sim, self.rng.choice(free), self.rng.choice(PORTIONS), weekdays=days
            )
        elif kind == "one_off_added":
            free = self.free_slots(sim)
            if not free or len(self.live(sim)) >= 4:
                return False
            slot = self.rng.choice(free)
            day = _local_day(now) + dt.timedelta(days=self.rng.randint(0, 2))
            if meal_target(day, _slot_s(slot), ZONE).timestamp() <= now + 3600:
                day += dt.timedelta(days=1)
            await self.add_meal(sim, slot, self.rng.choice(PORTIONS), date=day)
        elif kind in ("occurrence_deleted", "occurrence_moved"):
            recurring = {
                meal_id: version
                for meal_id, version in self.live(sim).items()
                if version.enabled and version.date is None
            }
            if not recurring:
                return False
            meal_id = self.rng.choice(sorted(recurring))
            version = recurring[meal_id]
            if (day := self.next_day_of(version)) is None:
                return False
            replacement = None
            if kind == "occurrence_moved":
                free = self.free_slots(sim)
                if not free:
                    return False
                slot = self.rng.choice(free)
                if meal_target(day, _slot_s(slot), ZONE).timestamp() <= now + 3600:
                    return False
                replacement = {
                    "name": f"Moved {meal_id}",
                    "time_s": _slot_s(slot),
                    "portion": self.rng.choice(PORTIONS),
                    "first_date": day,
                }
            added = self.hub.meal_editor.except_occurrence(
                stored, meal_id, day, replacement
            )
            version.except_dates.add(day)
            if added is not None:
                sim.plan[added.meal_id] = [Version(added.time_s, True, now, date=day)]
            await self.settle_ha()
        elif kind == "feeding_paused":
            if sim.pauses and sim.pauses[-1][1] > now:
                return False
            hours = self.rng.choice((None, 3, 9, 20))
            if hours is None:
                await self.call("pause_feeding", sim)
                sim.pauses.append([now, float("inf")])
            else:
                until = now + hours * 3600
                until -= until % 60
                await self.call(
                    "pause_feeding",
                    sim,
                    until=dt.datetime.fromtimestamp(until, dt.UTC).isoformat(),
                )
                sim.pauses.append([now, until])
            await self.settle_ha()
        elif kind == "feeding_resumed":
            if not sim.pauses or sim.pauses[-1][1] <= now:
                return False
            await self.call("resume_feeding", sim)
            sim.pauses[-1][1] = now
            await self.settle_ha()
        return True

    async def setup(self) -> None:
        self.use_options()
        self.window_s = int(self.hub.clock.window.total_seconds())
        for index in range(self.count):
            legacy = index % 2 == 1
            feeder = await self.make_feeder(
                f"smartfeeder-{0x5EED00000000 + index:012x}",
                firmware="2.3.2" if legacy else "2.8.0",
                mqtt_keepalive=30000,
            )
            sim = Sim(feeder, f"f{index:02d}", legacy)
            self.sims.append(sim)
        self.subscribe()
        for sim in self.sims:
            for slot in self.rng.sample(SLOTS, self.rng.randint(2, 4)):
                await self.add_meal(sim, slot, self.rng.choice(PORTIONS))
            await self.heartbeat(sim)

    # ------------------------------------------------------------- the fault script

    def plan_faults(self, start: float, end: float) -> None:
        """Seeded faults for one segment; near-meal ones sit close to a slot's target."""
        span_days = (end - start) / 86400
        targets = self.slot_targets(start + 600, end - 1200)
        spans = self.regions(start, end)
        rates = {
            "reboot": 0.4,
            "power_out": 0.12,
            "mqtt_drop_mid_sync": 0.25,
            "failed_dispense": 0.3,
            "button_near_meal": 0.5,
            "feed_now_near_meal": 0.3,
            "meal_added": 0.12,
            "meal_moved": 0.15,
            "meal_disabled": 0.06,
            "meal_enabled": 0.06,
            "meal_removed": 0.08,
            "meal_skipped": 0.15,
            "weekly_meal_added": 0.1,
            "one_off_added": 0.1,
            "occurrence_deleted": 0.1,
            "occurrence_moved": 0.1,
            "feeding_paused": 0.06,
            "feeding_resumed": 0.06,
        }

        def quiet(at: float) -> float:
            while self.in_region(at, spans):
                at += 300
            return at

        # Every kind at least once per segment (so a short run meets each), then the rates.
        draws = [(self.rng.randrange(self.count), kind) for kind in rates]
        for index in range(self.count):
            for kind, rate in rates.items():
                draws += [(index, kind)] * self._poisson(rate * span_days)
        near = ("failed_dispense", "button_near_meal", "feed_now_near_meal")
        for index, kind in draws:
            if kind in near:
                if not targets:
                    continue
                target = self.rng.choice(targets)
                if kind == "failed_dispense":
                    at = target - 90
                else:
                    at = target + self.rng.randint(-4, 4) * 60 + 15
                self.script.append(Fault(at, kind, index, target))
            elif kind == "reboot":
                at = self.rng.uniform(start + 600, end - 600)
                self.script.append(Fault(at, kind, index))
            elif kind == "power_out":
                at = self.rng.uniform(start + 600, end - 3600)
                hours = self.rng.uniform(1, 6)
                self.script.append(Fault(at, kind, index, hours * 3600))
            else:
                at = quiet(self.rng.uniform(start + 600, end - 1800))
                self.script.append(Fault(at, kind, index))
        for _ in range(max(1, round(span_days))):
            at = self.rng.uniform(start + 1800, end - 7200)
            self.script.append(Fault(at, "ha_restart", -1, self.rng.uniform(300, 5400)))
        self.script.sort()

    def _poisson(self, mean: float) -> int:
        count, total = 0, self.rng.expovariate(1.0)
        while total < mean:
            count += 1
            total += self.rng.expovariate(1.0)
        return count

    async def inject(self, fault: Fault) -> None:
        """Inject one fault; an action HA refuses is counted, and the run goes on."""
        try:
            await self._inject(fault)
        except ServiceValidationError:
            self.faults[f"refused_{fault.kind}"] += 1

    async def _inject(self, fault: Fault) -> None:
        kind = fault.kind
        if kind == "ha_restart":
            self.faults[kind] += 1
            for sim in self.sims:
                sim.fault_log.append(
                    (self.now, f"ha_restart ({fault.arg / 60:.0f} min down)")
                )
            await self.restart_ha(fault.arg)
            return
        sim = self.sims[fault.index]
        feeder = sim.feeder
        if sim.mode != "on" or not self.ha_up:
            return  # off or unheard: nothing to do to it now
        if kind == "reboot":
            await feeder.reboot()
            await self.heartbeat(sim)
        elif kind == "power_out":
            await feeder.drop()
            sim.mode = "power_out"
            sim.powered_off.append((self.now, self.now + fault.arg))
            sim.power_back = self.now + fault.arg
            kind = f"power_out ({fault.arg / 3600:.1f} h)"
        elif kind == "mqtt_drop_mid_sync":
            start = len(feeder.commands)
            await self.call("sync_schedule", sim)
            for _ in range(50):
                if len(feeder.commands) > start:
                    break
                await asyncio.sleep(0)
            await feeder.drop()
            await self.hass.async_block_till_done()
            await self.reconnect(sim)
        elif kind == "failed_dispense":
            # The drawn feeder, else the next one that is up and has a meal then.
            for other in [*self.sims[fault.index :], *self.sims[: fault.index]]:
                held = {
                    v[-1].time_s
                    for v in other.plan.values()
                    if v[-1].until == float("inf")
                    and v[-1].enabled
                    and abs(self._target_today(v[-1].time_s, fault.arg) - fault.arg) < 1
                }
                if held and other.mode == "on":
                    break
            else:
                return
            sim = other
            for time_s in held:
                other.feeder.fail_meals[time_s] = "motor jam"
            self.pending_unfail.append((fault.arg + self.window_s + 60, other, held))
        elif kind == "button_near_meal":
            await feeder.feed_now_via_button()
            await self.heartbeat(sim)
        elif kind == "feed_now_near_meal":
            sent = len(feeder.dispense_log)
            await self.call("feed", sim, portion=0.125)
            # The feeder answers from its own task: let its result travel before the clock
            # moves on (a moved clock would time out its PUBACK).
            for _ in range(500):
                if (
                    len(feeder.dispense_log) > sent
                    and feeder.dispense_log[-1]["published"]
                ):
                    break
                await self.hass.async_add_executor_job(time.sleep, 0.002)
            await self.heartbeat(sim)
        elif kind == "meal_added":
            if len(self.live(sim)) >= 4:
                return  # legacy firmware holds about 4 meals (the editor refuses more)
            free = self.free_slots(sim)
            if not free:
                return
            await self.add_meal(sim, self.rng.choice(free), self.rng.choice(PORTIONS))
        elif kind in ("meal_moved", "meal_disabled", "meal_enabled", "meal_removed"):
            live = list(self.live(sim))
            if kind == "meal_enabled":
                live = [m for m in live if not sim.plan[m][-1].enabled]
            elif kind != "meal_removed":
                live = [m for m in live if sim.plan[m][-1].enabled]
            if not live:
                return
            meal_id = self.rng.choice(sorted(live))
            last = sim.plan[meal_id][-1]
            now = self.now
            if kind == "meal_removed":
                await self.call("remove_meal", sim, meal_id=meal_id)
                last.until = now
            elif kind == "meal_moved":
                free = self.free_slots(sim)
                if not free:
                    return
                slot = self.rng.choice(free)
                await self.call("update_meal", sim, meal_id=meal_id, time=slot)
                last.until = now
                sim.plan[meal_id].append(last.then(now, time_s=_slot_s(slot)))
            else:
                enabled = kind == "meal_enabled"
                await self.call("update_meal", sim, meal_id=meal_id, enabled=enabled)
                last.until = now
                # Enabling again does not make today's earlier occurrence due.
                sim.plan[meal_id].append(last.then(now, enabled=enabled))
            await self.settle_ha()
        elif kind in PLANNER_EDITS:
            if not await self.plan_edit(sim, kind):
                return
        elif kind == "meal_skipped":
            stored = self.hub.state.feeders[feeder.device_hid]
            before = dict(stored.skipped)
            await self.call("skip_next_meal", sim)
            await self.settle_ha()
            for meal_id, until in stored.skipped.items():
                if before.get(meal_id) != until:
                    version = sim.plan.get(meal_id, [None])[-1]
                    if version is None:
                        continue
                    target = self._target_today(version.time_s, until - self.window_s)
                    sim.skips.add((meal_id, int(target)))
        self.faults[fault.kind] += 1
        sim.fault_log.append((self.now, kind))

    def _target_today(self, time_s: int, near: float) -> float:
        """The target of a meal time on the local day of ``near`` (or the day before)."""
        day = dt.datetime.fromtimestamp(near, ZONE).date()
        best = None
        for back in (0, 1, -1):
            at = meal_target(day - dt.timedelta(days=back), time_s, ZONE).timestamp()
            if at <= near + 1 and (best is None or at > best):
                best = at
        return best if best is not None else near

    # ------------------------------------------------------------- time

    async def tick(self) -> None:
        """What happens at one instant: timers, feeders' schedules, checks, power, settling."""
        async_fire_time_changed(self.hass)
        await self.hass.async_block_till_done()
        now = dt_util.utcnow()
        for sim in self.sims:
            if sim.mode == "power_out":
                if sim.power_back is not None and self.now >= sim.power_back:
                    if not self.ha_up:
                        sim.mode = "ha_down"  # powers up into an HA that is down
                        sim.feeder.schedule = []
                        sim.feeder.utc_offset = None
                        continue
                    sim.mode = "on"
                    sim.power_back = None
                    await sim.feeder.reboot()
                    await self.heartbeat(sim)
                continue
            if sim.mode == "on" and not sim.feeder.connected and self.ha_up:
                await self.reconnect(sim)
            sim.ran_minute = int(now.timestamp()) // 60
            try:
                results = await sim.feeder.run_due_meals(now)
            except MqttError:
                results = []
            if results or self.now - sim.last_heartbeat >= 600:
                await self.heartbeat(sim)
        for at, sim, held in list(self.pending_unfail):
            if self.now >= at:
                for time_s in held:
                    sim.feeder.fail_meals.pop(time_s, None)
                self.pending_unfail.remove((at, sim, held))
        await self.settle_ha()
        if self.ha_up:
            self.judge()

    async def live_until(self, end: float) -> None:
        """Move the clock to ``end``: small steps in the regions, jumps in between."""
        spans = self.regions(self.now - 3600, end + 3600)
        while self.now < end:
            now = self.now
            candidates = [end]
            if self.in_region(now + STEP_S, spans):
                candidates.append(now + STEP_S)
            candidates += [low for low, _ in spans if low > now]
            if self.ha_up and self.script and self.script[0].at > now:
                candidates.append(self.script[0].at)
            for sim in self.sims:
                if sim.mode != "power_out":
                    if (due := self.feeder_due(sim, now)) is not None:
                        candidates.append(due)
                elif sim.power_back is not None:
                    candidates.append(sim.power_back)
            candidates += [at for at, _, _ in self.pending_unfail if at > now]
            # The clock-change timer (a second after each change) sends the new offset: stop
            # just after it, so the feeders live on through that minute with the new offset,
            # as real ones would, whatever the phase of the 30 s steps.
            candidates += [
                change.timestamp() + 2
                for change in CHANGES
                if change.timestamp() + 2 > now
            ]
            nxt = max(now + 1, min(c for c in candidates if c > now))
            self.move_to(nxt)
            await self.tick()
            while self.ha_up and self.script and self.script[0].at <= self.now:
                await self.inject(self.script.pop(0))

    # ------------------------------------------------------------- judging

    def judge(self, final: bool = False) -> None:
        """Judge every occurrence whose window, the slack and a minute have passed."""
        low, high = self.segment
        settle = self.window_s + DELIVERY_SLACK.total_seconds() + 60
        now = self.now
        for index, sim in enumerate(self.sims):
            for meal_id, versions in sim.plan.items():
                for version in versions:
                    if not version.enabled:
                        continue
                    for at in self.slot_targets_of(version.time_s, low, high):
                        key = (index, meal_id, int(at))
                        if key in self.judged or at + settle > now:
                            continue
                        if not version.since <= at < version.until:
                            continue
                        if not version.occurs_on(_local_day(at)):
                            continue
                        self.judged.add(key)
                        self.judge_one(index, sim, meal_id, at)

    def slot_targets_of(self, time_s: int, low: float, high: float) -> list[float]:
        first = dt.datetime.fromtimestamp(low, ZONE).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(high, ZONE).date() + dt.timedelta(days=1)
        found = []
        day = first
        while day <= last:
            at = meal_target(day, time_s, ZONE).timestamp()
            if low <= at < high:
                found.append(at)
            day += dt.timedelta(days=1)
        return found

    def nearest_target(self, sim: Sim, meal_id: int, stime: float) -> float | None:
        """The planned occurrence of the meal nearest to a dispense (a moved meal has two)."""
        targets = [
            at
            for version in sim.plan.get(meal_id, [])
            if version.enabled
            for at in self.slot_targets_of(version.time_s, stime - 7200, stime + 7200)
            if version.since <= at < version.until and version.occurs_on(_local_day(at))
        ]
        if not targets:
            return None
        return min(targets, key=lambda target: (abs(target - stime), target))

    def faults_before(self, sim: Sim, at: float) -> list[str]:
        """The faults on this feeder (and HA restarts) in the six hours up to a target."""
        return [
            f"{dt.datetime.fromtimestamp(when, ZONE).isoformat()} {kind}"
            for when, kind in sim.fault_log
            if at - 6 * 3600 <= when <= at + self.window_s + 180
        ]

    def judge_one(self, index: int, sim: Sim, meal_id: int, at: float) -> None:
        report = self.report
        report["occurrences"] += 1
        local_day = dt.datetime.fromtimestamp(at, ZONE).date()
        mine = [
            (position, record)
            for position, record in enumerate(sim.feeder.dispense_log)
            if record["src"] == SRC_SCHEDULE
            and self.meal_id_of(record) == meal_id
            and dt.datetime.fromtimestamp(record["stime"], ZONE).date() == local_day
            and abs(record["stime"] - at) <= 7200
            and self.nearest_target(sim, meal_id, record["stime"]) == at
        ]
        for position, _ in mine:
            self.claimed.add((index, position))
        ok = [record for _, record in mine if not record["fail"]]
        failed = [record for _, record in mine if record["fail"]]
        skipped = (meal_id, int(at)) in sim.skips
        paused = any(since <= at < until for since, until in sim.pauses)
        if not ok and failed:
            report["failed"] += 1
        if skipped:
            report["skipped"] += 1
        if paused:
            report["paused"] += 1
            # Never missed: like a skipped one where the counts ask about misses.
            skipped = True
        if len(ok) == 1:
            report["dispensed_once"] += 1
        elif len(ok) >= 2:
            report["dispensed_twice"] += 1

        stored = self.hub.state.feeders[sim.feeder.device_hid]
        occurrence = next(
            (
                found
                for found in feeder_occurrences(
                    stored,
                    ZONE,
                    dt.datetime.fromtimestamp(at - 1, dt.UTC),
                    dt.datetime.fromtimestamp(at + 1, dt.UTC),
                    dt_util.utcnow(),
                    self.hub.clock.window,
                )
                if found.meal.meal_id == meal_id
            ),
            None,
        )
        state = occurrence.state if occurrence else None
        reported = (meal_id, int(at)) in sim.missed_events or (
            f"{meal_id}@{int(at)}" in stored.misses
        )
        unheard_then = any(
            down <= at + self.window_s + DELIVERY_SLACK.total_seconds()
            and at - self.window_s <= up
            for down, up in self.ha_down
        )
        if state is MealState.UNCONFIRMED:
            report["unconfirmed"] += 1
        if not ok and not failed and not skipped:
            if reported:
                report["missed_reported"] += 1
            elif state is not MealState.UNCONFIRMED:
                report["missed_unreported"] += 1
        if state in (MealState.DISPENSED, MealState.FAILED):
            assert occurrence is not None
            result = occurrence.result
            assert result is not None
            if not any(
                record["stime"] * 1000 == result.start_ms and record["published"]
                for record in ok + failed
            ):
                report["wrong_credit"] += 1

        lost = any(not record["published"] for record in ok + failed)
        if ok:
            expected = {MealState.DISPENSED}
        elif failed:
            expected = {MealState.FAILED}
        elif paused:
            expected = {MealState.PAUSED}
        elif skipped:
            expected = {MealState.SKIPPED}
        else:
            expected = {MealState.MISSED}
        if (lost and unheard_then) or (not ok and not failed and unheard_then):
            expected.add(MealState.UNCONFIRMED)
        problems = []
        if state not in expected:
            problems.append("state")
        if len(ok) >= 2:
            problems.append("dispensed twice")
        if skipped and ok:
            problems.append(
                "paused but dispensed" if paused else "skipped but dispensed"
            )
        if state is MealState.MISSED and not reported:
            problems.append("missed without a report")
        if reported and (ok or failed or skipped):
            problems.append("reported missed but was not")
        if problems:
            self.mismatches.append(
                {
                    "feeder": sim.name,
                    "firmware": sim.feeder.firmware,
                    "meal_id": meal_id,
                    "target": dt.datetime.fromtimestamp(at, ZONE).isoformat(),
                    "problems": problems,
                    "ha_state": str(state) if state else None,
                    "expected": sorted(str(s) for s in expected),
                    "truth": [
                        {
                            "at": dt.datetime.fromtimestamp(
                                record["stime"], ZONE
                            ).isoformat(),
                            "fail": record["fail"],
                            "published": record["published"],
                        }
                        for _, record in mine
                    ],
                    "skipped": skipped,
                    "paused": paused,
                    "missed_reported": reported,
                    "faults_before": self.faults_before(sim, at),
                }
            )
        if not ok and not failed and not skipped:
            # A power cut or HA being down explains a miss; nothing else should cause one.
            explained = unheard_then or any(
                off <= at + self.window_s and at - self.window_s <= on
                for off, on in sim.powered_off
            )
            if not explained:
                report["missed_unexplained"] += 1
            self.missed.append(
                {
                    "explained": explained,
                    "feeder": sim.name,
                    "firmware": sim.feeder.firmware,
                    "meal_id": meal_id,
                    "target": dt.datetime.fromtimestamp(at, ZONE).isoformat(),
                    "ha_state": str(state) if state else None,
                    "faults_before": self.faults_before(sim, at),
                }
            )

    def strays(self, low: float, high: float) -> None:
        """Schedule dispenses, and missed reports, that belong to no judged occurrence."""
        for index, sim in enumerate(self.sims):
            for meal_id, target in sorted(sim.missed_events):
                if low <= target < high and (index, meal_id, target) not in self.judged:
                    self.mismatches.append(
                        {
                            "feeder": sim.name,
                            "firmware": sim.feeder.firmware,
                            "meal_id": meal_id,
                            "problems": ["missed report of no planned occurrence"],
                            "target": dt.datetime.fromtimestamp(
                                target, ZONE
                            ).isoformat(),
                        }
                    )
        for index, sim in enumerate(self.sims):
            for position, record in enumerate(sim.feeder.dispense_log):
                if record["src"] != SRC_SCHEDULE or not low <= record["stime"] < high:
                    continue
                if (index, position) in self.claimed:
                    continue
                self.claimed.add((index, position))
                self.report["stray_dispenses"] += 1
                self.mismatches.append(
                    {
                        "feeder": sim.name,
                        "firmware": sim.feeder.firmware,
                        "problems": ["stray dispense"],
                        "at": dt.datetime.fromtimestamp(
                            record["stime"], ZONE
                        ).isoformat(),
                        "feeding_id": record["feeding_id"],
                        "fail": record["fail"],
                    }
                )

    # ------------------------------------------------------------- the run

    async def run(self) -> dict[str, Any]:
        started = time.clock_gettime(time.CLOCK_MONOTONIC)  # freezegun leaves it alone
        self.pending_unfail: list[tuple[float, Sim, set[int]]] = []
        half = self.days * 86400 / 2
        first = True
        for change in CHANGES:
            low = change.timestamp() - half / 2
            low -= low % 60
            high = low + half
            if first:
                self.move_to(low - 1800)
                await self.restart_clock()
                await self.setup()
                first = False
            else:
                # Between the segments: HA stopped, the feeders powered off, months pass.
                await self.jump_between_segments(low - 1800)
            self.segment = (low, high)
            self.plan_faults(low, high)
            await self.live_until(high + self.window_s + 300)
            self.judge()
            self.strays(low, high)
            self.script.clear()
            for sim in self.sims:
                if sim.mode == "power_out":
                    sim.power_back = self.now
            await self.tick()
        self.faults["dst_change"] += len(CHANGES)
        self.faults["firmware_legacy_2.3.2"] = sum(sim.legacy for sim in self.sims)
        self.faults["firmware_new_2.8.0"] = sum(not sim.legacy for sim in self.sims)
        keys = (
            "occurrences",
            "dispensed_once",
            "dispensed_twice",
            "missed_reported",
            "missed_unreported",
            "missed_unexplained",
            "wrong_credit",
            "unconfirmed",
            "failed",
            "skipped",
            "paused",
            "stray_dispenses",
        )
        return {
            "sim_days": self.days,
            "feeders": self.count,
            **{key: self.report[key] for key in keys},
            "mismatches": self.mismatches,
            "missed": self.missed,
            "faults": dict(sorted(self.faults.items())),
            "wall_s": round(time.clock_gettime(time.CLOCK_MONOTONIC) - started, 1),
        }

    async def restart_clock(self) -> None:
        """Set the entry up again on the moved clock, in Chicago."""
        entry = self.hub.entry
        assert await self.hass.config_entries.async_unload(entry.entry_id)
        await self.hass.async_block_till_done()
        await self.hass.config.async_set_time_zone(ZONE_NAME)
        assert await self.hass.config_entries.async_setup(entry.entry_id)
        await self.hass.async_block_till_done()
        self.hub = entry.runtime_data
        self.use_options()

    async def jump_between_segments(self, at: float) -> None:
        entry = self.hub.entry
        assert await self.hass.config_entries.async_unload(entry.entry_id)
        await self.hass.async_block_till_done()
        down_at = self.now
        for sim in self.sims:
            await sim.feeder.drop()
            sim.feeder.schedule = []
            sim.feeder.utc_offset = None
            sim.mode = "on"
            sim.power_back = None
            sim.feeder.fail_meals.clear()
        self.pending_unfail.clear()
        self.move_to(at)
        assert await self.hass.config_entries.async_setup(entry.entry_id)
        await self.hass.async_block_till_done()
        self.hub = entry.runtime_data
        self.use_options()
        self.ha_down.append((down_at, self.now))
        self.subscribe()
        for sim in self.sims:
            await sim.feeder.reboot()
            await self.heartbeat(sim)
        await self.settle_ha()


@pytest.mark.timeout(int(_env("SOAK_TIMEOUT", "300")))
@pytest.mark.parametrize("transport", [TRANSPORT_BUNDLED], indirect=True)
async def test_soak(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: Any,
) -> None:
    """A fleet lives through simulated days; HA's account matches what the feeders did."""
    soak = Soak(
        hass,
        freezer,
        hub,
        make_feeder,
        days=float(_env("SOAK_DAYS", "1")),
        feeders=int(_env("SOAK_FEEDERS", "5")),
        seed=int(_env("SOAK_SEED", "1")),
    )
    report = await soak.run()
    if path := _env("SOAK_JSON", ""):
        Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if _env("SOAK_STRICT", "1") == "1":
        assert report["occurrences"] > 0
        summary = json.dumps(report, indent=1)
        assert report["dispensed_twice"] == 0, summary
        assert report["wrong_credit"] == 0, summary
        assert report["missed_unreported"] == 0, summary
        assert report["missed_unexplained"] == 0, summary
        assert report["mismatches"] == [], summary
