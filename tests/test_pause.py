"""Pausing feeding: the feeder holds its meals inactive, paused meals are never missed.

Breakfast at 07:00 and a second breakfast at 07:05 in Chicago; the clock stands at 06:59:30.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.petnet_feeder.const import CONF_GRACE_MINUTES, DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.meals import MealState
from custom_components.petnet_feeder.monitor import missed_issue_id
from feeder_sim import SimulatedFeeder

from .helpers.entities import entity_id, wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory, device_id
from .helpers.feeding import (
    AT_MORNING,
    BREAKFAST,
    MISSED_AFTER_S,
    add_second_breakfast,
    advance,
    breakfast_feeder,
    feeding_events,
    meal_events_today,
)
from .helpers.restart import restart

pytestmark = AT_MORNING


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps short."""
    return {CONF_GRACE_MINUTES: 1}


def held_active(feeder: SimulatedFeeder) -> list[bool]:
    return [entry["active"] for entry in feeder.schedule]


async def statuses(
    hass: HomeAssistant, feeder: SimulatedFeeder
) -> list[tuple[str, str]]:
    return [
        (e["start"][11:16], e["description"].splitlines()[-1])
        for e in await meal_events_today(hass, feeder)
    ]


async def pause(hass: HomeAssistant, feeder: SimulatedFeeder, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN,
        "pause_feeding",
        {"device_id": device_id(hass, feeder), **data},
        blocking=True,
        return_response=True,
    )


async def test_a_paused_meal_is_not_dispensed_and_never_missed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    switch = await wait_for_entity(hass, "switch", dev, "paused")
    events = feeding_events(hub, feeder)
    start = len(feeder.commands)
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": switch}, blocking=True
    )
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.sync.reconciler(dev).async_wait_idle()
    assert held_active(feeder) == [False]
    await wait_for_state(hass, switch, lambda s: s.state == STATE_ON)
    next_meal = hass.states.get(entity_id(hass, "sensor", dev, "next_meal"))
    assert next_meal is not None and next_meal.state == "unknown"

    await advance(hass, freezer, MISSED_AFTER_S + 120, feeder)
    assert [e.event_type for e in events] == []
    assert ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev)) is None
    stored = hub.state.feeders[dev]
    assert [e.state for e in stored.ledger.entries] == [MealState.PAUSED]
    assert await statuses(hass, feeder) == [("07:00", "— Paused")]
    planned = hass.states.get(entity_id(hass, "sensor", dev, "meals_planned_today"))
    assert planned is not None and planned.state == "0"

    # Resumed: the feeder holds its meal again; today's paused breakfast stays paused.
    start = len(feeder.commands)
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": switch}, blocking=True
    )
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.sync.reconciler(dev).async_wait_idle()
    assert held_active(feeder) == [True]
    await wait_for_state(hass, switch, lambda s: s.state == STATE_OFF)
    assert await statuses(hass, feeder) == [("07:00", "— Paused")]


async def test_a_pause_with_an_end_resumes_in_time_for_the_next_meal(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    await add_second_breakfast(hass, hub, feeder)
    dev = feeder.device_hid
    # Seconds are dropped: the pause ends at 07:05, when the second breakfast is due.
    until = BREAKFAST + dt.timedelta(minutes=5, seconds=20)
    reply = await pause(hass, feeder, until=until.isoformat())
    assert reply == {"until": (BREAKFAST + dt.timedelta(minutes=5)).isoformat()}
    await hub.sync.reconciler(dev).async_wait_idle()
    # Only the occurrence inside the pause is held inactive: the one at its end is not.
    assert held_active(feeder) == [False, True]

    await advance(
        hass, freezer, 5 * 60, feeder
    )  # 07:04:30: resumed 45 s before the end
    await hub.sync.reconciler(dev).async_wait_idle()
    assert not hub.state.feeders[dev].paused
    assert held_active(feeder) == [False, True]
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    assert await statuses(hass, feeder) == [
        ("07:00", "— Paused"),
        ("07:05", "— Dispensed on time · 15.2 g"),
    ]
    switch = entity_id(hass, "switch", dev, "paused")
    await wait_for_state(hass, switch, lambda s: s.state == STATE_OFF)


async def test_a_pause_outlives_a_restart_and_still_ends(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    await pause(hass, feeder, until=(BREAKFAST + dt.timedelta(hours=1)).isoformat())
    hub = await restart(hass, hub)
    stored = hub.state.feeders[dev]
    assert stored.paused
    switch = await wait_for_entity(hass, "switch", dev, "paused")
    state = hass.states.get(switch)
    assert state is not None and state.state == STATE_ON
    assert state.attributes["until"] == "2024-06-01T13:00:00+00:00"
    await advance(hass, freezer, 3600, feeder)
    assert not stored.paused
    await hub.sync.reconciler(dev).async_wait_idle()
    assert held_active(feeder) == [True]


async def test_a_pause_must_end_in_the_future(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    with pytest.raises(ServiceValidationError) as caught:
        await pause(hass, feeder, until=(BREAKFAST - dt.timedelta(hours=1)).isoformat())
    assert caught.value.translation_key == "pause_end_passed"
    assert not hub.state.feeders[feeder.device_hid].paused
