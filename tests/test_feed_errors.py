"""Feeding that cannot happen fails loudly, at once, and is never queued."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.petnet_feeder.const import CONF_MQTT_PORT, DOMAIN
from custom_components.petnet_feeder.errors import InvalidRequestError
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.transport.bundled import PUBLISH_TIMEOUT

from .helpers.feeders import FeederFactory, device_id
from .helpers.raw_mqtt import RawClient

DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"


async def test_feed_that_the_feeder_never_takes_fails(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    entry_data: dict[str, Any],
) -> None:
    """Connected but not subscribed to its command topic: the feed times out, not queued."""
    feeder = await make_feeder(boot=False)
    await feeder.register_gateway()
    await feeder.fetch_config()
    await feeder.register_device()
    assert feeder.api_key is not None
    client = await RawClient.open(entry_data[CONF_MQTT_PORT])
    gateway = feeder.gateway_hid
    try:
        assert await client.connect(gateway, f"/pegasus:{gateway}", feeder.api_key) == 0
        # The call runs (eagerly) until its publish waits for the subscription.
        call = hass.async_create_task(
            hass.services.async_call(
                DOMAIN,
                "feed",
                {"device_id": device_id(hass, feeder), "portion": 0.25},
                blocking=True,
            )
        )
        assert hub.state.is_connected(gateway)
        async_fire_time_changed(
            hass, dt_util.utcnow() + timedelta(seconds=PUBLISH_TIMEOUT + 1)
        )
        with pytest.raises(HomeAssistantError, match="is not connected"):
            await call
        # Nothing was left behind to deliver later: the next packet is the SUBACK.
        assert await client.subscribe(f"krs/cmd/stg/{gateway}") == 1
    finally:
        await client.close()


async def test_feed_in_grams_needs_the_food_density(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    with pytest.raises(ServiceValidationError, match="food density") as err:
        await hass.services.async_call(
            DOMAIN,
            "feed",
            {"device_id": device_id(hass, feeder), "grams": 16},
            blocking=True,
        )
    assert err.value.translation_key == "recipe_needed"
    assert [c.command for c in feeder.commands].count("feed") == 0

    hub.actions.set_recipe(DEV_HID, g_per_tbsp=8)
    await hass.services.async_call(
        DOMAIN,
        "feed",
        {"device_id": device_id(hass, feeder), "grams": 16},
        blocking=True,
    )
    received = await feeder.wait_for_command("feed")
    assert [c.payload for c in received] == [{"portion": 0.125}]  # 2 tbsp of 8 g


async def test_commands_for_an_unknown_feeder_are_refused(hub: PetnetHub) -> None:
    with pytest.raises(InvalidRequestError) as err:
        await hub.actions.async_feed("0" * 40, 0.25)
    assert err.value.translation_key == "unknown_feeder"
    with pytest.raises(InvalidRequestError) as err:
        hub.actions.set_hopper_level("0" * 40, 50)
    assert err.value.translation_key == "unknown_feeder"
