"""What a new owner sees in the first hour.

Portions as cups in the user's language, whole percentages, the front button, the calendar's
text, refusals that say why, and a Schedule problem only when a delivery is late.
"""

from __future__ import annotations

from datetime import datetime
import json
from pathlib import Path
import re
from typing import Any
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant, State, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.translation import async_get_translations
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.petnet_feeder.calendar_mapping import (
    event_description,
    portion_from,
    result_text,
)
from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.errors import InvalidRequestError, invalid
from custom_components.petnet_feeder.feeder_clock import FeederClock
from custom_components.petnet_feeder.feeder_view import DELIVERY_GRACE
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.meal_editor import MealEditor
from custom_components.petnet_feeder.meals import format_portion
from custom_components.petnet_feeder.models import Feeder
from custom_components.petnet_feeder.protocol.messages import FeedResult
from custom_components.petnet_feeder.select import PORTION_OPTIONS

from .helpers.entities import entity_id, wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory, wait_for_feeder

DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"
# A feeder HA knows but that never connects (no simulator behind it).
SILENT_HID = "0123456789abcdef0123456789abcdef01234567"
SILENT_GW = "fedcba9876543210fedcba9876543210fedcba98"
ICONS = Path(__file__).parent.parent / "custom_components" / DOMAIN / "icons.json"


def no_grams(grams: float) -> float:
    raise AssertionError(f"no grams expected, got {grams}")


# ---------------------------------------------------------------------- pure


# hassfest's rule for translation keys, which the states of a select must follow.
TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")


def test_portion_options_are_translation_keys_named_after_cups() -> None:
    options = list(PORTION_OPTIONS)
    assert options[:5] == ["1_16_cup", "1_8_cup", "3_16_cup", "1_4_cup", "5_16_cup"]
    assert options[15:17] == ["1_cup", "1_1_16_cups"]
    assert options[-1] == "2_cups"
    assert len(options) == 32
    assert PORTION_OPTIONS["3_16_cup"] == 0.1875
    assert [o for o in options if not TRANSLATION_KEY.match(o)] == []


@pytest.mark.parametrize(
    ("language", "labels"),
    [
        ("en", ("1/16 cup", "1/4 cup", "1 cup", "1 1/4 cups", "2 cups")),
        ("de", ("1/16 Tasse", "1/4 Tasse", "1 Tasse", "1 1/4 Tassen", "2 Tassen")),
        ("fr", ("1/16 tasse", "1/4 tasse", "1 tasse", "1 1/4 tasse", "2 tasses")),
        ("nl", ("1/16 kop", "1/4 kop", "1 kop", "1 1/4 kop", "2 kop")),
        ("es", ("1/16 taza", "1/4 taza", "1 taza", "1 1/4 tazas", "2 tazas")),
    ],
)
async def test_portion_options_are_shown_in_the_users_language(
    hass: HomeAssistant, language: str, labels: tuple[str, ...]
) -> None:
    """The frontend shows a select's options through the state translations."""
    assert await async_setup_component(hass, DOMAIN, {})
    loaded = await async_get_translations(hass, language, "entity", {DOMAIN})
    prefix = f"component.{DOMAIN}.entity.select.manual_portion.state."
    options = ("1_16_cup", "1_4_cup", "1_cup", "1_1_4_cups", "2_cups")
    assert tuple(loaded[prefix + option] for option in options) == labels
    # Every option has its label, and the English one is the text the calendar reads.
    assert {key for key in loaded if key.startswith(prefix)} == {
        prefix + option for option in PORTION_OPTIONS
    }
    if language == "en":
        assert [loaded[prefix + o] for o in PORTION_OPTIONS] == [
            format_portion(cups) for cups in PORTION_OPTIONS.values()
        ]


def test_event_description_puts_the_status_in_its_own_paragraph() -> None:
    description = event_description("1/16 cup", "Dispensed on time · 7.6 g")
    assert description == "1/16 cup\n\n— Dispensed on time · 7.6 g"
    # Home Assistant's event dialog (frontend 20250411.0 of HA 2025.4 and 20260128.6 of
    # HA 2026.2) shows the description as HTML text, which runs the lines together: the
    # dash keeps the two parts apart there too.
    assert " ".join(description.split()) == "1/16 cup — Dispensed on time · 7.6 g"


MEAL_TIME = datetime(2024, 6, 1, 7, 0, tzinfo=ZoneInfo("America/Chicago"))


