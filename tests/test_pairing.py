"""Pairing: a new feeder joins during a pairing window, or when the owner accepts it.

HTTP answers for a gateway that waits (docs/decisions.md): POST /gateways 202 {"hid",
"message"}; GET config 400; PUT checkin and POST /devices 202 {"message"}; MQTT login refused
(CONNACK 5). An ignored gateway gets the same answers and is not shown again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
import logging
from typing import Any

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Context, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import Unauthorized
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.service import async_get_all_descriptions
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_time_changed,
)

from custom_components.petnet_feeder import approvals
from custom_components.petnet_feeder.const import (
    CONF_HTTP_PORT,
    CONF_MQTT_PORT,
    CONF_PAIRING_WINDOW_MINUTES,
    DOMAIN,
)
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.protocol.ids import hid_from_uid
from feeder_sim.kronos_client import KronosError

from .helpers.entities import wait_for_entity
from .helpers.feeders import FeederFactory
from .helpers.logs import server_messages
from .helpers.options import set_options
from .helpers.pairing import (
    accept,
    discovered,
    ignore,
    unignore,
    wait_for_discovered,
    wait_session_closed,
)
from .helpers.ports import LOOPBACK
from .helpers.raw_mqtt import RawClient

GW_HID = "488533283e3f06ca4ae929fd01f50a9259dd393f"
DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"
REFUSED = 5


def switch_id(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "switch", DOMAIN, f"hub_{entry.entry_id}_accept_new_feeders"
    )
    assert entity_id is not None
    return entity_id


async def refused_status(call: Any) -> tuple[int, Any]:
    """Status and body of a Kronos call the simulator treats as failed."""
    with pytest.raises(KronosError) as err:
        await call()
    return err.value.status, err.value.body


async def mqtt_login(entry_data: dict[str, Any], gateway_hid: str, key: str) -> int:
    client = await RawClient.open(entry_data[CONF_MQTT_PORT])
    try:
        return await client.connect(gateway_hid, f"/pegasus:{gateway_hid}", key)
    finally:
        await client.close()


def registries(hass: HomeAssistant) -> tuple[int, int]:
    return (
        len(dr.async_get(hass).devices),
        len(er.async_get(hass).entities),
    )


# -- the window -------------------------------------------------------------------------------


async def test_window_is_open_for_30_minutes_after_setup(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A first setup needs no extra step: a feeder booting then joins at once."""
    hub: PetnetHub = loaded_entry.runtime_data
    switch = switch_id(hass, loaded_entry)
    assert hass.states.get(switch).state == STATE_ON
    assert hub.registrations.window_ends == loaded_entry.created_at + timedelta(
        minutes=30
    )
    feeder = await make_feeder()
    assert feeder.connected

    freezer.move_to(loaded_entry.created_at + timedelta(minutes=30, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(switch).state == STATE_OFF
    late = await make_feeder("smartfeeder-00000000000a", boot=False)
    assert (await refused_status(late.register_gateway))[0] == 202
    # The feeder that joined is not affected.
    await feeder.reboot()
    assert feeder.connected


async def test_window_follows_the_entry_creation_not_the_start(
    hass: HomeAssistant,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
) -> None:
    """An entry created an hour ago (then restarted) starts with its window closed."""
    entry = MockConfigEntry(domain=DOMAIN, data=entry_data, minor_version=2)
    # ConfigEntry attributes are read-only; HA sets this one when the entry is made.
    object.__setattr__(entry, "created_at", dt_util.utcnow() - timedelta(hours=1))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    hub: PetnetHub = entry.runtime_data
    assert not hub.registrations.window_open
    assert hass.states.get(switch_id(hass, entry)).state == STATE_OFF
    feeder = await make_feeder(boot=False)
    assert (await refused_status(feeder.register_gateway))[0] == 202
    assert hub.state.gateways == {}
    await hass.config_entries.async_unload(entry.entry_id)


async def test_switch_opens_for_the_configured_minutes_and_closes(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    await set_options(hass, loaded_entry, {CONF_PAIRING_WINDOW_MINUTES: 3})
    hub: PetnetHub = loaded_entry.runtime_data
    switch = switch_id(hass, loaded_entry)
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": switch}, blocking=True
    )
    assert hass.states.get(switch).state == STATE_OFF
    waiting = await make_feeder(boot=False)
    assert (await refused_status(waiting.register_gateway))[0] == 202

    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": switch}, blocking=True
    )
    assert hass.states.get(switch).state == STATE_ON
    assert hub.registrations.window_ends == dt_util.utcnow() + timedelta(minutes=3)
    await waiting.boot()  # it retries and joins now
    assert waiting.connected
    assert GW_HID not in hub.registrations.pending

    freezer.tick(timedelta(minutes=3, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(switch).state == STATE_OFF


async def test_action_opens_the_window_for_a_duration(
    hass: HomeAssistant,
    hub: PetnetHub,
    window_closed: PetnetHub,
    make_feeder: FeederFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    await hass.services.async_call(
        DOMAIN, "accept_new_feeders", {"duration": {"minutes": 2}}, blocking=True
    )
    assert hub.registrations.window_ends == dt_util.utcnow() + timedelta(minutes=2)
    feeder = await make_feeder()
    assert feeder.connected
    await hass.services.async_call(
        DOMAIN, "accept_new_feeders", {"duration": 0}, blocking=True
    )
    assert not hub.registrations.window_open
    # Without a duration: the configured length (10 minutes by default).
    await hass.services.async_call(DOMAIN, "accept_new_feeders", {}, blocking=True)
    assert hub.registrations.window_ends == dt_util.utcnow() + timedelta(minutes=10)


async def test_action_is_described_and_feeder_pickers_leave_the_hub_out(
    hass: HomeAssistant, hub: PetnetHub
) -> None:
    descriptions = (await async_get_all_descriptions(hass))[DOMAIN]
    # (Home Assistant 2026.2 gives the empty selector config as {}, 2025.4 as None.)
    assert list(
        descriptions["accept_new_feeders"]["fields"]["duration"]["selector"]
    ) == ["duration"]
    assert descriptions["feed"]["fields"]["device_id"]["selector"]["device"][
        "filter"
    ] == [{"integration": DOMAIN, "model": "SmartFeeder"}]
    hub_device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"hub_{hub.entry.entry_id}")}
    )
    assert hub_device is not None
    assert hub_device.model is None


async def test_action_is_for_admins_only(
    hass: HomeAssistant,
    hub: PetnetHub,
    window_closed: PetnetHub,
    hass_read_only_user: MockUser,
) -> None:
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "accept_new_feeders",
            {},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert not hub.registrations.window_open


async def test_250_feeders_booting_together_all_join_during_a_window(
    hub: PetnetHub, entry_data: dict[str, Any]
) -> None:
    """No rate limit turns a genuine feeder away while the window is open."""
    base = f"http://{LOOPBACK}:{entry_data[CONF_HTTP_PORT]}/api/v1/kronos"
    uids = [f"smartfeeder-{index:012x}" for index in range(250)]
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=250)
    ) as session:

        async def boot(uid: str) -> tuple[int, int, str]:
            body = json.dumps({"uid": uid, "softwareVersion": "2.8.0"}).encode()
            async with session.post(f"{base}/gateways", data=body) as response:
                registered = response.status
                hid = (await response.json(content_type=None))["hid"]
            async with session.get(f"{base}/gateways/{hid}/config") as response:
                key = (await response.json(content_type=None))["key"]["apiKey"]
            return registered, response.status, key

        answers = await asyncio.gather(*(boot(uid) for uid in uids))
    assert [(registered, config) for registered, config, _ in answers] == [
        (200, 200)
    ] * 250
    assert {hid_from_uid(uid) for uid in uids} <= set(hub.state.gateways)
    assert all(
        key == hub.state.gateways[hid_from_uid(uid)].api_key
        for uid, (_, _, key) in zip(uids, answers, strict=True)
    )


