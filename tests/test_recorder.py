"""What the recorder keeps: no per-event timestamps, no schedule details in the history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from homeassistant.components.recorder import Recorder, get_instance, history
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.petnet_feeder.const import DOMAIN

from .helpers.entities import entity_id, wait_for_entity, wait_for_state
from .helpers.feeders import FeederFactory, device_id
from .helpers.feeding import chicago_feeder


# The recorder's database must be prepared before hass exists: the autouse fixtures (which
# use hass) ask for it first.
@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """Load custom_components/, with the recorder running."""


@pytest.fixture(autouse=True)
def isolated_config_dir(
    recorder_mock: Recorder, hass: HomeAssistant, tmp_path: Path
) -> None:
    """Write the generated certificate into the test's own folder."""
    hass.config.config_dir = str(tmp_path)


@pytest.mark.usefixtures("hub")
async def test_unrecorded_attributes_stay_out_of_the_history(
    hass: HomeAssistant,
    make_feeder: FeederFactory,
) -> None:
    start = dt_util.utcnow() - timedelta(seconds=1)
    feeder = await chicago_feeder(hass, make_feeder)
    dev = feeder.device_hid
    event = await wait_for_entity(hass, "event", dev, "feeding")
    await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {
            "device_id": device_id(hass, feeder),
            "name": "Breakfast",
            "time": "07:00",
            "portion": 0.25,
        },
        blocking=True,
    )
    next_meal = entity_id(hass, "sensor", dev, "next_meal")
    live_meal = await wait_for_state(
        hass, next_meal, lambda s: s.attributes.get("meal_name") == "Breakfast"
    )
    await hass.services.async_call(
        DOMAIN,
        "feed",
        {"device_id": device_id(hass, feeder), "portion": 0.25},
        blocking=True,
    )
    live_event = await wait_for_state(
        hass, event, lambda s: s.attributes.get("event_type") == "manual"
    )
    assert "started" in live_event.attributes
    await async_wait_recording_done(hass)

    recorded: dict[str, list[Any]] = await get_instance(hass).async_add_executor_job(
        lambda: history.get_significant_states(
            hass,
            start,
            entity_ids=[event, next_meal],
            significant_changes_only=False,
        )
    )
    fed = recorded[event][-1]
    assert fed.state == live_event.state
    assert fed.attributes["event_type"] == "manual"
    assert fed.attributes["grams_expected"] == live_event.attributes["grams_expected"]
    assert "started" not in fed.attributes
    assert "scheduled" not in fed.attributes
    planned = recorded[next_meal][-1]
    assert planned.state == live_meal.state
    assert live_meal.attributes.keys() >= {"meal_id", "meal_name", "portion"}
    assert not planned.attributes.keys() & {"meal_id", "meal_name", "portion"}
