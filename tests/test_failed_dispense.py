"""A scheduled dispense that fails is a repair, not only an event; its fix tries once more."""

from __future__ import annotations

import datetime as dt
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from custom_components.petnet_feeder.const import CONF_GRACE_MINUTES, DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.monitor import failed_issue_id, missed_issue_id

from .helpers.feeders import FeederFactory
from .helpers.feeding import (
    BREAKFAST_TIME_S,
    MORNING,
    advance,
    breakfast_feeder,
    commands_named,
    feeding_events,
    heartbeat,
    start_fix_flow,
    submit_fix_flow,
)

pytestmark = pytest.mark.freeze_time(MORNING.isoformat(), real_asyncio=True)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """A one-minute grace period keeps the clock jumps short."""
    return {CONF_GRACE_MINUTES: 1}


@pytest.fixture
async def repairs_client(hass: HomeAssistant, hass_client: Any) -> Any:
    """An authenticated client of HA's HTTP API with repairs loaded (before it starts)."""
    for component in ("websocket_api", "repairs"):
        assert await async_setup_component(hass, component, {})
    return await hass_client()


async def test_a_failed_meal_is_a_repair_whose_fix_tries_once_more(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    repairs_client: Any,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.fail_meals = {BREAKFAST_TIME_S: "motor jam"}
    events = feeding_events(hub, feeder)
    start = len(feeder.commands)
    await advance(hass, freezer, 90, feeder)  # 07:01: breakfast was tried and failed
    assert [e.event_type for e in events] == ["failed"]
    registry = ir.async_get(hass)
    issue = registry.async_get_issue(DOMAIN, failed_issue_id(dev))
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "failed_dispense"
    assert issue.translation_placeholders == {
        "feeder": "SmartFeeder 73737D",
        "meal": "Breakfast",
        "time": "07:00",
        "error": "motor jam",
        "expected": "32.0 g",
        "measured": "0.0 g",
    }
    # A failed meal is not a missed one: no second alarm for the same breakfast.
    await advance(hass, freezer, 5 * 60, feeder)
    assert registry.async_get_issue(DOMAIN, missed_issue_id(dev)) is None

    # Opened twice, submitted twice: one more try, no more.
    first = await start_fix_flow(repairs_client, failed_issue_id(dev))
    second = await start_fix_flow(repairs_client, failed_issue_id(dev))
    assert (first["type"], first["step_id"]) == ("form", "confirm")
    done = await submit_fix_flow(repairs_client, first["flow_id"])
    assert done["type"] == "create_entry"
    again = await submit_fix_flow(repairs_client, second["flow_id"])
    assert (again["type"], again["reason"]) == ("abort", "already_fed")
    await feeder.wait_for_command("feed", since=start)
    assert commands_named(feeder, "feed", start) == [{"portion": 0.25}]
    assert registry.async_get_issue(DOMAIN, failed_issue_id(dev)) is None


async def test_a_later_meal_dispensed_clears_the_failure(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    feeder.fail_meals = {BREAKFAST_TIME_S: "hopper empty"}
    await advance(hass, freezer, 90, feeder)
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, failed_issue_id(dev)) is not None
    # The owner fixed the hopper; the next day's breakfast goes through.
    feeder.fail_meals = {}
    await feeder.disconnect()
    freezer.move_to(
        MORNING + dt.timedelta(days=1)
    )  # nobody is connected: a jump is fine
    await feeder.connect()
    await heartbeat(hub, feeder)
    await hub.sync.reconciler(dev).async_wait_idle()
    await advance(hass, freezer, 90, feeder)
    assert registry.async_get_issue(DOMAIN, failed_issue_id(dev)) is None
