"""Pets: each one a device with its day of meals, over every feeder that feeds it.

HA in Chicago, the clock at 06:59:30; the feeder holds a 07:00 breakfast (1/4 cup, 30.4 g)
and a 07:05 second breakfast (1/8 cup, 15.2 g), and dispenses them on its own schedule.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.petnet_feeder.const import CONF_GRACE_MINUTES, DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.meals import MealState
from custom_components.petnet_feeder.monitor import missed_issue_id
from custom_components.petnet_feeder.pets import device_identifier
from feeder_sim import SimulatedFeeder

from .helpers.entities import entity_id, wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory, device_id, wait_for_history
from .helpers.feeding import (
    AT_MORNING,
    BREAKFAST,
    BREAKFAST_TIME_S,
    MISSED_AFTER_S,
    add_meal,
    add_second_breakfast,
    advance,
    breakfast_feeder,
    current_hub,
    feed_history,
    feeding_events,
    heartbeat,
    meal_events_today,
)
from .helpers.restart import restart
from .test_removal import remove_device_in_ui

pytestmark = AT_MORNING

SECOND_UID = "smartfeeder-4b09fa082bbd"
PET_SENSORS = (
    "food_today",
    "food_target",
    "meals_dispensed_today",
    "meals_planned_today",
    "last_fed",
)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps short."""
    return {CONF_GRACE_MINUTES: 1}


async def call(hass: HomeAssistant, action: str, **data: Any) -> Any:
    """Call an action (with its response, where it has one)."""
    return await hass.services.async_call(
        DOMAIN,
        action,
        data,
        blocking=True,
        return_response=hass.services.supports_response(DOMAIN, action) != "none",
    )


async def call_quietly(hass: HomeAssistant, action: str, **data: Any) -> None:
    await hass.services.async_call(DOMAIN, action, data, blocking=True)


async def add_pet(
    hass: HomeAssistant, name: str, *feeders: SimulatedFeeder, **data: Any
) -> dict[str, Any]:
    """Add a pet with the action; returns its response (``device_id`` names it)."""
    data.setdefault("species", "cat")
    reply = await call(
        hass,
        "add_pet",
        name=name,
        feeders=[device_id(hass, feeder) for feeder in feeders],
        **data,
    )
    assert reply is not None
    return dict(reply)


async def deliver(hass: HomeAssistant, hub: PetnetHub, feeder: SimulatedFeeder) -> None:
    """Ask for a sync at once and wait until the feeder holds it (see helpers.add_meal)."""
    start = len(feeder.commands)
    await call_quietly(hass, "sync_schedule", device_id=device_id(hass, feeder))
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()


async def give_meals(
    hass: HomeAssistant,
    hub: PetnetHub,
    feeder: SimulatedFeeder,
    pet: dict[str, Any],
    *times: str,
) -> None:
    """Give the feeder's meals at these times to the pet (with update_meal)."""
    stored = hub.state.feeders[feeder.device_hid]
    for meal in stored.meals:
        if f"{meal.time_s // 3600:02d}:{meal.time_s // 60 % 60:02d}" in times:
            reply = await call(
                hass,
                "update_meal",
                device_id=device_id(hass, feeder),
                meal_id=meal.meal_id,
                pet=pet["device_id"],
            )
            assert reply["pet"] == pet["name"]
    await deliver(hass, hub, feeder)


def pet_state(hass: HomeAssistant, pet: dict[str, Any], platform: str, key: str) -> str:
    found = hass.states.get(
        entity_id(hass, platform, device_identifier(pet["pet_id"]), key)
    )
    assert found is not None
    return found.state


def day(hass: HomeAssistant, pet: dict[str, Any]) -> dict[str, str]:
    """The pet's sensors, by key."""
    return {key: pet_state(hass, pet, "sensor", key) for key in PET_SENSORS}


def held_active(feeder: SimulatedFeeder) -> list[bool]:
    return [entry["active"] for entry in feeder.schedule]


async def statuses(
    hass: HomeAssistant, feeder: SimulatedFeeder
) -> list[tuple[str, str]]:
    return [
        (e["start"][11:16], e["description"].splitlines()[-1])
        for e in await meal_events_today(hass, feeder)
    ]