def dispense(offset_s: float, grams: float | None = 7.6) -> FeedResult:
    """A dispense that started ``offset_s`` seconds after the meal's time."""
    start_ms = round((MEAL_TIME.timestamp() + offset_s) * 1000)
    return FeedResult(
        device_hid=SILENT_HID,
        start_ms=start_ms,
        end_ms=start_ms + 5000,
        pour=None,
        full=None,
        grams_expected=grams,
        grams_actual=grams,
        hopper_start=None,
        hopper_end=None,
        source=6,
        fail=False,
        trip=None,
        lrg=None,
        vol=None,
        bowl=None,
        recipe_id=None,
        error=None,
    )


@pytest.mark.parametrize(
    ("offset_s", "text"),
    [
        (0, "Dispensed on time · 7.6 g"),
        (59.9, "Dispensed on time · 7.6 g"),
        (60, "Dispensed 1 min late · 7.6 g"),
        (190, "Dispensed 3 min late · 7.6 g"),
        (-1, "Dispensed 1 min early · 7.6 g"),
        (-150, "Dispensed 3 min early · 7.6 g"),
        (3600 + 5 * 60 + 10, "Dispensed 1 h 5 min late · 7.6 g"),
        (2 * 3600, "Dispensed 2 h late · 7.6 g"),
    ],
)
def test_a_dispense_is_told_against_the_meals_time(offset_s: float, text: str) -> None:
    """No clock time: the event shows the meal's time in the user's own format already."""
    assert result_text(dispense(offset_s), failed=False, target=MEAL_TIME) == text


def test_a_dispense_without_grams_and_a_failure() -> None:
    assert (
        result_text(dispense(30, grams=None), failed=False, target=MEAL_TIME)
        == "Dispensed on time"
    )
    assert (
        result_text(dispense(30), failed=True, target=MEAL_TIME)
        == "Failed: unknown error"
    )


@pytest.mark.parametrize(
    ("description", "portion"),
    [
        # What the calendar shows, sent back unchanged: only the portion is read.
        ("1/4 cup\n\n— Dispensed on time · 30.4 g", 0.25),
        ("1/4 cup\n\n— Missed", 0.25),
        # A later line never overrides the first, even one that reads as a portion.
        ("1/4 cup\n\nportion: 2 cups", 0.25),
        ("\n  1/8 cup  \nnotes", 0.125),
        ("", 0.0625),
        ("  \n ", 0.0625),
    ],
)
def test_only_the_first_line_is_the_portion(description: str, portion: float) -> None:
    assert portion_from(description, 0.0625, no_grams) == portion


@pytest.mark.parametrize("text", ["20 g", "20g", "20 grams", "portion: 20 G"])
def test_grams_go_through_the_converter(text: str) -> None:
    assert portion_from(f"{text}\n\nUpcoming", 0.0625, lambda g: g / 160) == 0.125


def test_grams_refusal_comes_from_the_converter() -> None:
    def refuse(grams: float) -> float:
        raise invalid("grams_need_density", text=f"{grams:g} g", name="Kibble")

    with pytest.raises(InvalidRequestError) as caught:
        portion_from("20 g", 0.0625, refuse)
    assert caught.value.translation_key == "grams_need_density"


class NoSync:
    def request_sync(self, *_args: Any, **_kwargs: Any) -> None:
        pass


def test_a_second_meal_at_the_same_minute_is_refused() -> None:
    editor = MealEditor(clock=FeederClock(lambda: "UTC", 5), sync=NoSync())  # type: ignore[arg-type]
    feeder = Feeder(hid=SILENT_HID, gateway_hid=SILENT_GW, name="Kibble")
    breakfast = editor.add_meal(feeder, name="Breakfast", time_s=7 * 3600, portion=0.25)
    dinner = editor.add_meal(feeder, name="Dinner", time_s=18 * 3600, portion=0.25)

    with pytest.raises(InvalidRequestError) as caught:
        # Seconds are dropped: 07:00:30 is the minute of breakfast.
        editor.add_meal(feeder, name="Second", time_s=7 * 3600 + 30, portion=0.125)
    assert caught.value.translation_key == "meal_time_taken"
    assert caught.value.placeholders == {
        "name": feeder.display_name,
        "meal": "Breakfast",
        "time": "07:00",
    }
    with pytest.raises(InvalidRequestError) as caught:
        editor.update_meal(feeder, dinner.meal_id, time_s=7 * 3600)
    assert caught.value.placeholders["meal"] == "Breakfast"
    assert [m.name for m in feeder.meals] == ["Breakfast", "Dinner"]

    # A meal keeps its own minute when something else changes.
    editor.update_meal(feeder, breakfast.meal_id, portion=0.5)
    assert feeder.meals[0].portion == 0.5


# ---------------------------------------------------------------------- entities


