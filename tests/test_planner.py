"""The meal planner: weekly and one-off meals, exceptions, and one day's meals on the feeder.

HA in Chicago; the clock stands at 06:59:30 on Saturday 2024-06-01, with a one-minute grace
period, so a 07:00 meal has passed (for the day plan) at 07:01.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.petnet_feeder.const import CONF_GRACE_MINUTES, DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.protocol.messages import SOURCE_SCHEDULE
from custom_components.petnet_feeder.sensor import _feed_plan
from feeder_sim import SimulatedFeeder

from .helpers.calendar import get_events
from .helpers.entities import entity_id, wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory, device_id
from .helpers.feeding import AT_MORNING, advance, chicago_feeder

pytestmark = AT_MORNING

SATURDAY = dt.date(2024, 6, 1)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps short."""
    return {CONF_GRACE_MINUTES: 1}


def chicago(day: dt.date, hhmm: str) -> str:
    """An ISO instant at a wall time in Chicago (June: CDT)."""
    return f"{day.isoformat()}T{hhmm}:00-05:00"


def day_range(day: dt.date) -> tuple[str, str]:
    return chicago(day, "00:00"), chicago(day + dt.timedelta(days=1), "00:00")


def held(feeder: SimulatedFeeder) -> list[tuple[int, float, bool]]:
    return [(e["time"], e["portion"], e["active"]) for e in feeder.schedule]


async def ws(client: Any, message: dict[str, Any]) -> dict[str, Any]:
    await client.send_json_auto_id(message)
    reply: dict[str, Any] = await client.receive_json()
    return reply


def event(summary: str, start: str, description: str, **extra: Any) -> dict[str, Any]:
    end = dt.datetime.fromisoformat(start) + dt.timedelta(minutes=1)
    return {
        "summary": summary,
        "dtstart": start,
        "dtend": end.isoformat(),
        "description": description,
        **extra,
    }


async def synced(hass: HomeAssistant, hub: PetnetHub, feeder: SimulatedFeeder) -> None:
    """Deliver the edits at once (the debounce timer does not run on a frozen clock)."""
    await hass.services.async_call(
        DOMAIN, "sync_schedule", {"device_id": device_id(hass, feeder)}, blocking=True
    )
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()


async def calendar_of(hass: HomeAssistant, feeder: SimulatedFeeder) -> str:
    return await wait_for_entity(hass, "calendar", feeder.device_hid, "meals")


async def shown(
    hass: HomeAssistant, feeder: SimulatedFeeder, day: dt.date
) -> list[tuple[str, str]]:
    calendar = await calendar_of(hass, feeder)
    return [
        (e["summary"], e["start"][11:16])
        for e in await get_events(hass, calendar, *day_range(day))
    ]


async def planner_feeder(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    client: Any,
    *meals: dict[str, Any],
) -> SimulatedFeeder:
    feeder = await chicago_feeder(hass, make_feeder)
    calendar = await calendar_of(hass, feeder)
    for meal in meals:
        reply = await ws(
            client,
            {"type": "calendar/event/create", "entity_id": calendar, "event": meal},
        )
        assert reply["success"], reply
    await synced(hass, hub, feeder)
    return feeder


BREAKFAST = event(
    "Breakfast", chicago(SATURDAY, "07:00"), "1/4 cup", rrule="FREQ=DAILY"
)
SUNDAY = SATURDAY + dt.timedelta(days=1)
# Ten minutes before Saturday's supper.
EVENING = pytest.mark.freeze_time("2024-06-02T04:19:30+00:00", real_asyncio=True)


