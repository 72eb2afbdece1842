"""HA's MQTT integration: a sync counts only once the feeder itself has it."""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.const import TRANSPORT_MQTT
from custom_components.petnet_feeder.hub import PetnetHub

from .helpers.feeders import FeederFactory
from .helpers.schedules import NEW_SEQUENCE, hold_command, names_since, with_meals


@pytest.mark.parametrize("transport", [TRANSPORT_MQTT], indirect=True)
async def test_a_sync_cut_off_unseen_is_sent_again(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through HA's MQTT a feeder that reconnects at once is not seen to go; its reports are.

    The broker acknowledges what it then drops; a feeder that reports on its commands must
    report each command of a sync, or the sync counts as incomplete and starts again. The
    command after ``schedule_clear`` reaches the broker while the feeder is away, so it is
    lost for certain.
    """
    hub.sync.reconciler_options = {
        **hub.sync.reconciler_options,
        "retry_initial_s": 0.2,
    }
    hub.outbox.confirm_timeout_s = 1.0
    feeder = await with_meals(
        hass, hub, make_feeder, report_command_status=True, api_timeout=2
    )
    assert hub.confirmations.reports_status(feeder.gateway_hid)
    sent = asyncio.Event()
    held, release = hold_command(
        monkeypatch, hub, feeder.gateway_hid, "schedule_mod_start", sent=sent
    )
    start = len(feeder.commands)
    hub.actions.sync_schedule(feeder.device_hid)
    await asyncio.wait_for(held.wait(), 10)
    await feeder.wait_for_command("schedule_clear", since=start)
    await feeder.drop()
    release.set()
    await asyncio.wait_for(sent.wait(), 10)  # the broker took it with nobody subscribed
    await feeder.connect()
    assert names_since(feeder, start) == NEW_SEQUENCE[:2]
    assert hub.state.is_connected(feeder.gateway_hid)  # nothing showed the drop

    restart = len(feeder.commands)
    await feeder.wait_for_command("schedule_mod_end", since=restart, timeout=15)
    # (Not settle(): the command the broker dropped never reaches the feeder.)
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    assert names_since(feeder, restart)[-len(NEW_SEQUENCE) :] == NEW_SEQUENCE
    assert [e["time"] for e in feeder.schedule] == [25200, 66600]
    assert hub.sync.in_sync(hub.state.feeders[feeder.device_hid])
