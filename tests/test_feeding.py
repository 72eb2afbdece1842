"""Was my pet fed? Events, today's totals, the hopper, the recipe and diagnostics.

The simulated feeder runs its schedule on its own clock (the frozen wall clock plus the
offset HA sent it); HA has to recognise its dispenses as the meals they are.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest

from custom_components.petnet_feeder.const import (
    CONF_GRACE_MINUTES,
    DOMAIN,
    HISTORY_LIMIT,
)
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.monitor import EVENT_MAX_AGE, offline_issue_id

from .helpers.entities import entity_id, set_number, wait_for_entity
from .helpers.feeders import FeederFactory, device_id, wait_for_feeder
from .helpers.feeding import (
    AT_MORNING,
    BREAKFAST,
    BREAKFAST_TIME_S,
    CHICAGO,
    MORNING,
    advance,
    breakfast_feeder,
    chicago_feeder,
    feed_history,
    feeding_events,
    heartbeat,
)
from .helpers.restart import restart


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps in these tests short."""
    return {CONF_GRACE_MINUTES: 1}


pytestmark = AT_MORNING


def state_of(hass: HomeAssistant, platform: str, feeder_hid: str, key: str) -> str:
    state = hass.states.get(entity_id(hass, platform, feeder_hid, key))
    assert state is not None
    return state.state


