"""Missed meals: noticed once, reported (event, repair issue, sync) and recovered once.

The simulated feeder runs its own schedule; it is told to skip a meal, as a feeder that lost
its schedule or jammed silently would. A scheduled dispense that fails is a repair too, not
only an event, and its fix tries once more. A meal due while Home Assistant was stopped is
unconfirmed, never missed.
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
    CONF_OFFLINE_ALERT_MINUTES,
    CONF_RETRY_FAILED,
    DOMAIN,
)
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.monitor import (
    failed_issue_id,
    missed_issue_id,
    offline_issue_id,
    zone_issue_id,
)

from .helpers.entities import entity_id, wait_for_entity
from .helpers.feeders import FeederFactory, device_id, wait_for_feeder
from .helpers.feeding import (
    AT_MORNING,
    BREAKFAST,
    BREAKFAST_TIME_S,
    CHICAGO,
    MISSED_AFTER_S,
    MORNING,
    add_breakfast,
    add_second_breakfast,
    advance,
    breakfast_feeder,
    chicago_feeder,
    commands_named,
    feeding_events,
    heartbeat,
    issue_updates,
    start_fix_flow,
    submit_fix_flow,
)
from .helpers.restart import restart, start_again, stop

LATE_MORNING = BREAKFAST + dt.timedelta(hours=3)  # 10:00 CDT


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps in these tests short."""
    return {CONF_GRACE_MINUTES: 1}


pytestmark = AT_MORNING

AUTO_FEED_MISSED = pytest.mark.parametrize(
    "entry_options", [{CONF_GRACE_MINUTES: 1, CONF_AUTO_FEED_MISSED: True}]
)
"""Run the test with missed meals fed automatically."""


@pytest.fixture
async def repairs_client(hass: HomeAssistant, hass_client: Any) -> Any:
    """An authenticated client of HA's HTTP API, with repairs and device removal loaded.

    Everything with routes is set up before the client starts HA's HTTP server (its routes
    are fixed then), the websocket API too.
    """
    for component in ("websocket_api", "repairs", "config"):
        assert await async_setup_component(hass, component, {})
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
        # 07:03:40: breakfast's one-minute window and the delivery slack passed, no dispense.
        await advance(hass, freezer, MISSED_AFTER_S, feeder)
        assert [e.event_type for e in events] == ["missed"]
        # The miss triggers one schedule sync.
        await feeder.wait_for_command("schedule_mod_end", since=start)
        await hub.sync.reconciler(dev).async_wait_idle()
        # Later checks find the same miss and report nothing new.
        await advance(hass, freezer, 60, feeder)
        hub.monitor.async_check_now()
        await hub.sync.reconciler(dev).async_wait_idle()
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


@AUTO_FEED_MISSED
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
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
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


