"""Missed meals: noticed once, reported (event, repair issue, sync) and recovered once.

The simulated feeder runs its own schedule; it is told to skip a meal, as a feeder that lost
its schedule or jammed silently would.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from custom_components.petnet_feeder.const import (
    CONF_AUTO_FEED_MISSED,
    CONF_GRACE_MINUTES,
    DOMAIN,
)
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.monitor import missed_issue_id

from .conftest import FeederFactory, entity_id, wait_for_entity
from .feeding_support import (
    BREAKFAST,
    BREAKFAST_TIME_S,
    CHICAGO,
    MORNING,
    add_breakfast,
    advance,
    breakfast_feeder,
    commands_named,
    feeding_events,
    heartbeat,
    issue_updates,
    restart,
    start_fix_flow,
    submit_fix_flow,
)

LATE_MORNING = BREAKFAST + dt.timedelta(hours=3)  # 10:00 CDT


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps in these tests short."""
    return {CONF_GRACE_MINUTES: 1}


# The wall clock is frozen, the event loop's clock is not: sessions keep their keep-alive.
pytestmark = pytest.mark.freeze_time(MORNING.isoformat(), real_asyncio=True)


@pytest.fixture
async def repairs_client(hass: HomeAssistant, hass_client: Any) -> Any:
    """An authenticated client of HA's HTTP API with the repairs component loaded."""
    assert await async_setup_component(hass, "repairs", {})
    return await hass_client()


def missed_issue(hass: HomeAssistant, feeder_hid: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(feeder_hid))


async def test_skipped_meal_is_missed_once_and_fixed_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    repairs_client: Any,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.skip_meals = {BREAKFAST_TIME_S}
    events = feeding_events(hub, feeder)
    event = await wait_for_entity(hass, "event", dev, "feeding")
    start = len(feeder.commands)
    with issue_updates(hass) as updates:
        # 07:01:10: breakfast's one-minute window closed without a dispense.
        await advance(hass, freezer, 100, feeder)
        assert [e.event_type for e in events] == ["missed"]
        # The miss triggers one schedule sync.
        await feeder.wait_for_command("schedule_mod_end", since=start)
        await hub.schedules.reconciler(dev).async_wait_idle()
        # Later checks find the same miss and report nothing new.
        await advance(hass, freezer, 60, feeder)
        hub.monitor.async_check_now()
        await hub.schedules.reconciler(dev).async_wait_idle()
    assert [e.event_type for e in events] == ["missed"]
    assert updates == [("create", missed_issue_id(dev))]
    assert len(commands_named(feeder, "schedule_mod_end", start)) == 1
    assert commands_named(feeder, "feed", start) == []  # automatic feeding is off
    state = hass.states.get(event)
    assert state.attributes["event_type"] == "missed"
    assert state.attributes["meal_name"] == "Breakfast"
    assert dt.datetime.fromisoformat(state.attributes["scheduled"]) == BREAKFAST
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "last_meal_status")).state
        == "missed"
    )
    issue = missed_issue(hass, dev)
    assert issue is not None
    assert issue.translation_key == "missed_meal_online"
    assert issue.translation_placeholders == {
        "feeder": "SmartFeeder 73737D",
        "meal": "Breakfast",
        "time": "07:00",
    }
    assert issue.is_fixable

    # The repair is opened twice (two browser tabs) and submitted in both: one feed.
    first = await start_fix_flow(repairs_client, missed_issue_id(dev))
    second = await start_fix_flow(repairs_client, missed_issue_id(dev))
    assert (first["type"], first["step_id"]) == ("form", "confirm")
    assert (second["type"], second["step_id"]) == ("form", "confirm")
    assert (await submit_fix_flow(repairs_client, first["flow_id"]))[
        "type"
    ] == "create_entry"
    again = await submit_fix_flow(repairs_client, second["flow_id"])
    assert (again["type"], again["reason"]) == ("abort", "already_fed")
    await feeder.wait_for_command("feed", since=start)
    freezer.tick(1)
    await heartbeat(hub, feeder)  # the feeder's report of that feed has arrived
    await hass.async_block_till_done(wait_background_tasks=True)
    assert commands_named(feeder, "feed", start) == [{"portion": 0.25}]
    assert [e.event_type for e in events] == ["missed", "manual"]
    assert missed_issue(hass, dev) is None


