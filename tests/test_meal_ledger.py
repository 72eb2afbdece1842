"""The meal ledger in Home Assistant: moving or deleting a meal never rewrites its past.

A 07:00 breakfast is dispensed by the feeder's own schedule; then the owner moves it to 19:00
and later deletes it. This morning's dispense stays in the calendar, the day's counters and
the feed history, across a restart too; a missed meal says why it was missed.
"""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.const import CONF_GRACE_MINUTES, DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.ledger import MISSED_OFFLINE, MISSED_SILENT
from custom_components.petnet_feeder.meals import MealState
from feeder_sim import SimulatedFeeder

from .helpers.entities import entity_id
from .helpers.feeders import FeederFactory, device_id, wait_for_feeder
from .helpers.feeding import (
    AT_MORNING,
    BREAKFAST,
    BREAKFAST_TIME_S,
    MISSED_AFTER_S,
    advance,
    breakfast_feeder,
    feed_history,
    feeding_events,
    meal_events_today,
)
from .helpers.restart import restart

pytestmark = AT_MORNING


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps short."""
    return {CONF_GRACE_MINUTES: 1}


async def today(
    hass: HomeAssistant, feeder: SimulatedFeeder
) -> list[tuple[str, str, str]]:
    return [
        (e["summary"], e["start"][11:16], e["description"].splitlines()[-1])
        for e in await meal_events_today(hass, feeder)
    ]


def counters(hass: HomeAssistant, feeder: SimulatedFeeder) -> tuple[str, str]:
    def state(key: str) -> str:
        found = hass.states.get(entity_id(hass, "sensor", feeder.device_hid, key))
        assert found is not None
        return found.state

    return state("meals_dispensed_today"), state("meals_planned_today")


async def meal_action(
    hass: HomeAssistant, feeder: SimulatedFeeder, action: str, **data: Any
) -> None:
    await hass.services.async_call(
        DOMAIN,
        action,
        {"device_id": device_id(hass, feeder), **data},
        blocking=True,
    )
    await hass.async_block_till_done()


async def test_moving_and_deleting_a_meal_keep_this_mornings_dispense(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    meal_id = hub.state.feeders[dev].meals[0].meal_id
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    assert await today(hass, feeder) == [
        ("Breakfast", "07:00", "— Dispensed on time · 30.4 g")
    ]

    await meal_action(hass, feeder, "update_meal", meal_id=meal_id, time="19:00")
    assert await today(hass, feeder) == [
        ("Breakfast", "07:00", "— Dispensed on time · 30.4 g"),
        ("Breakfast", "19:00", "— Upcoming"),
    ]
    # Dispensed one of the two meals the day has (the feeder now holds 19:00 too).
    assert counters(hass, feeder) == ("1", "2")
    rows = (await feed_history(hass, feeder))["results"]
    assert [(r["meal"], r["status"]) for r in rows] == [("Breakfast", "dispensed")]

    # The ledger is stored: a restart shows the same account.
    hub = await restart(hass, hub)
    await meal_action(hass, feeder, "remove_meal", meal_id=meal_id)
    assert hub.state.feeders[dev].meals == []
    assert await today(hass, feeder) == [
        ("Breakfast", "07:00", "— Dispensed on time · 30.4 g")
    ]
    assert counters(hass, feeder) == ("1", "1")
    meals = (await feed_history(hass, feeder))["meals"]
    assert [(m["meal"], m["status"], m["scheduled"][11:16]) for m in meals] == [
        ("Breakfast", "dispensed", "12:00")
    ]


@pytest.mark.parametrize(
    ("online", "reason"), [(True, MISSED_SILENT), (False, MISSED_OFFLINE)]
)
async def test_a_missed_meal_records_why(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    online: bool,
    reason: str,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    if online:
        feeder.skip_meals = {BREAKFAST_TIME_S}  # it stays silent
    else:
        await feeder.disconnect()
        stored.last_seen = stored.last_heartbeat = 0.0
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    assert [(e.state, e.missed_reason) for e in stored.ledger.entries] == [
        (MealState.MISSED, reason)
    ]
    meals = (await feed_history(hass, feeder))["meals"]
    assert [(m["status"], m["missed_reason"]) for m in meals] == [("missed", reason)]


async def test_a_late_result_turns_a_reported_miss_into_dispensed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    feeder.skip_meals = {BREAKFAST_TIME_S}  # its report does not come in time
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    assert [e.state for e in stored.ledger.entries] == [MealState.MISSED]
    events = feeding_events(hub, feeder)

    # Then it does: the feeder replays the 07:00 dispense.
    await feeder.send_feed_result(
        stime=int(BREAKFAST.timestamp()) + 2, portion=0.25, src=6
    )
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
    hub.monitor.async_check_now()
    assert [(e.state, e.missed_reason) for e in stored.ledger.entries] == [
        (MealState.DISPENSED, MISSED_SILENT)
    ]
    assert [(e.event_type, e.attributes["reported_missed"]) for e in events] == [
        ("scheduled", True)
    ]
    assert await today(hass, feeder) == [
        ("Breakfast", "07:00", "— Dispensed on time · 30.4 g")
    ]
