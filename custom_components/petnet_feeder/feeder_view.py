"""One feeder as entities and diagnostics read it: its record and what follows from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from homeassistant.util import dt as dt_util

from .feeder_actions import FeederActions
from .feeder_clock import FeederClock
from .meals import Meal, meal_target
from .models import Feeder
from .schedule_sync import ScheduleSync, uses_new_api
from .state import FeederState

# How long a delivery may take before the schedule counts as a problem: a normal one (a few
# commands, each after the last one's PUBACK or report) is done in seconds.
DELIVERY_GRACE = timedelta(minutes=1)


class FeederView:
    """Read-only: what is known about one feeder, derived on demand."""

    def __init__(
        self,
        feeder: Feeder,
        state: FeederState,
        clock: FeederClock,
        sync: ScheduleSync,
        actions: FeederActions,
    ) -> None:
        """Look at ``feeder`` through the parts that know about it."""
        self.feeder = feeder
        self._state = state
        self._clock = clock
        self._sync = sync
        self._actions = actions

    @property
    def online(self) -> bool:
        """Connected, or heard from in the last 120 s."""
        return self._state.is_online(self.feeder)

    @property
    def connected(self) -> bool:
        """Its gateway holds an MQTT session."""
        return self._state.is_connected(self.feeder.gateway_hid)

    @property
    def in_sync(self) -> bool:
        """It holds what HA has, and no sync is owed."""
        return self._sync.in_sync(self.feeder)

    @property
    def tomorrow_delivered(self) -> bool:
        """It holds tomorrow's meals already."""
        return self._sync.tomorrow_delivered(self.feeder)

    @property
    def next_day_at(self) -> datetime:
        """The next local midnight in its zone (UTC)."""
        local = self.now.astimezone(self.zone)
        return meal_target(local.date() + timedelta(days=1), 0, self.zone).astimezone(
            UTC
        )

    @property
    def delivery_late_at(self) -> datetime | None:
        """When the owed delivery is late; None when none is owed since a known time."""
        feeder = self.feeder
        if self.in_sync or not feeder.sync_pending or feeder.sync_owed_since is None:
            return None
        return datetime.fromtimestamp(feeder.sync_owed_since, UTC) + DELIVERY_GRACE

    @property
    def schedule_problem(self) -> bool:
        """The feeder may not hold HA's schedule, and no delivery is on its way in time.

        A delivery that is owed is a problem only once it is late, or while the feeder has
        no MQTT session (it cannot get it: a check-in over HTTP alone does not do); one that
        is running normally is not.
        """
        if self.in_sync:
            return False
        late_at = self.delivery_late_at
        return late_at is None or not self.connected or self.now >= late_at

    @property
    def uses_new_api(self) -> bool:
        """It gets the new schedule command family."""
        return uses_new_api(self.feeder)

    @property
    def zone(self) -> ZoneInfo:
        """The zone its meal times are in."""
        return self._clock.zone(self.feeder)

    @property
    def window(self) -> timedelta:
        """How far from its time a dispense counts as the meal."""
        return self._clock.window

    @property
    def now(self) -> datetime:
        """The current instant (UTC)."""
        return dt_util.utcnow()

    @property
    def next_meal(self) -> tuple[Meal, datetime] | None:
        """The next meal due and when."""
        return self._clock.next_meal(self.feeder)

    @property
    def manual_portion(self) -> float:
        """The portion Feed now dispenses."""
        return self._actions.manual_portion(self.feeder)