@pytest.mark.parametrize(
    "entry_options", [{CONF_GRACE_MINUTES: 1, CONF_AUTO_FEED_MISSED: True}]
)
async def test_auto_feed_feeds_once_even_if_the_check_runs_twice(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    assert hub.settings.auto_feed_missed
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.skip_next_meal = True
    events = feeding_events(hub, feeder)
    start = len(feeder.commands)
    await advance(hass, freezer, 100, feeder)
    hub.monitor.async_check_now()
    hub.monitor.async_check_now()
    await feeder.wait_for_command("feed", since=start)
    await hass.async_block_till_done(wait_background_tasks=True)
    await advance(hass, freezer, 60, feeder)  # more checks; the feed's result arrives
    await hass.async_block_till_done(wait_background_tasks=True)
    assert commands_named(feeder, "feed", start) == [{"portion": 0.25}]
    assert [e.event_type for e in events] == ["missed", "manual"]
    # Fed: nothing is left to repair.
    assert missed_issue(hass, dev) is None


async def test_dispensed_meal_clears_missed_issue(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    feeder.skip_meals = {BREAKFAST_TIME_S}
    await advance(hass, freezer, 100, feeder)
    assert missed_issue(hass, feeder.device_hid) is not None
    # The next breakfast is dispensed (reported without moving the clock a whole day).
    await feeder.send_feed_result(
        stime=int(BREAKFAST.timestamp()) + 86400, portion=0.25, src=6
    )
    freezer.tick(1)
    await heartbeat(hub, feeder)
    assert missed_issue(hass, feeder.device_hid) is None


@pytest.mark.freeze_time(LATE_MORNING.isoformat(), real_asyncio=True)
@pytest.mark.parametrize(
    "entry_options", [{CONF_GRACE_MINUTES: 1, CONF_AUTO_FEED_MISSED: True}]
)
async def test_meal_added_after_its_time_is_not_missed_today(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """At 10:00 a meal for 07:00 is added: today's 07:00 was never due, tomorrow's is."""
    await hass.config.async_set_time_zone(CHICAGO)
    feeder = await make_feeder()
    dev = feeder.device_hid
    events = feeding_events(hub, feeder)
    start = len(feeder.commands)
    await add_breakfast(hass, hub, feeder)
    await advance(hass, freezer, 120, feeder)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert events == []
    assert missed_issue(hass, dev) is None
    assert commands_named(feeder, "feed", start) == []
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "meals_planned_today")).state
        == "0"
    )

    # Tomorrow's breakfast is due like any other: the feeder skips it, it is missed and fed.
    feeder.skip_meals = {BREAKFAST_TIME_S}
    await feeder.disconnect()
    freezer.move_to(
        MORNING + dt.timedelta(days=1)
    )  # nobody is connected: a jump is fine
    await feeder.connect()
    await heartbeat(hub, feeder)
    await hub.schedules.reconciler(dev).async_wait_idle()
    await advance(hass, freezer, 100, feeder)
    await feeder.wait_for_command("feed", since=start)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert commands_named(feeder, "feed", start) == [{"portion": 0.25}]
    assert [event.event_type for event in events] == ["missed"]
    assert dt.datetime.fromisoformat(
        events[0].attributes["scheduled"]
    ) == BREAKFAST + dt.timedelta(days=1)


@pytest.mark.freeze_time(LATE_MORNING.isoformat(), real_asyncio=True)
async def test_late_added_meal_is_still_not_due_after_a_restart(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    await hass.config.async_set_time_zone(CHICAGO)
    feeder = await make_feeder()
    dev = feeder.device_hid
    await add_breakfast(hass, hub, feeder)
    since = hub.feeders[dev].meal_since
    assert list(since.values()) == [LATE_MORNING.timestamp()]

    hub = await restart(hass, hub)
    assert hub.feeders[dev].meal_since == since
    events = feeding_events(hub, feeder)
    freezer.tick(60)
    hub.monitor.async_check_now()
    await hass.async_block_till_done()
    assert events == []
    assert missed_issue(hass, dev) is None
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "meals_planned_today")).state
        == "0"
    )
