"""Keep each feeder's schedule in step with Home Assistant (protocol §7.6).

Pure asyncio, no Home Assistant import, so it can be tested alone. ``schedule_sync.py``
creates one :class:`ScheduleReconciler` per feeder with a :class:`SyncTarget` (what to send,
how, and whom to tell); the reconciler knows nothing of MQTT or of how commands are encoded.

Semantics (the decisions the protocol leaves open are marked **[D]**):

* A sync is *owed* (``pending``) from the first request until a sync that started after
  that request completes. Every request bumps a generation counter; a finished sync clears
  ``pending`` only if no request arrived after it called ``plan()``.
* Single flight: at most one sync runs. Any number of requests that arrive while a sync
  runs merge into exactly one follow-up sync, which starts as soon as the running one
  ends (or, if one of those requests was debounced, once its debounce has expired).
* **[D]** Debounce: ``request(..., debounce=True)`` (schedule edits) (re)arms a timer of
  ``debounce_s`` (0 by default: an edit goes out at once, and the edits of one loop pass,
  or of one running delivery, still make one sync); the sync starts when it fires. A
  request *without* debounce cancels a waiting debounce and starts at once; the edits made
  so far are included because ``plan()`` reads fresh state at the start of every attempt.
* While disconnected a request only marks the sync owed; ``connected()`` runs it.
* Each attempt calls ``target.plan()``, sends the commands in order, awaiting each (the
  outbox returns once the feeder has it, see outbox.py), with ``pacing_s`` between commands
  (0 by default: the outbox's wait is the pacing) but not before the first, and then reports
  the fingerprint through ``target.synced()``.
* A failed attempt (``plan()`` or ``send`` raised) leaves the sync owed. Unless
  ``disconnected()`` has been called, it is retried after an exponential backoff from
  ``retry_initial_s`` doubling up to ``retry_max_s``; success resets the backoff.
  **[D]** Requests that arrive during the backoff wait for it (so no trigger can turn a
  failing feeder into a publish storm); ``connected()`` does not wait.
* ``disconnected()`` cancels the running sync (incomplete; ``pending`` stays) and every
  timer. **[D]** ``connected()`` always starts a full sync at once; a sync still running
  at that moment belonged to the previous session, so it is cancelled and restarted from
  the first command.
* **[D]** Requests from the feeder's schedule hash (``request_from_hash``) start at most
  one sync per ``hash_min_interval_s``; one held back by that limit runs when it ends.
* The first failure of a streak is logged at warning level, the rest at debug level.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
import logging
import time
from typing import Protocol

from .protocol.commands import OutboundCommand

_LOGGER = logging.getLogger(__name__)

DEFAULT_HASH_INTERVAL_S = 300.0


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What one sync sends: ``utc_offset`` first, then the schedule commands."""

    commands: Sequence[OutboundCommand]
    fingerprint: str  # MD5 of what is being sent (for "schedule in sync")


class SyncTarget(Protocol):
    """The feeder a reconciler keeps in step: what to send, how, and what came of it."""

    def plan(self) -> SyncPlan:
        """What a sync sends now (called at the start of every attempt)."""

    async def send(self, command: OutboundCommand) -> None:
        """Publish one command; return once the feeder has it, raise on failure."""

    def is_connected(self) -> bool:
        """Whether the feeder's gateway holds a session."""

    def synced(self, fingerprint: str) -> None:
        """Every command of a sync was delivered."""

    def state_changed(self) -> None:
        """Whether a sync is owed or running changed."""