@pytest.fixture
async def hub(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> PetnetHub:
    """The loaded hub, with a fast debounce for feeders created from now on."""
    hub: PetnetHub = loaded_entry.runtime_data
    hub.sync.reconciler_options = {"debounce_s": 0.05, "pacing_s": 0}
    return hub


async def test_feed_now_portion_is_a_select_of_cups(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    registry = er.async_get(hass)
    # The number an earlier version made is removed when the feeder's entities are built.
    old = registry.async_get_or_create(
        Platform.NUMBER, DOMAIN, f"{DEV_HID}_manual_portion"
    )
    await make_feeder()
    select = await wait_for_entity(hass, "select", DEV_HID, "manual_portion")
    state = hass.states.get(select)
    assert state is not None
    assert state.state == "1_16_cup"  # the default portion, shown as "1/16 cup"
    assert state.attributes["options"][:4] == [
        "1_16_cup",
        "1_8_cup",
        "3_16_cup",
        "1_4_cup",
    ]
    assert registry.async_get(old.entity_id) is None

    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": select, "option": "1_1_4_cups"},
        blocking=True,
    )
    assert hub.state.feeders[DEV_HID].manual_portion == 1.25
    assert hass.states.get(select).state == "1_1_4_cups"  # type: ignore[union-attr]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_every_entity_without_a_device_class_has_its_icon(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    """icons.json names an icon for each entity that no device class gives one."""
    await make_feeder()
    await wait_for_entity(hass, "select", DEV_HID, "manual_portion")
    await hass.async_block_till_done()
    icons = json.loads(ICONS.read_text(encoding="utf-8"))["entity"]
    registry = er.async_get(hass)
    entries = er.async_entries_for_config_entry(registry, hub.entry.entry_id)
    missing = [
        f"{entry.domain}.{entry.translation_key}"
        for entry in entries
        if entry.original_device_class is None
        and entry.translation_key not in icons.get(entry.domain, {})
    ]
    assert len(entries) > 20
    assert missing == []


async def test_percentages_are_whole_numbers(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    await make_feeder()
    registry = er.async_get(hass)
    for key in ("hopper_level", "battery_level", "wifi_signal"):
        found = await wait_for_entity(hass, "sensor", DEV_HID, key)
        entry = registry.async_get(found)
        assert entry is not None
        assert entry.options["sensor"]["suggested_display_precision"] == 0, key


async def test_front_button_is_unknown_until_set_and_not_assumed(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    switch = await wait_for_entity(hass, "switch", DEV_HID, "front_button")
    state = await wait_for_state(hass, switch, lambda s: s.state == STATE_UNKNOWN)
    # HA's frontend (ha-entity-toggle) draws off/on buttons for a switch whose state is
    # assumed or unknown, and a single toggle otherwise: one toggle from the first use on.
    assert "assumed_state" not in state.attributes

    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": switch}, blocking=True
    )
    await feeder.wait_for_command("button_enable_remote")
    after = hass.states.get(switch)
    assert after is not None
    assert after.state == STATE_ON
    assert "assumed_state" not in after.attributes


async def create_meal(
    hass: HomeAssistant, calendar: str, description: str, start: str = "07:00"
) -> None:
    await hass.services.async_call(
        "calendar",
        "create_event",
        {
            "entity_id": calendar,
            "summary": "Breakfast",
            "description": description,
            "start_date_time": f"2030-01-01 {start}:00",
            "end_date_time": f"2030-01-01 {start[:3]}01:00",
        },
        blocking=True,
    )


async def test_calendar_takes_grams_with_a_food_density(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    await make_feeder()
    calendar = await wait_for_entity(hass, "calendar", DEV_HID, "meals")
    stored = hub.state.feeders[DEV_HID]

    with pytest.raises(ServiceValidationError) as caught:
        await create_meal(hass, calendar, "20 g")
    assert caught.value.translation_key == "grams_need_density"
    assert caught.value.translation_placeholders == {
        "text": "20 g",
        "name": stored.display_name,
    }
    assert stored.meals == []

    hub.actions.set_recipe(DEV_HID, g_per_tbsp=10)
    await create_meal(hass, calendar, "20 g")
    assert [m.portion for m in stored.meals] == [0.125]  # 2 tbsp


async def test_calendar_refuses_a_second_meal_at_a_taken_minute(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    await make_feeder()
    calendar = await wait_for_entity(hass, "calendar", DEV_HID, "meals")
    await create_meal(hass, calendar, "1/4 cup")
    with pytest.raises(ServiceValidationError) as caught:
        await create_meal(hass, calendar, "1/8 cup")
    assert caught.value.translation_key == "meal_time_taken"
    assert caught.value.translation_placeholders is not None
    assert caught.value.translation_placeholders["meal"] == "Breakfast"
    assert len(hub.state.feeders[DEV_HID].meals) == 1


async def test_an_edit_delivered_in_time_is_no_problem(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    sensor = await wait_for_entity(hass, "binary_sensor", DEV_HID, "schedule_sync")
    await wait_for_feeder(hub, DEV_HID, lambda f: not f.sync_pending)
    await wait_for_state(hass, sensor, lambda s: s.state == STATE_OFF)
    seen: list[str] = []

    @callback
    def changed(event: Any) -> None:
        new: State | None = event.data["new_state"]
        if new is not None:
            seen.append(new.state)

    unsub = async_track_state_change_event(hass, [sensor], changed)
    try:
        since = len(feeder.commands)
        stored = hub.state.feeders[DEV_HID]
        hub.meal_editor.add_meal(stored, name="Breakfast", time_s=25200, portion=0.25)
        assert stored.sync_pending
        assert stored.sync_owed_since is not None
        await feeder.wait_for_command("schedule_mod_end", since=since)
        await wait_for_feeder(hub, DEV_HID, lambda f: not f.sync_pending)
        await hass.async_block_till_done()
    finally:
        unsub()
    assert STATE_ON not in seen
    assert hass.states.get(sensor).state == STATE_OFF  # type: ignore[union-attr]
    assert hub.state.feeders[DEV_HID].sync_owed_since is None


async def silent_feeder(hass: HomeAssistant, hub: PetnetHub) -> tuple[Feeder, str]:
    """A feeder HA knows whose gateway never connects, and its Schedule sensor."""
    feeder = hub.state.add_feeder(SILENT_HID, SILENT_GW)
    sensor = await wait_for_entity(hass, "binary_sensor", SILENT_HID, "schedule_sync")
    await hass.async_block_till_done()
    return feeder, sensor


async def test_an_edit_for_a_feeder_without_a_session_is_a_problem_at_once(
    hass: HomeAssistant, hub: PetnetHub
) -> None:
    feeder, sensor = await silent_feeder(hass, hub)
    hub.meal_editor.add_meal(feeder, name="Breakfast", time_s=25200, portion=0.25)
    await hass.async_block_till_done()
    assert hass.states.get(sensor).state == STATE_ON  # type: ignore[union-attr]


@pytest.mark.freeze_time("2024-06-01T12:00:00+00:00")
async def test_a_delivery_late_by_a_minute_is_a_problem(
    hass: HomeAssistant,
    hub: PetnetHub,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feeder, sensor = await silent_feeder(hass, hub)
    # The feeder counts as connected, but the delivery never goes out (the transport has
    # no session for it): owed, and not late for a minute.
    monkeypatch.setattr(hub.state, "is_connected", lambda _gateway_hid: True)
    hub.meal_editor.add_meal(feeder, name="Breakfast", time_s=25200, portion=0.25)
    await hass.async_block_till_done()
    assert hass.states.get(sensor).state == STATE_OFF  # type: ignore[union-attr]

    freezer.tick(DELIVERY_GRACE.total_seconds() - 1)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(sensor).state == STATE_OFF  # type: ignore[union-attr]

    # The minute passes: nothing about the feeder changed, the sensor turns on by itself.
    freezer.tick(1)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(sensor).state == STATE_ON  # type: ignore[union-attr]
    assert entity_id(hass, "binary_sensor", SILENT_HID, "schedule_sync") == sensor


def test_a_new_schedule_with_two_meals_at_one_minute_is_refused() -> None:
    editor = MealEditor(clock=FeederClock(lambda: "UTC", 5), sync=NoSync())  # type: ignore[arg-type]
    feeder = Feeder(hid=SILENT_HID, gateway_hid=SILENT_GW)
    editor.add_meal(feeder, name="Old", time_s=9 * 3600, portion=0.25)
    with pytest.raises(InvalidRequestError) as caught:
        editor.set_schedule(
            feeder,
            [
                {"name": "Breakfast", "time_s": 7 * 3600, "portion": 0.25},
                {"name": "Second", "time_s": 7 * 3600, "portion": 0.25},
            ],
        )
    assert caught.value.placeholders["meal"] == "Breakfast"
    assert [m.name for m in feeder.meals] == ["Old"]
    # The meals it replaces do not count: the new schedule may use their minutes.
    editor.set_schedule(feeder, [{"name": "New", "time_s": 9 * 3600, "portion": 0.5}])
    assert [m.name for m in feeder.meals] == ["New"]