async def advance_all(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    seconds: int,
    *feeders: SimulatedFeeder,
) -> None:
    """helpers.feeding.advance for several feeders: each runs its schedule at every step."""
    while seconds > 0:
        step = min(seconds, 30)
        seconds -= step
        freezer.tick(step)
        hub = current_hub(hass)
        for feeder in feeders:
            await feeder.run_due_meals(dt_util.utcnow())
            await heartbeat(hub, feeder)
        hub.monitor.async_check_now()
        await hass.async_block_till_done()
        for feeder in feeders:
            await hub.sync.reconciler(feeder.device_hid).async_wait_idle()


async def test_a_pets_day_adds_up_over_its_meals_and_its_feeders(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    await add_second_breakfast(hass, hub, feeder)
    tom = await add_pet(hass, "Tom", feeder, target_g=100)
    assert tom["name"] == "Tom"
    assert tom["species"] == "cat"
    assert tom["target_g"] == 100
    assert tom["feeders"] == [device_id(hass, feeder)]
    assert tom["paused"] is False
    device = dr.async_get(hass).async_get(tom["device_id"])
    assert device is not None
    assert device.name == "Tom"
    assert device.model == "Cat"
    assert device.via_device_id == device_id(hass, feeder)
    await wait_for_entity(hass, "sensor", device_identifier(tom["pet_id"]), "last_fed")
    assert day(hass, tom) == {
        "food_today": "0.0",
        "food_target": "0.0",
        "meals_dispensed_today": "0",
        "meals_planned_today": "0",
        "last_fed": STATE_UNKNOWN,
    }

    await give_meals(hass, hub, feeder, tom, "07:00", "07:05")
    assert day(hass, tom)["meals_planned_today"] == "2"
    events = feeding_events(hub, feeder)

    # 07:01: breakfast dispensed; the second breakfast is still to come.
    await advance(hass, freezer, 90, feeder)
    assert day(hass, tom) == {
        "food_today": "30.4",
        "food_target": "30.4",
        "meals_dispensed_today": "1",
        "meals_planned_today": "2",
        "last_fed": BREAKFAST.isoformat(),
    }
    assert [(e.event_type, e.attributes.get("pet")) for e in events] == [
        ("scheduled", "Tom")
    ]

    # A Feed now is nobody's meal: the feeder's total grows, Tom's does not.
    await call_quietly(hass, "feed", device_id=device_id(hass, feeder), portion=0.125)
    await wait_for_history(hub, feeder.device_hid, 2)
    await hass.async_block_till_done()
    assert events[-1].event_type == "manual"
    assert "pet" not in events[-1].attributes
    assert day(hass, tom)["food_today"] == "30.4"
    food = hass.states.get(entity_id(hass, "sensor", feeder.device_hid, "food_today"))
    assert food is not None and food.state == "45.6"

    # A second feeder feeds Tom too: its 07:02 meal counts for him as well.
    other = await make_feeder(SECOND_UID)
    await add_meal(hass, hub, other, name="Snack", time="07:02", portion=0.125)
    reply = await call(
        hass,
        "update_pet",
        pet=tom["device_id"],
        feeders=[device_id(hass, feeder), device_id(hass, other)],
    )
    assert reply["feeders"] == [device_id(hass, feeder), device_id(hass, other)]
    await give_meals(hass, hub, other, tom, "07:02")
    assert day(hass, tom)["meals_planned_today"] == "3"
    await advance_all(hass, freezer, 90, feeder, other)  # 07:02:30
    assert day(hass, tom) == {
        "food_today": "45.6",
        "food_target": "45.6",
        "meals_dispensed_today": "2",
        "meals_planned_today": "3",
        "last_fed": (BREAKFAST + dt.timedelta(minutes=2)).isoformat(),
    }

    # Without a target there is no share of it.
    await call_quietly(hass, "update_pet", pet=tom["device_id"], target_g=None)
    assert hub.state.pets[tom["pet_id"]].target_g is None
    assert day(hass, tom)["food_target"] == STATE_UNKNOWN

    rows = (await feed_history(hass, feeder))["meals"]
    assert [(m["meal"], m["pet"], m["status"]) for m in rows] == [
        ("Breakfast", "Tom", "dispensed")
    ]


async def test_a_pets_day_starts_again_at_midnight(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    tom = await add_pet(hass, "Tom", feeder)
    await give_meals(hass, hub, feeder, tom, "07:00")
    await advance(hass, freezer, 90, feeder)
    assert day(hass, tom)["food_today"] == "30.4"
    food = entity_id(hass, "sensor", device_identifier(tom["pet_id"]), "food_today")
    state = hass.states.get(food)
    assert state is not None
    assert state.attributes["last_reset"] == "2024-06-01T00:00:00-05:00"

    # Just past midnight in Chicago (the feeder is away: a long jump would look like a
    # silent session): the minute check tells the pet's entities.
    await feeder.disconnect()
    freezer.move_to(dt.datetime(2024, 6, 2, 5, 0, 30, tzinfo=dt.UTC))
    hub.monitor.async_check_now()
    await hass.async_block_till_done()
    state = await wait_for_state(hass, food, lambda s: s.state == "0.0")
    assert state.attributes["last_reset"] == "2024-06-02T00:00:00-05:00"
    assert day(hass, tom)["meals_planned_today"] == "1"
    # Yesterday's breakfast is still when Tom was last fed.
    assert day(hass, tom)["last_fed"] == BREAKFAST.isoformat()


async def test_removing_a_pet_removes_its_device_and_keeps_its_meals(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    tom = await add_pet(hass, "Tom", feeder)
    await give_meals(hass, hub, feeder, tom, "07:00")
    await call_quietly(hass, "pause_feeding", device_id=tom["device_id"])
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    assert held_active(feeder) == [False]
    entities = er.async_entries_for_device(
        er.async_get(hass), tom["device_id"], include_disabled_entities=True
    )
    assert len(entities) == len(PET_SENSORS) + 1

    start = len(feeder.commands)
    await call_quietly(hass, "remove_pet", pet=tom["device_id"])
    await hass.async_block_till_done()
    assert dr.async_get(hass).async_get(tom["device_id"]) is None
    for entry in entities:
        assert er.async_get(hass).async_get(entry.entity_id) is None
        assert hass.states.get(entry.entity_id) is None
    assert hub.state.pets == {}
    stored = hub.state.feeders[feeder.device_hid]
    assert [(m.name, m.pet_id) for m in stored.meals] == [("Breakfast", None)]
    assert stored.pet_pauses == {}
    # Tom was paused: the feeder gets its breakfast back, and dispenses it.
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    assert held_active(feeder) == [True]
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    assert await statuses(hass, feeder) == [("07:00", "— Dispensed on time · 30.4 g")]


async def test_deleting_a_pets_device_removes_the_pet(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    tom = await add_pet(hass, "Tom", feeder)
    await give_meals(hass, hub, feeder, tom, "07:00")
    switch = await wait_for_entity(
        hass, "switch", device_identifier(tom["pet_id"]), "paused"
    )

    response = await remove_device_in_ui(
        hass, hass_ws_client, hub.entry.entry_id, tom["device_id"]
    )
    assert response["success"], response
    assert hub.state.pets == {}
    assert dr.async_get(hass).async_get(tom["device_id"]) is None
    assert hass.states.get(switch) is None
    assert [m.pet_id for m in hub.state.feeders[feeder.device_hid].meals] == [None]


async def test_a_paused_pet_holds_only_its_own_meals(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    await add_second_breakfast(hass, hub, feeder)
    dev = feeder.device_hid
    tom = await add_pet(hass, "Tom", feeder)
    rex = await add_pet(hass, "Rex", feeder, species="dog")
    await give_meals(hass, hub, feeder, tom, "07:00")
    await give_meals(hass, hub, feeder, rex, "07:05")
    switch = await wait_for_entity(
        hass, "switch", device_identifier(tom["pet_id"]), "paused"
    )
    events = feeding_events(hub, feeder)

    start = len(feeder.commands)
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": switch}, blocking=True
    )
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.sync.reconciler(dev).async_wait_idle()
    assert held_active(feeder) == [False, True]
    await wait_for_state(hass, switch, lambda s: s.state == STATE_ON)
    assert pet_state(hass, rex, "switch", "paused") == STATE_OFF
    assert not hub.state.feeders[dev].paused  # the feeder itself is not paused
    next_meal = hass.states.get(entity_id(hass, "sensor", dev, "next_meal"))
    assert next_meal is not None
    assert next_meal.attributes["meal_name"] == "Second breakfast"

    await advance(hass, freezer, 5 * 60 + MISSED_AFTER_S, feeder)
    assert [(e.event_type, e.attributes.get("pet")) for e in events] == [
        ("scheduled", "Rex")
    ]
    assert ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev)) is None
    stored = hub.state.feeders[dev]
    assert [(e.name, e.state) for e in stored.ledger.entries] == [
        ("Breakfast", MealState.PAUSED),
        ("Second breakfast", MealState.DISPENSED),
    ]
    assert await statuses(hass, feeder) == [
        ("07:00", "— Paused"),
        ("07:05", "— Dispensed on time · 15.2 g"),
    ]
    assert day(hass, tom)["meals_planned_today"] == "0"
    assert day(hass, rex)["meals_dispensed_today"] == "1"

    # Resumed with the action, given the pet: the feeder holds Tom's breakfast again.
    start = len(feeder.commands)
    await call_quietly(hass, "resume_feeding", device_id=tom["device_id"])
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.sync.reconciler(dev).async_wait_idle()
    assert held_active(feeder) == [True, True]
    await wait_for_state(hass, switch, lambda s: s.state == STATE_OFF)
    assert await statuses(hass, feeder) == [
        ("07:00", "— Paused"),
        ("07:05", "— Dispensed on time · 15.2 g"),
    ]


async def test_a_pets_pause_with_an_end_resumes_on_time(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    await add_second_breakfast(hass, hub, feeder)
    dev = feeder.device_hid
    tom = await add_pet(hass, "Tom", feeder)
    await give_meals(hass, hub, feeder, tom, "07:00", "07:05")
    until = BREAKFAST + dt.timedelta(minutes=5, seconds=20)
    reply = await call(
        hass, "pause_feeding", device_id=tom["device_id"], until=until.isoformat()
    )
    assert reply == {"until": (BREAKFAST + dt.timedelta(minutes=5)).isoformat()}
    await hub.sync.reconciler(dev).async_wait_idle()
    # Only the occurrence inside the pause is held inactive: the one at its end is not.
    assert held_active(feeder) == [False, True]
    switch = entity_id(hass, "switch", device_identifier(tom["pet_id"]), "paused")
    state = await wait_for_state(hass, switch, lambda s: s.state == STATE_ON)
    assert state.attributes["until"] == "2024-06-01T12:05:00+00:00"

    await advance(
        hass, freezer, 5 * 60, feeder
    )  # 07:04:30: resumed 45 s before the end
    await hub.sync.reconciler(dev).async_wait_idle()
    assert held_active(feeder) == [False, True]
    await wait_for_state(hass, switch, lambda s: s.state == STATE_OFF)
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    assert await statuses(hass, feeder) == [
        ("07:00", "— Paused"),
        ("07:05", "— Dispensed on time · 15.2 g"),
    ]
    assert day(hass, tom)["meals_dispensed_today"] == "1"
    assert day(hass, tom)["meals_planned_today"] == "1"


async def test_a_missed_meal_names_its_pet(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    tom = await add_pet(hass, "Tom", feeder)
    await give_meals(hass, hub, feeder, tom, "07:00")
    feeder.skip_meals = {BREAKFAST_TIME_S}
    events = feeding_events(hub, feeder)
    event = await wait_for_entity(hass, "event", dev, "feeding")

    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    assert [(e.event_type, e.attributes.get("pet")) for e in events] == [
        ("missed", "Tom")
    ]
    state = hass.states.get(event)
    assert state is not None
    assert state.attributes["pet"] == "Tom"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev))
    assert issue is not None
    assert issue.translation_key == "missed_meal_online_pet"
    assert issue.translation_placeholders == {
        "feeder": "SmartFeeder 73737D",
        "meal": "Breakfast",
        "pet": "Tom",
        "time": "07:00",
    }
    rows = (await feed_history(hass, feeder))["meals"]
    assert [(m["meal"], m["pet"], m["status"]) for m in rows] == [
        ("Breakfast", "Tom", "missed")
    ]
    # After a restart the issue is raised again from what is stored, naming Tom still.
    await restart(hass, hub)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev))
    assert issue is not None
    assert issue.translation_key == "missed_meal_online_pet"
    assert issue.translation_placeholders["pet"] == "Tom"


