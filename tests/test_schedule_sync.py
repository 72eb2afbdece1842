"""The feeder always ends up holding HA's schedule: triggers, both firmware families, faults."""

from __future__ import annotations

import asyncio
from typing import Any

from freezegun.api import FrozenDateTimeFactory

# HA's MQTT config flow imports aiohasupervisor, whose dataclasses cannot be built while
# freezegun replaces datetime: import it before any test freezes the clock.
import homeassistant.components.mqtt.config_flow  # noqa: F401
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed
import voluptuous as vol

from custom_components.petnet_feeder.const import CONF_DEFAULT_PORTION, DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder

from .helpers.entities import entity_id, wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory, device_id, wait_for_feeder
from .helpers.feeding import chicago_feeder
from .helpers.schedules import (
    FIRMWARES,
    NEW_SEQUENCE,
    ONE_MEAL_SEQUENCE,
    add_two_meals,
    hold_command,
    names_since,
    settle,
    with_meals,
)
from .helpers.transports import both_transports, bundled_only

pytestmark = both_transports


@FIRMWARES
async def test_edits_reach_the_feeder(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    firmware: str,
    sequence: list[str],
) -> None:
    await hass.config.async_set_time_zone("America/Chicago")
    hub.sync.reconciler_options = {
        **hub.sync.reconciler_options,
        "debounce_s": 0.5,
    }
    feeder = await make_feeder(firmware=firmware)
    await settle(hub, feeder)
    start = len(feeder.commands)
    await asyncio.gather(
        *(
            hass.services.async_call(
                DOMAIN,
                "add_meal",
                {
                    "device_id": device_id(hass, feeder),
                    "name": name,
                    "time": time,
                    "portion": 0.25,
                },
                blocking=True,
            )
            for name, time in (("Breakfast", "07:00"), ("Dinner", "18:30"))
        )
    )
    await feeder.wait_for_command(sequence[-1], since=start)
    await settle(hub, feeder)
    # The two edits within the debounce give one sync.
    assert names_since(feeder, start) == sequence
    assert [(e["time"], e["portion"], e["active"]) for e in feeder.schedule] == [
        (25200, 0.25, True),
        (66600, 0.25, True),
    ]
    assert feeder.utc_offset in (-18000, -21600)
    assert feeder.protocol_errors == []
    assert feeder.max_message_bytes <= 1000
    in_sync = entity_id(hass, "binary_sensor", feeder.device_hid, "schedule_sync")
    await wait_for_state(hass, in_sync, lambda s: s.state == STATE_OFF)
    last_sync = hass.states.get(
        entity_id(hass, "sensor", feeder.device_hid, "last_schedule_sync")
    )
    assert last_sync.state not in ("unknown", "unavailable")


async def synced_two_meals(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    firmware: str,
    sequence: list[str],
) -> SimulatedFeeder:
    """A feeder of ``firmware`` that was sent HA's two meals by a sync ending in sequence."""
    feeder = await make_feeder(firmware=firmware)
    await add_two_meals(hass, feeder)
    await feeder.wait_for_command(sequence[-1])
    await settle(hub, feeder)
    return feeder


@FIRMWARES
async def test_reboot_restores_the_schedule(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    firmware: str,
    sequence: list[str],
) -> None:
    feeder = await synced_two_meals(hass, hub, make_feeder, firmware, sequence)
    held = feeder.schedule
    assert len(held) == 2

    before = hub.state.feeders[feeder.device_hid].last_hash_at
    start = len(feeder.commands)
    await feeder.reboot()  # wipes its schedule and reports an empty hash
    await wait_for_feeder(
        hub,
        feeder.device_hid,
        lambda f: f.last_hash == "" and f.last_hash_at != before,
    )
    await feeder.wait_for_command(sequence[-1], since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start)[-len(sequence) :] == sequence
    assert feeder.schedule == held
    assert hub.sync.in_sync(hub.state.feeders[feeder.device_hid])


