"""The numbers: the feed-now portion, and the recipe (grams per tablespoon, per press)."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub

from .helpers.entities import set_number, wait_for_entity
from .helpers.feeders import FeederFactory, device_id
from .helpers.platforms import SNAPSHOT_TIME, EntitiesSnapshot


@pytest.mark.freeze_time(SNAPSHOT_TIME)
async def test_entities(entities_snapshot: EntitiesSnapshot) -> None:
    await entities_snapshot(Platform.NUMBER)


async def test_recipe_is_sent_with_budget_and_grams_convert(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    dev = feeder.device_hid
    await wait_for_entity(hass, "number", dev, "grams_per_tablespoon")
    start = len(feeder.commands)
    await set_number(hass, dev, "grams_per_tablespoon", 8)
    # The density alone is no recipe: the sync it caused sent no budget.
    await feeder.wait_for_command("utc_offset", since=start)
    await hub.sync.reconciler(dev).async_wait_idle()
    assert [c.command for c in feeder.commands[start:]].count("budget") == 0
    await set_number(hass, dev, "tablespoons_per_button_press", 2)
    received = await feeder.wait_for_command("budget", since=start)
    assert received[-1].payload == {
        "recipe": "E0000001",
        "tbsp_per_feeding": 2,
        "g_per_tbsp": 8,
        "budget_tbsp": 2,
    }
    await hass.services.async_call(
        DOMAIN,
        "feed",
        {"device_id": device_id(hass, feeder), "grams": 16},
        blocking=True,
    )
    feeds = await feeder.wait_for_command("feed", since=start)
    assert feeds[0].payload == {"portion": 0.125}