@EVENING
async def test_weekly_meals_reach_the_feeder_after_the_last_meal_of_the_day_before(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    client = await hass_ws_client(hass)
    feeder = await planner_feeder(
        hass,
        hub,
        make_feeder,
        client,
        event("Supper", chicago(SATURDAY, "23:30"), "1/4 cup", rrule="FREQ=DAILY"),
        event(
            "Sunday snack",
            chicago(SUNDAY, "00:20"),
            "1/2 cup",
            rrule="FREQ=WEEKLY;BYDAY=SU",
        ),
        event(
            "Sunday late snack",
            chicago(SUNDAY, "23:45"),
            "1/8 cup",
            rrule="FREQ=WEEKLY;BYDAY=SU",
        ),
    )
    stored = hub.state.feeders[feeder.device_hid]
    assert [(m.name, m.weekdays) for m in stored.meals] == [
        ("Sunday snack", frozenset({6})),
        ("Supper", None),
        ("Sunday late snack", frozenset({6})),
    ]
    # Saturday: the feeder holds Saturday's supper only.
    assert held(feeder) == [(84600, 0.25, True)]
    delivered = entity_id(
        hass, "binary_sensor", feeder.device_hid, "tomorrow_delivered"
    )
    await wait_for_state(hass, delivered, lambda s: s.state == STATE_OFF)
    assert await shown(hass, feeder, SATURDAY) == [("Supper", "23:30")]
    # The schedule card's plan is today's: Saturday's supper (4 tbsp, pending).
    supper_id = stored.meals[1].meal_id
    assert _feed_plan(hub.view(stored)) == f"{supper_id},23,30,4,2"
    assert await shown(hass, feeder, SUNDAY) == [
        ("Sunday snack", "00:20"),
        ("Supper", "23:30"),
        ("Sunday late snack", "23:45"),
    ]

    # 23:31: Saturday's last meal has passed. Sunday's meals go out; the late snack would
    # fire at 23:45 tonight, so it is held inactive until that has passed.
    await advance(hass, freezer, 12 * 60, feeder)
    assert held(feeder) == [
        (1200, 0.5, True),
        (84600, 0.25, True),
        (85500, 0.125, False),
    ]
    await wait_for_state(hass, delivered, lambda s: s.state == STATE_ON)
    await advance(hass, freezer, 15 * 60, feeder)
    assert held(feeder) == [
        (1200, 0.5, True),
        (84600, 0.25, True),
        (85500, 0.125, True),
    ]

    # Sunday 00:21: the snack was dispensed once, and only on Sunday.
    await advance(hass, freezer, 35 * 60, feeder)
    assert [(r["portion"], r["src"]) for r in feeder.dispense_log] == [
        (0.25, SOURCE_SCHEDULE),
        (0.5, SOURCE_SCHEDULE),
    ]
    calendar = await calendar_of(hass, feeder)
    snack = [
        e["description"].splitlines()[-1]
        for e in await get_events(hass, calendar, *day_range(SUNDAY))
        if e["summary"] == "Sunday snack"
    ]
    assert snack[0].startswith("— Dispensed on time")


async def test_a_one_off_meal_from_the_calendar_action_happens_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
) -> None:
    client = await hass_ws_client(hass)
    feeder = await planner_feeder(hass, hub, make_feeder, client, BREAKFAST)
    calendar = await calendar_of(hass, feeder)
    # HA's calendar.create_event has no repeat: a one-off meal, Saturday 08:00.
    await hass.services.async_call(
        "calendar",
        "create_event",
        {
            "entity_id": calendar,
            "summary": "Vet treat",
            "description": "1/8 cup",
            "start_date_time": "2024-06-01 08:00:00",
            "end_date_time": "2024-06-01 08:01:00",
        },
        blocking=True,
    )
    await synced(hass, hub, feeder)
    stored = hub.state.feeders[feeder.device_hid]
    treat = stored.meals[-1]
    assert (treat.name, treat.first_date, treat.last_date) == (
        "Vet treat",
        SATURDAY,
        SATURDAY,
    )
    assert held(feeder) == [(25200, 0.25, True), (28800, 0.125, True)]
    assert await shown(hass, feeder, SATURDAY + dt.timedelta(days=1)) == [
        ("Breakfast", "07:00")
    ]
    # The event has no repeat rule and no recurrence id.
    http = await hass_client()
    card = await (
        await http.get(
            f"/api/calendars/{calendar}",
            params=dict(zip(("start", "end"), day_range(SATURDAY), strict=True)),
        )
    ).json()
    assert [(e["summary"], e["rrule"], e["recurrence_id"]) for e in card] == [
        ("Breakfast", "FREQ=DAILY", "2024-06-01"),
        ("Vet treat", None, None),
    ]

    # 08:01: the treat was the day's last meal; the feeder holds Sunday's (breakfast).
    await advance(hass, freezer, 62 * 60, feeder)
    assert [r["portion"] for r in feeder.dispense_log] == [0.25, 0.125]
    assert held(feeder) == [(25200, 0.25, True)]