@FIRMWARES
async def test_checkin_before_mqtt_syncs_after_connect(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    firmware: str,
    sequence: list[str],
) -> None:
    feeder = await synced_two_meals(hass, hub, make_feeder, firmware, sequence)
    problem = entity_id(hass, "binary_sensor", feeder.device_hid, "schedule_sync")
    await wait_for_state(hass, problem, lambda s: s.state == STATE_OFF)
    await feeder.disconnect()
    start = len(feeder.commands)
    assert await feeder.checkin() == 200
    # Owed, shown as a problem, and nothing sent before the feeder is on MQTT.
    assert hub.state.feeders[feeder.device_hid].sync_pending
    await wait_for_state(hass, problem, lambda s: s.state == STATE_ON)
    assert names_since(feeder, start) == []
    await feeder.connect()
    await feeder.send_heartbeat()  # HA's MQTT sees a gateway only through its messages
    await feeder.wait_for_command(sequence[-1], since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == sequence
    assert not hub.state.feeders[feeder.device_hid].sync_pending
    await wait_for_state(hass, problem, lambda s: s.state == STATE_OFF)


@FIRMWARES
async def test_ten_triggers_give_one_sync_and_at_most_one_follow_up(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    firmware: str,
    sequence: list[str],
) -> None:
    feeder = await synced_two_meals(hass, hub, make_feeder, firmware, sequence)
    reconciler = hub.sync.reconciler(feeder.device_hid)
    started = reconciler.syncs_started
    start = len(feeder.commands)
    for _ in range(10):
        hub.actions.sync_schedule(feeder.device_hid)
    await settle(hub, feeder)
    syncs = reconciler.syncs_started - started
    assert 1 <= syncs <= 2
    assert names_since(feeder, start) == sequence * syncs


@bundled_only(
    "it drops the feeder's session mid-sync; only the bundled broker sees sessions and the "
    "feeder's own PUBACKs. Through HA's MQTT the broker acknowledges; a partial sync is caught "
    "by the feeder's reports on its commands (test_ha_mqtt_delivery)"
)
@FIRMWARES
async def test_session_dropped_mid_sync_restarts_after_reconnect(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    monkeypatch: pytest.MonkeyPatch,
    firmware: str,
    sequence: list[str],
) -> None:
    feeder = await synced_two_meals(hass, hub, make_feeder, firmware, sequence)
    # The session drops while the schedule's first command waits for its PUBACK.
    held, dropped = hold_command(monkeypatch, hub, feeder.gateway_hid, sequence[1])
    start = len(feeder.commands)
    hub.actions.sync_schedule(feeder.device_hid)
    await asyncio.wait_for(held.wait(), 10)
    await feeder.wait_for_command("utc_offset", since=start)
    await feeder.drop()
    await wait_for_feeder(
        hub, feeder.device_hid, lambda f: not hub.state.is_connected(f.gateway_hid)
    )
    dropped.set()
    # The sync is incomplete: still owed, and nothing runs until the feeder is back.
    assert hub.state.feeders[feeder.device_hid].sync_pending
    assert not hub.sync.reconciler(feeder.device_hid).running
    assert names_since(feeder, start) == ["utc_offset"]
    restart = len(feeder.commands)
    await feeder.connect()
    await feeder.wait_for_command(sequence[-1], since=restart)
    await settle(hub, feeder)
    assert names_since(feeder, restart) == sequence
    assert len(feeder.schedule) == 2
    assert hub.sync.in_sync(hub.state.feeders[feeder.device_hid])


@FIRMWARES
async def test_a_feed_during_a_sync_goes_out_between_two_of_its_commands(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    monkeypatch: pytest.MonkeyPatch,
    firmware: str,
    sequence: list[str],
) -> None:
    """The feeder handles one command at a time: a feed waits for the one in flight only."""
    feeder = await synced_two_meals(hass, hub, make_feeder, firmware, sequence)
    held, release = hold_command(monkeypatch, hub, feeder.gateway_hid, sequence[1])
    start = len(feeder.commands)
    hub.actions.sync_schedule(feeder.device_hid)
    await asyncio.wait_for(held.wait(), 10)
    # Started eagerly: it runs until it waits for its turn.
    feed = hass.async_create_task(hub.actions.async_feed(feeder.device_hid, 0.25))
    assert not feed.done()  # it waits for the command in flight
    release.set()
    await feed
    await feeder.wait_for_command("feed", since=start)
    await feeder.wait_for_command(sequence[-1], since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == [*sequence[:2], "feed", *sequence[2:]]
    assert hub.sync.in_sync(hub.state.feeders[feeder.device_hid])


async def test_edits_during_a_delivery_make_one_follow_up_delivery(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An edit goes out at once; the edits made while it is delivered go out together next."""
    hub.sync.reconciler_options = {**hub.sync.reconciler_options, "debounce_s": 0}
    feeder = await make_feeder()
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.last_hash_at is not None)
    await settle(hub, feeder)
    reconciler = hub.sync.reconciler(feeder.device_hid)
    started = reconciler.syncs_started
    held, release = hold_command(
        monkeypatch, hub, feeder.gateway_hid, "schedule_mod_start"
    )
    start = len(feeder.commands)

    async def add(name: str, time: str) -> None:
        await hass.services.async_call(
            DOMAIN,
            "add_meal",
            {"device_id": device_id(hass, feeder), "name": name, "time": time},
            blocking=True,
        )

    await add("Breakfast", "07:00")
    await asyncio.wait_for(held.wait(), 10)  # the first delivery is on its way
    for name, time in (("Lunch", "12:00"), ("Dinner", "18:30"), ("Snack", "21:00")):
        await add(name, time)
    release.set()
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert reconciler.syncs_started - started == 2
    assert names_since(feeder, start) == [
        *ONE_MEAL_SEQUENCE,
        *NEW_SEQUENCE[:3],
        *["schedule_add"] * 4,
        "schedule_mod_end",
    ]
    assert [e["time"] for e in feeder.schedule] == [25200, 43200, 66600, 75600]
    assert hub.sync.in_sync(hub.state.feeders[feeder.device_hid])


async def test_a_feeder_that_holds_one_command_at_a_time_gets_every_command(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    """It acknowledges a command when it queues it and drops one that does not fit.

    Its reports on each command pace the delivery: the next command goes out once it has
    reported the last one, with no pause besides.
    """
    feeder = await make_feeder(report_command_status=True, command_queue_limit=1)
    await feeder.wait_for_command("utc_offset")  # handled, and reported
    assert hub.confirmations.reports_status(feeder.gateway_hid)
    start = len(feeder.commands)
    await add_two_meals(hass, feeder)
    await settle(hub, feeder)
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    assert feeder.commands_dropped == []
    assert [e["time"] for e in feeder.schedule] == [25200, 66600]
    assert names_since(feeder, start)[-len(NEW_SEQUENCE) :] == NEW_SEQUENCE
    assert feeder.protocol_errors == []


@pytest.fixture
def before_dst_change(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """Two minutes before Chicago leaves daylight saving time; set before HA's timers start."""
    freezer.move_to("2024-11-03T06:58:00+00:00")  # 01:58 CDT
    return freezer


@pytest.mark.usefixtures("mqtt_subscribes_at_once")  # the clock is frozen: see there
async def test_dst_change_resends_utc_offset(
    hass: HomeAssistant,
    before_dst_change: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    freezer = before_dst_change
    feeder = await chicago_feeder(hass, make_feeder)
    await settle(hub, feeder)
    assert feeder.utc_offset == -18000
    start = len(feeder.commands)

    # The clock moves in 20 s steps, well inside every keep-alive (the broker's, and that of
    # HA's own MQTT client, whose clock is frozen too), and the feeder speaks after each, as
    # a live one does: through HA's MQTT it counts as connected only while it is heard.
    async def step_to(moment: str) -> None:
        target = dt_util.parse_datetime(moment)
        assert target is not None
        while (left := (target - dt_util.utcnow()).total_seconds()) > 0:
            freezer.tick(min(left, 20))
            async_fire_time_changed(hass)  # the minute checks run as their timers would
            await feeder.send_heartbeat()
            await wait_for_feeder(
                hub,
                feeder.device_hid,
                lambda f: f.last_heartbeat == dt_util.utcnow().timestamp(),
            )
            # Nothing may be in flight when the clock moves on: a PUBACK still on its way
            # would arrive 20 s "late" and the send time out.
            await settle(hub, feeder)

    await step_to("2024-11-03T06:59:10+00:00")  # 01:59:10 CDT
    assert feeder.commands[start:] == []
    await step_to("2024-11-03T07:00:20+00:00")  # 01:00:20 CST
    # The offset changed at 07:00:00 and went out then.
    await feeder.wait_for_command("utc_offset", since=start)
    await settle(hub, feeder)
    assert feeder.utc_offset == -21600
    assert feeder.commands[start].command == "utc_offset"
    assert hub.state.is_connected(feeder.gateway_hid)


async def test_empty_feeder_keeps_its_own_schedule_until_ha_has_one(
    hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    await settle(hub, feeder)
    # Connected, but HA has no meals and never synced: only the clock is set.
    assert [c.command for c in feeder.commands] == ["utc_offset"]


@pytest.mark.parametrize(
    ("service", "data"),
    [
        ("add_meal", {"name": "Snack", "time": "25:00", "portion": 0.25}),
        ("add_meal", {"name": "Snack", "time": "24:00", "portion": 0.25}),
        ("add_meal", {"name": "Snack", "time": "07:00", "portion": "lots"}),
        ("add_meal", {"name": "Snack", "time": "10:00", "portion": 3}),
        ("add_meal", {"name": "Snack", "time": "10:00", "portion": 0.1}),
        ("add_meal", {"name": "", "time": "10:00", "portion": 0.25}),
        ("update_meal", {"meal_id": 99, "portion": 0.5}),
        ("remove_meal", {"meal_id": 99}),
        ("set_time_zone", {"time_zone": "Mars/Olympus_Mons"}),
        (
            "set_schedule",
            {
                "meals": [
                    {"name": "A", "time": "07:00", "portion": 0.25},
                    {"name": "B", "time": "nope", "portion": 0.25},
                ]
            },
        ),
    ],
)
async def test_bad_schedule_input_changes_nothing(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    service: str,
    data: dict[str, Any],
) -> None:
    feeder = await with_meals(hass, hub, make_feeder)
    before = list(hub.state.feeders[feeder.device_hid].meals)
    # Refused by the action's schema (vol.Invalid) or, with a translated message saying
    # what is accepted, by the schedule (ServiceValidationError).
    with pytest.raises((ServiceValidationError, vol.Invalid)) as err:
        await hass.services.async_call(
            DOMAIN,
            service,
            {"device_id": device_id(hass, feeder), **data},
            blocking=True,
        )
    if isinstance(err.value, ServiceValidationError):
        assert err.value.translation_key
    assert str(err.value)
    assert hub.state.feeders[feeder.device_hid].meals == before
    assert hub.state.feeders[feeder.device_hid].time_zone is None


async def test_legacy_firmware_refuses_a_schedule_that_does_not_fit(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder(firmware="2.3.2")
    meals = [
        {"name": f"Meal {i}", "time": f"{6 + i:02d}:00", "portion": 0.125}
        for i in range(8)
    ]
    with pytest.raises(ServiceValidationError, match="do not fit"):
        await hass.services.async_call(
            DOMAIN,
            "set_schedule",
            {"device_id": device_id(hass, feeder), "meals": meals},
            blocking=True,
        )
    assert hub.state.feeders[feeder.device_hid].meals == []


@pytest.mark.usefixtures("mqtt_subscribes_at_once")  # the clock is frozen: see there
async def test_actions_and_entities(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    await hass.config.async_set_time_zone("Europe/Berlin")
    freezer.move_to("2024-06-01T04:00:00+00:00")  # 06:00 CEST
    feeder = await make_feeder()
    dev = device_id(hass, feeder)
    added = await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {"device_id": dev, "name": "Breakfast", "time": "07:00", "portion": 0.25},
        blocking=True,
        return_response=True,
    )
    assert added == {
        "meal_id": 1,
        "name": "Breakfast",
        "time": "07:00",
        "portion": 0.25,
        "enabled": True,
    }
    next_meal = await wait_for_entity(hass, "sensor", feeder.device_hid, "next_meal")
    state = await wait_for_state(
        hass, next_meal, lambda s: s.state == "2024-06-01T05:00:00+00:00"
    )
    assert state.attributes["meal_name"] == "Breakfast"

    updated = await hass.services.async_call(
        DOMAIN,
        "update_meal",
        {"device_id": dev, "meal_id": 1, "time": "08:15"},
        blocking=True,
        return_response=True,
    )
    assert updated["time"] == "08:15"
    await wait_for_state(
        hass, next_meal, lambda s: s.state == "2024-06-01T06:15:00+00:00"
    )

    skipped = await hass.services.async_call(
        DOMAIN,
        "skip_next_meal",
        {"device_id": dev},
        blocking=True,
        return_response=True,
    )
    assert skipped["meal_id"] == 1
    await wait_for_state(
        hass, next_meal, lambda s: s.state == "2024-06-02T06:15:00+00:00"
    )
    assert hub.sync.entries(hub.state.feeders[feeder.device_hid])[0].active is False

    await hass.services.async_call(
        DOMAIN,
        "set_time_zone",
        {"device_id": dev, "time_zone": "America/New_York"},
        blocking=True,
    )
    # The skip covered the Berlin occurrence; in New York the meal is still ahead today.
    await wait_for_state(
        hass, next_meal, lambda s: s.state == "2024-06-01T12:15:00+00:00"
    )

    replaced = await hass.services.async_call(
        DOMAIN,
        "set_schedule",
        {
            "device_id": dev,
            "meals": [{"name": "Lunch", "time": "12:00", "portion": 0.5}],
        },
        blocking=True,
        return_response=True,
    )
    assert replaced == {
        "meals": [
            {
                "meal_id": 2,
                "name": "Lunch",
                "time": "12:00",
                "portion": 0.5,
                "enabled": True,
            }
        ]
    }
    removed = await hass.services.async_call(
        DOMAIN,
        "remove_meal",
        {"device_id": dev, "meal_id": 2},
        blocking=True,
        return_response=True,
    )
    assert removed == {"meals": []}
    await wait_for_state(hass, next_meal, lambda s: s.state == "unknown")
    # The frozen clock never ends the edits' debounce: ask for the sync at once. Then every
    # edit is delivered: the schedule is in sync, with no meal left on the feeder.
    hub.actions.sync_schedule(feeder.device_hid)
    await settle(hub, feeder)
    problem = entity_id(hass, "binary_sensor", feeder.device_hid, "schedule_sync")
    await wait_for_state(hass, problem, lambda s: s.state == STATE_OFF)
    assert feeder.schedule == []


@pytest.mark.parametrize("entry_options", [{CONF_DEFAULT_PORTION: 0.25}])
async def test_meals_without_an_amount_get_the_default_portion(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    added = await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {"device_id": device_id(hass, feeder), "name": "Breakfast", "time": "07:00"},
        blocking=True,
        return_response=True,
    )
    assert added is not None and added["portion"] == 0.25
    replaced = await hass.services.async_call(
        DOMAIN,
        "set_schedule",
        {
            "device_id": device_id(hass, feeder),
            "meals": [
                {"name": "Lunch", "time": "12:00"},
                {"name": "Dinner", "time": "18:00", "portion": 0.5},
            ],
        },
        blocking=True,
        return_response=True,
    )
    assert replaced is not None
    assert [meal["portion"] for meal in replaced["meals"]] == [0.25, 0.5]
    await settle(hub, feeder)
    assert [e["portion"] for e in feeder.schedule] == [0.25, 0.5]
