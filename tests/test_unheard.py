"""Home Assistant stopped over a meal: the meal is unconfirmed, never missed, never fed again.

The broker runs inside Home Assistant: while it is stopped, nothing the feeder sends can
arrive. A meal due then may well have been dispensed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.petnet_feeder.const import (
    CONF_AUTO_FEED_MISSED,
    CONF_GRACE_MINUTES,
    DOMAIN,
)
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.monitor import missed_issue_id

from .helpers.entities import entity_id
from .helpers.feeders import FeederFactory, wait_for_feeder
from .helpers.feeding import (
    BREAKFAST,
    MORNING,
    breakfast_feeder,
    commands_named,
    feeding_events,
    heartbeat,
)

pytestmark = pytest.mark.freeze_time(MORNING.isoformat(), real_asyncio=True)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Automatic feeding on: an unconfirmed meal must still never be fed again."""
    return {CONF_GRACE_MINUTES: 1, CONF_AUTO_FEED_MISSED: True}


async def test_a_meal_due_while_home_assistant_was_stopped_is_unconfirmed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await breakfast_feeder(hass, hub, make_feeder)
    dev = feeder.device_hid
    entry = hub.entry
    start = len(feeder.commands)
    assert await hass.config_entries.async_unload(
        entry.entry_id
    )  # HA stops at 06:59:30
    await hass.async_block_till_done()
    await feeder.disconnect()
    # 07:00: the feeder dispenses breakfast on its own clock; nobody can hear it.
    freezer.move_to(BREAKFAST + dt.timedelta(minutes=10))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    hub = entry.runtime_data
    await feeder.connect()
    await heartbeat(hub, feeder)
    events = feeding_events(hub, feeder)
    hub.monitor.async_check_now()
    await hass.async_block_till_done(wait_background_tasks=True)

    assert events == []
    assert ir.async_get(hass).async_get_issue(DOMAIN, missed_issue_id(dev)) is None
    assert commands_named(feeder, "feed", start) == []
    status = entity_id(hass, "sensor", dev, "last_meal_status")
    assert hass.states.get(status).state == "unconfirmed"

    # The feeder replays what it could not send: breakfast was dispensed after all.
    await feeder.send_feed_result(
        stime=int(BREAKFAST.timestamp()) + 2, portion=0.25, src=6
    )
    await wait_for_feeder(hub, dev, lambda f: len(f.history) == 1)
    await hass.async_block_till_done()
    assert hass.states.get(status).state == "dispensed"
