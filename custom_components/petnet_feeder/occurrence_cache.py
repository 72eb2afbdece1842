"""Meal occurrences computed once for as long as nothing they depend on changes.

Every write of a feeder's entities asks for its meal occurrences (the calendar's current event,
today's meals and grams), and a feeder that reboots causes several writes: in a reboot storm
computing them cost more than the feeders' TLS handshakes. ``occurrences`` here gives exactly
what ``ledger.occurrences`` gives, and computes it once per set of inputs while the current time
stays between the same two of the instants where a state can change.

Why that is exact: an occurrence's meal, target and result follow from the inputs alone (the
ledger's open entries are part of the key, its settled ones never change), and the occurrences
in a range are those whose target lies in it; only the state of an occurrence without a result
depends on ``now``: UPCOMING before its target, DUE until ``target + window + DELIVERY_SLACK``,
then MISSED or UNCONFIRMED (which of the two follows from the inputs). Skips and pauses are
given as ``marks``, a value that changes whenever they do. So the answer is the same for every
``now`` between two consecutive such instants. The range is widened to whole UTC days, one on each side, so that
calls whose range moves with the clock (the calendar's "now and the next two days") share one
computation; the answer is then cut to the range asked for. Pure: no Home Assistant import.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from . import ledger
from .ledger import MealLedger, WasSkipped
from .meals import DELIVERY_SLACK, Meal, MealOccurrence, MealState
from .protocol.messages import FeedResult

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_DAY_MS: Final = 86_400_000
_LIMIT: Final = 2048  # answers kept (a few per feeder)
# States that no longer change with the clock.
_SETTLED: Final = frozenset({MealState.DISABLED, MealState.SKIPPED, MealState.PAUSED})

type _Key = tuple[object, ...]


class _Answer:
    """One computation: its occurrences with their targets, and the span of ``now`` it holds."""

    __slots__ = ("found", "since_ms", "until_ms")

    def __init__(
        self, found: list[tuple[int, MealOccurrence]], since_ms: float, until_ms: float
    ) -> None:
        self.found = found
        self.since_ms = since_ms
        self.until_ms = until_ms


_answers: OrderedDict[_Key, _Answer] = OrderedDict()


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_MS


def _ledger_key(book: MealLedger, now: datetime, tz: ZoneInfo) -> _Key:
    """What of the ledger a read depends on: its cursor and its open entries."""
    return (
        id(book),
        book.recorded_until,
        # Without a cursor the ledger starts two local days before today.
        now.astimezone(tz).date() if book.recorded_until is None else None,
        len(book.entries),
        tuple(
            (
                entry.meal_id,
                entry.target_s,
                entry.skipped,
                entry.paused,
                None if entry.result is None else entry.result.start_ms,
            )
            for entry in book.entries
            if not entry.final
        ),
    )


def occurrences(
    book: MealLedger,
    meal_list: Iterable[Meal],
    results: Iterable[FeedResult],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    now: datetime,
    window: timedelta,
    *,
    since: Mapping[int, float] | None,
    unheard: Sequence[tuple[float, float]],
    was_skipped: WasSkipped,
    was_paused: WasSkipped,
    marks: Hashable,
    include_disabled: bool = False,
) -> list[MealOccurrence]:
    """What ``ledger.occurrences`` returns for these arguments, computed at most once."""
    start_ms, end_ms = _ms(start), _ms(end)
    if end_ms <= start_ms:
        return []
    first_ms = (start_ms // _DAY_MS - 1) * _DAY_MS
    last_ms = (-(-end_ms // _DAY_MS) + 1) * _DAY_MS
    meal_tuple = tuple(meal_list)
    result_tuple = tuple(results)
    key: _Key = (
        _ledger_key(book, now, tz),
        meal_tuple,
        result_tuple,
        first_ms,
        last_ms,
        tz,
        window,
        None if since is None else tuple(sorted(since.items())),
        tuple((span[0], span[1]) for span in unheard),  # stored as lists
        marks,
        include_disabled,
    )
    now_ms = _ms(now)
    answer = _answers.get(key)
    if answer is None or not answer.since_ms <= now_ms < answer.until_ms:
        found = ledger.occurrences(
            book,
            meal_tuple,
            result_tuple,
            _EPOCH + first_ms * _ONE_MS,
            _EPOCH + last_ms * _ONE_MS,
            tz,
            now,
            window,
            since=since,
            unheard=unheard,
            was_skipped=was_skipped,
            was_paused=was_paused,
            include_disabled=include_disabled,
        )
        answer = _answer(found, now_ms, window)
        _answers[key] = answer
        while len(_answers) > _LIMIT:
            _answers.popitem(last=False)
    _answers.move_to_end(key)
    return [
        occurrence
        for target_ms, occurrence in answer.found
        if start_ms <= target_ms < end_ms
    ]


def _answer(found: list[MealOccurrence], now_ms: int, window: timedelta) -> _Answer:
    """The occurrences, and the instants around ``now_ms`` where one of their states changes."""
    late_ms = window // _ONE_MS + DELIVERY_SLACK // _ONE_MS
    since_ms: float = float("-inf")
    until_ms: float = float("inf")
    with_targets = []
    for occurrence in found:
        target_ms = _ms(occurrence.target)
        with_targets.append((target_ms, occurrence))
        if occurrence.result is not None or occurrence.state in _SETTLED:
            continue
        # UPCOMING -> DUE at the target; DUE -> MISSED or UNCONFIRMED just after the slack.
        for change_ms in (target_ms, target_ms + late_ms + 1):
            if change_ms <= now_ms:
                since_ms = max(since_ms, change_ms)
            else:
                until_ms = min(until_ms, change_ms)
    return _Answer(with_targets, since_ms, until_ms)


def clear() -> None:
    """Forget every answer (tests)."""
    _answers.clear()
