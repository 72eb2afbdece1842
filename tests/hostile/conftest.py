"""The arena fixture: the integration with a good and a misbehaving feeder (tests/helpers/arena.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import logging
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.hub import PetnetHub

from ..helpers.arena import ATTACKER_UID, FEED_STIME, GOOD_UID, Arena
from ..helpers.feeders import FeederFactory, wait_for_feeder


@pytest.fixture
async def arena(
    hass: HomeAssistant,
    hub: PetnetHub,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[Arena]:
    """Both feeders booted with data worth protecting: a meal, a feed result, a reading."""
    caplog.set_level(logging.DEBUG)
    good = await make_feeder(GOOD_UID)
    attacker = await make_feeder(ATTACKER_UID)
    arena = Arena(hass, hub, entry_data, good, attacker, caplog)
    hub.meal_editor.add_meal(
        hub.state.feeders[good.device_hid],
        name="Breakfast",
        time_s=7 * 3600,
        portion=0.25,
    )
    for feeder in (good, attacker):
        await feeder.send_sensor(voltage_mv=3900, rssi=80)
        await feeder.send_feed_result(stime=FEED_STIME, portion=0.25, src=6)
        await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
        await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    assert len(good.schedule) == 1
    await hass.async_block_till_done(wait_background_tasks=True)
    arena.snapshot()
    yield arena
    for client in arena.raw_clients:
        await client.close()
