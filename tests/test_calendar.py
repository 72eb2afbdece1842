"""The meal calendar: editing from HA's calendar API reaches a simulated feeder."""

from __future__ import annotations

from datetime import UTC, datetime
import time
from typing import Any
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.calendar import DATA_COMPONENT
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder

from .helpers.calendar import get_events
from .helpers.entities import entity_id, wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory, wait_for_feeder
from .helpers.feeding import CHICAGO, meals_existed_since
from .helpers.platforms import SNAPSHOT_TIME, EntitiesSnapshot
from .helpers.schedules import add_meals

NEW_API_SYNC = ["utc_offset", "schedule_clear", "schedule_mod_start"]


@pytest.fixture(autouse=True)
async def chicago(hass: HomeAssistant) -> None:
    """HA's zone is America/Chicago (the ``hub`` fixture syncs fast)."""
    await hass.config.async_set_time_zone(CHICAGO)


async def start_feeder(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    firmware: str = "2.8.0",
) -> tuple[SimulatedFeeder, str]:
    """Boot a feeder, wait for its calendar and for the sync of its connection."""
    feeder = await make_feeder(firmware=firmware)
    calendar = await wait_for_entity(hass, "calendar", feeder.device_hid, "meals")
    await feeder.wait_for_command("utc_offset")
    await wait_for_feeder(hub, feeder.device_hid, lambda f: not f.sync_pending)
    return feeder, calendar


def planned_long_ago(hub: PetnetHub, feeder: SimulatedFeeder) -> None:
    """Let the feeder's meals have had their times since before the days a test looks at.

    A meal is planned only from when it got its time (the calendar hides earlier days
    without a dispense); these tests look at fixed days in 2024.
    """
    meals_existed_since(
        hub.state.feeders[feeder.device_hid], datetime(2024, 1, 1, tzinfo=UTC)
    )


async def ws(client: Any, message: dict[str, Any]) -> dict[str, Any]:
    await client.send_json_auto_id(message)
    reply: dict[str, Any] = await client.receive_json()
    return reply


def event(
    summary: str, start: str, end: str, description: str | None = None, **extra: Any
) -> dict[str, Any]:
    data = {"summary": summary, "dtstart": start, "dtend": end, **extra}
    if description is not None:
        data["description"] = description
    return data


async def create(client: Any, calendar: str, **data: Any) -> dict[str, Any]:
    return await ws(
        client,
        {
            "type": "calendar/event/create",
            "entity_id": calendar,
            "event": event(**data),
        },
    )


async def create_ok(
    client: Any, calendar: str, feeder: SimulatedFeeder, **data: Any
) -> int:
    """Create an event, which must succeed; return how many commands the feeder had."""
    since = len(feeder.commands)
    reply = await create(client, calendar, **data)
    assert reply["success"], reply
    return since


async def change(
    client: Any, action: str, calendar: str, uid: str, **fields: Any
) -> dict[str, Any]:
    """Send calendar/event/<action> (update or delete) for the event ``uid``."""
    return await ws(
        client,
        {
            "type": f"calendar/event/{action}",
            "entity_id": calendar,
            "uid": uid,
            **fields,
        },
    )


def expected_sync(firmware: str, meal_count: int) -> list[str]:
    """The commands of one sync of ``meal_count`` meals for the firmware."""
    if firmware == "2.8.0":
        return [*NEW_API_SYNC, *["schedule_add"] * meal_count, "schedule_mod_end"]
    return ["utc_offset", "schedule"]


async def sync_after(
    feeder: SimulatedFeeder, since: int, last: str = "schedule_mod_end"
) -> list[str]:
    """The names of the commands received since ``since``, once ``last`` arrived."""
    await feeder.wait_for_command(last, since=since)
    return [command.command for command in feeder.commands[since:]]


def meals(
    hub: PetnetHub, feeder: SimulatedFeeder
) -> list[tuple[str, int, float, bool]]:
    return [
        (meal.name, meal.time_s, meal.portion, meal.enabled)
        for meal in hub.state.feeders[feeder.device_hid].meals
    ]


def held(feeder: SimulatedFeeder) -> list[tuple[int, float, bool]]:
    return [(e["time"], e["portion"], e["active"]) for e in feeder.schedule]


