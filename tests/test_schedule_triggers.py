"""Every trigger that can leave a feeder with the wrong schedule leads to a sync (§5.5, §7.6)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.errors import InvalidRequestError
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.kronos import KronosServer
from custom_components.petnet_feeder.schedule_sync import (
    too_long_issue_id,
    uses_new_api,
)
from feeder_sim import SimulatedFeeder

from .helpers.calendar import get_events
from .helpers.entities import entity_id, wait_for_state
from .helpers.feeders import FeederFactory, boot_via_broker, device_id, wait_for_feeder
from .helpers.feeding import chicago_feeder
from .helpers.mosquitto import Mosquitto
from .helpers.schedules import (
    FIRMWARES,
    LEGACY_SEQUENCE,
    NEW_SEQUENCE,
    add_two_meals,
    hold_command,
    names_since,
    settle,
    with_meals,
)
from .helpers.transports import both_transports, bundled_only

pytestmark = both_transports

# What the old cloud left on a feeder (§7.1 form).
OLD_CLOUD_SCHEDULE = [
    {
        "active": True,
        "automatic": True,
        "feeding_id": "5238b0c4ceb91b35_feed1_8:00AM",
        "name": "FEED0",
        "portion": 0.125,
        "reminder": True,
        "time": 28800,
    }
]


async def restart_over_http(feeder: SimulatedFeeder) -> None:
    """What a feeder does at boot before MQTT: check in, then speak on a new session."""
    await feeder.disconnect()
    assert await feeder.checkin() == 200
    await feeder.connect()
    await feeder.send_heartbeat()  # HA's MQTT sees a gateway only through its messages


async def test_feeder_keeps_its_own_schedule_across_reconnects(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    feeder_broker: Mosquitto | None,
) -> None:
    feeder = await make_feeder(boot=False)
    feeder.schedule = OLD_CLOUD_SCHEDULE
    if feeder_broker is None:
        await feeder.boot()
    else:
        await boot_via_broker(hass, feeder_broker, feeder)
    await settle(hub, feeder)
    for _ in range(2):
        start = len(feeder.commands)
        await restart_over_http(feeder)
        await feeder.wait_for_command("utc_offset", since=start)
        await settle(hub, feeder)
    # HA has no meals yet: only the clock was ever set, the old schedule keeps feeding.
    assert {c.command for c in feeder.commands} == {"utc_offset"}
    assert feeder.schedule == OLD_CLOUD_SCHEDULE

    # Once HA delivered a schedule, it is the feeder's: removing every meal empties it.
    await add_two_meals(hass, feeder)
    await settle(hub, feeder)
    assert [e["time"] for e in feeder.schedule] == [25200, 66600]
    stored = hub.state.feeders[feeder.device_hid]
    for meal in list(stored.meals):
        hub.meal_editor.remove_meal(stored, meal.meal_id)
    start = len(feeder.commands)
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert feeder.schedule == []
    assert hub.sync.in_sync(stored)


@FIRMWARES
async def test_empty_hash_restores_the_schedule_without_a_reconnect(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    firmware: str,
    sequence: list[str],
) -> None:
    feeder = await with_meals(hass, hub, make_feeder, firmware=firmware)
    held = feeder.schedule
    feeder.schedule = []  # lost, say, by a power cut the session survived
    start = len(feeder.commands)
    await feeder.send_hash("")
    await feeder.wait_for_command(sequence[-1], since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == sequence
    assert feeder.schedule == held
    assert hub.sync.in_sync(hub.state.feeders[feeder.device_hid])


async def test_empty_hash_held_back_by_the_rate_limit_is_restored_later(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    hub.sync.reconciler_options = {
        **hub.sync.reconciler_options,
        "hash_min_interval_s": 1.0,
    }
    feeder = await with_meals(hass, hub, make_feeder)
    held = feeder.schedule
    problem = entity_id(hass, "binary_sensor", feeder.device_hid, "schedule_sync")
    reconciler = hub.sync.reconciler(feeder.device_hid)

    feeder.schedule = []
    start = len(feeder.commands)
    await feeder.send_hash("")
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert feeder.schedule == held

    # Lost again within the limit: the sync waits for it, and the schedule shows the problem.
    feeder.schedule = []
    start = len(feeder.commands)
    await feeder.send_hash("")
    await wait_for_state(hass, problem, lambda s: s.state == STATE_ON)
    assert reconciler.hash_sync_deferred
    assert names_since(feeder, start) == []
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == NEW_SEQUENCE
    assert feeder.schedule == held
    await wait_for_state(hass, problem, lambda s: s.state == STATE_OFF)


async def test_a_changed_hash_after_a_learnt_one_resyncs(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await with_meals(hass, hub, make_feeder)
    held = feeder.schedule
    learnt = feeder.local_md5
    await feeder.send_hash()
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.expected_hash == learnt)

    start = len(feeder.commands)
    await feeder.send_hash()  # the same hash again changes nothing
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.last_hash == learnt)
    feeder.schedule = held[:1]  # the feeder dropped a meal on its own
    await feeder.send_hash()
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == NEW_SEQUENCE
    assert feeder.schedule == held


async def test_a_firmware_update_resends_in_the_new_form(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await with_meals(hass, hub, make_feeder, firmware="2.3.2")
    assert [c.command for c in feeder.commands][-len(LEGACY_SEQUENCE) :] == (
        LEGACY_SEQUENCE
    )
    feeder.firmware = "2.8.0"  # updated; it registers with its new version
    start = len(feeder.commands)
    await feeder.register_gateway()
    await feeder.send_heartbeat()
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == NEW_SEQUENCE
    assert feeder.protocol_errors == []
    assert hub.state.feeders[feeder.device_hid].software_version == "2.8.0"


async def test_a_registration_without_a_version_keeps_the_known_one(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await with_meals(hass, hub, make_feeder)
    status, answer = await feeder.kronos_request(
        "POST", "/gateways", {"uid": feeder.uid}
    )
    assert (status, answer["message"]) == (200, "gateway is already registered")
    assert hub.state.feeders[feeder.device_hid].software_version == "2.8.0"
    assert uses_new_api(hub.state.feeders[feeder.device_hid])


async def test_a_time_zone_change_resends_the_clock_and_schedule(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    await hass.config.async_set_time_zone("UTC")
    feeder = await with_meals(hass, hub, make_feeder)
    assert feeder.utc_offset == 0
    start = len(feeder.commands)
    await hass.services.async_call(
        DOMAIN,
        "set_time_zone",
        {"device_id": device_id(hass, feeder), "time_zone": "Asia/Tokyo"},
        blocking=True,
    )
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == NEW_SEQUENCE
    assert feeder.utc_offset == 9 * 3600


async def test_the_family_override_resends_in_the_chosen_form(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    # Firmware that says 2.8.0 but only understands the legacy command.
    feeder = await with_meals(hass, hub, make_feeder, schedule_api="any")
    feeder.schedule_api = "legacy"
    stored = hub.state.feeders[feeder.device_hid]
    start = len(feeder.commands)
    hub.meal_editor.set_firmware_family(stored, "legacy")
    await feeder.wait_for_command("schedule", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == LEGACY_SEQUENCE
    assert [e["time"] for e in feeder.schedule] == [25200, 66600]
    assert feeder.protocol_errors == []
    assert hub.sync.in_sync(stored)


async def test_a_schedule_legacy_firmware_cannot_take(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder(schedule_api="any")
    stored = hub.state.feeders[feeder.device_hid]
    eight = [
        {"name": f"Meal {i}", "time": f"{6 + i:02d}:00", "portion": 0.125}
        for i in range(8)
    ]
    await hass.services.async_call(
        DOMAIN,
        "set_schedule",
        {"device_id": device_id(hass, feeder), "meals": eight},
        blocking=True,
    )
    await settle(hub, feeder)
    assert len(feeder.schedule) == 8

    # Forcing legacy is refused while the meals do not fit in its one message.
    with pytest.raises(InvalidRequestError) as err:
        hub.meal_editor.set_firmware_family(stored, "legacy")
    assert err.value.translation_key == "legacy_schedule_too_long"
    assert stored.firmware_family == "auto"

    # The feeder now reports legacy firmware: it gets its clock and a repair issue says why.
    feeder.firmware = "2.3.2"
    start = len(feeder.commands)
    await feeder.register_gateway()
    await feeder.send_heartbeat()
    await feeder.wait_for_command("utc_offset", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == ["utc_offset"]
    issues = ir.async_get(hass)
    issue = issues.async_get_issue(DOMAIN, too_long_issue_id(feeder.device_hid))
    assert issue is not None
    assert issue.translation_placeholders == {
        "feeder": stored.display_name,
        "firmware": "2.3.2",
        "count": "8",
    }
    problem = entity_id(hass, "binary_sensor", feeder.device_hid, "schedule_sync")
    await wait_for_state(hass, problem, lambda s: s.state == STATE_ON)

    # Fewer meals fit: they are delivered and the issue goes away.
    start = len(feeder.commands)
    await hass.services.async_call(
        DOMAIN,
        "set_schedule",
        {"device_id": device_id(hass, feeder), "meals": eight[:2]},
        blocking=True,
    )
    await feeder.wait_for_command("schedule", since=start)
    await settle(hub, feeder)
    assert len(feeder.schedule) == 2
    assert issues.async_get_issue(DOMAIN, too_long_issue_id(feeder.device_hid)) is None
    await wait_for_state(hass, problem, lambda s: s.state == STATE_OFF)


async def test_messages_are_handled_while_a_sync_waits_for_its_ack(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feeder = await with_meals(hass, hub, make_feeder)
    other = await make_feeder("smartfeeder-4b09fa082bbd")
    await settle(hub, other)
    held, release = hold_command(monkeypatch, hub, feeder.gateway_hid, "schedule_clear")
    start = len(feeder.commands)
    hub.actions.sync_schedule(feeder.device_hid)
    await asyncio.wait_for(held.wait(), 10)
    await feeder.send_sensor(voltage_mv=4100)
    await other.send_sensor(voltage_mv=3900)
    await wait_for_feeder(
        hub, feeder.device_hid, lambda f: f.telemetry.voltage_v == 4.1
    )
    await wait_for_feeder(hub, other.device_hid, lambda f: f.telemetry.voltage_v == 3.9)
    assert hub.sync.reconciler(feeder.device_hid).running
    assert names_since(feeder, start) == ["utc_offset"]

    release.set()
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == NEW_SEQUENCE


@bundled_only(
    "the feeder connects to the bundled broker while the Kronos site starts; HA's MQTT "
    "integration is not started by this entry"
)
async def test_a_feeder_connecting_during_start_gets_its_sync(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    loaded_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feeder = await with_meals(hass, hub, make_feeder)
    await feeder.disconnect()
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    feeder.schedule = []

    # The broker accepts before the Kronos site does: the feeder gets in between.
    start_kronos = KronosServer.async_start_serving

    async def kronos_starts_after_the_feeder_connected(self: KronosServer) -> None:
        await feeder.connect()
        await start_kronos(self)

    monkeypatch.setattr(
        KronosServer, "async_start_serving", kronos_starts_after_the_feeder_connected
    )
    start = len(feeder.commands)
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await feeder.wait_for_command("schedule_mod_end", since=start)
    assert names_since(feeder, start) == NEW_SEQUENCE
    assert len(feeder.schedule) == 2


async def jump(hass: HomeAssistant, freezer: FrozenDateTimeFactory, to: str) -> None:
    """Move the clock and run what its timers would, the minute check included."""
    freezer.move_to(to)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=1, seconds=5))
    await hass.async_block_till_done()


@pytest.fixture
def early_morning(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """05:00 CDT on June 1st 2024; set before the integration's timers start."""
    freezer.move_to("2024-06-01T10:00:00+00:00")
    return freezer