async def test_scheduled_dispense(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """The feeder dispenses breakfast by itself at 07:00 on its clock; HA matches it."""
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    assert feeder.utc_offset == -5 * 3600  # HA set the feeder's clock to Chicago time
    events = feeding_events(hub, feeder)
    event = await wait_for_entity(hass, "event", dev, "feeding")
    assert state_of(hass, "sensor", dev, "meals_planned_today") == "1"
    assert state_of(hass, "sensor", dev, "meals_dispensed_today") == "0"
    assert state_of(hass, "sensor", dev, "last_meal_status") == "upcoming"
    assert float(state_of(hass, "sensor", dev, "food_today")) == 0

    await advance(hass, morning, 120, feeder)
    assert [e.event_type for e in events] == ["scheduled"]
    state = hass.states.get(event)
    assert state.attributes["event_type"] == "scheduled"
    assert state.attributes["meal_name"] == "Breakfast"
    assert state.attributes["portion"] == 0.25
    assert state.attributes["grams_expected"] == pytest.approx(32.0)  # 4 tbsp of 8 g
    assert state.attributes["started"] == BREAKFAST.isoformat()
    assert state_of(hass, "sensor", dev, "meals_dispensed_today") == "1"
    assert state_of(hass, "sensor", dev, "last_meal_status") == "dispensed"
    food = hass.states.get(entity_id(hass, "sensor", dev, "food_today"))
    assert float(food.state) == pytest.approx(30.4)  # the 95 % the bowl measured
    last_feed = hass.states.get(entity_id(hass, "sensor", dev, "last_feed"))
    assert last_feed.state == BREAKFAST.isoformat()
    assert last_feed.attributes["source"] == "schedule"
    # Nothing was missed: the window closed with the meal dispensed.
    assert [key for key in ir.async_get(hass).issues if key[0] == DOMAIN] == []

    history = await feed_history(hass, feeder)
    assert [
        (row["start"], row["meal"], row["status"], row["source"])
        for row in history["results"]
    ] == [(BREAKFAST.isoformat(), "Breakfast", "dispensed", "schedule")]


async def test_failed_dispense(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """The feeder's breakfast jams: a failed event, status failed, no grams counted."""
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.fail_meals = {BREAKFAST_TIME_S: "motor jam"}
    events = feeding_events(hub, feeder)
    event = await wait_for_entity(hass, "event", dev, "feeding")
    await advance(hass, morning, 120, feeder)
    # A failed dispense is a result for the meal, not a missed meal.
    assert [e.event_type for e in events] == ["failed"]
    state = hass.states.get(event)
    assert state.attributes["event_type"] == "failed"
    assert state.attributes["error"] == "motor jam"
    assert state.attributes["meal_name"] == "Breakfast"
    assert state_of(hass, "sensor", dev, "last_meal_status") == "failed"
    assert state_of(hass, "sensor", dev, "meals_dispensed_today") == "0"
    assert float(state_of(hass, "sensor", dev, "food_today")) == 0
    assert hass.states.get(entity_id(hass, "sensor", dev, "last_feed")).attributes[
        "failed"
    ]


@pytest.fixture
def late_evening(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """23:50 CDT on June 1st: 04:50 UTC and 13:50 JST on June 2nd."""
    return freezer


@pytest.mark.freeze_time("2024-06-02T04:50:00+00:00", real_asyncio=True)
async def test_midnight_resets_today_in_the_feeders_zone(
    hass: HomeAssistant,
    late_evening: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """HA lives in Tokyo, the feeder in Chicago: its day ends at Chicago's midnight."""
    await hass.config.async_set_time_zone("Asia/Tokyo")
    feeder = await make_feeder()
    dev = feeder.device_hid
    await hass.services.async_call(
        DOMAIN,
        "set_time_zone",
        {"device_id": device_id(hass, feeder), "time_zone": CHICAGO},
        blocking=True,
    )
    await hub.sync.reconciler(dev).async_wait_idle()
    assert feeder.utc_offset == -5 * 3600
    late = dt.datetime(2024, 6, 2, 4, 50, tzinfo=dt.UTC)
    assert dt_util.utcnow() == late
    # 23:50 CDT on June 1st: a snack counts for June 1st.
    await hass.services.async_call(
        DOMAIN,
        "feed",
        {"device_id": device_id(hass, feeder), "portion": 0.25},
        blocking=True,
    )
    await wait_for_feeder(hub, dev, lambda f: len(f.history) == 1)
    assert hub.state.feeders[dev].history[0].result.start_ms == late.timestamp() * 1000
    food = entity_id(hass, "sensor", dev, "food_today")
    state = hass.states.get(food)
    assert float(state.state) == pytest.approx(30.4)
    # Long-term statistics: a total whose cycle starts at the feeder's midnight.
    assert state.attributes["state_class"] == "total"
    june_1 = dt.datetime(2024, 6, 1, 5, 0, tzinfo=dt.UTC)  # 00:00 CDT
    assert dt.datetime.fromisoformat(state.attributes["last_reset"]) == june_1

    await advance(hass, late_evening, 9 * 60, feeder)  # 23:59 CDT
    state = hass.states.get(food)
    assert float(state.state) == pytest.approx(30.4)
    assert dt.datetime.fromisoformat(state.attributes["last_reset"]) == june_1
    await advance(hass, late_evening, 2 * 60, feeder)  # 00:01 CDT, still 14:01 in Tokyo
    state = hass.states.get(food)
    assert float(state.state) == 0
    assert dt.datetime.fromisoformat(
        state.attributes["last_reset"]
    ) == june_1 + dt.timedelta(days=1)


async def test_duplicates_count_once(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    events = feeding_events(hub, feeder)
    for _ in range(3):
        await feeder.send_feed_result(
            stime=int(BREAKFAST.timestamp()), portion=0.25, src=6
        )
    # A QoS-1 publish returns at the broker's PUBACK: wait until the hub handled the
    # heartbeat sent after the results, and with it every result before it.
    morning.tick(1)
    await heartbeat(hub, feeder)
    await hass.async_block_till_done()
    assert [e.event_type for e in events] == ["scheduled"]
    assert state_of(hass, "sensor", dev, "meals_dispensed_today") == "1"
    assert len(hub.state.feeders[dev].history) == 1


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
    await set_number(hass, dev, "grams_per_tablespoon", 10)
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": entity_id(hass, "button", dev, "hopper_refilled")},
        blocking=True,
    )
    base = int(MORNING.timestamp()) + 60
    # 100 feeds of 5 g expected each: the simulator reports portion * 16 * g_per_tbsp grams,
    # so 1/32 cup at 10 g/tbsp is exactly 5 g. A second apart: the clock is frozen, and a
    # result more than ten minutes ahead of it is dropped as implausible.
    for i in range(100):
        await feeder.send_feed_result(stime=base + i, portion=1 / 32, src=4)
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
    assert hub.state.is_online(hub.state.feeders[dev])
    hub.monitor.async_check_now()
    assert ir.async_get(hass).async_get_issue(DOMAIN, offline_issue_id(dev)) is None


async def test_history_keeps_the_newest_results(
    hass: HomeAssistant,
    morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """At most HISTORY_LIMIT (500) results per feeder; the oldest go first."""
    feeder = await make_feeder()
    dev = feeder.device_hid
    events = feeding_events(hub, feeder)
    # 500 results half a minute apart, the first five hours ago: each one fires an event.
    first = int((MORNING - dt.timedelta(hours=5)).timestamp())
    for i in range(HISTORY_LIMIT):
        await feeder.send_feed_result(stime=first + i * 30, portion=0.0625, src=4)
    await wait_for_feeder(hub, dev, lambda f: len(f.history) == HISTORY_LIMIT)
    await hass.async_block_till_done()
    assert len(events) == HISTORY_LIMIT

    # One older than every kept result is dropped at once: recent as it is, it fires nothing.
    await feeder.send_feed_result(stime=first - 30, portion=0.0625, src=4)
    # A new one pushes out the oldest.
    await feeder.send_feed_result(stime=int(MORNING.timestamp()), portion=0.0625, src=4)
    morning.tick(1)
    await heartbeat(hub, feeder)
    history = hub.state.feeders[dev].history
    assert len(history) == HISTORY_LIMIT
    assert history[0].result.start_ms == int(MORNING.timestamp()) * 1000
    assert history[-1].result.start_ms == (first + 30) * 1000
    assert len(events) == HISTORY_LIMIT + 1
    assert events[-1].attributes["started"] == MORNING.isoformat()

    hub = await restart(hass, hub)
    assert [row.result.start_ms for row in hub.state.feeders[dev].history] == [
        row.result.start_ms for row in history
    ]


@pytest.mark.freeze_time("2024-06-02T01:00:00+00:00", real_asyncio=True)  # 20:00 CDT
async def test_results_older_than_six_hours_fire_nothing_but_count(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await chicago_feeder(hass, make_feeder)
    dev = feeder.device_hid
    events = feeding_events(hub, feeder)
    now = dt_util.utcnow()
    # 13:59 CDT, replayed now: stored and counted for today, but no event.
    old = now - EVENT_MAX_AGE - dt.timedelta(minutes=1)
    await feeder.send_feed_result(stime=int(old.timestamp()), portion=0.25, src=4)
    freezer.tick(1)
    await heartbeat(hub, feeder)
    assert events == []
    assert len(hub.state.feeders[dev].history) == 1
    assert float(state_of(hass, "sensor", dev, "food_today")) == pytest.approx(30.4)
    assert state_of(hass, "sensor", dev, "last_feed") == old.isoformat()
    assert state_of(hass, "event", dev, "feeding") == "unknown"

    # 14:01 CDT is recent enough.
    recent = now - EVENT_MAX_AGE + dt.timedelta(minutes=1)
    await feeder.send_feed_result(stime=int(recent.timestamp()), portion=0.25, src=4)
    freezer.tick(1)
    await heartbeat(hub, feeder)
    assert [e.event_type for e in events] == ["manual"]
    assert float(state_of(hass, "sensor", dev, "food_today")) == pytest.approx(60.8)


@pytest.mark.usefixtures("morning")
async def test_meals_and_feeds_in_grams(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """Grams become the nearest 1/16 cup with the food density, and need it."""
    feeder = await make_feeder()
    dev = feeder.device_hid
    target = {"device_id": device_id(hass, feeder)}
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "add_meal",
            {**target, "name": "Breakfast", "time": "07:00", "grams": 40},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "recipe_needed"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "feed", {**target, "grams": 16}, blocking=True
        )
    assert err.value.translation_key == "recipe_needed"
    assert hub.state.feeders[dev].meals == []

    await set_number(hass, dev, "grams_per_tablespoon", 10)
    # 40 g at 10 g/tbsp: 4 tbsp, a quarter cup.
    meal = await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {**target, "name": "Breakfast", "time": "07:00", "grams": 40},
        blocking=True,
        return_response=True,
    )
    assert meal is not None
    assert meal["portion"] == 0.25
    schedule = await hass.services.async_call(
        DOMAIN,
        "set_schedule",
        {
            **target,
            "meals": [
                {"name": "Breakfast", "time": "07:00", "grams": 20},
                {"name": "Dinner", "time": "18:00", "portion": 0.5},
            ],
        },
        blocking=True,
        return_response=True,
    )
    assert schedule is not None
    assert [(m["name"], m["portion"]) for m in schedule["meals"]] == [
        ("Breakfast", 0.125),
        ("Dinner", 0.5),
    ]
    start = len(feeder.commands)
    await hass.services.async_call(
        DOMAIN, "feed", {**target, "grams": 23}, blocking=True
    )
    # 23 g is 2.3 tbsp: the nearest 1/16 cup is 2 tbsp.
    assert [c.payload for c in await feeder.wait_for_command("feed", since=start)] == [
        {"portion": 0.125}
    ]
