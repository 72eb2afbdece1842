"""Was my pet fed? Events, today's totals, hopper, missed meals and their recovery."""

from __future__ import annotations

import datetime as dt
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder.const import (
    CONF_AUTO_FEED_MISSED,
    CONF_GRACE_MINUTES,
    DOMAIN,
)
from custom_components.petnet_feeder.diagnostics import (
    async_get_config_entry_diagnostics,
    async_get_device_diagnostics,
)
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.monitor import missed_issue_id, offline_issue_id
from custom_components.petnet_feeder.repairs import async_create_fix_flow
from feeder_sim import SimulatedFeeder

from .conftest import (
    FeederFactory,
    entity_id,
    wait_for_entity,
    wait_for_feeder,
    wait_for_state,
)

CHICAGO = "America/Chicago"
BREAKFAST = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)  # 07:00 CDT
# Half a minute before breakfast.
MORNING = BREAKFAST - dt.timedelta(seconds=30)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps in these tests short."""
    return {CONF_GRACE_MINUTES: 1}


# The wall clock is frozen, the event loop's clock is not: sessions keep their keep-alive.
pytestmark = pytest.mark.freeze_time(MORNING.isoformat(), real_asyncio=True)


@pytest.fixture
def morning(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """The frozen wall clock, half a minute before breakfast."""
    return freezer


async def advance(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    seconds: int,
    feeder: SimulatedFeeder | None = None,
) -> None:
    """Move the clock in short steps and run the minute check, as its timer would.

    HA's event loop follows the frozen clock, so a long jump would look like a silent feeder to
    the broker's keep-alive; the feeder sends a heartbeat after every step.
    """
    hub = hass.config_entries.async_loaded_entries(DOMAIN)[0].runtime_data
    while seconds > 0:
        step = min(seconds, 30)
        seconds -= step
        freezer.tick(step)
        if feeder is not None and feeder.connected:
            await feeder.send_heartbeat()
        hub.monitor.async_check_now()
        await hass.async_block_till_done()


def device_id(hass: HomeAssistant, feeder: SimulatedFeeder) -> str:
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, feeder.device_hid)}
    )
    assert device is not None
    return device.id


async def restart(hass: HomeAssistant, hub: PetnetHub) -> PetnetHub:
    """Unload the entry and set it up again on the same storage, as after an HA restart."""
    entry = hub.entry
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    restarted: PetnetHub = entry.runtime_data
    assert restarted is not hub
    restarted.schedules.reconciler_options = hub.schedules.reconciler_options
    return restarted


async def breakfast_feeder(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> SimulatedFeeder:
    await hass.config.async_set_time_zone(CHICAGO)
    feeder = await make_feeder()
    await add_breakfast(hass, hub, feeder)
    return feeder


async def add_breakfast(
    hass: HomeAssistant, hub: PetnetHub, feeder: SimulatedFeeder
) -> None:
    """Add a daily 07:00 breakfast of 1/4 cup and wait until the feeder holds it."""
    start = len(feeder.commands)
    await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {
            "device_id": device_id(hass, feeder),
            "name": "Breakfast",
            "time": "07:00",
            "portion": 0.25,
        },
        blocking=True,
    )
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.schedules.reconciler(feeder.device_hid).async_wait_idle()


async def test_scheduled_dispense(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    event = await wait_for_entity(hass, "event", dev, "feeding")
    planned = entity_id(hass, "sensor", dev, "meals_planned_today")
    assert hass.states.get(planned).state == "1"
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "meals_dispensed_today")).state
        == "0"
    )
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "last_meal_status")).state
        == "upcoming"
    )

    await advance(hass, morning, 40, feeder)
    await feeder.send_feed_result(
        stime=int(BREAKFAST.timestamp()) + 3, portion=0.25, src=6
    )
    await wait_for_feeder(hub, dev, lambda f: len(f.history) == 1)
    state = await wait_for_state(
        hass, event, lambda s: s.attributes.get("event_type") == "scheduled"
    )
    assert state.attributes["meal_name"] == "Breakfast"
    assert state.attributes["grams_expected"] == pytest.approx(32.0)
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "meals_dispensed_today")).state
        == "1"
    )
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "last_meal_status")).state
        == "dispensed"
    )
    food = hass.states.get(entity_id(hass, "sensor", dev, "food_today"))
    assert float(food.state) == pytest.approx(
        hub.feeders[dev].history[0].result.grams_actual, abs=0.05
    )
    assert food.attributes["state_class"] == "total_increasing"
    last_feed = hass.states.get(entity_id(hass, "sensor", dev, "last_feed"))
    assert last_feed.state == "2024-06-01T12:00:03+00:00"
    assert last_feed.attributes["source"] == "schedule"

    history = await hass.services.async_call(
        DOMAIN,
        "get_feed_history",
        {"device_id": device_id(hass, feeder)},
        blocking=True,
        return_response=True,
    )
    assert history["results"][0]["meal"] == "Breakfast"
    assert history["results"][0]["status"] == "dispensed"


async def test_failed_dispense(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    event = await wait_for_entity(hass, "event", feeder.device_hid, "feeding")
    await advance(hass, morning, 40, feeder)
    await feeder.send_feed_result(
        stime=int(BREAKFAST.timestamp()),
        portion=0.25,
        src=6,
        fail=True,
        err="motor jam",
    )
    state = await wait_for_state(
        hass, event, lambda s: s.attributes.get("event_type") == "failed"
    )
    assert state.attributes["error"] == "motor jam"
    await hass.async_block_till_done()
    assert (
        hass.states.get(
            entity_id(hass, "sensor", feeder.device_hid, "last_meal_status")
        ).state
        == "failed"
    )
    assert (
        hass.states.get(
            entity_id(hass, "sensor", feeder.device_hid, "food_today")
        ).state
        == "0.0"
    )


async def test_missed_meal_event_issue_sync_and_one_fix(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    event = await wait_for_entity(hass, "event", dev, "feeding")
    start = len(feeder.commands)
    # The feeder skips breakfast: nothing is reported and the one-minute window closes.
    await advance(hass, morning, 100, feeder)
    state = await wait_for_state(
        hass, event, lambda s: s.attributes.get("event_type") == "missed"
    )
    assert state.attributes["meal_name"] == "Breakfast"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev))
    assert issue is not None
    assert issue.translation_key == "missed_meal_online"
    assert issue.is_fixable
    # The miss triggers a schedule sync.
    await feeder.wait_for_command("schedule_mod_end", since=start)
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "last_meal_status")).state
        == "missed"
    )

    # Running the check again reports nothing new.
    hub.monitor.async_check_now()
    assert [c.command for c in feeder.commands[start:]].count("feed") == 0

    # The fix flow feeds the missed portion, once; a second run finds it fed.
    flow = await async_create_fix_flow(hass, missed_issue_id(dev), issue.data)
    flow.hass = hass
    result = await flow.async_step_init()
    assert result["type"] == "form"
    result = await flow.async_step_confirm({})
    assert result["type"] == "create_entry"
    again = await async_create_fix_flow(hass, missed_issue_id(dev), issue.data)
    again.hass = hass
    second = await again.async_step_confirm({})
    assert second["type"] == "abort"
    assert second["reason"] == "already_fed"
    received = await feeder.wait_for_command("feed", since=start)
    assert [c.payload for c in received] == [{"portion": 0.25}]
    assert ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev)) is None


@pytest.mark.parametrize(
    "entry_options", [{CONF_GRACE_MINUTES: 1, CONF_AUTO_FEED_MISSED: True}]
)
async def test_auto_feed_feeds_once(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    assert hub.settings.auto_feed_missed
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    start = len(feeder.commands)
    await advance(hass, morning, 100, feeder)
    hub.monitor.async_check_now()
    hub.monitor.async_check_now()
    received = await feeder.wait_for_command("feed", since=start)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [c.payload for c in received] == [{"portion": 0.25}]
    hub.monitor.async_check_now()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [c.command for c in feeder.commands[start:]].count("feed") == 1


async def test_dispensed_meal_clears_missed_issue(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    await advance(hass, morning, 100, feeder)
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(feeder.device_hid))
        is not None
    )
    # The next breakfast is dispensed (reported without moving the clock a whole day).
    await feeder.send_feed_result(
        stime=int(BREAKFAST.timestamp()) + 86400, portion=0.25, src=6
    )
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(feeder.device_hid))
        is None
    )


LATE_MORNING = BREAKFAST + dt.timedelta(hours=3)  # 10:00 CDT


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
    events: list[Any] = []
    hub.monitor.async_subscribe(dev, events.append)
    start = len(feeder.commands)
    await add_breakfast(hass, hub, feeder)
    await advance(hass, freezer, 120, feeder)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert events == []
    assert ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev)) is None
    assert [c.command for c in feeder.commands[start:]].count("feed") == 0
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "meals_planned_today")).state
        == "0"
    )

    # Tomorrow's breakfast is due like any other: missed, reported and fed once.
    await feeder.disconnect()
    freezer.move_to(
        MORNING + dt.timedelta(days=1)
    )  # nobody is connected: a jump is fine
    await feeder.connect()
    await feeder.send_heartbeat()
    await hub.schedules.reconciler(dev).async_wait_idle()
    await advance(hass, freezer, 100, feeder)
    fed = await feeder.wait_for_command("feed", since=start)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [c.payload for c in fed] == [{"portion": 0.25}]
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
    events: list[Any] = []
    hub.monitor.async_subscribe(dev, events.append)
    freezer.tick(60)
    hub.monitor.async_check_now()
    await hass.async_block_till_done()
    assert events == []
    assert ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev)) is None
    assert (
        hass.states.get(entity_id(hass, "sensor", dev, "meals_planned_today")).state
        == "0"
    )


@pytest.fixture
def late_evening(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """23:50 CDT on June 1st (04:50 UTC on June 2nd)."""
    return freezer


@pytest.mark.freeze_time("2024-06-02T04:50:00+00:00", real_asyncio=True)
async def test_midnight_resets_today_in_the_feeders_zone(
    hass: HomeAssistant,
    late_evening: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    await hass.config.async_set_time_zone(CHICAGO)
    feeder = await make_feeder()
    dev = feeder.device_hid
    # 23:50 CDT on June 1st: a snack counts for June 1st.
    late = dt.datetime(2024, 6, 2, 4, 50, tzinfo=dt.UTC)
    assert dt_util.utcnow() == late
    await feeder.send_feed_result(stime=int(late.timestamp()), portion=0.25, src=4)
    food = await wait_for_entity(hass, "sensor", dev, "food_today")
    await wait_for_state(
        hass, food, lambda s: s.state != "unknown" and float(s.state) > 0
    )
    # Still June 1st in Chicago although it is June 2nd in UTC.
    assert float(hass.states.get(food).state) > 0
    await advance(hass, late_evening, 11 * 60, feeder)  # to 00:01 CDT
    await wait_for_state(hass, food, lambda s: float(s.state) == 0)


async def test_duplicates_count_once(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    event = await wait_for_entity(hass, "event", feeder.device_hid, "feeding")
    events: list[Any] = []
    hub.monitor.async_subscribe(feeder.device_hid, events.append)
    for _ in range(3):
        await feeder.send_feed_result(
            stime=int(BREAKFAST.timestamp()), portion=0.25, src=6
        )
    await feeder.send_heartbeat()
    await wait_for_state(
        hass, event, lambda s: s.attributes.get("event_type") == "scheduled"
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(events) == 1
    assert (
        hass.states.get(
            entity_id(hass, "sensor", feeder.device_hid, "meals_dispensed_today")
        ).state
        == "1"
    )
    assert len(hub.feeders[feeder.device_hid].history) == 1


async def test_hopper_matches_the_protocol_vector(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    morning: FrozenDateTimeFactory,
) -> None:
    feeder = await make_feeder(g_per_tbsp=10.0)
    dev = feeder.device_hid
    hopper = await wait_for_entity(hass, "sensor", dev, "hopper_level")
    assert hass.states.get(hopper).state == "unknown"
    await hass.services.async_call(
        "number",
        "set_value",
        {
            "entity_id": entity_id(hass, "number", dev, "grams_per_tablespoon"),
            "value": 10,
        },
        blocking=True,
    )
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": entity_id(hass, "button", dev, "hopper_refilled")},
        blocking=True,
    )
    base = int(MORNING.timestamp()) + 60
    # 100 feeds of 5 g expected each: the simulator reports portion * 16 * g_per_tbsp grams,
    # so 1/32 cup at 10 g/tbsp is exactly 5 g.
    for i in range(100):
        await feeder.send_feed_result(stime=base + i * 60, portion=1 / 32, src=4)
    await wait_for_feeder(hub, dev, lambda f: len(f.history) == 100)
    await hass.async_block_till_done()
    assert hass.states.get(hopper).state == "84.0"
    # Later the user checks the hopper: the level counts down from the new reference.
    morning.tick(3 * 3600)
    await hass.services.async_call(
        DOMAIN,
        "set_hopper_level",
        {"device_id": device_id(hass, feeder), "level": 50},
        blocking=True,
    )
    assert hass.states.get(hopper).state == "50.0"


async def test_recipe_is_sent_with_budget_and_grams_convert(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    dev = feeder.device_hid
    await wait_for_entity(hass, "number", dev, "grams_per_tablespoon")
    start = len(feeder.commands)
    await hass.services.async_call(
        "number",
        "set_value",
        {
            "entity_id": entity_id(hass, "number", dev, "grams_per_tablespoon"),
            "value": 8,
        },
        blocking=True,
    )
    await hass.services.async_call(
        "number",
        "set_value",
        {
            "entity_id": entity_id(hass, "number", dev, "tablespoons_per_button_press"),
            "value": 2,
        },
        blocking=True,
    )
    received = await feeder.wait_for_command("budget", since=start)
    assert received[-1].payload == {
        "recipe": "E0000001",
        "tbsp_per_feeding": 2,
        "g_per_tbsp": 8,
        "budget_tbsp": 2,
    }
    await hass.services.async_call(
        DOMAIN,
        "feed",
        {"device_id": device_id(hass, feeder), "grams": 16},
        blocking=True,
    )
    feeds = await feeder.wait_for_command("feed", since=start)
    assert feeds[0].payload == {"portion": 0.125}


async def test_offline_feeder_gets_a_repair_issue(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await make_feeder()
    dev = feeder.device_hid
    await feeder.disconnect()
    morning.move_to(
        MORNING + dt.timedelta(minutes=61)
    )  # nobody is connected: a jump is fine
    hub.monitor.async_check_now()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, offline_issue_id(dev))
    assert issue is not None
    assert issue.translation_placeholders["minutes"] == "61"
    await feeder.connect()
    await feeder.send_heartbeat()
    await wait_for_feeder(
        hub,
        dev,
        lambda f: f.last_seen is not None and f.last_seen > MORNING.timestamp() + 3600,
    )
    assert hub.is_online(hub.feeders[dev])
    hub.monitor.async_check_now()
    assert ir.async_get(hass).async_get_issue(DOMAIN, offline_issue_id(dev)) is None


async def test_diagnostics_redact_keys_and_uids(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    loaded_entry: MockConfigEntry,
) -> None:
    feeder = await make_feeder()
    data = await async_get_config_entry_diagnostics(hass, loaded_entry)
    text = repr(data)
    assert feeder.api_key not in text
    assert feeder.uid not in text
    assert data["gateways"][feeder.gateway_hid]["api_key"] == "**REDACTED**"
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, feeder.device_hid)}
    )
    assert device is not None
    one = await async_get_device_diagnostics(hass, loaded_entry, device)
    assert one["feeder"]["hid"] == feeder.device_hid
    assert feeder.api_key not in repr(one)
