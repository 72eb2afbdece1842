"""Tests for the schedule reconciler (protocol §7.6, §5.5 rate limit).

Synchronisation is event based: a fake sender that can block on an event or raise, a
state-change hook that wakes waiters, and ``async_wait_idle``. Tiny debounce and retry
values are used only where they are the thing under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import logging
import re
from typing import Any

import pytest

from custom_components.petnet_feeder.protocol.commands import Command
from custom_components.petnet_feeder.reconcile import (
    OutboundCommand,
    ScheduleReconciler,
    SyncPlan,
)

NAME = "feeder0123456789"
WAIT = 5  # safety net against a hang; never used to synchronise


def full_sequence(meals: int) -> list[str]:
    return [
        "utc_offset",
        "schedule_clear",
        "schedule_mod_start",
        *["schedule_add"] * meals,
        "schedule_mod_end",
    ]


class Planner:
    """plan(): builds a §7.5 sequence from the current number of meals."""

    def __init__(self, meals: int = 2) -> None:
        self.meals = meals
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> SyncPlan:
        self.calls += 1
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        hid = f"hid{self.calls:029d}"
        commands = [
            Command("utc_offset", hid, b'{"utc_offset": -18000}'),
            Command("schedule_clear", hid, b"{}"),
            Command("schedule_mod_start", hid, f'{{"size": {self.meals}}}'.encode()),
            *(
                Command("schedule_add", hid, f'[{{"index": {i}}}]'.encode())
                for i in range(self.meals)
            ),
            Command("schedule_mod_end", hid, b"{}"),
        ]
        return SyncPlan(commands=commands, fingerprint=f"fp-{self.meals}")


class Sender:
    """send(): records (name, payload); can block on an event or raise."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.errors: list[Exception] = []  # raised, one per call, before sending
        self.block_on: str | None = None  # command name that blocks until release()
        self.entered = asyncio.Event()  # a call is blocked
        self.cancelled = 0  # blocked calls that were cancelled
        self.was_cancelled = asyncio.Event()
        self._gate = asyncio.Event()
        self.raise_on_release: Exception | None = None

    def hold(self, name: str = "utc_offset") -> None:
        self.block_on = name
        self.entered = asyncio.Event()
        self._gate = asyncio.Event()

    def release(self, *, error: Exception | None = None) -> None:
        self.block_on = None
        self.raise_on_release = error
        self._gate.set()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.sent]

    async def __call__(self, command: OutboundCommand) -> None:
        if command.name == self.block_on:
            self.entered.set()
            try:
                await self._gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                self.was_cancelled.set()
                raise
            if self.raise_on_release is not None:
                error, self.raise_on_release = self.raise_on_release, None
                raise error
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((command.name, command.payload))