class ScheduleReconciler:
    """Make sure one feeder holds the schedule Home Assistant has (single flight)."""

    def __init__(
        self,
        *,
        name: str,
        target: SyncTarget,
        debounce_s: float = 0.0,
        pacing_s: float = 0.0,
        retry_initial_s: float = 30.0,
        retry_max_s: float = 600.0,
        hash_min_interval_s: float = DEFAULT_HASH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """Set up an idle reconciler; nothing runs until a request or ``connected()``.

        ``target.send`` publishes one command and returns once the feeder has it; it raises
        on disconnect or timeout. ``clock`` drives the hash rate limit and ``sleep`` the
        pacing (both replaceable in tests).
        """
        if debounce_s < 0 or pacing_s < 0 or hash_min_interval_s < 0:
            raise ValueError(
                "debounce_s, pacing_s and hash_min_interval_s must be >= 0"
            )
        if retry_initial_s <= 0 or retry_max_s < retry_initial_s:
            raise ValueError("need 0 < retry_initial_s <= retry_max_s")
        self._name = name
        self._target = target
        self._debounce_s = debounce_s
        self._pacing_s = pacing_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._hash_min_interval_s = hash_min_interval_s
        self._clock = clock
        self._sleep = sleep

        self._pending = False
        self._generation = 0  # bumped by every accepted request
        self._link_down = False  # set by disconnected(), cleared by connected()
        self._stopped = False
        # The current run: its identity and its task. A run whose token is no longer
        # current has been abandoned (disconnect, reconnect, stop) and must not act.
        self._run_token: object | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # every task not yet finished
        self._debounce: asyncio.TimerHandle | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._hash_deferred: asyncio.TimerHandle | None = None
        self._retry_delay = retry_initial_s
        self._failing = False  # inside a failure streak (for log-once)
        self._last_error: str | None = None
        self._last_hash_at: float | None = None
        self._syncs_started = 0
        self._syncs_completed = 0
        self._reported: tuple[bool, bool] = (False, False)
        self._idle_waiters: list[asyncio.Future[None]] = []

    # ------------------------------------------------------------------ public state

    @property
    def pending(self) -> bool:
        """Whether a sync is owed (requested and not yet completed)."""
        return self._pending

    @property
    def running(self) -> bool:
        """Whether a sync attempt is in flight."""
        return self._run_token is not None

    @property
    def syncs_started(self) -> int:
        """How many attempts have started (retries included)."""
        return self._syncs_started

    @property
    def syncs_completed(self) -> int:
        """How many attempts have sent every command."""
        return self._syncs_completed

    @property
    def last_error(self) -> str | None:
        """Message of the last failed attempt; ``None`` once an attempt succeeds."""
        return self._last_error

    # ------------------------------------------------------------------ triggers

    def request(self, reason: str, *, debounce: bool = False) -> None:
        """Ask for a full sync; see the module docstring for debounce and merging."""
        if self._stopped:
            _LOGGER.debug(
                "Feeder %s: sync request (%s) ignored: stopped", self._name, reason
            )
            return
        self._generation += 1
        self._pending = True
        if not self._connected_now():
            _LOGGER.debug(
                "Feeder %s: sync owed (%s), waiting for the connection",
                self._name,
                reason,
            )
        elif debounce:
            _LOGGER.debug(
                "Feeder %s: sync requested (%s), debouncing", self._name, reason
            )
            self._cancel_debounce()
            self._debounce = asyncio.get_running_loop().call_later(
                self._debounce_s, self._debounce_fired
            )
        else:
            _LOGGER.debug("Feeder %s: sync requested (%s)", self._name, reason)
            self._cancel_debounce()
            self._kick()
        self._notify()

    def request_from_hash(self, reason: str = "schedule hash") -> bool:
        """Ask for a sync because of what the feeder reported about its schedule (§5.5).

        At most one such sync starts per ``hash_min_interval_s``; returns whether this one
        started now. **[D]** One that the limit holds back is not dropped: a single deferred
        request runs once the interval has passed (the feeder said its schedule is wrong).
        """
        if self._stopped:
            return False
        now = self._clock()
        if self._last_hash_at is not None:
            wait = self._last_hash_at + self._hash_min_interval_s - now
            if wait > 0:
                if self._hash_deferred is None:
                    _LOGGER.debug(
                        "Feeder %s: %s sync deferred %.0f s by the rate limit",
                        self._name,
                        reason,
                        wait,
                    )
                    self._hash_deferred = asyncio.get_running_loop().call_later(
                        wait, self._hash_deferred_fired, reason
                    )
                return False
        self._last_hash_at = now
        self.request(reason)
        return True

    @property
    def hash_interval_s(self) -> float:
        """At most one hash-triggered sync starts per this many seconds."""
        return self._hash_min_interval_s

    @hash_interval_s.setter
    def hash_interval_s(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the hash interval must be >= 0")
        self._hash_min_interval_s = seconds

    @property
    def hash_sync_deferred(self) -> bool:
        """Whether a hash-triggered sync waits for the rate limit."""
        return self._hash_deferred is not None

    def _hash_deferred_fired(self, reason: str) -> None:
        self._hash_deferred = None
        self._last_hash_at = self._clock()
        self.request(f"{reason} (deferred)")

    def connected(self) -> None:
        """React to the gateway's MQTT session being (re)established: sync at once."""
        if self._stopped:
            return
        self._link_down = False
        self._cancel_retry()
        if self._run_token is not None:
            _LOGGER.debug(
                "Feeder %s: new session, restarting the running sync", self._name
            )
            self._abandon_run()
        self.request("connected")

    def disconnected(self) -> None:
        """React to the session being lost: cancel the running sync; the sync stays owed."""
        if self._stopped:
            return
        self._link_down = True
        self._cancel_debounce()
        self._cancel_retry()
        if self._run_token is not None:
            _LOGGER.debug(
                "Feeder %s: sync interrupted by disconnect, it restarts on reconnect",
                self._name,
            )
            self._abandon_run()
        self._notify()

    # ------------------------------------------------------------------ lifecycle

    async def async_wait_idle(self) -> None:
        """Wait until nothing runs, nothing debounces and no sync is owed while connected."""
        loop = asyncio.get_running_loop()
        while not self._is_idle():
            waiter: asyncio.Future[None] = loop.create_future()
            self._idle_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._idle_waiters:
                    self._idle_waiters.remove(waiter)

    async def async_stop(self) -> None:
        """Cancel every task and timer; idempotent. Later requests are ignored."""
        if not self._stopped:
            self._stopped = True
            self._cancel_debounce()
            self._cancel_retry()
            if self._hash_deferred is not None:
                self._hash_deferred.cancel()
                self._hash_deferred = None
            self._abandon_run()
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._notify()

    # ------------------------------------------------------------------ internals

    def _connected_now(self) -> bool:
        return not self._link_down and self._target.is_connected()

    def _ready(self) -> bool:
        """Whether a sync may start now (ignoring whether one is running)."""
        return (
            not self._stopped
            and self._pending
            and self._debounce is None
            and self._retry is None
            and self._connected_now()
        )

    def _is_idle(self) -> bool:
        if self._stopped:
            return True
        return (
            self._run_token is None
            and self._debounce is None
            and not (self._pending and self._connected_now())
        )

    def _kick(self) -> None:
        if self._run_token is None and self._ready():
            self._start_run()

    def _start_run(self) -> None:
        token = object()
        self._run_token = token
        task = asyncio.get_running_loop().create_task(
            self._run(token), name=f"petnet_feeder schedule sync {self._name}"
        )
        # With an eager task factory the run may already have finished here.
        if not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if self._run_token is token:
                self._task = task
        self._notify()

    def _abandon_run(self) -> None:
        """Detach the current run (if any) and cancel its task; pending stays as it is."""
        task = self._task
        self._run_token = None
        self._task = None
        if task is not None and not task.done():
            task.cancel()

    def _cancel_debounce(self) -> None:
        if self._debounce is not None:
            self._debounce.cancel()
            self._debounce = None

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _debounce_fired(self) -> None:
        self._debounce = None
        self._kick()
        self._notify()

    def _retry_fired(self) -> None:
        self._retry = None
        self._kick()
        self._notify()

    async def _run(self, token: object) -> None:
        """Run attempts while a sync is owed and may start; never raises but CancelledError."""
        try:
            while True:
                await self._attempt(token)
                if self._run_token is not token or not self._ready():
                    return
        finally:
            if self._run_token is token:
                self._run_token = None
                self._task = None
            self._notify()

    async def _attempt(self, token: object) -> None:
        generation = self._generation
        self._syncs_started += 1
        stage = "plan"
        try:
            plan = self._target.plan()
            commands = list(plan.commands)
            fingerprint = plan.fingerprint
            stage = "send"
            _LOGGER.debug(
                "Feeder %s: sync attempt %d, %d commands",
                self._name,
                self._syncs_started,
                len(commands),
            )
            for index, command in enumerate(commands):
                if index and self._pacing_s > 0:
                    await self._sleep(self._pacing_s)
                    if self._run_token is not token:
                        return
                await self._target.send(command)
                if self._run_token is not token:
                    return
        except Exception as err:  # noqa: BLE001 - any failure leaves the sync owed and is retried
            if self._run_token is token:
                self._attempt_failed(err, stage)
            return
        self._attempt_succeeded(generation, fingerprint)

    def _attempt_failed(self, err: Exception, stage: str) -> None:
        message = str(err) or type(err).__name__
        self._last_error = message
        if self._link_down or self._stopped:
            delay: float | None = None
        else:
            delay = self._retry_delay
            self._retry_delay = min(delay * 2, self._retry_max_s)
            self._retry = asyncio.get_running_loop().call_later(
                delay, self._retry_fired
            )
        then = (
            "retrying after reconnect" if delay is None else f"retrying in {delay:g} s"
        )
        if not self._failing:
            self._failing = True
            # A plan() failure is a bug on our side: keep the traceback.
            _LOGGER.warning(
                "Schedule sync of feeder %s failed (%s): %s; %s",
                self._name,
                stage,
                message,
                then,
                exc_info=err if stage == "plan" else None,
            )
        else:
            _LOGGER.debug(
                "Schedule sync of feeder %s failed again (%s): %s; %s",
                self._name,
                stage,
                message,
                then,
            )

    def _attempt_succeeded(self, generation: int, fingerprint: str) -> None:
        self._syncs_completed += 1
        self._retry_delay = self._retry_initial_s
        if self._failing:
            _LOGGER.info(
                "Schedule sync of feeder %s succeeded after earlier failures",
                self._name,
            )
        self._failing = False
        self._last_error = None
        if self._generation == generation:
            self._pending = False
        try:
            self._target.synced(fingerprint)
        except Exception:
            _LOGGER.exception(
                "Feeder %s: reporting a completed sync failed", self._name
            )
        self._notify()

    def _notify(self) -> None:
        """Report a pending/running change and wake idle waiters when idle."""
        state = (self._pending, self._run_token is not None)
        if state != self._reported and not self._stopped:
            self._reported = state
            try:
                self._target.state_changed()
            except Exception:
                _LOGGER.exception(
                    "Feeder %s: reporting a sync state change failed", self._name
                )
        if self._idle_waiters and self._is_idle():
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