def error_text(key: str, **placeholders: str) -> str:
    """The message HA shows for one of our errors (English once strings are merged)."""
    return str(
        ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders or None,
        )
    )


def chicago_offset() -> int:
    offset = dt_util.now(ZoneInfo(CHICAGO)).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


@pytest.mark.freeze_time(SNAPSHOT_TIME)
async def test_entities(entities_snapshot: EntitiesSnapshot) -> None:
    """The meal calendar of a feeder that holds a 07:00 breakfast."""
    await entities_snapshot(Platform.CALENDAR)


async def test_create_reaches_new_firmware(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    feeder, calendar = await start_feeder(hass, hub, make_feeder, "2.8.0")
    client = await hass_ws_client(hass)

    # Given in UTC; the meal is 07:00 in the feeder's zone (HA's: America/Chicago, CDT).
    since = await create_ok(
        client,
        calendar,
        feeder,
        summary="Breakfast",
        start="2024-06-01T12:00:00+00:00",
        end="2024-06-01T12:01:00+00:00",
        description="1/4 cup",
        rrule="FREQ=DAILY",
    )
    assert meals(hub, feeder) == [("Breakfast", 25200, 0.25, True)]
    assert await sync_after(feeder, since) == expected_sync("2.8.0", 1)
    received = feeder.commands[since:]
    assert received[0].payload == {"utc_offset": chicago_offset()}
    assert received[2].payload == {"size": 1}
    assert held(feeder) == [(25200, 0.25, True)]
    assert feeder.protocol_errors == []

    # Tablespoons, and seconds dropped.
    since = await create_ok(
        client,
        calendar,
        feeder,
        summary="Dinner",
        start="2024-12-01T18:30:42-06:00",
        end="2024-12-01T18:45:00-06:00",
        description="4 tbsp",
        rrule="FREQ=DAILY",
    )
    assert await sync_after(feeder, since) == expected_sync("2.8.0", 2)
    assert feeder.commands[since + 2].payload == {"size": 2}
    assert held(feeder) == [(25200, 0.25, True), (66600, 0.25, True)]

    assert feeder.protocol_errors == []


async def test_create_reaches_legacy_firmware(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    feeder, calendar = await start_feeder(hass, hub, make_feeder, "2.3.2")
    client = await hass_ws_client(hass)

    since = await create_ok(
        client,
        calendar,
        feeder,
        summary="Breakfast",
        start="2024-01-15T07:15:00-06:00",
        end="2024-01-15T07:16:00-06:00",
        description="portion: 1/2 cup",
        rrule="FREQ=DAILY;INTERVAL=1",
    )
    assert await sync_after(feeder, since, "schedule") == ["utc_offset", "schedule"]
    assert held(feeder) == [(26100, 0.5, True)]

    since = await create_ok(
        client,
        calendar,
        feeder,
        summary="Early",
        start="2024-01-15T05:00:00-06:00",
        end="2024-01-15T05:01:00-06:00",
        description="⅛",
        rrule="FREQ=DAILY",
    )
    assert await sync_after(feeder, since, "schedule") == ["utc_offset", "schedule"]
    assert [e["name"] for e in feeder.schedule] == ["FEED0", "FEED1"]
    assert held(feeder) == [(18000, 0.125, True), (26100, 0.5, True)]
    assert feeder.protocol_errors == []


@pytest.mark.parametrize("firmware", ["2.8.0", "2.3.2"])
async def test_update_and_delete(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
    firmware: str,
) -> None:
    feeder, calendar = await start_feeder(hass, hub, make_feeder, firmware)
    last = "schedule_mod_end" if firmware == "2.8.0" else "schedule"
    client = await hass_ws_client(hass)
    since = await create_ok(
        client,
        calendar,
        feeder,
        summary="Breakfast",
        start="2024-06-01T07:00:00-05:00",
        end="2024-06-01T07:01:00-05:00",
        description="1/4 cup",
        rrule="FREQ=DAILY",
    )
    await sync_after(feeder, since, last)
    meal_id = hub.state.feeders[feeder.device_hid].meals[0].meal_id
    planned_long_ago(hub, feeder)

    # What the calendar shows goes back unchanged apart from the time: the portion stays.
    shown = await get_events(
        hass, calendar, "2024-06-02T00:00:00-05:00", "2024-06-03T00:00:00-05:00"
    )
    assert [(e["summary"], e["start"]) for e in shown] == [
        ("Breakfast", "2024-06-02T07:00:00-05:00")
    ]
    assert shown[0]["description"].splitlines()[0] == "1/4 cup"
    since = len(feeder.commands)
    reply = await change(
        client,
        "update",
        calendar,
        str(meal_id),
        recurrence_id="2024-06-02",
        recurrence_range="THISANDFUTURE",
        event=event(
            "Brunch",
            "2024-06-02T08:30:00-05:00",
            "2024-06-02T08:31:00-05:00",
            shown[0]["description"],
            rrule="FREQ=DAILY",
        ),
    )
    assert reply["success"], reply
    # This and future occurrences, none of them still to come before it: the whole meal
    # changes (its past is in the ledger), and keeps its id.
    assert [m.meal_id for m in hub.state.feeders[feeder.device_hid].meals] == [meal_id]
    assert meals(hub, feeder) == [("Brunch", 30600, 0.25, True)]
    assert await sync_after(feeder, since, last) == expected_sync(firmware, 1)
    assert held(feeder) == [(30600, 0.25, True)]
    assert feeder.schedule[0]["feeding_id"].endswith(f"_feed{meal_id}_8:30AM")

    since = len(feeder.commands)
    reply = await change(
        client,
        "update",
        calendar,
        str(meal_id),
        recurrence_id="2024-06-05",
        recurrence_range="THISANDFUTURE",
        event=event(
            "Brunch",
            "2024-06-05T08:30:00-05:00",
            "2024-06-05T08:31:00-05:00",
            "3/4 cup",
        ),
    )
    assert reply["success"], reply
    assert meals(hub, feeder) == [("Brunch", 30600, 0.75, True)]
    await sync_after(feeder, since, last)
    assert held(feeder) == [(30600, 0.75, True)]

    # A script that leaves the description out keeps the portion.
    since = len(feeder.commands)
    reply = await change(
        client,
        "update",
        calendar,
        str(meal_id),
        event=event(
            "Late brunch", "2024-06-05T09:00:00-05:00", "2024-06-05T09:01:00-05:00"
        ),
    )
    assert reply["success"], reply
    assert meals(hub, feeder) == [("Late brunch", 32400, 0.75, True)]
    await sync_after(feeder, since, last)
    assert held(feeder) == [(32400, 0.75, True)]

    since = len(feeder.commands)
    reply = await change(
        client,
        "delete",
        calendar,
        str(meal_id),
        recurrence_id="2024-06-07",
        recurrence_range="THISANDFUTURE",
    )
    assert reply["success"], reply
    assert meals(hub, feeder) == []
    # N = 0: no schedule_add (§7.5); the legacy command carries an empty list.
    assert await sync_after(feeder, since, last) == expected_sync(firmware, 0)
    if firmware == "2.8.0":
        assert feeder.commands[since + 2].payload == {"size": 0}
    else:
        assert feeder.commands[since + 1].payload == []
    assert feeder.schedule == []
    assert (
        await get_events(
            hass, calendar, "2024-06-02T00:00:00-05:00", "2024-06-09T00:00:00-05:00"
        )
        == []
    )
    assert feeder.protocol_errors == []


async def test_events_across_dst_change(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_client: ClientSessionGenerator,
) -> None:
    feeder, calendar = await start_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    breakfast = hub.meal_editor.add_meal(
        stored, name="Breakfast", time_s=7 * 3600, portion=0.25
    )
    hub.meal_editor.add_meal(
        stored, name="Dinner", time_s=18 * 3600 + 1800, portion=1.5
    )
    hub.meal_editor.add_meal(stored, name="Night", time_s=7140, portion=0.125)
    # Disabled meals are not shown.
    hub.meal_editor.add_meal(
        stored, name="Lunch", time_s=12 * 3600, portion=0.5, enabled=False
    )
    planned_long_ago(hub, feeder)

    # America/Chicago falls back at 02:00 CDT on 2024-11-03: 01:59 happens twice then and
    # the meal is at the first. Ending at 01:00 CST would be before its start on the wall
    # clock, which HA refuses; it ends at the next wall-clock minute.
    events = await get_events(
        hass, calendar, "2024-11-02T00:00:00-05:00", "2024-11-05T00:00:00-06:00"
    )
    assert [(e["summary"], e["start"], e["end"]) for e in events] == [
        ("Night", "2024-11-02T01:59:00-05:00", "2024-11-02T02:00:00-05:00"),
        ("Breakfast", "2024-11-02T07:00:00-05:00", "2024-11-02T07:01:00-05:00"),
        ("Dinner", "2024-11-02T18:30:00-05:00", "2024-11-02T18:31:00-05:00"),
        ("Night", "2024-11-03T01:59:00-05:00", "2024-11-03T02:00:00-06:00"),
        ("Breakfast", "2024-11-03T07:00:00-06:00", "2024-11-03T07:01:00-06:00"),
        ("Dinner", "2024-11-03T18:30:00-06:00", "2024-11-03T18:31:00-06:00"),
        ("Night", "2024-11-04T01:59:00-06:00", "2024-11-04T02:00:00-06:00"),
        ("Breakfast", "2024-11-04T07:00:00-06:00", "2024-11-04T07:01:00-06:00"),
        ("Dinner", "2024-11-04T18:30:00-06:00", "2024-11-04T18:31:00-06:00"),
    ]
    # Long past: nothing was dispensed.
    assert {e["description"] for e in events if e["summary"] == "Dinner"} == {
        "1 1/2 cups\n\n— Missed"
    }

    # The calendar card's API also carries uid, recurrence id and the daily rule.
    client = await hass_client()
    response = await client.get(
        f"/api/calendars/{calendar}",
        params={
            "start": "2024-11-03T00:00:00-05:00",
            "end": "2024-11-04T00:00:00-06:00",
        },
    )
    assert response.status == 200
    card = await response.json()
    assert [
        (e["summary"], e["uid"], e["recurrence_id"], e["rrule"], e["start"])
        for e in card
    ][:2] == [
        (
            "Night",
            str(breakfast.meal_id + 2),
            "2024-11-03",
            "FREQ=DAILY",
            {"dateTime": "2024-11-03T01:59:00-05:00"},
        ),
        (
            "Breakfast",
            str(breakfast.meal_id),
            "2024-11-03",
            "FREQ=DAILY",
            {"dateTime": "2024-11-03T07:00:00-06:00"},
        ),
    ]
    assert len(card) == 3


@pytest.mark.freeze_time("2024-06-01 17:00:00", real_asyncio=True)
async def test_meal_status(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    # Frozen at 12:00:00 CDT.
    feeder, calendar = await start_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    add_meals(
        hub,
        stored,
        (
            ("Breakfast", "07:00", 0.25),
            ("Snack", "09:00", 0.125),
            ("Elevenses", "10:00", 0.125),
            ("Brunch", "11:00", 0.125),
            ("Lunch", "12:00", 0.125),
            ("Dinner", "18:30", 0.25),
            ("Supper", "20:00", 0.25, False),
        ),
    )
    planned_long_ago(hub, feeder)

    def at(hhmm_ss: str) -> int:
        moment = datetime.fromisoformat(f"2024-06-01T{hhmm_ss}").replace(
            tzinfo=ZoneInfo(CHICAGO)
        )
        return int(moment.timestamp())

    await feeder.send_feed_result(stime=at("07:00:03"), portion=0.25, src=6)
    await feeder.send_feed_result(stime=at("08:00:00"), portion=0.0625, src=4)
    await feeder.send_feed_result(
        stime=at("09:00:10"), portion=0.125, src=6, fail=True, err="Motor jam"
    )
    await feeder.send_feed_result(stime=at("10:00:05"), portion=0.125, src=6, fail=True)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 4)
    skipped, _ = hub.meal_editor.skip_next_meal(stored)
    assert skipped.name == "Dinner"

    events = await get_events(
        hass, calendar, "2024-06-01T00:00:00-05:00", "2024-06-03T00:00:00-05:00"
    )
    today = [(e["summary"], e["description"]) for e in events[:6]]
    assert today == [
        ("Breakfast", "1/4 cup\n\n— Dispensed on time · 30.4 g"),
        ("Snack", "1/8 cup\n\n— Failed: Motor jam"),
        ("Elevenses", "1/8 cup\n\n— Failed: unknown error"),
        ("Brunch", "1/8 cup\n\n— Missed"),
        ("Lunch", "1/8 cup\n\n— Due"),
        ("Dinner", "1/4 cup\n\n— Skipped"),
    ]
    assert [e["start"][:10] for e in events] == ["2024-06-01"] * 6 + ["2024-06-02"] * 6
    assert {e["description"].splitlines()[-1] for e in events[6:]} == {"— Upcoming"}

    # The entity's state: the meal happening now (12:00 <= now < 12:01).
    state = hass.states.get(calendar)
    assert state is not None
    assert state.state == STATE_ON
    assert state.attributes["message"] == "Lunch"
    assert state.attributes["description"] == "1/8 cup\n\n— Due"
    assert state.attributes["start_time"] == "2024-06-01 12:00:00"
    assert state.attributes["end_time"] == "2024-06-01 12:01:00"

    # Lunch is removed while it is due: the feeder may be dispensing it, and deleting a meal
    # never rewrites what was due. Today's Lunch stays; tomorrow's is gone.
    lunch = next(m for m in stored.meals if m.name == "Lunch")
    hub.meal_editor.remove_meal(stored, lunch.meal_id)
    state = hass.states.get(calendar)
    assert state is not None
    assert (state.state, state.attributes["message"]) == (STATE_ON, "Lunch")
    events = await get_events(
        hass, calendar, "2024-06-01T00:00:00-05:00", "2024-06-03T00:00:00-05:00"
    )
    lunches = [e["start"] for e in events if e["summary"] == "Lunch"]
    assert lunches == ["2024-06-01T12:00:00-05:00"]

    # Once Lunch's minute is over, the next meal is the (skipped) Dinner.
    freezer.tick(60)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    state = hass.states.get(calendar)
    assert state is not None
    assert state.state == STATE_OFF
    assert state.attributes["message"] == "Dinner"
    assert state.attributes["description"] == "1/4 cup\n\n— Skipped"


@pytest.mark.parametrize(
    ("changes", "key", "placeholders"),
    [
        (
            {"rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"},
            "unsupported_recurrence",
            {"rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"},
        ),
        (
            {"rrule": "FREQ=MONTHLY;BYDAY=1MO"},
            "unsupported_recurrence",
            {"rrule": "FREQ=MONTHLY;BYDAY=1MO"},
        ),
        (
            {"rrule": "FREQ=DAILY;INTERVAL=2"},
            "unsupported_recurrence",
            {"rrule": "FREQ=DAILY;INTERVAL=2"},
        ),
        (
            {"rrule": "FREQ=DAILY;UNTIL=20240701T000000Z"},
            "meal_in_the_past",
            {"date": "2024-06-30"},
        ),
        (
            {"rrule": "FREQ=DAILY;BYHOUR=7,19"},
            "unsupported_recurrence",
            {"rrule": "FREQ=DAILY;BYHOUR=7,19"},
        ),
        ({"description": "3 cups"}, "invalid_portion", {"portion": "3.0"}),
        (
            {"description": "lots of food"},
            "invalid_portion_text",
            {"text": "lots of food"},
        ),
        (
            {"start": "2024-06-01", "end": "2024-06-02"},
            "meal_needs_time",
            {},
        ),
        ({"summary": "x" * 65}, "invalid_meal_name", {"max": "64"}),
    ],
)
async def test_refused_create_changes_nothing(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
    changes: dict[str, Any],
    key: str,
    placeholders: dict[str, str],
) -> None:
    feeder, calendar = await start_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    hub.meal_editor.add_meal(stored, name="Breakfast", time_s=25200, portion=0.25)
    await feeder.wait_for_command("schedule_mod_end")
    await wait_for_feeder(hub, feeder.device_hid, lambda f: not f.sync_pending)
    before = (list(stored.meals), stored.next_meal_id)
    client = await hass_ws_client(hass)

    data = {
        "summary": "Dinner",
        "start": "2024-06-01T18:00:00-05:00",
        "end": "2024-06-01T18:01:00-05:00",
        "description": "1/4 cup",
        **changes,
    }
    reply = await create(client, calendar, **data)
    assert not reply["success"]
    assert reply["error"] == {
        "code": "failed",
        "message": error_text(key, **placeholders),
    }
    assert (list(stored.meals), stored.next_meal_id) == before
    assert not stored.sync_pending


async def test_refused_update_and_delete_change_nothing(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    feeder, calendar = await start_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    meal = hub.meal_editor.add_meal(
        stored, name="Breakfast", time_s=25200, portion=0.25
    )
    await feeder.wait_for_command("schedule_mod_end")
    await wait_for_feeder(hub, feeder.device_hid, lambda f: not f.sync_pending)
    before = list(stored.meals)
    client = await hass_ws_client(hass)
    good = event("Brunch", "2024-06-01T09:00:00-05:00", "2024-06-01T09:01:00-05:00")

    for uid in ("999", "breakfast", "0_1"):
        reply = await change(
            client,
            "update",
            calendar,
            uid,
            event=good,
        )
        assert reply["error"] == {
            "code": "failed",
            "message": error_text("unknown_meal", meal_id=uid),
        }
        reply = await change(client, "delete", calendar, uid)
        assert reply["error"]["message"] == error_text("unknown_meal", meal_id=uid)

    reply = await change(
        client,
        "update",
        calendar,
        str(meal.meal_id),
        event={**good, "rrule": "FREQ=MONTHLY;BYMONTHDAY=1"},
    )
    assert reply["error"]["message"] == error_text(
        "unsupported_recurrence", rrule="FREQ=MONTHLY;BYMONTHDAY=1"
    )
    reply = await change(
        client,
        "update",
        calendar,
        str(meal.meal_id),
        event={**good, "description": "a bowl\nor two"},
    )
    assert reply["error"]["message"] == error_text(
        "invalid_portion_text", text="a bowl or two"
    )

    # A rule HA itself cannot read is refused before it reaches the calendar.
    reply = await create(
        client,
        calendar,
        summary="Dinner",
        start="2024-06-01T18:00:00-05:00",
        end="2024-06-01T18:01:00-05:00",
        rrule="FREQ=DAILY;GARBAGE=1",
    )
    assert not reply["success"]
    # The calendar refuses such a rule too, whoever calls it.
    entity = hass.data[DATA_COMPONENT].get_entity(calendar)
    assert entity is not None
    for rrule in ("not a rule", "FREQ=DAILY;FREQ=DAILY", "FREQ=DAILY;INTERVAL=x"):
        with pytest.raises(ServiceValidationError) as err:
            await entity.async_create_event(
                summary="Dinner",
                dtstart=dt_util.parse_datetime("2024-06-01T18:00:00-05:00"),
                dtend=dt_util.parse_datetime("2024-06-01T18:01:00-05:00"),
                rrule=rrule,
            )
        assert err.value.translation_key == "unsupported_recurrence"

    assert stored.meals == before
    assert not stored.sync_pending


async def test_feeder_zone_differs_from_ha_zone(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    feeder, calendar = await start_feeder(hass, hub, make_feeder)
    hub.meal_editor.set_time_zone(hub.state.feeders[feeder.device_hid], "Europe/Berlin")
    client = await hass_ws_client(hass)
    reply = await create(
        client,
        calendar,
        summary="Breakfast",
        start="2024-06-01T07:00:00-05:00",
        end="2024-06-01T07:01:00-05:00",
        rrule="FREQ=DAILY",
    )
    assert reply["success"], reply
    # 07:00 in Chicago is 14:00 in Berlin, the feeder's zone.
    assert meals(hub, feeder) == [("Breakfast", 50400, 0.0625, True)]
    planned_long_ago(hub, feeder)
    events = await get_events(
        hass, calendar, "2024-06-01T00:00:00-05:00", "2024-06-02T00:00:00-05:00"
    )
    assert [e["start"] for e in events] == ["2024-06-01T07:00:00-05:00"]


async def test_editing_while_feeder_offline(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    feeder, calendar = await start_feeder(hass, hub, make_feeder)
    await feeder.disconnect()
    assert not hub.state.is_connected(feeder.gateway_hid)
    # Nothing heard for 10 minutes: the feeder's entities become unavailable...
    hub.state.feeders[feeder.device_hid].last_seen = time.time() - 600
    hub.state.async_check_availability()
    voltage = entity_id(hass, "sensor", feeder.device_hid, "battery_voltage")
    await wait_for_state(hass, voltage, lambda s: s.state == STATE_UNAVAILABLE)
    # ...but its calendar stays usable: it is HA's data.
    state = hass.states.get(calendar)
    assert state is not None
    assert state.state != STATE_UNAVAILABLE

    client = await hass_ws_client(hass)
    since = await create_ok(
        client,
        calendar,
        feeder,
        summary="Breakfast",
        start="2024-06-01T07:00:00-05:00",
        end="2024-06-01T07:01:00-05:00",
        description="1/4 cup",
        rrule="FREQ=DAILY",
    )
    assert hub.state.feeders[feeder.device_hid].sync_pending
    assert hass.states.get(calendar).attributes["message"] == "Breakfast"

    # The reconciler delivers it when the feeder is back.
    await feeder.connect()
    assert await sync_after(feeder, since) == expected_sync("2.8.0", 1)
    assert held(feeder) == [(25200, 0.25, True)]
    await wait_for_feeder(hub, feeder.device_hid, lambda f: not f.sync_pending)


async def test_events_in_the_repeated_hour(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    """A feeder in UTC seen from HA in Chicago: meals on both passes of 01:00-02:00."""
    feeder, calendar = await start_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    hub.meal_editor.set_time_zone(stored, "UTC")
    for name, time_s in (("First", 6 * 3600 + 1800), ("Edge", 6 * 3600 + 3540)):
        hub.meal_editor.add_meal(stored, name=name, time_s=time_s, portion=0.25)
    hub.meal_editor.add_meal(
        stored, name="Second", time_s=7 * 3600 + 1800, portion=0.25
    )
    planned_long_ago(hub, feeder)

    events = await get_events(
        hass, calendar, "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-06:00"
    )
    assert [(e["summary"], e["start"], e["end"]) for e in events] == [
        ("First", "2024-11-03T01:30:00-05:00", "2024-11-03T01:31:00-05:00"),
        ("Edge", "2024-11-03T01:59:00-05:00", "2024-11-03T02:00:00-06:00"),
        ("Second", "2024-11-03T01:30:00-06:00", "2024-11-03T01:31:00-06:00"),
    ]


@pytest.mark.freeze_time("2024-06-02 15:00:00", real_asyncio=True)
async def test_days_before_a_meal_was_planned_are_not_missed(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    # Frozen at 10:00 CDT on June 2nd: breakfast (07:00) is added now, dinner was a day ago.
    feeder, calendar = await start_feeder(hass, hub, make_feeder)
    stored = hub.state.feeders[feeder.device_hid]
    june_1 = datetime(2024, 6, 1, 7, 0, 2, tzinfo=ZoneInfo(CHICAGO))
    await feeder.send_feed_result(stime=int(june_1.timestamp()), portion=0.25, src=6)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
    breakfast = hub.meal_editor.add_meal(
        stored, name="Breakfast", time_s=7 * 3600, portion=0.25
    )
    dinner = hub.meal_editor.add_meal(
        stored, name="Dinner", time_s=18 * 3600, portion=0.25
    )
    june_1_10 = datetime(2024, 6, 1, 10, 0, tzinfo=ZoneInfo(CHICAGO))
    meals_existed_since(stored, june_1_10, [dinner.meal_id])

    events = await get_events(
        hass, calendar, "2024-05-31T00:00:00-05:00", "2024-06-04T00:00:00-05:00"
    )
    shown = [(e["summary"], e["start"][:10], e["description"]) for e in events]
    assert shown == [
        # Breakfast did not exist on June 1st: adding it later does not rewrite that day,
        # and the dispense of that morning is no breakfast (it stays in the history).
        ("Dinner", "2024-06-01", "1/4 cup\n\n— Missed"),
        # Today's 07:00 had passed when breakfast was added: not missed, not shown.
        ("Dinner", "2024-06-02", "1/4 cup\n\n— Upcoming"),
        ("Breakfast", "2024-06-03", "1/4 cup\n\n— Upcoming"),
        ("Dinner", "2024-06-03", "1/4 cup\n\n— Upcoming"),
    ]
    assert breakfast.meal_id in stored.meal_since
