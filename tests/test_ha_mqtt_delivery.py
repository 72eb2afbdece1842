"""HA's MQTT integration: a sync counts only once the feeder itself has it."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.const import TRANSPORT_MQTT
from custom_components.petnet_feeder.hub import PetnetHub

from .helpers.feeders import FeederFactory
from .helpers.schedules import NEW_SEQUENCE, names_since, with_meals


@pytest.mark.parametrize("transport", [TRANSPORT_MQTT], indirect=True)
async def test_a_sync_cut_off_unseen_is_sent_again(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    """Through HA's MQTT a feeder that reconnects at once is not seen to go; its reports are.

    The broker acknowledges what it then drops; a feeder that reports on its commands must
    report each command of a sync, or the sync counts as incomplete and starts again.
    """
    hub.schedules.reconciler_options = {
        **hub.schedules.reconciler_options,
        "retry_initial_s": 0.2,
    }
    hub.schedules.confirm_timeout_s = 1.0
    feeder = await with_meals(
        hass, hub, make_feeder, report_command_status=True, api_timeout=2
    )
    assert hub.confirmations.reports_status(feeder.gateway_hid)
    start = len(feeder.commands)
    await hub.async_sync_schedule(feeder.device_hid)
    await feeder.wait_for_command("schedule_clear", since=start)
    await feeder.drop()
    await feeder.connect()
    partial = names_since(feeder, start)
    assert "schedule_mod_end" not in partial
    assert hub.is_connected(feeder.gateway_hid)  # nothing showed the drop

    restart = len(feeder.commands)
    await feeder.wait_for_command("schedule_mod_end", since=restart, timeout=15)
    # (Not settle(): the command the broker dropped never reaches the feeder.)
    await hub.schedules.reconciler(feeder.device_hid).async_wait_idle()
    assert names_since(feeder, restart)[-len(NEW_SEQUENCE) :] == NEW_SEQUENCE
    assert [e["time"] for e in feeder.schedule] == [25200, 66600]
    assert hub.schedules.in_sync(hub.feeders[feeder.device_hid])