async def test_this_event_changes_or_deletes_one_date_only(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    client = await hass_ws_client(hass)
    feeder = await planner_feeder(hass, hub, make_feeder, client, BREAKFAST)
    calendar = await calendar_of(hass, feeder)
    stored = hub.state.feeders[feeder.device_hid]
    breakfast = stored.meals[0]
    monday = SATURDAY + dt.timedelta(days=2)
    tuesday = monday + dt.timedelta(days=1)

    # Monday's breakfast moves to 09:00 and gets more food: Monday only.
    reply = await ws(
        client,
        {
            "type": "calendar/event/update",
            "entity_id": calendar,
            "uid": str(breakfast.meal_id),
            "recurrence_id": monday.isoformat(),
            "event": event(
                "Late breakfast",
                chicago(monday, "09:00"),
                "1/2 cup",
                rrule="FREQ=DAILY",
            ),
        },
    )
    assert reply["success"], reply
    assert await shown(hass, feeder, monday - dt.timedelta(days=1)) == [
        ("Breakfast", "07:00")
    ]
    assert await shown(hass, feeder, monday) == [("Late breakfast", "09:00")]
    assert await shown(hass, feeder, tuesday) == [("Breakfast", "07:00")]
    assert stored.meals[0].except_dates == frozenset({monday})
    assert stored.meals[0].meal_id == breakfast.meal_id

    # Tuesday's breakfast is deleted: Tuesday only.
    reply = await ws(
        client,
        {
            "type": "calendar/event/delete",
            "entity_id": calendar,
            "uid": str(breakfast.meal_id),
            "recurrence_id": tuesday.isoformat(),
        },
    )
    assert reply["success"], reply
    assert await shown(hass, feeder, tuesday) == []
    assert await shown(hass, feeder, tuesday + dt.timedelta(days=1)) == [
        ("Breakfast", "07:00")
    ]

    # A past occurrence is in the ledger: it cannot be changed any more.
    await synced(hass, hub, feeder)
    reply = await ws(
        client,
        {
            "type": "calendar/event/delete",
            "entity_id": calendar,
            "uid": str(breakfast.meal_id),
            "recurrence_id": "2024-05-31",
        },
    )
    assert not reply["success"]
    assert "The meal of 2024-05-31 has passed" in reply["error"]["message"]


async def test_this_and_future_events_split_the_meal_or_change_it_whole(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
) -> None:
    client = await hass_ws_client(hass)
    feeder = await planner_feeder(hass, hub, make_feeder, client, BREAKFAST)
    calendar = await calendar_of(hass, feeder)
    stored = hub.state.feeders[feeder.device_hid]
    breakfast_id = stored.meals[0].meal_id
    wednesday = SATURDAY + dt.timedelta(days=4)

    # From Wednesday on, breakfast is at 08:00 on weekdays only.
    reply = await ws(
        client,
        {
            "type": "calendar/event/update",
            "entity_id": calendar,
            "uid": str(breakfast_id),
            "recurrence_id": wednesday.isoformat(),
            "recurrence_range": "THISANDFUTURE",
            "event": event(
                "Breakfast",
                chicago(wednesday, "08:00"),
                "1/4 cup",
                rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            ),
        },
    )
    assert reply["success"], reply
    first, second = stored.meals
    assert (first.meal_id, first.last_date) == (
        breakfast_id,
        wednesday - dt.timedelta(1),
    )
    assert (second.first_date, second.weekdays) == (wednesday, frozenset(range(5)))
    assert await shown(hass, feeder, wednesday - dt.timedelta(days=1)) == [
        ("Breakfast", "07:00")
    ]
    assert await shown(hass, feeder, wednesday) == [("Breakfast", "08:00")]
    saturday_after = SATURDAY + dt.timedelta(days=7)
    assert await shown(hass, feeder, saturday_after) == []
    http = await hass_client()
    card = await (
        await http.get(
            f"/api/calendars/{calendar}",
            params=dict(zip(("start", "end"), day_range(SATURDAY), strict=True)),
        )
    ).json()
    assert [e["rrule"] for e in card] == ["FREQ=DAILY;UNTIL=20240604"]

    # Deleting this and future from Friday ends the weekday breakfast on Thursday.
    friday = wednesday + dt.timedelta(days=2)
    reply = await ws(
        client,
        {
            "type": "calendar/event/delete",
            "entity_id": calendar,
            "uid": str(second.meal_id),
            "recurrence_id": friday.isoformat(),
            "recurrence_range": "THISANDFUTURE",
        },
    )
    assert reply["success"], reply
    assert stored.meals[1].last_date == friday - dt.timedelta(days=1)
    assert await shown(hass, feeder, friday) == []

    # From today's (next) breakfast on: nothing of it is still to come before, so the
    # whole meal changes and keeps its id (its past stays in the ledger).
    reply = await ws(
        client,
        {
            "type": "calendar/event/update",
            "entity_id": calendar,
            "uid": str(breakfast_id),
            "recurrence_id": SATURDAY.isoformat(),
            "recurrence_range": "THISANDFUTURE",
            "event": event(
                "Breakfast", chicago(SATURDAY, "07:15"), "1/4 cup", rrule="FREQ=DAILY"
            ),
        },
    )
    assert reply["success"], reply
    assert stored.meals[0].meal_id == breakfast_id
    assert (stored.meals[0].time_s, stored.meals[0].last_date) == (26100, None)


async def test_each_day_of_a_legacy_feeder_must_fit_its_one_command(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    await hass.config.async_set_time_zone("America/Chicago")
    feeder = await make_feeder(firmware="2.3.2")
    target = {"device_id": device_id(hass, feeder)}

    async def add(name: str, time: str, weekdays: list[str]) -> None:
        await hass.services.async_call(
            DOMAIN,
            "add_meal",
            {
                **target,
                "name": name,
                "time": time,
                "portion": 0.25,
                "weekdays": weekdays,
            },
            blocking=True,
        )

    # Four meals on Mondays and four on Tuesdays: each day fits; the week would not.
    for hour in range(6, 10):
        await add(f"Monday {hour}", f"{hour:02d}:00", ["mon"])
        await add(f"Tuesday {hour}", f"{hour:02d}:30", ["tue"])
    stored = hub.state.feeders[feeder.device_hid]
    assert len(stored.meals) == 8
    with pytest.raises(ServiceValidationError) as caught:
        await add("Monday 11", "11:00", ["mon", "wed"])
    assert caught.value.translation_key == "legacy_schedule_too_long"
    assert len(stored.meals) == 8


async def test_the_calendar_names_a_meals_pet_and_sets_it_from_a_pet_line(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    client = await hass_ws_client(hass)
    feeder = await planner_feeder(hass, hub, make_feeder, client, BREAKFAST)
    calendar = await calendar_of(hass, feeder)
    mochi = await hass.services.async_call(
        DOMAIN,
        "add_pet",
        {"name": "Mochi", "species": "cat", "feeders": [device_id(hass, feeder)]},
        blocking=True,
        return_response=True,
    )
    assert mochi is not None
    stored = hub.state.feeders[feeder.device_hid]
    # A "Pet:" line (anywhere but the first, which is the portion) gives the meal its pet.
    reply = await ws(
        client,
        {
            "type": "calendar/event/create",
            "entity_id": calendar,
            "event": event(
                "Supper",
                chicago(SATURDAY, "18:00"),
                "1/4 cup\npet: mochi",
                rrule="FREQ=DAILY",
            ),
        },
    )
    assert reply["success"], reply
    supper = stored.meals[-1]
    assert supper.pet_id == mochi["pet_id"]
    events = await get_events(hass, calendar, *day_range(SATURDAY))
    shown = {e["summary"]: e["description"] for e in events}
    assert shown["Supper"].startswith("1/4 cup\nPet: Mochi\n\n— ")
    assert shown["Breakfast"].startswith("1/4 cup\n\n— ")

    # What the calendar shows goes back unchanged: the pet stays. Without the line, it goes.
    reply = await ws(
        client,
        {
            "type": "calendar/event/update",
            "entity_id": calendar,
            "uid": str(supper.meal_id),
            "event": event("Supper", chicago(SATURDAY, "18:30"), shown["Supper"]),
        },
    )
    assert reply["success"], reply
    assert (stored.meals[-1].time_s, stored.meals[-1].pet_id) == (
        66600,
        mochi["pet_id"],
    )
    reply = await ws(
        client,
        {
            "type": "calendar/event/update",
            "entity_id": calendar,
            "uid": str(supper.meal_id),
            "event": event("Supper", chicago(SATURDAY, "18:30"), "1/4 cup"),
        },
    )
    assert reply["success"], reply
    assert stored.meals[-1].pet_id is None

    # A pet this feeder does not feed is refused, naming those it does.
    reply = await ws(
        client,
        {
            "type": "calendar/event/update",
            "entity_id": calendar,
            "uid": str(supper.meal_id),
            "event": event("Supper", chicago(SATURDAY, "18:30"), "1/4 cup\nPet: Rex"),
        },
    )
    assert not reply["success"]
    assert "No pet called Rex" in reply["error"]["message"]
    assert "Mochi" in reply["error"]["message"]
    assert stored.meals[-1].pet_id is None


# Saturday 2024-11-02, 23:50 CDT: the clocks go back at 02:00 CDT on Sunday, so 01:00-02:00
# comes twice.
BEFORE_FALL_BACK = pytest.mark.freeze_time(
    "2024-11-03T04:50:00+00:00", real_asyncio=True
)


@BEFORE_FALL_BACK
async def test_a_weekly_meal_in_the_hour_that_comes_twice_is_delivered_and_fed_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    client = await hass_ws_client(hass)
    saturday = dt.date(2024, 11, 2)
    feeder = await planner_feeder(
        hass,
        hub,
        make_feeder,
        client,
        event("Supper", f"{saturday}T23:55:00-05:00", "1/4 cup", rrule="FREQ=DAILY"),
        event(
            "Night snack",
            f"{saturday + dt.timedelta(days=1)}T01:30:00-05:00",
            "1/8 cup",
            rrule="FREQ=WEEKLY;BYDAY=SU",
        ),
    )
    # Saturday holds its supper only; once it has passed, Sunday's meals (the snack's 01:30
    # has passed on Saturday, so it goes out active).
    assert held(feeder) == [(86100, 0.25, True)]
    await advance(hass, freezer, 7 * 60, feeder)
    assert held(feeder) == [(5400, 0.125, True), (86100, 0.25, True)]

    # Through the night: 01:30 CDT, the change at 02:00 CDT, 01:30 CST, until 02:35 CST.
    await advance(hass, freezer, (3 * 60 + 38) * 60, feeder)
    snacks = [r for r in feeder.dispense_log if r["portion"] == 0.125]
    assert [
        dt.datetime.fromtimestamp(r["stime"], dt.UTC).isoformat() for r in snacks
    ] == ["2024-11-03T06:30:00+00:00"]
    assert feeder.utc_offset == -6 * 3600
    # Monday has no snack: after Sunday's supper the feeder will hold the supper only, and
    # until then it holds Sunday's meals (the snack's hold is over).
    assert held(feeder) == [(5400, 0.125, True), (86100, 0.25, True)]
