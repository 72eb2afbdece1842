"""What the feeding tests share.

A 07:00 breakfast in Chicago, a frozen wall clock, a feeder that runs its own schedule,
and repairs driven as the frontend drives them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
import contextlib
import datetime as dt
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.ledger import MealLedger
from custom_components.petnet_feeder.meals import DELIVERY_SLACK
from custom_components.petnet_feeder.models import Feeder
from custom_components.petnet_feeder.monitor import FeedingEvent
from feeder_sim import SimulatedFeeder

from .calendar import get_events
from .entities import wait_for_entity
from .feeders import FeederFactory, device_id, wait_for_feeder

# Breakfast (07:00, a one-minute grace period in these tests) is missed once its window and the
# delivery slack after it have passed: 40 s later than that, at 07:03:40.
MISSED_AFTER_S = 60 + int(DELIVERY_SLACK.total_seconds()) + 40
CHICAGO = "America/Chicago"
BREAKFAST = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)  # 07:00 CDT
BREAKFAST_TIME_S = 7 * 3600  # breakfast's event "time" on the feeder
# Half a minute before breakfast.
MORNING = BREAKFAST - dt.timedelta(seconds=30)
AT_MORNING = pytest.mark.freeze_time(MORNING.isoformat(), real_asyncio=True)
"""Freeze the wall clock at MORNING (the ``morning`` fixture moves it); the event loop's
clock is not frozen, so sessions keep their keep-alive."""


def current_hub(hass: HomeAssistant) -> PetnetHub:
    """The hub of the loaded entry now (a new one after each ``restart``; see the ``hub`` fixture)."""
    hub: PetnetHub = hass.config_entries.async_loaded_entries(DOMAIN)[0].runtime_data
    return hub


async def advance(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    seconds: int,
    feeder: SimulatedFeeder | None = None,
) -> None:
    """Move the clock in short steps, as the feeder and the minute check live through them.

    After each step a connected feeder runs its schedule on its own clock (UTC plus the
    offset it was sent) and sends a heartbeat; once the hub has handled that heartbeat (so
    every result before it too), the minute check runs as its timer would, and a sync it
    asked for is delivered. HA's event loop follows the frozen clock, so a long jump would
    look like a silent feeder to the broker's keep-alive.
    """
    while seconds > 0:
        step = min(seconds, 30)
        seconds -= step
        freezer.tick(step)
        hub = current_hub(hass)
        if feeder is not None and feeder.connected:
            await feeder.run_due_meals(dt_util.utcnow())
            await heartbeat(hub, feeder)
        hub.monitor.async_check_now()
        await hass.async_block_till_done()
        if feeder is not None and feeder.device_hid in hub.state.feeders:
            # A sync the check asked for is delivered before the clock moves on: a jump while
            # a command waits for its PUBACK would time the command out.
            await hub.sync.reconciler(feeder.device_hid).async_wait_idle()


async def heartbeat(hub: PetnetHub, feeder: SimulatedFeeder) -> None:
    """Send a heartbeat and wait until the hub handled it (and what the feeder sent before)."""
    before = hub.state.feeders[feeder.device_hid].last_heartbeat
    now = dt_util.utcnow().timestamp()
    # The hub stamps a heartbeat with the (frozen) clock: a new stamp needs a moved clock.
    assert before is None or before < now, "move the clock between heartbeats"
    await feeder.send_heartbeat()
    await wait_for_feeder(
        hub,
        feeder.device_hid,
        lambda f: f.last_heartbeat is not None and f.last_heartbeat >= now,
    )


async def add_meal(
    hass: HomeAssistant,
    hub: PetnetHub,
    feeder: SimulatedFeeder,
    *,
    name: str,
    time: str,
    portion: float,
) -> None:
    """Add a daily meal with the action and wait until the feeder holds it.

    An edit is delivered after a debounce timer, and HA's loop follows the frozen clock, on
    which no timer comes due (at an epoch-sized monotonic time not even one due now). So the
    test then asks for the sync at once, as the *Sync schedule* button does.
    """
    start = len(feeder.commands)
    target = {"device_id": device_id(hass, feeder)}
    await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {**target, "name": name, "time": time, "portion": portion},
        blocking=True,
    )
    await hass.services.async_call(DOMAIN, "sync_schedule", target, blocking=True)
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()


async def add_breakfast(
    hass: HomeAssistant, hub: PetnetHub, feeder: SimulatedFeeder
) -> None:
    """Add a daily 07:00 breakfast of 1/4 cup and wait until the feeder holds it."""
    await add_meal(hass, hub, feeder, name="Breakfast", time="07:00", portion=0.25)


async def add_second_breakfast(
    hass: HomeAssistant, hub: PetnetHub, feeder: SimulatedFeeder
) -> None:
    """Add a daily 07:05 second breakfast of 1/8 cup and wait until the feeder holds it."""
    await add_meal(
        hass, hub, feeder, name="Second breakfast", time="07:05", portion=0.125
    )


async def breakfast_feeder(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> SimulatedFeeder:
    """HA in Chicago, and a feeder that holds a 07:00 breakfast."""
    feeder = await chicago_feeder(hass, make_feeder)
    await add_breakfast(hass, hub, feeder)
    return feeder


def feeding_events(hub: PetnetHub, feeder: SimulatedFeeder) -> list[FeedingEvent]:
    """Every feeding event of the feeder from now on, in order."""
    events: list[FeedingEvent] = []
    hub.monitor.async_subscribe(feeder.device_hid, events.append)
    return events


@contextlib.contextmanager
def issue_updates(hass: HomeAssistant) -> Iterator[list[tuple[str, str]]]:
    """Record (action, issue id) of every change to this integration's repair issues."""
    seen: list[tuple[str, str]] = []

    @callback
    def record(event: Event[ir.EventIssueRegistryUpdatedData]) -> None:
        if event.data["domain"] == DOMAIN:
            seen.append((event.data["action"], event.data["issue_id"]))

    unsub = hass.bus.async_listen(ir.EVENT_REPAIRS_ISSUE_REGISTRY_UPDATED, record)
    try:
        yield seen
    finally:
        unsub()