class Harness:
    """One reconciler with its fakes; records every (pending, running) change."""

    def __init__(self, **kwargs: Any) -> None:
        self.planner = Planner()
        self.sender = Sender()
        self.link_up = True
        self.synced_fingerprints: list[str] = []
        self.synced_error: Exception | None = None
        self.states: list[tuple[bool, bool]] = []
        self.pauses: list[float] = []
        self._watchers: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

        async def sleep(delay: float) -> None:
            self.pauses.append(delay)

        kwargs.setdefault("debounce_s", 0.05)
        kwargs.setdefault("pacing_s", 0.25)
        kwargs.setdefault("sleep", sleep)
        self.r = ScheduleReconciler(name=NAME, target=self, **kwargs)

    # The reconciler's SyncTarget: the fakes, and a record of what it reports.
    def plan(self) -> SyncPlan:
        return self.planner()

    async def send(self, command: OutboundCommand) -> None:
        await self.sender(command)

    def is_connected(self) -> bool:
        return self.link_up

    def synced(self, fingerprint: str) -> None:
        if self.synced_error is not None:
            raise self.synced_error
        self.synced_fingerprints.append(fingerprint)

    def state_changed(self) -> None:
        self.states.append((self.r.pending, self.r.running))
        for predicate, future in list(self._watchers):
            if not future.done() and predicate():
                future.set_result(None)

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait for a state change after which predicate holds."""
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._watchers.append(entry)
        try:
            async with asyncio.timeout(WAIT):
                await future
        finally:
            self._watchers.remove(entry)

    async def idle(self) -> None:
        async with asyncio.timeout(WAIT):
            await self.r.async_wait_idle()

    async def blocked(self) -> None:
        async with asyncio.timeout(WAIT):
            await self.sender.entered.wait()

    async def held_at(self, command: str, reason: str = "edit") -> None:
        """Start a sync and wait until it hangs sending ``command``."""
        self.sender.hold(command)
        self.r.request(reason)
        await self.blocked()


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Harness]]:
    harnesses: list[Harness] = []

    def factory(**kwargs: Any) -> Harness:
        harness = Harness(**kwargs)
        harnesses.append(harness)
        return harness

    yield factory
    for harness in harnesses:
        await harness.r.async_stop()


def own_timers(reconciler: ScheduleReconciler) -> list[asyncio.TimerHandle]:
    """Live loop timers whose callback belongs to the reconciler."""
    loop = asyncio.get_running_loop()
    return [
        handle
        for handle in loop._scheduled
        if not handle.cancelled()
        and getattr(handle._callback, "__self__", None) is reconciler
    ]


async def test_happy_path_order_pacing_and_fingerprint(
    make: Callable[..., Harness],
) -> None:
    h = make()
    h.r.request("user pressed sync")
    assert h.r.running and h.r.pending
    await h.idle()

    assert h.sender.names == full_sequence(2)
    assert h.sender.sent[0] == ("utc_offset", b'{"utc_offset": -18000}')
    # pacing between commands, never before the first: 5 gaps for 6 commands
    assert h.pauses == [0.25] * 5
    assert h.synced_fingerprints == ["fp-2"]
    assert not h.r.pending and not h.r.running
    assert (h.r.syncs_started, h.r.syncs_completed, h.r.last_error) == (1, 1, None)
    assert h.planner.calls == 1
    assert h.states == [(True, True), (False, True), (False, False)]


async def test_no_pacing_when_zero(make: Callable[..., Harness]) -> None:
    h = make(pacing_s=0)
    h.r.request("x")
    await h.idle()
    assert h.sender.names == full_sequence(2)
    assert h.pauses == []


async def test_ten_triggers_during_a_sync_give_one_follow_up(
    make: Callable[..., Harness],
) -> None:
    h = make()
    await h.held_at("schedule_mod_start", "first")
    h.planner.meals = 3  # edited while the first sync runs
    for i in range(10):
        h.r.request(f"trigger {i}")
    assert h.r.syncs_started == 1
    h.sender.release()
    await h.idle()

    assert (h.r.syncs_started, h.r.syncs_completed) == (2, 2)
    assert h.planner.calls == 2
    assert h.sender.names == full_sequence(2) + full_sequence(3)
    assert h.synced_fingerprints == ["fp-2", "fp-3"]
    assert not h.r.pending


async def test_burst_of_debounced_edits_gives_one_sync(
    make: Callable[..., Harness],
) -> None:
    h = make()
    for meals in range(1, 6):
        h.planner.meals = meals
        h.r.request("edit", debounce=True)
        assert not h.r.running
        await asyncio.sleep(0)  # let the loop run between edits; not synchronisation
    assert h.r.pending and h.sender.sent == [] and h.planner.calls == 0
    await h.idle()

    assert (h.r.syncs_started, h.r.syncs_completed) == (1, 1)
    assert h.sender.names == full_sequence(5)
    assert h.synced_fingerprints == ["fp-5"]


async def test_undebounced_request_joins_waiting_debounce(
    make: Callable[..., Harness],
) -> None:
    h = make(debounce_s=3600)  # would never fire within the test
    h.r.request("edit", debounce=True)
    h.r.request("edit", debounce=True)
    assert not h.r.running
    h.r.request("check-in")
    assert h.r.running  # started at once, the debounce is gone
    await h.idle()
    assert (h.r.syncs_started, h.r.syncs_completed) == (1, 1)
    assert own_timers(h.r) == []


async def test_debounced_edits_during_a_sync_give_one_follow_up(
    make: Callable[..., Harness],
) -> None:
    h = make()
    await h.held_at("schedule_clear", "first")
    for _ in range(5):
        h.r.request("edit", debounce=True)
    h.planner.meals = 4
    h.sender.release()
    await h.idle()
    assert (h.r.syncs_started, h.r.syncs_completed) == (2, 2)
    assert h.synced_fingerprints == ["fp-2", "fp-4"]


async def test_request_while_disconnected_waits_for_connected(
    make: Callable[..., Harness],
) -> None:
    h = make()
    h.link_up = False
    h.r.request("check-in")
    h.r.request("edit", debounce=True)
    assert h.r.pending and not h.r.running
    await h.idle()  # idle: nothing can run while disconnected
    assert h.sender.sent == [] and h.planner.calls == 0 and h.r.syncs_started == 0
    assert own_timers(h.r) == []

    h.link_up = True
    h.r.connected()
    await h.idle()
    assert h.sender.names == full_sequence(2)
    assert (h.r.syncs_started, h.r.syncs_completed) == (1, 1)
    assert not h.r.pending


async def test_connected_always_syncs(make: Callable[..., Harness]) -> None:
    h = make()
    h.r.connected()
    await h.idle()
    h.r.connected()
    await h.idle()
    assert h.sender.names == full_sequence(2) * 2
    assert h.r.syncs_completed == 2


@pytest.mark.parametrize("order", ["disconnect_first", "raise_first"])
async def test_disconnect_mid_sync_then_reconnect_restarts(
    make: Callable[..., Harness], order: str
) -> None:
    h = make()
    await h.held_at("schedule_mod_start")
    assert h.sender.names == ["utc_offset", "schedule_clear"]

    h.link_up = False
    if order == "disconnect_first":
        h.r.disconnected()
        assert not h.r.running
        async with asyncio.timeout(WAIT):
            await h.sender.was_cancelled.wait()
    else:
        h.sender.release(error=ConnectionError("session lost"))
        await h.until(lambda: not h.r.running)
        assert h.r.last_error == "session lost"
        h.r.disconnected()
    await h.idle()
    assert h.r.pending and not h.r.running
    assert (h.r.syncs_started, h.r.syncs_completed) == (1, 0)
    assert h.synced_fingerprints == []
    assert own_timers(h.r) == []  # no retry while disconnected

    h.sender.sent.clear()
    h.sender.release()
    h.link_up = True
    h.r.connected()
    await h.idle()
    assert h.sender.names == full_sequence(2)  # from the first command again
    assert (h.r.syncs_started, h.r.syncs_completed) == (2, 1)
    assert (
        h.synced_fingerprints == ["fp-2"] and not h.r.pending and h.r.last_error is None
    )


async def test_connected_restarts_a_running_sync(make: Callable[..., Harness]) -> None:
    h = make()
    await h.held_at("schedule_mod_start")
    h.sender.sent.clear()
    h.sender.block_on = None  # the new sync must not block
    h.r.connected()  # a new session without a disconnected() before it
    await h.idle()
    async with asyncio.timeout(WAIT):
        await h.sender.was_cancelled.wait()
    assert h.sender.names == full_sequence(2)
    assert (h.r.syncs_started, h.r.syncs_completed) == (2, 1)


async def test_send_failure_retries_with_backoff(
    make: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.petnet_feeder.reconcile")
    h = make(retry_initial_s=0.01, retry_max_s=0.04)
    h.sender.errors = [TimeoutError("no PUBACK")] * 4
    h.r.request("edit")
    await h.idle()  # idle only once nothing is owed any more

    assert (h.r.syncs_started, h.r.syncs_completed) == (5, 1)
    assert h.sender.names == full_sequence(2)
    assert (
        h.synced_fingerprints == ["fp-2"] and not h.r.pending and h.r.last_error is None
    )
    delays = [float(m) for m in re.findall(r"retrying in ([0-9.]+) s", caplog.text)]
    assert delays == [0.01, 0.02, 0.04, 0.04]
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per failure streak
    assert NAME in warnings[0].getMessage() and "no PUBACK" in warnings[0].getMessage()

    # success reset the backoff and the streak
    caplog.clear()
    h.sender.errors = [TimeoutError("again")]
    h.r.request("edit")
    await h.idle()
    assert [float(m) for m in re.findall(r"retrying in ([0-9.]+) s", caplog.text)] == [
        0.01
    ]
    assert len([rec for rec in caplog.records if rec.levelno == logging.WARNING]) == 1
    assert h.r.syncs_completed == 2


async def test_failure_state_and_requests_wait_for_backoff(
    make: Callable[..., Harness],
) -> None:
    h = make(retry_initial_s=3600, retry_max_s=3600)
    h.sender.errors = [TimeoutError("no PUBACK")]
    h.r.request("edit")
    await h.until(lambda: not h.r.running)
    assert h.r.pending and h.r.last_error == "no PUBACK"
    assert len(own_timers(h.r)) == 1

    h.r.request("check-in")  # merges into the scheduled retry
    assert not h.r.running and h.r.syncs_started == 1

    h.r.connected()  # a new session does not wait
    await h.idle()
    assert (h.r.syncs_started, h.r.syncs_completed) == (2, 1)
    assert not h.r.pending and own_timers(h.r) == []


async def after_a_hash_sync(
    make: Callable[..., Harness],
) -> tuple[list[float], Harness]:
    """A sync a hash asked for has run; the hash rate limit is 300 s on a clock at now[0]."""
    now = [1000.0]
    h = make(clock=lambda: now[0], hash_min_interval_s=300)
    assert h.r.request_from_hash()
    await h.idle()
    return now, h


async def test_hash_rate_limit(make: Callable[..., Harness]) -> None:
    now, h = await after_a_hash_sync(make)
    now[0] += 300
    assert h.r.request_from_hash()
    await h.idle()
    assert (h.r.syncs_started, h.r.syncs_completed) == (2, 2)
    assert not h.r.hash_sync_deferred


async def test_hash_request_held_back_by_the_rate_limit_runs_later(
    make: Callable[..., Harness],
) -> None:
    now, h = await after_a_hash_sync(make)
    now[0] += 299.95  # 50 ms of the interval left
    assert not h.r.request_from_hash("empty hash")
    assert not h.r.request_from_hash("empty hash")  # still one deferred request
    assert h.r.hash_sync_deferred and not h.r.pending
    assert len(own_timers(h.r)) == 1
    assert h.r.syncs_started == 1

    await h.until(lambda: h.r.syncs_completed == 2)
    await h.idle()
    assert h.r.syncs_started == 2 and not h.r.hash_sync_deferred
    assert own_timers(h.r) == []
    # The deferred sync counts for the limit: the next one waits a whole interval again.
    assert not h.r.request_from_hash()
    assert h.r.hash_sync_deferred


async def test_async_stop_cancels_a_deferred_hash_request(
    make: Callable[..., Harness],
) -> None:
    now, h = await after_a_hash_sync(make)
    assert not h.r.request_from_hash()
    assert own_timers(h.r)
    await h.r.async_stop()
    assert own_timers(h.r) == [] and not h.r.hash_sync_deferred


async def test_plan_is_called_fresh_per_attempt(make: Callable[..., Harness]) -> None:
    h = make(retry_initial_s=0.01)
    await h.held_at("schedule_add")
    h.planner.meals = 3  # an edit between attempts
    h.sender.release(error=TimeoutError("no PUBACK"))
    await h.idle()

    assert h.planner.calls == 2
    assert h.synced_fingerprints == ["fp-3"]
    assert h.sender.names[:3] == ["utc_offset", "schedule_clear", "schedule_mod_start"]
    assert h.sender.names[3:] == full_sequence(3)


async def test_plan_exception_is_logged_and_survived(
    make: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    h = make(retry_initial_s=0.01)
    h.planner.error = RuntimeError("boom")
    h.r.request("edit")
    await h.idle()

    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert NAME in warnings[0].getMessage() and "boom" in warnings[0].getMessage()
    assert warnings[0].exc_info is not None
    assert (h.r.syncs_started, h.r.syncs_completed) == (2, 1)
    assert h.sender.names == full_sequence(2)

    h.r.request("again")
    await h.idle()
    assert h.r.syncs_completed == 2


async def test_callback_exceptions_do_not_break_the_reconciler(
    make: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    h = make()
    h.synced_error = ValueError("the target broke")
    h.r.request("edit")
    await h.idle()
    assert not h.r.pending and h.r.syncs_completed == 1
    assert "reporting a completed sync failed" in caplog.text
    assert "the target broke" in caplog.text


async def test_async_stop_cancels_sync_and_debounce(
    make: Callable[..., Harness],
) -> None:
    before = asyncio.all_tasks()
    h = make(debounce_s=3600)
    await h.held_at("schedule_clear")
    h.r.request("edit", debounce=True)  # a debounce waiting behind the running sync
    assert h.r.running and own_timers(h.r)
    assert len(asyncio.all_tasks() - before) == 1

    await h.r.async_stop()
    assert h.sender.cancelled == 1
    assert not h.r.running
    assert own_timers(h.r) == []
    assert asyncio.all_tasks() - before == set()

    await h.r.async_stop()  # idempotent
    h.r.request("late")
    h.r.connected()
    assert h.r.request_from_hash() is False
    assert not h.r.running and h.planner.calls == 1 and h.r.syncs_completed == 0
    assert asyncio.all_tasks() - before == set()
    await h.idle()


async def test_async_stop_during_disconnect_left_no_task(
    make: Callable[..., Harness],
) -> None:
    before = asyncio.all_tasks()
    h = make()
    await h.held_at("schedule_clear")
    h.link_up = False
    h.r.disconnected()  # the cancelled run may still be unwinding
    await h.r.async_stop()
    assert asyncio.all_tasks() - before == set()
    assert h.sender.cancelled == 1


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        ScheduleReconciler(name=NAME, target=Harness(), retry_initial_s=0)
