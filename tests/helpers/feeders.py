"""Simulated feeders against the integration: the factory type, booting, finding, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import time
from typing import Any

from homeassistant.core import HomeAssistant, callback

from custom_components.petnet_feeder.compat import async_get_device
from custom_components.petnet_feeder.const import DOMAIN
from feeder_sim import SimulatedFeeder, ids as sim_ids

from .mosquitto import Mosquitto

# A dispense an hour before the run started: recent enough for every plausibility rule.
RECENT_STIME = int(time.time()) - 3600

type FeederFactory = Callable[..., Awaitable[SimulatedFeeder]]


async def provision_broker(hass: HomeAssistant, broker: Mosquitto) -> dict[str, Any]:
    """Give the broker every gateway's login and ACL, as a user would from the action."""
    response = await hass.services.async_call(
        DOMAIN, "broker_credentials", {}, blocking=True, return_response=True
    )
    assert response is not None
    await broker.async_add_logins(
        hass, [row["mosquitto_ctrl"] for row in response["gateways"]]
    )
    await broker.async_set_feeder_acl(hass, str(response["acl_file"]))
    return dict(response)


async def boot_via_broker(
    hass: HomeAssistant, broker: Mosquitto, feeder: SimulatedFeeder
) -> None:
    """Boot a feeder against the user's broker: HTTP first, then the login, then MQTT.

    A real user adds the login between the feeder's first registration and its MQTT connect
    (the feeder retries); here that happens in between, and the boot waits until HA's
    subscriptions to the new gateway's topics reached the broker.
    """
    if feeder.register:
        await feeder.register_gateway()
    else:
        await feeder.checkin()
    await feeder.fetch_config()
    await provision_broker(hass, broker)
    await broker.async_wait_for_subscription(
        hass,
        [
            sim_ids.telemetry_topic(feeder.gateway_hid),
            sim_ids.api_request_topic(feeder.gateway_hid),
        ],
    )
    await feeder.boot()


def device_id(hass: HomeAssistant, feeder: SimulatedFeeder) -> str:
    """The HA device id of a simulated feeder."""
    identifier = (DOMAIN, feeder.device_hid)
    device = next(
        (
            found
            for entry in hass.config_entries.async_entries(DOMAIN)
            if (found := async_get_device(hass, entry.entry_id, identifier))
        ),
        None,
    )
    assert device is not None, f"no device for {feeder.device_hid}"
    return device.id


async def wait_for_feeder(
    hub: Any, feeder_hid: str, predicate: Callable[[Any], bool], timeout: float = 10
) -> None:
    """Wait until the hub's state of a feeder satisfies predicate (woken by the hub's listener)."""
    done = asyncio.Event()

    @callback
    def check() -> None:
        if (feeder := hub.state.feeders.get(feeder_hid)) is not None and predicate(
            feeder
        ):
            done.set()

    unsub = hub.state.async_subscribe_feeder(feeder_hid, check)
    try:
        check()
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        unsub()


async def wait_for_history(hub: Any, device_hid: str, count: int = 1) -> None:
    """Wait until the hub stored count feed results for the device."""
    await wait_for_feeder(hub, device_hid, lambda feeder: len(feeder.history) >= count)


async def received_payloads(feeder: SimulatedFeeder, command: str) -> list[Any]:
    """The payloads of every ``command`` the feeder received, once there is one."""
    return [c.payload for c in await feeder.wait_for_command(command)]