def commands_named(feeder: SimulatedFeeder, name: str, since: int) -> list[Any]:
    """Payloads of the commands with this name the feeder received since an index."""
    return [c.payload for c in feeder.commands[since:] if c.command == name]


async def start_fix_flow(client: Any, issue_id: str) -> dict[str, Any]:
    """Open a repair's fix flow as the frontend does; return the first step."""
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def submit_fix_flow(client: Any, flow_id: str) -> dict[str, Any]:
    """Submit a fix flow's form as the frontend does; return the outcome."""
    response = await client.post(f"/api/repairs/issues/fix/{flow_id}", json={})
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def feed_history(hass: HomeAssistant, feeder: SimulatedFeeder) -> dict[str, Any]:
    """The feeder's feed history as the get_feed_history action returns it."""
    response = await hass.services.async_call(
        DOMAIN,
        "get_feed_history",
        {"device_id": device_id(hass, feeder)},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def chicago_feeder(
    hass: HomeAssistant, make_feeder: FeederFactory
) -> SimulatedFeeder:
    """HA in Chicago, and a feeder booted there."""
    await hass.config.async_set_time_zone(CHICAGO)
    return await make_feeder()


def meals_existed_since(
    stored: Feeder, moment: dt.datetime, meal_ids: Iterable[int] | None = None
) -> None:
    """Let the feeder's meals (or those named) count as planned since ``moment``.

    The meals were set just now; this rewinds the ledger and the meals' start to ``moment``,
    so that their occurrences since then exist (until the next edit or result records them)
    and results from then are credited.
    """
    since = moment.timestamp()
    for meal in stored.meals:
        if meal_ids is None or meal.meal_id in meal_ids:
            stored.meal_since[meal.meal_id] = since
    stored.ledger = MealLedger(recorded_until=since)


# The day of MORNING in Chicago, as the calendar's get_events takes it.
TODAY = ("2024-06-01T00:00:00-05:00", "2024-06-02T00:00:00-05:00")


async def meal_events_today(
    hass: HomeAssistant, feeder: SimulatedFeeder
) -> list[dict[str, Any]]:
    """The feeder's meal calendar events of the day of MORNING."""
    calendar = await wait_for_entity(hass, "calendar", feeder.device_hid, "meals")
    return await get_events(hass, calendar, *TODAY)