@bundled_only(
    "the frozen clock jumps a day, which HA's own MQTT client takes for a broker that stopped"
    " answering its keep-alives; it reconnects on loop timers a frozen clock never fires. What"
    " it tests does not depend on the transport"
)
async def test_skipping_twice_skips_both_occurrences(
    hass: HomeAssistant,
    early_morning: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    freezer = early_morning
    feeder = await chicago_feeder(hass, make_feeder)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.last_hash_at is not None)
    dev = device_id(hass, feeder)
    await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {"device_id": dev, "name": "Breakfast", "time": "07:00", "portion": 0.25},
        blocking=True,
    )
    for day in ("2024-06-01", "2024-06-02"):
        skipped = await hass.services.async_call(
            DOMAIN,
            "skip_next_meal",
            {"device_id": dev},
            blocking=True,
            return_response=True,
        )
        assert skipped["time"] == "07:00"
        assert str(skipped["skipped"]).startswith(f"{day}T07:00:00")
    await settle(hub, feeder)
    assert [e["active"] for e in feeder.schedule] == [False]
    calendar = entity_id(hass, "calendar", feeder.device_hid, "meals")
    stored = hub.state.feeders[feeder.device_hid]

    async def shown() -> list[tuple[str, str]]:
        events = await get_events(
            hass, calendar, "2024-06-01T00:00:00-05:00", "2024-06-04T00:00:00-05:00"
        )
        return [(e["start"][:10], e["description"].splitlines()[-1]) for e in events]

    assert await shown() == [
        ("2024-06-01", "— Skipped"),
        ("2024-06-02", "— Skipped"),
        ("2024-06-03", "— Upcoming"),
    ]

    # HA's loop follows the frozen clock: the broker would take the jumps for a feeder that
    # stopped its keep-alives. It is off the line; what it gets is what is owed.
    await feeder.disconnect()
    await wait_for_feeder(
        hub, feeder.device_hid, lambda f: not hub.state.is_connected(f.gateway_hid)
    )

    # The first skipped window passes: nothing is missed, the meal stays off for tomorrow.
    await jump(hass, freezer, "2024-06-01T12:06:00+00:00")  # 07:06 CDT
    hub.monitor.async_check_now()
    assert stored.misses == {}
    assert not hub.sync.entries(stored)[0].active
    assert not stored.sync_pending
    hub.state.notify(feeder.device_hid)
    await hass.async_block_till_done()
    sensors = {
        key: hass.states.get(entity_id(hass, "sensor", feeder.device_hid, key)).state
        for key in ("last_meal_status", "meals_planned_today", "meals_dispensed_today")
    }
    assert sensors == {
        "last_meal_status": "skipped",
        "meals_planned_today": "0",
        "meals_dispensed_today": "0",
    }

    # After the second, the meal is on again (owed to the feeder); both days say skipped.
    await jump(hass, freezer, "2024-06-02T12:06:00+00:00")
    hub.monitor.async_check_now()
    assert hub.sync.entries(stored)[0].active
    assert stored.sync_pending
    assert stored.misses == {}
    issues = ir.async_get(hass)
    assert not [i for (d, i) in issues.issues if d == DOMAIN and "missed" in i]
    assert await shown() == [
        ("2024-06-01", "— Skipped"),
        ("2024-06-02", "— Skipped"),
        ("2024-06-03", "— Upcoming"),
    ]
    start = len(feeder.commands)
    await feeder.connect()
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert [e["active"] for e in feeder.schedule] == [True]
