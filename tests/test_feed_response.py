"""Feed now tells what came of it: the action's response, and the button's error."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest

from custom_components.petnet_feeder import monitor
from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub

from .helpers.entities import wait_for_entity
from .helpers.feeders import FeederFactory, device_id


async def feed_with_response(hass: HomeAssistant, target: str) -> dict[str, object]:
    """Call the feed action for a quarter cup and return its response."""
    data = {"device_id": target, "portion": 0.25}
    response = await hass.services.async_call(
        DOMAIN, "feed", data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


async def test_the_feed_action_returns_the_feeders_report(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    dispensed = await feed_with_response(hass, device_id(hass, feeder))
    assert dispensed["status"] == "dispensed"
    assert dispensed["grams_expected"] == 32.0  # 1/4 cup, 8 g per tablespoon
    assert dispensed["grams_actual"] is not None
    assert dispensed["error"] is None


async def test_the_feed_action_returns_a_reported_failure(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    feeder.fail_feeds = "motor jam"
    failed = await feed_with_response(hass, device_id(hass, feeder))
    assert (failed["status"], failed["error"], failed["grams_actual"]) == (
        "failed",
        "motor jam",
        0.0,
    )


async def test_a_feeder_that_does_not_report_gives_no_report(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feeder = await make_feeder()
    monkeypatch.setattr(monitor, "FEED_RESULT_TIMEOUT_S", 0.2)

    async def silent(_payload: object) -> bool:
        return True  # takes the command, reports no dispense

    monkeypatch.setitem(
        feeder._HANDLERS, "feed", lambda _self, payload: silent(payload)
    )
    assert await feed_with_response(hass, device_id(hass, feeder)) == {
        "status": "no_report"
    }


async def test_the_button_says_when_the_dispense_failed(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    button = await wait_for_entity(hass, "button", feeder.device_hid, "feed_now")
    feeder.fail_feeds = "hopper empty"
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "button", "press", {"entity_id": button}, blocking=True
        )
    assert err.value.translation_key == "feed_failed"
    assert "hopper empty" in str(err.value)
