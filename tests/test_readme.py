"""The README's example automations, screenshots and known limitations.

The automations are loaded as written and run against a feeder.
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import parse_yaml
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

from custom_components.petnet_feeder.const import CONF_GRACE_MINUTES, DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub

from .helpers.entities import entity_id, wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory, device_id
from .helpers.feeding import (
    AT_MORNING,
    BREAKFAST_TIME_S,
    MISSED_AFTER_S,
    advance,
    breakfast_feeder,
    heartbeat,
)

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
SCREENSHOTS = ("device", "calendar", "repair", "dashboard", "planner", "pet")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = AT_MORNING


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps short."""
    return {CONF_GRACE_MINUTES: 1}


def readme_automations() -> list[dict[str, Any]]:
    """The YAML block under "Example automations", as a user would paste it."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Example automations") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    automations = parse_yaml(block.group(1))
    assert isinstance(automations, list)
    return automations


@pytest.fixture
async def notifications(hass: HomeAssistant) -> list[ServiceCall]:
    """The README's automations loaded; what they send to the phone."""
    calls = async_mock_service(hass, "notify", "mobile_app_my_phone")
    assert await async_setup_component(
        hass, "automation", {"automation": readme_automations()}
    )
    await hass.async_block_till_done()
    return calls


@pytest.mark.usefixtures("notifications")
async def test_readme_automations_are_valid(
    hass: HomeAssistant,
) -> None:
    names = [
        state.attributes.get("friendly_name")
        for state in hass.states.async_all("automation")
        if state.state == "on"
    ]
    # An automation whose configuration does not validate is not "on".
    assert sorted(names) == ["Hopper running low", "Tell me when the cat misses a meal"]


async def test_missed_meal_notifies_once_and_not_on_a_reload(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    notifications: list[ServiceCall],
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    event = await wait_for_entity(hass, "event", feeder.device_hid, "feeding")
    assert hass.states.get(event).state == "unknown"
    feeder.skip_meals = {BREAKFAST_TIME_S}

    # The first event ever comes from "unknown": it notifies.
    await advance(hass, freezer, MISSED_AFTER_S, feeder)
    await hass.async_block_till_done()
    assert [call.data for call in notifications] == [
        {
            "title": "Missed meal",
            "message": "Breakfast was not dispensed. The feeder is online.",
        }
    ]
    missed = hass.states.get(event)

    # A reload takes the entity away and brings it back with its last event: no notification.
    assert await hass.config_entries.async_reload(hub.entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(event).state == missed.state
    assert len(notifications) == 1

    # Another kind of event does not notify either.
    hub = hub.entry.runtime_data
    await feeder.connect()
    freezer.tick(1)
    await heartbeat(hub, feeder)
    await hass.services.async_call(
        DOMAIN,
        "feed",
        {"device_id": device_id(hass, feeder), "portion": 0.25},
        blocking=True,
    )
    await wait_for_state(
        hass, event, lambda s: s.attributes.get("event_type") == "manual"
    )
    await hass.async_block_till_done()
    assert len(notifications) == 1


@pytest.mark.usefixtures("hub")
async def test_low_hopper_notifies(
    hass: HomeAssistant,
    make_feeder: FeederFactory,
    notifications: list[ServiceCall],
) -> None:
    feeder = await make_feeder()
    hopper = await wait_for_entity(hass, "sensor", feeder.device_hid, "hopper_level")
    await hass.services.async_call(
        "number",
        "set_value",
        {
            "entity_id": entity_id(
                hass, "number", feeder.device_hid, "grams_per_tablespoon"
            ),
            "value": 8,
        },
        blocking=True,
    )
    for level in (30, 15):
        await hass.services.async_call(
            DOMAIN,
            "set_hopper_level",
            {"device_id": device_id(hass, feeder), "level": level},
            blocking=True,
        )
        await hass.async_block_till_done()
    assert hass.states.get(hopper).state == "15.0"
    assert [call.data["message"] for call in notifications] == [
        "The feeder's hopper is below 20 %; time to refill (then press Hopper refilled)."
    ]


def section(title: str) -> str:
    """The README's text under a ``## title`` heading, up to the next one."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_screenshots_are_committed_and_taken_by_the_script() -> None:
    shown = re.findall(r"!\[[^\]]+\]\((docs/images/[^)]+)\)", section("Screenshots"))
    assert shown == [f"docs/images/{name}.png" for name in SCREENSHOTS]
    for path in shown:
        assert (ROOT / path).read_bytes()[:8] == PNG_SIGNATURE, path
    script = (ROOT / "scripts" / "screenshots.py").read_text(encoding="utf-8")
    for name in SCREENSHOTS:
        assert f'"{name}.png"' in script, name
    # The planner and the pet's page are shown again where the README explains them.
    assert "(docs/images/planner.png)" in section("Meal schedules")
    assert "(docs/images/pet.png)" in section("Pets")


def test_known_limitations_name_what_to_do_for_each_decision() -> None:
    text = section("Known limitations")
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| Decision")
    ]
    assert len(rows) >= 8
    # Each decision never observed on a real feeder, with what overrides it.
    assert [row for row in rows if len(row) != 2 or not all(row)] == []
    for shown in ("Front button", "Feeding", "calendar's text", "clock times"):
        assert shown in text, shown
