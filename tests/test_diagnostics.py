"""Diagnostics of the integration and of one feeder: everything the hub knows, secrets removed."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.json import JSONEncoder
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.petnet_feeder import pet_editor
from custom_components.petnet_feeder.const import DOMAIN, PORT_KEYS
from custom_components.petnet_feeder.diagnostics import (
    async_get_config_entry_diagnostics,
    async_get_device_diagnostics,
)
from feeder_sim.kronos_client import KronosError

from .helpers.feeders import FeederFactory, wait_for_feeder
from .helpers.feeding import chicago_feeder, current_hub


# Four seconds after the 07:00 CDT breakfast the feeder reports; the loop's clock stands
# still too, so the sync the new meal asks for stays owed (a stable snapshot).
@pytest.mark.freeze_time("2024-06-01T12:00:04+00:00")
@pytest.mark.usefixtures("loaded_entry")
async def test_entry_diagnostics(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    make_feeder: FeederFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the download holds for a feeder with a reading, a meal, a feed result and a pet."""
    monkeypatch.setattr(pet_editor, "new_pet_id", lambda: "0123456789ab")
    feeder = await chicago_feeder(hass, make_feeder)
    hub = current_hub(hass)
    await feeder.send_sensor(voltage_mv=3950, usb=1, chg=0, ir=0, rssi=80)
    await feeder.send_feed_result(stime=1717243203, portion=0.25, src=6)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
    stored = hub.state.feeders[feeder.device_hid]
    tom = hub.pets.add_pet(name="Tom", species="cat", target_g=80, feeders=[stored])
    hub.meal_editor.add_meal(
        stored,
        name="Breakfast",
        time_s=7 * 3600,
        portion=0.25,
        pet_id=tom.pet_id,
    )
    hub.pauses.pause_pet(tom)
    await hass.async_block_till_done()

    # As the download serialises it (the download's HTTP view adds HA's system info).
    data = json.loads(
        json.dumps(
            await async_get_config_entry_diagnostics(hass, hub.entry),
            cls=JSONEncoder,
        )
    )

    assert data == snapshot(exclude=props(*PORT_KEYS))
    assert data["entry"].keys() >= set(PORT_KEYS)
    text = json.dumps(data)
    assert feeder.api_key
    assert feeder.api_key not in text
    assert hub.state.gateways[feeder.gateway_hid].api_key not in text
    assert feeder.uid not in text
    assert feeder.device_uid not in text


@pytest.mark.usefixtures("hub")
async def test_diagnostics_redact_keys_and_uids(
    hass: HomeAssistant,
    make_feeder: FeederFactory,
    loaded_entry: MockConfigEntry,
) -> None:
    feeder = await make_feeder()
    data = await async_get_config_entry_diagnostics(hass, loaded_entry)
    text = repr(data)
    assert feeder.api_key not in text
    assert feeder.uid not in text
    assert data["gateways"][feeder.gateway_hid]["api_key"] == "**REDACTED**"
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, feeder.device_hid)}
    )
    assert device is not None
    one = await async_get_device_diagnostics(hass, loaded_entry, device)
    assert one["feeder"]["hid"] == feeder.device_hid
    assert one["feeder"]["uid"] == "**REDACTED**"
    assert one["gateway"]["uid"] == "**REDACTED**"
    assert one["gateway"]["api_key"] == "**REDACTED**"
    text = repr(one)
    assert feeder.api_key not in text
    assert feeder.uid not in text
    assert feeder.device_uid not in text


@pytest.mark.freeze_time("2024-06-01T12:00:04+00:00")
async def test_hub_device_diagnostics_show_pairing(
    hass: HomeAssistant, hub: Any, window_closed: Any, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder(boot=False)
    with pytest.raises(KronosError):
        await feeder.register_gateway()
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"hub_{hub.entry.entry_id}")}
    )
    assert device is not None
    assert await async_get_device_diagnostics(hass, hub.entry, device) == {
        "pairing": {
            "window_open": False,
            "window_ends": None,
            "waiting": [feeder.gateway_hid],
        }
    }
    hub.registrations.open_window(60)
    data = await async_get_config_entry_diagnostics(hass, hub.entry)
    assert data["pairing"] == {
        "window_open": True,
        "window_ends": "2024-06-01T12:01:04+00:00",
        "waiting": [feeder.gateway_hid],
    }


@pytest.mark.freeze_time("2024-06-01T12:00:04+00:00")
async def test_pet_device_diagnostics(
    hass: HomeAssistant, hub: Any, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    stored = hub.state.feeders[feeder.device_hid]
    pet = hub.pets.add_pet(name="Rex", species="dog", feeders=[stored])
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"pet_{pet.pet_id}")}
    )
    assert device is not None
    hub.pauses.pause_pet(pet)
    assert await async_get_device_diagnostics(hass, hub.entry, device) == {
        "pet": {
            "pet_id": pet.pet_id,
            "name": "Rex",
            "species": "dog",
            "target_g": None,
            "feeders": [feeder.device_hid],
            "paused": True,
            "paused_until": None,
        }
    }