async def test_replayed_result_keeps_the_issue_a_later_meal_clears_it(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    await add_second_breakfast(hass, hub, feeder)
    feeder.skip_meals = {BREAKFAST_TIME_S}
    events = feeding_events(hub, feeder)
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    assert missed_issue(hass, dev) is not None
    assert hub.state.feeders[dev].open_miss is not None

    # After a reconnect the feeder replays yesterday's breakfast: stored, but it is not
    # today's breakfast, nor a later meal.
    yesterday = BREAKFAST - dt.timedelta(days=1)
    await feeder.send_feed_result(stime=int(yesterday.timestamp()), portion=0.25, src=6)
    freezer.tick(1)
    await heartbeat(hub, feeder)
    assert [row.result.start_ms for row in hub.state.feeders[dev].history] == [
        int(yesterday.timestamp() * 1000)
    ]
    assert missed_issue(hass, dev) is not None

    # The feeder dispenses the 07:05 meal by itself: a later meal, so the issue clears.
    await advance(hass, freezer, 5 * 60, feeder)
    assert [e.event_type for e in events] == ["missed", "scheduled"]
    assert events[-1].attributes["meal_name"] == "Second breakfast"
    assert missed_issue(hass, dev) is None
    assert hub.state.feeders[dev].open_miss is None


async def test_a_later_miss_takes_over_the_issue(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    repairs_client: Any,
) -> None:
    """One issue per feeder: it names the latest missed meal, and its fix feeds that one."""
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    await add_second_breakfast(hass, hub, feeder)
    feeder.skip_meals = {BREAKFAST_TIME_S, BREAKFAST_TIME_S + 5 * 60}
    events = feeding_events(hub, feeder)
    start = len(feeder.commands)
    with issue_updates(hass) as updates:
        await advance(hass, freezer, MISSED_AFTER_S, feeder)
        issue = missed_issue(hass, dev)
        assert issue is not None
        assert issue.translation_placeholders["meal"] == "Breakfast"
        await advance(hass, freezer, 5 * 60, feeder)  # 07:08:40
    assert [e.attributes["meal_name"] for e in events] == [
        "Breakfast",
        "Second breakfast",
    ]
    assert updates == [
        ("create", missed_issue_id(dev)),
        ("update", missed_issue_id(dev)),
    ]
    issue = missed_issue(hass, dev)
    assert issue is not None
    assert issue.translation_placeholders["meal"] == "Second breakfast"
    assert issue.translation_placeholders["time"] == "07:05"
    assert issue.data is not None
    assert issue.data["portion"] == 0.125
    assert dt.datetime.fromisoformat(
        str(issue.data["scheduled"])
    ) == BREAKFAST + dt.timedelta(minutes=5)

    form = await start_fix_flow(repairs_client, missed_issue_id(dev))
    done = await submit_fix_flow(repairs_client, form["flow_id"])
    assert done["type"] == "create_entry"
    await feeder.wait_for_command("feed", since=start)
    assert commands_named(feeder, "feed", start) == [{"portion": 0.125}]
    assert missed_issue(hass, dev) is None


async def test_missed_issue_is_raised_again_after_a_restart(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    repairs_client: Any,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.skip_meals = {BREAKFAST_TIME_S}
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    before = missed_issue(hass, dev)
    assert before is not None

    await stop(hass, hub)
    # HA restarts: its issue registry is read back from disk, where an issue that is not
    # persistent keeps nothing but whether it was ignored.
    registry = ir.async_get(hass)
    await registry._store.async_save(registry._data_to_save())
    await registry.async_load()
    reloaded = missed_issue(hass, dev)
    assert reloaded is not None
    assert not reloaded.active
    hub = await start_again(hass, hub)

    issue = missed_issue(hass, dev)
    assert issue is not None
    assert issue.active
    assert issue.translation_key == before.translation_key
    assert issue.translation_placeholders == before.translation_placeholders
    assert issue.data == before.data

    # The feeder has not reconnected yet: the fix says so and can be tried again.
    form = await start_fix_flow(repairs_client, missed_issue_id(dev))
    offline = await submit_fix_flow(repairs_client, form["flow_id"])
    assert (offline["type"], offline["reason"]) == ("abort", "feeder_offline")
    assert missed_issue(hass, dev) is not None

    start = len(feeder.commands)
    await feeder.connect()
    freezer.tick(1)
    await heartbeat(hub, feeder)
    form = await start_fix_flow(repairs_client, missed_issue_id(dev))
    done = await submit_fix_flow(repairs_client, form["flow_id"])
    assert done["type"] == "create_entry"
    await feeder.wait_for_command("feed", since=start)
    assert commands_named(feeder, "feed", start) == [{"portion": 0.25}]
    assert missed_issue(hass, dev) is None
    assert hub.state.feeders[dev].open_miss is None


@pytest.mark.parametrize(
    "entry_options", [{CONF_GRACE_MINUTES: 1, CONF_OFFLINE_ALERT_MINUTES: 5}]
)
async def test_removing_the_feeder_deletes_its_issues(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    repairs_client: Any,
    hass_ws_client: Any,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.skip_meals = {BREAKFAST_TIME_S}
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    assert missed_issue(hass, dev) is not None
    form = await start_fix_flow(repairs_client, missed_issue_id(dev))  # left open
    await feeder.disconnect()
    freezer.tick(6 * 60)  # nobody is connected: a jump is fine
    hub.monitor.async_check_now()
    assert ir.async_get(hass).async_get_issue(DOMAIN, offline_issue_id(dev))

    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": hub.entry.entry_id,
            "device_id": device_id(hass, feeder),
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    assert dev not in hub.state.feeders
    assert missed_issue(hass, dev) is None
    assert ir.async_get(hass).async_get_issue(DOMAIN, offline_issue_id(dev)) is None

    # The repair that was still open cannot feed a feeder that is gone, and says why.
    outcome = await submit_fix_flow(repairs_client, form["flow_id"])
    assert (outcome["type"], outcome["reason"]) == ("abort", "cannot_feed")
    assert outcome["description_placeholders"]["error"]


@pytest.mark.freeze_time(LATE_MORNING.isoformat(), real_asyncio=True)
@AUTO_FEED_MISSED
async def test_meal_added_after_its_time_is_not_missed_today(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """At 10:00 a meal for 07:00 is added: today's 07:00 was never due, tomorrow's is."""
    feeder = await chicago_feeder(hass, make_feeder)
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
    await hub.sync.reconciler(dev).async_wait_idle()
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    await feeder.wait_for_command("feed", since=start)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert commands_named(feeder, "feed", start) == [{"portion": 0.25}]
    assert [event.event_type for event in events] == ["missed", "manual"]
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
    feeder = await chicago_feeder(hass, make_feeder)
    dev = feeder.device_hid
    await add_breakfast(hass, hub, feeder)
    since = hub.state.feeders[dev].meal_since
    assert list(since.values()) == [LATE_MORNING.timestamp()]

    hub = await restart(hass, hub)
    assert hub.state.feeders[dev].meal_since == since
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


async def test_an_unknown_time_zone_is_a_repair_never_a_silent_utc(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feeder = await make_feeder()
    stored = hub.state.feeders[feeder.device_hid]
    registry = ir.async_get(hass)
    issue_id = zone_issue_id(feeder.device_hid)
    hub.monitor.async_check_now()
    assert registry.async_get_issue(DOMAIN, issue_id) is None

    stored.time_zone = "Mars/Olympus_Mons"  # stored before tzdata dropped it, say
    hub.monitor.async_check_now()
    hub.monitor.async_check_now()
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "time_zone_unknown"
    assert issue.translation_placeholders == {
        "feeder": stored.display_name,
        "zone": "Mars/Olympus_Mons",
    }
    assert caplog.text.count("time zone 'Mars/Olympus_Mons' is unknown") == 1

    hub.meal_editor.set_time_zone(stored, CHICAGO)
    hub.monitor.async_check_now()
    assert registry.async_get_issue(DOMAIN, issue_id) is None


async def test_a_failed_meal_is_a_repair_whose_fix_tries_once_more(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    repairs_client: Any,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.fail_meals = {BREAKFAST_TIME_S: "motor jam"}
    events = feeding_events(hub, feeder)
    start = len(feeder.commands)
    await advance(hass, freezer, 90, feeder)  # 07:01: breakfast was tried and failed
    assert [e.event_type for e in events] == ["failed"]
    registry = ir.async_get(hass)
    issue = registry.async_get_issue(DOMAIN, failed_issue_id(dev))
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "failed_dispense"
    assert issue.translation_placeholders == {
        "feeder": "SmartFeeder 73737D",
        "meal": "Breakfast",
        "time": "07:00",
        "error": "motor jam",
        "expected": "32.0 g",
        "measured": "0.0 g",
    }
    # A failed meal is not a missed one: no second alarm for the same breakfast.
    await advance(hass, freezer, 5 * 60, feeder)
    assert registry.async_get_issue(DOMAIN, missed_issue_id(dev)) is None

    # Opened twice, submitted twice: one more try, no more.
    first = await start_fix_flow(repairs_client, failed_issue_id(dev))
    second = await start_fix_flow(repairs_client, failed_issue_id(dev))
    assert (first["type"], first["step_id"]) == ("form", "confirm")
    done = await submit_fix_flow(repairs_client, first["flow_id"])
    assert done["type"] == "create_entry"
    again = await submit_fix_flow(repairs_client, second["flow_id"])
    assert (again["type"], again["reason"]) == ("abort", "already_fed")
    await feeder.wait_for_command("feed", since=start)
    assert commands_named(feeder, "feed", start) == [{"portion": 0.25}]
    assert registry.async_get_issue(DOMAIN, failed_issue_id(dev)) is None


@pytest.mark.parametrize(
    "entry_options", [{CONF_GRACE_MINUTES: 1, CONF_RETRY_FAILED: True}]
)
async def test_a_failed_meal_is_retried_once_automatically_with_the_option(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.fail_meals = {BREAKFAST_TIME_S: "motor jam"}
    start = len(feeder.commands)
    # 07:00: tried and failed; the minute check after it tries once more.
    await advance(hass, freezer, 30, feeder)
    await feeder.wait_for_command("feed", since=start)
    await advance(hass, freezer, 10 * 60, feeder)
    assert commands_named(feeder, "feed", start) == [{"portion": 0.25}]
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, failed_issue_id(dev)) is None
    assert registry.async_get_issue(DOMAIN, missed_issue_id(dev)) is None


async def test_a_later_meal_dispensed_clears_the_failure(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.fail_meals = {BREAKFAST_TIME_S: "hopper empty"}
    await advance(hass, freezer, 90, feeder)
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, failed_issue_id(dev)) is not None
    # The owner fixed the hopper; the next day's breakfast goes through.
    feeder.fail_meals = {}
    await feeder.disconnect()
    freezer.move_to(
        MORNING + dt.timedelta(days=1)
    )  # nobody is connected: a jump is fine
    await feeder.connect()
    await heartbeat(hub, feeder)
    await hub.sync.reconciler(dev).async_wait_idle()
    await advance(hass, freezer, 90, feeder)
    assert registry.async_get_issue(DOMAIN, failed_issue_id(dev)) is None


@AUTO_FEED_MISSED
async def test_a_meal_due_while_home_assistant_was_stopped_is_unconfirmed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """Home Assistant stopped over the meal: unconfirmed, never missed, never fed again.

    The broker runs inside Home Assistant: while it is stopped, nothing the feeder sends can
    arrive. A meal due then may well have been dispensed. Automatic feeding is on: an
    unconfirmed meal must still never be fed again.
    """
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    start = len(feeder.commands)
    await stop(hass, hub)  # HA stops at 06:59:30
    await feeder.disconnect()
    # 07:00: the feeder dispenses breakfast on its own clock; nobody can hear it.
    freezer.move_to(BREAKFAST + dt.timedelta(minutes=10))
    hub = await start_again(hass, hub)
    await feeder.connect()
    await heartbeat(hub, feeder)
    events = feeding_events(hub, feeder)
    hub.monitor.async_check_now()
    await hass.async_block_till_done(wait_background_tasks=True)

    assert events == []
    assert ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev)) is None
    assert commands_named(feeder, "feed", start) == []
    status = entity_id(hass, "sensor", dev, "last_meal_status")
    assert hass.states.get(status).state == "unconfirmed"

    # The feeder replays what it could not send: breakfast was dispensed after all.
    await feeder.send_feed_result(
        stime=int(BREAKFAST.timestamp()) + 2, portion=0.25, src=6
    )
    await wait_for_feeder(hub, dev, lambda f: len(f.history) == 1)
    await hass.async_block_till_done()
    assert hass.states.get(status).state == "dispensed"