async def test_pets_and_their_pauses_outlive_a_restart(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    tom = await add_pet(hass, "Tom", feeder, target_g=60)
    lonely = await add_pet(hass, "Lonely", species="other")
    await give_meals(hass, hub, feeder, tom, "07:00")
    await call_quietly(
        hass,
        "pause_feeding",
        device_id=tom["device_id"],
        until=(BREAKFAST + dt.timedelta(hours=1)).isoformat(),
    )
    await hub.sync.reconciler(dev).async_wait_idle()

    hub = await restart(hass, hub)
    assert {pet.name: pet.to_dict() for pet in hub.state.pets.values()} == {
        "Tom": {
            "pet_id": tom["pet_id"],
            "name": "Tom",
            "species": "cat",
            "target_g": 60.0,
            "feeders": [dev],
        },
        "Lonely": {
            "pet_id": lonely["pet_id"],
            "name": "Lonely",
            "species": "other",
            "target_g": None,
            "feeders": [],
        },
    }
    assert [m.pet_id for m in hub.state.feeders[dev].meals] == [tom["pet_id"]]
    switch = await wait_for_entity(
        hass, "switch", device_identifier(tom["pet_id"]), "paused"
    )
    state = hass.states.get(switch)
    assert state is not None and state.state == STATE_ON
    devices = dr.async_get(hass)
    lonely_device = devices.async_get(lonely["device_id"])
    assert lonely_device is not None and lonely_device.model == "Pet"
    hub_device = devices.async_get_device(
        identifiers={(DOMAIN, f"hub_{hub.entry.entry_id}")}
    )
    assert hub_device is not None
    assert lonely_device.via_device_id == hub_device.id
    # The feeder comes back (the restart closed its session) and still holds Tom's meal
    # paused; the pause still ends on time.
    start = len(feeder.commands)
    await feeder.connect()
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.sync.reconciler(dev).async_wait_idle()
    assert held_active(feeder) == [False]
    await advance(hass, freezer, 3600, feeder)
    await hub.sync.reconciler(dev).async_wait_idle()
    assert held_active(feeder) == [True]
    await wait_for_state(hass, switch, lambda s: s.state == STATE_OFF)


async def test_an_older_store_loads_without_pets(
    hass: HomeAssistant, hass_storage: dict[str, Any], config_entry: Any
) -> None:
    hass_storage[DOMAIN] = {
        "version": 1,
        "minor_version": 1,
        "key": DOMAIN,
        "data": {"gateways": {}, "feeders": {}},
    }
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    hub: PetnetHub = config_entry.runtime_data
    assert hub.state.pets == {}
    assert hass_storage[DOMAIN]["minor_version"] == 2
    assert hass_storage[DOMAIN]["data"]["pets"] == {}
    await hass.config_entries.async_unload(config_entry.entry_id)


# ---------------------------------------------------------------------- refusals


async def _refused(
    hass: HomeAssistant, hub: PetnetHub, action: str, **data: Any
) -> str:
    """The translation key of the refusal; nothing stored changed."""
    before = (
        {pet_id: pet.to_dict() for pet_id, pet in hub.state.pets.items()},
        {hid: [m.to_dict() for m in f.meals] for hid, f in hub.state.feeders.items()},
    )
    with pytest.raises(ServiceValidationError) as caught:
        await call(hass, action, **data)
    after = (
        {pet_id: pet.to_dict() for pet_id, pet in hub.state.pets.items()},
        {hid: [m.to_dict() for m in f.meals] for hid, f in hub.state.feeders.items()},
    )
    assert after == before
    assert caught.value.translation_domain == DOMAIN
    return str(caught.value.translation_key)


async def test_bad_input_is_refused_and_changes_nothing(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    other = await make_feeder(SECOND_UID)
    feeder_device = device_id(hass, feeder)
    tom = await add_pet(hass, "Tom", feeder)
    lonely = await add_pet(hass, "Lonely")
    meal_id = hub.state.feeders[feeder.device_hid].meals[0].meal_id

    async def refused(action: str, **data: Any) -> str:
        return await _refused(hass, hub, action, **data)

    # add_pet
    assert await refused("add_pet", name="  ", species="cat") == "invalid_pet_name"
    assert await refused("add_pet", name="x" * 65, species="cat") == "invalid_pet_name"
    assert await refused("add_pet", name="tom ", species="cat") == "pet_name_taken"
    assert await refused("add_pet", name="Max", species="cow") == "invalid_species"
    assert (
        await refused("add_pet", name="Max", species="dog", target_g=-5)
        == "invalid_pet_target"
    )
    assert (
        await refused("add_pet", name="Max", species="dog", feeders=["no-such-device"])
        == "unknown_feeder"
    )
    assert (
        await refused("add_pet", name="Max", species="dog", feeders=[tom["device_id"]])
        == "unknown_feeder"
    )
    # update_pet
    assert await refused("update_pet", pet=feeder_device, name="Max") == "unknown_pet"
    assert await refused("update_pet", pet="no-such-device") == "unknown_pet"
    assert (
        await refused(
            "update_pet",
            pet=tom["device_id"],
            name="Lonely",
            feeders=[device_id(hass, other)],
        )
        == "pet_name_taken"
    )
    assert (
        await refused("update_pet", pet=tom["device_id"], target_g=0)
        == "invalid_pet_target"
    )
    assert await refused("update_pet", pet=tom["device_id"], name="") == (
        "invalid_pet_name"
    )
    # remove_pet
    assert await refused("remove_pet", pet=feeder_device) == "unknown_pet"
    # Meals: the pet must be fed by the meal's feeder.
    assert (
        await refused(
            "update_meal",
            device_id=feeder_device,
            meal_id=meal_id,
            pet=lonely["device_id"],
        )
        == "pet_not_fed_by_feeder"
    )
    assert (
        await refused(
            "add_meal",
            device_id=device_id(hass, other),
            name="Snack",
            time="09:00",
            pet=tom["device_id"],
        )
        == "pet_not_fed_by_feeder"
    )
    assert (
        await refused(
            "set_schedule",
            device_id=feeder_device,
            meals=[{"name": "Lunch", "time": "12:00", "pet": feeder_device}],
        )
        == "unknown_pet"
    )
    # Pausing: a pet without a feeder, a device that is neither.
    assert (
        await refused("pause_feeding", device_id=lonely["device_id"])
        == "pet_has_no_feeder"
    )
    assert (
        await refused("pause_feeding", device_id="no-such-device")
        == "unknown_feeder_or_pet"
    )
    switch = entity_id(hass, "switch", device_identifier(lonely["pet_id"]), "paused")
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": switch}, blocking=True
        )
    assert caught.value.translation_key == "pet_has_no_feeder"
    assert not any(f.pet_pauses for f in hub.state.feeders.values())


async def test_taking_a_feeder_away_keeps_its_meals_for_no_pet(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    tom = await add_pet(hass, "Tom", feeder)
    await give_meals(hass, hub, feeder, tom, "07:00")
    await call_quietly(hass, "pause_feeding", device_id=tom["device_id"])
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    assert held_active(feeder) == [False]

    start = len(feeder.commands)
    reply = await call(hass, "update_pet", pet=tom["device_id"], feeders=[])
    assert reply["feeders"] == []
    assert reply["paused"] is False
    stored = hub.state.feeders[feeder.device_hid]
    assert [m.pet_id for m in stored.meals] == [None]
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    assert held_active(feeder) == [True]
    # The pet's device now hangs off the hub's device.
    device = dr.async_get(hass).async_get(tom["device_id"])
    hub_device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"hub_{hub.entry.entry_id}")}
    )
    assert device is not None and hub_device is not None
    assert device.via_device_id == hub_device.id
    # A meal given back to Tom clears with an explicit null.
    await call_quietly(
        hass, "update_pet", pet=tom["device_id"], feeders=[device_id(hass, feeder)]
    )
    meal_id = stored.meals[0].meal_id
    reply = await call(
        hass,
        "update_meal",
        device_id=device_id(hass, feeder),
        meal_id=meal_id,
        pet=tom["device_id"],
    )
    assert reply["pet"] == "Tom"
    reply = await call(
        hass,
        "update_meal",
        device_id=device_id(hass, feeder),
        meal_id=meal_id,
        pet=None,
    )
    assert "pet" not in reply
    assert stored.meals[0].pet_id is None