# -- outside a window: discovered, accepted, ignored ------------------------------------------


async def test_new_feeder_waits_until_accepted(
    hass: HomeAssistant,
    hub: PetnetHub,
    window_closed: PetnetHub,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    before = registries(hass)
    feeder = await make_feeder(boot=False)

    status, body = await refused_status(feeder.register_gateway)
    assert status == 202
    assert json.loads(body) == {
        "hid": GW_HID,
        "message": f"Gateway ({GW_HID}) is waiting for approval",
    }
    status, body = await refused_status(feeder.fetch_config)
    assert status == 400
    assert f"Gateway ({GW_HID}) is waiting for approval in Home Assistant" in body
    assert feeder.api_key is None
    assert (await refused_status(feeder.register_device))[0] == 202
    assert await feeder.checkin() == 202
    # No key exists, so no key can be guessed into a session either.
    assert await mqtt_login(entry_data, GW_HID, "0" * 64) == REFUSED
    assert hub.state.gateways == {}
    assert hub.state.feeders == {}
    assert registries(hass) == before

    flow = await wait_for_discovered(hass, GW_HID)
    assert flow["step_id"] == "pair"
    assert flow["context"]["title_placeholders"] == {
        "name": "SmartFeeder 73737D",
        "address": LOOPBACK,
    }
    result = await accept(hass, GW_HID)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "paired"
    assert discovered(hass) == {}
    assert hub.registrations.pending == {}
    gateway = hub.state.gateways[GW_HID]
    assert (gateway.uid, gateway.software_version) == (
        "smartfeeder-795ae773737d",
        "2.8.0",
    )

    # The feeder's next boot attempt gets its key and connects.
    await feeder.boot()
    assert feeder.connected
    assert feeder.api_key == gateway.api_key
    await wait_for_entity(hass, "binary_sensor", feeder.device_hid, "connectivity")
    assert gateway.api_key not in "\n".join(server_messages(caplog.records))


async def test_checkin_only_firmware_is_discovered_too(
    hass: HomeAssistant,
    hub: PetnetHub,
    window_closed: PetnetHub,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
) -> None:
    feeder = await make_feeder(boot=False, register=False)
    assert await feeder.checkin() == 202
    assert (await refused_status(feeder.fetch_config))[0] == 400
    assert await mqtt_login(entry_data, GW_HID, "0" * 64) == REFUSED
    assert hub.state.gateways == {}
    flow = await wait_for_discovered(hass, GW_HID)
    assert flow["context"]["title_placeholders"]["name"] == "SmartFeeder 488533"

    assert (await accept(hass, GW_HID))["reason"] == "paired"
    await feeder.boot()
    assert feeder.connected
    assert feeder.api_key == hub.state.gateways[GW_HID].api_key


async def test_device_naming_an_unknown_gateway_waits_as_its_gateway(
    hass: HomeAssistant,
    hub: PetnetHub,
    window_closed: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    before = registries(hass)
    feeder = await make_feeder(boot=False)
    status, body = await refused_status(feeder.register_device)
    assert status == 202
    assert "waiting for approval" in body
    assert hub.state.feeders == {}
    assert registries(hass) == before
    held = hub.registrations.pending[GW_HID]
    assert held.uid == "smartfeeder-795ae773737d"
    assert (await wait_for_discovered(hass, GW_HID))["context"]["title_placeholders"][
        "name"
    ] == "SmartFeeder 73737D"


async def test_ignored_feeder_stays_refused_until_unignored(
    hass: HomeAssistant,
    hub: PetnetHub,
    window_closed: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await make_feeder(boot=False)
    await refused_status(feeder.register_gateway)
    await wait_for_discovered(hass, GW_HID)
    await ignore(hass, GW_HID)
    assert discovered(hass) == {}
    assert hub.registrations.pending == {}

    # It keeps trying: the same answers, nothing held, nothing shown.
    assert (await refused_status(feeder.register_gateway))[0] == 202
    assert (await refused_status(feeder.fetch_config))[0] == 400
    assert await feeder.checkin() == 202
    assert hub.registrations.pending == {}
    assert hub.state.gateways == {}
    # Not even an open window lets it in.
    hub.registrations.open_window(600)
    assert (await refused_status(feeder.register_gateway))[0] == 202
    assert hub.state.gateways == {}
    hub.registrations.close_window()

    await unignore(hass, GW_HID)
    await refused_status(feeder.register_gateway)
    await wait_for_discovered(hass, GW_HID)
    assert (await accept(hass, GW_HID))["reason"] == "paired"
    await feeder.boot()
    assert feeder.connected


async def test_ignoring_a_feeder_that_has_a_key_revokes_it(
    hass: HomeAssistant,
    hub: PetnetHub,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
) -> None:
    feeder = await make_feeder()
    key = feeder.api_key
    assert key is not None
    await wait_for_entity(hass, "binary_sensor", DEV_HID, "connectivity")
    await ignore(hass, GW_HID)
    await wait_session_closed(hub, GW_HID)
    assert GW_HID not in hub.state.gateways
    assert DEV_HID not in hub.state.feeders
    assert dr.async_get(hass).async_get_device(identifiers={(DOMAIN, DEV_HID)}) is None
    assert await mqtt_login(entry_data, GW_HID, key) == REFUSED


async def test_pending_feeders_are_bounded_oldest_dropped(
    hass: HomeAssistant,
    hub: PetnetHub,
    window_closed: PetnetHub,
    make_feeder: FeederFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(approvals, "MAX_PENDING", 3)
    feeders = [
        await make_feeder(f"smartfeeder-00000000000{index}", boot=False)
        for index in range(5)
    ]
    for feeder in feeders[:4]:
        assert (await refused_status(feeder.register_gateway))[0] == 202
    # One that already waits counts as heard again: now the least recently heard is [1].
    await refused_status(feeders[0].register_gateway)
    assert (await refused_status(feeders[4].register_gateway))[0] == 202
    expected = [feeders[i].gateway_hid for i in (3, 0, 4)]
    assert list(hub.registrations.pending) == expected
    for gateway_hid in expected:
        await wait_for_discovered(hass, gateway_hid)
    assert set(discovered(hass)) == set(expected)


async def test_accepting_twice_aborts(
    hass: HomeAssistant,
    hub: PetnetHub,
    window_closed: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await make_feeder(boot=False)
    await refused_status(feeder.register_gateway)
    flow = await wait_for_discovered(hass, GW_HID)
    assert hub.registrations.accept(GW_HID)  # e.g. from a second browser tab
    api_key = hub.state.gateways[GW_HID].api_key
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "not_pending")
    assert hub.state.gateways[GW_HID].api_key == api_key


async def test_unload_forgets_pending_feeders_and_their_flows(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    window_closed: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    feeder = await make_feeder(boot=False)
    await refused_status(feeder.register_gateway)
    await wait_for_discovered(hass, GW_HID)
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert discovered(hass) == {}


async def test_old_option_is_dropped_by_the_migration(
    hass: HomeAssistant, entry_data: dict[str, Any]
) -> None:
    """Version 1.1 had "accept new feeders automatically"; pairing replaced it."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data=entry_data,
        options={"accept_new_feeders": False, "grace_minutes": 7},
        minor_version=1,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert (entry.version, entry.minor_version) == (1, 2)
    assert dict(entry.options) == {"grace_minutes": 7}
    assert entry.runtime_data.settings.grace_minutes == 7
    await hass.config_entries.async_unload(entry.entry_id)
