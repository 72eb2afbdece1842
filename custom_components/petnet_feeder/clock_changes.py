"""The clocks change: what the feeder is sent around a daylight-saving change (§7.6).

The feeder knows only UTC plus the last offset it was sent. When the clocks go back, its wall
clock repeats a span, and meals in it would run twice; when they go forward, it jumps over a
span, and meals in it would never run. The sync that carries the new offset therefore holds
the meals of a repeated span back until it is over, and sends the meals of a skipped span at
its end; the minute check restores them afterwards. The new offset itself is sent a second
after the change, not up to a minute later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import logging

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time

from .feeder_clock import FeederClock
from .models import Feeder

_LOGGER = logging.getLogger(__name__)

# A meal held over a repeated span, or moved past a skipped one, is restored this long after.
HOLD_MARGIN = timedelta(minutes=1)
# How far ahead the minute check looks for a change of the offset, and how long after the
# change the new offset is sent (the change itself is a whole second).
CHANGE_LOOKAHEAD = timedelta(seconds=90)
CHANGE_DELAY = timedelta(seconds=1)


class ClockChanges:
    """Daylight-saving changes as the feeders must live through them."""

    def __init__(
        self,
        hass: HomeAssistant,
        clock: FeederClock,
        on_change: Callable[[str], None],
    ) -> None:
        """``on_change(feeder_hid)`` is called when a feeder's offset has just changed."""
        self._hass = hass
        self._clock = clock
        self._on_change = on_change
        # Per feeder, the timer that sends the new offset when the clocks change.
        self._timers: dict[str, CALLBACK_TYPE] = {}

    def adjust(self, feeder: Feeder, offset: int) -> None:
        """Before a sync that sends ``offset``: hold or move the meals a change affects."""
        self._hold_repeated_meals(feeder, offset)
        self._move_skipped_meals(feeder, offset)

    def release_due(self, feeder: Feeder, now_utc: datetime) -> list[int]:
        """Restore the meals whose hold or move is over; their ids."""
        at = now_utc.timestamp()
        released = [k for k, until in feeder.clock_holds.items() if until <= at]
        for meal_id in released:
            del feeder.clock_holds[meal_id]
        moved_back = [
            k for k, (_time_s, until) in feeder.clock_moves.items() if until <= at
        ]
        for meal_id in moved_back:
            del feeder.clock_moves[meal_id]
        return released + moved_back

    def watch(self, feeder: Feeder, now_utc: datetime) -> None:
        """Send the new offset at the instant the clocks change, not up to a minute later.

        A meal at the first minute after the change needs the new offset by then.
        """
        if feeder.hid in self._timers:
            return
        change = self._clock.change_within(feeder, now_utc, CHANGE_LOOKAHEAD)
        if change is None:
            return
        hid = feeder.hid

        @callback
        def changed(_now: datetime) -> None:
            self._timers.pop(hid, None)
            self._on_change(hid)

        self._timers[hid] = async_track_point_in_utc_time(
            self._hass, changed, change + CHANGE_DELAY
        )

    def forget(self, feeder_hid: str) -> None:
        """A feeder was removed."""
        if (cancel := self._timers.pop(feeder_hid, None)) is not None:
            cancel()

    def stop(self) -> None:
        """Cancel every timer."""
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()

    def _hold_repeated_meals(self, feeder: Feeder, offset: int) -> None:
        """The clocks went back: meals in the hour that comes again must not run again.

        The feeder knows only UTC plus the offset it was sent; with the new, smaller offset
        its wall clock repeats the hour (or half hour) just passed, and every meal in it
        would be dispensed a second time. Those meals go out inactive until the repeated
        span is over; the minute check then restores them.
        """
        sent = feeder.sent_utc_offset
        if sent is None or offset >= sent:
            return
        now_utc = datetime.now(UTC)
        change = self._clock.last_change(feeder, now_utc, timedelta(hours=25))
        if change is None or change[1] >= 0:
            return
        start, delta = change
        repeat = -delta
        end = start + timedelta(seconds=repeat)
        if now_utc >= end:
            return
        local_start = (int(start.timestamp()) + offset) % 86400
        until = (end + HOLD_MARGIN).timestamp()
        for meal in feeder.meals:
            if (meal.time_s - local_start) % 86400 < repeat:
                if meal.meal_id not in feeder.clock_holds:
                    _LOGGER.info(
                        "Feeder %s: %s held until the repeated hour is over (clocks went "
                        "back)",
                        feeder.hid,
                        meal.name,
                    )
                feeder.clock_holds.setdefault(meal.meal_id, until)

    def _move_skipped_meals(self, feeder: Feeder, offset: int) -> None:
        """The clocks went forward: meals whose time was jumped over run at its end.

        The feeder's wall clock jumps from the start of the gap to its end, so a meal inside
        never comes due. Until the jump is past, such meals are sent with the first minute
        after the gap as their time (where meals.meal_target puts them); the minute check
        then restores their own time.
        """
        sent = feeder.sent_utc_offset
        if sent is None or offset <= sent:
            return
        now_utc = datetime.now(UTC)
        change = self._clock.last_change(feeder, now_utc, timedelta(hours=25))
        if change is None or change[1] <= 0:
            return
        start, gap = change
        until = (start + self._clock.window + HOLD_MARGIN).timestamp()
        if now_utc.timestamp() >= until:
            return
        gap_start = (int(start.timestamp()) + sent) % 86400  # wall time, old offset
        gap_end = (gap_start + gap) % 86400
        for meal in feeder.meals:
            if (meal.time_s - gap_start) % 86400 < gap and meal.meal_id not in (
                feeder.clock_moves
            ):
                _LOGGER.info(
                    "Feeder %s: %s, whose time the clocks jumped over, runs at %02d:%02d",
                    feeder.hid,
                    meal.name,
                    gap_end // 3600,
                    gap_end // 60 % 60,
                )
                feeder.clock_moves[meal.meal_id] = (gap_end - gap_end % 60, until)
