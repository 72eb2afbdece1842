"""A simulated feeder over real TLS sockets, through the whole integration."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import logging
import socket
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.petnet_feeder.const import (
    CONF_HTTP_PORT,
    CONF_HTTPS_PORT,
    DOMAIN,
    PORT_KEYS,
    TRANSPORT_MQTT,
)
from custom_components.petnet_feeder.errors import FeederUnreachableError
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.translate import as_ha_error

from .helpers.entities import entity_id, select_option, wait_for_entity, wait_for_state
from .helpers.feeders import (
    RECENT_STIME,
    FeederFactory,
    received_payloads,
    wait_for_feeder,
    wait_for_history,
)
from .helpers.feeding import current_hub
from .helpers.logs import NOT_SERVER_LOGGERS
from .helpers.ports import LOOPBACK
from .helpers.restart import (
    async_restarted_hass,
    async_setup_entries,
    async_write_core_storage,
)
from .helpers.schedules import ONE_MEAL_SEQUENCE, names_since, settle
from .helpers.transports import both_transports, wait_until_received

pytestmark = both_transports

GW_HID = "488533283e3f06ca4ae929fd01f50a9259dd393f"
DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"


async def test_feeder_comes_alive(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    assert feeder.gateway_hid == GW_HID
    assert feeder.device_hid == DEV_HID
    connectivity = await wait_for_entity(hass, "binary_sensor", DEV_HID, "connectivity")
    await wait_for_state(hass, connectivity, lambda s: s.state == STATE_ON)

    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, DEV_HID)})
    assert device is not None
    assert device.manufacturer == "Petnet"
    assert device.model == "SmartFeeder"
    assert device.sw_version == "2.8.0"
    assert device.name == "SmartFeeder 73737D"

    await feeder.send_sensor(voltage_mv=3800, usb=0, chg=1, ir=0, rssi=87)
    voltage = entity_id(hass, "sensor", DEV_HID, "battery_voltage")
    state = await wait_for_state(hass, voltage, lambda s: s.state == "3.8")
    assert state.attributes["unit_of_measurement"] == "V"
    assert (
        hass.states.get(entity_id(hass, "sensor", DEV_HID, "battery_level")).state
        == "50"
    )
    assert (
        hass.states.get(entity_id(hass, "sensor", DEV_HID, "wifi_signal")).state == "87"
    )
    assert (
        hass.states.get(entity_id(hass, "binary_sensor", DEV_HID, "charging")).state
        == STATE_ON
    )
    assert (
        hass.states.get(entity_id(hass, "binary_sensor", DEV_HID, "usb_power")).state
        == STATE_OFF
    )

    hub: PetnetHub = loaded_entry.runtime_data
    assert hub.state.feeders[DEV_HID].last_heartbeat is None
    await feeder.send_heartbeat()
    await wait_for_feeder(hub, DEV_HID, lambda f: f.last_heartbeat is not None)


async def test_entities_disabled_by_default(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, make_feeder: FeederFactory
) -> None:
    """What README's entity table says is disabled by default, and nothing else."""
    await make_feeder()
    await wait_for_entity(hass, "sensor", DEV_HID, "last_seen")
    entries = er.async_entries_for_config_entry(
        er.async_get(hass), loaded_entry.entry_id
    )
    assert len(entries) > 20
    assert sorted(
        entry.unique_id.removeprefix(f"{DEV_HID}_")
        for entry in entries
        if entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    ) == ["feed_plan", "firmware_family", "last_seen"]


async def test_feed_action(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    await wait_for_entity(hass, "button", DEV_HID, "feed_now")
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, DEV_HID)})
    assert device is not None
    await hass.services.async_call(
        DOMAIN, "feed", {"device_id": device.id, "portion": 0.0625}, blocking=True
    )
    assert await received_payloads(feeder, "feed") == [{"portion": 0.0625}]
    await wait_for_history(loaded_entry.runtime_data, DEV_HID)

    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            DOMAIN, "feed", {"device_id": device.id, "portion": 0.1}, blocking=True
        )
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            DOMAIN,
            "feed",
            {"device_id": "not-a-device", "portion": 0.25},
            blocking=True,
        )
    assert [c.command for c in feeder.commands].count("feed") == 1


@pytest.mark.usefixtures("loaded_entry")
async def test_feed_action_without_amount_dispenses_the_feed_now_portion(
    hass: HomeAssistant, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    await select_option(hass, DEV_HID, "manual_portion", "3_16_cup")
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, DEV_HID)})
    assert device is not None
    await hass.services.async_call(
        DOMAIN, "feed", {"device_id": device.id}, blocking=True
    )
    assert await received_payloads(feeder, "feed") == [{"portion": 0.1875}]


async def test_offline_feeder_gets_no_queued_feed(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    transport: str,
) -> None:
    feeder = await make_feeder()
    connectivity = await wait_for_entity(hass, "binary_sensor", DEV_HID, "connectivity")
    await feeder.disconnect()
    hub: PetnetHub = loaded_entry.runtime_data
    if transport == TRANSPORT_MQTT:
        # No broker session to watch: the gateway counts as connected until 120 s after its
        # last message. A feed sent meanwhile reaches the broker and is lost, never queued.
        assert hub.state.is_connected(GW_HID)
        await hub.actions.async_feed(DEV_HID, 0.125)
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=121))
        await hass.async_block_till_done()
    assert not hub.state.is_connected(GW_HID)
    with pytest.raises(FeederUnreachableError) as refused:
        await hub.actions.async_feed(DEV_HID, 0.25)
    assert "not connected" in str(as_ha_error(refused.value))
    # Still "online" for 120 s after the last message (§9.1).
    assert hass.states.get(connectivity).state == STATE_ON
    await feeder.connect()
    await feeder.send_heartbeat()  # HA's MQTT sees a gateway only through its messages
    await wait_for_feeder(hub, DEV_HID, lambda _: hub.state.is_connected(GW_HID))
    await hub.actions.async_feed(DEV_HID, 0.25)
    assert await received_payloads(feeder, "feed") == [{"portion": 0.25}]


async def test_restart_keeps_devices_keys_and_history(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Home Assistant stops; a fresh one starts on the same storage and knows everything."""
    feeder = await make_feeder()
    hub: PetnetHub = loaded_entry.runtime_data
    await feeder.send_feed_result(stime=RECENT_STIME, portion=0.25, src=6)
    await wait_for_history(hub, DEV_HID)
    api_key = hub.state.gateways[GW_HID].api_key
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, DEV_HID)})
    assert device is not None
    # What the user changed lives in HA's registries, which must come back as well.
    dr.async_get(hass).async_update_device(device.id, name_by_user="Kitchen feeder")
    voltage = entity_id(hass, "sensor", DEV_HID, "battery_voltage")
    er.async_get(hass).async_update_entity(
        voltage, new_entity_id="sensor.kitchen_feeder_voltage"
    )
    entity_ids = sorted(
        entry.entity_id
        for entry in er.async_entries_for_config_entry(
            er.async_get(hass), loaded_entry.entry_id
        )
    )
    assert "sensor.kitchen_feeder_voltage" in entity_ids

    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    await async_write_core_storage(hass)
    assert hass_storage[DOMAIN]["data"]["gateways"][GW_HID]["api_key"] == api_key

    async with async_restarted_hass(hass.config.config_dir) as second:
        await async_setup_entries(second)
        entry = second.config_entries.async_get_entry(loaded_entry.entry_id)
        assert entry is not None
        assert entry.state is ConfigEntryState.LOADED
        restarted: PetnetHub = entry.runtime_data
        assert restarted is not hub
        assert restarted.state.gateways[GW_HID].api_key == api_key
        assert [
            row.result.start_ms for row in restarted.state.feeders[DEV_HID].history
        ] == [RECENT_STIME * 1000]
        same = dr.async_get(second).async_get_device(identifiers={(DOMAIN, DEV_HID)})
        assert same is not None
        assert (same.id, same.name_by_user, same.sw_version) == (
            device.id,
            "Kitchen feeder",
            "2.8.0",
        )
        registry = er.async_get(second)
        assert (
            sorted(
                e.entity_id
                for e in er.async_entries_for_config_entry(registry, entry.entry_id)
            )
            == entity_ids
        )
        assert second.states.get("sensor.kitchen_feeder_voltage") is not None
        # The feeder reconnects with the key it already has (it fetches config only at boot).
        await feeder.connect()
        await feeder.send_heartbeat()
        connectivity = entity_id(second, "binary_sensor", DEV_HID, "connectivity")
        await wait_for_state(second, connectivity, lambda s: s.state == STATE_ON)
        await feeder.disconnect()


async def test_duplicate_feed_results_are_stored_once(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    hub: PetnetHub = loaded_entry.runtime_data
    for _ in range(3):
        await feeder.send_feed_result(stime=RECENT_STIME, portion=0.25, src=6)
    await feeder.send_feed_result(stime=RECENT_STIME + 97, portion=0.25, src=4)
    await wait_for_history(hub, DEV_HID, 2)
    await feeder.send_heartbeat()
    await hass.async_block_till_done()
    assert [row.result.start_ms for row in hub.state.feeders[DEV_HID].history] == [
        (RECENT_STIME + 97) * 1000,
        RECENT_STIME * 1000,
    ]


@pytest.mark.usefixtures("loaded_entry")
async def test_bad_message_does_not_disturb_others(
    hass: HomeAssistant,
    make_feeder: FeederFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feeder = await make_feeder()
    other = await make_feeder("smartfeeder-4b09fa082bbd")
    await feeder.send_raw(f"krs.tel.gts.{feeder.gateway_hid}", b"{garbage")
    await feeder.send_raw(f"krs.api.gts.{feeder.gateway_hid}", b"[]")
    await other.send_sensor(voltage_mv=4100)
    await feeder.send_sensor(voltage_mv=3900)
    await wait_for_state(
        hass,
        entity_id(hass, "sensor", feeder.device_hid, "battery_voltage"),
        lambda s: s.state == "3.9",
    )
    await wait_for_state(
        hass,
        entity_id(hass, "sensor", other.device_hid, "battery_voltage"),
        lambda s: s.state == "4.1",
    )
    assert "Dropped malformed message from gateway" in caplog.text
    assert "Traceback" not in caplog.text


async def test_api_request_is_acknowledged(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, make_feeder: FeederFactory
) -> None:
    feeder = await make_feeder()
    reply = await feeder.api_request(
        "/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received"
    )
    assert reply["eventName"] == "GatewayToServer_ApiRequest"
    assert reply["parameters"] == {"status": "OK"}
    # The reply goes out first; the status is recorded right after it.
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (
        loaded_entry.runtime_data.confirmations.statuses[
            "kemubcrdlsbqgbcnnchcrnbsdhuusbss"
        ]
        == "received"
    )


async def test_checkin_over_mqtt_keeps_the_gateway_connected(
    hub: PetnetHub, make_feeder: FeederFactory
) -> None:
    """An API-request check-in (§5.7) comes from a live session: no restart, a sync at once.

    Only an HTTP check-in (at boot, before MQTT) means the gateway restarts.
    """
    feeder = await make_feeder()
    await feeder.send_heartbeat()
    await wait_for_feeder(hub, DEV_HID, lambda f: f.last_heartbeat is not None)
    hub.meal_editor.add_meal(
        hub.state.feeders[DEV_HID], name="Breakfast", time_s=7 * 3600, portion=0.25
    )
    await feeder.wait_for_command("schedule_mod_end")
    await hub.sync.reconciler(DEV_HID).async_wait_idle()
    await wait_until_received(feeder)
    assert hub.state.is_connected(GW_HID)

    start = len(feeder.commands)
    reply = await feeder.api_request(f"/api/v1/kronos/gateways/{GW_HID}/checkin")
    assert reply["parameters"] == {"status": "OK"}
    # The check-in's sync goes out without waiting for another message from the feeder.
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == ONE_MEAL_SEQUENCE
    assert hub.state.is_connected(GW_HID)
    assert not hub.state.feeders[DEV_HID].sync_pending
    start = len(feeder.commands)
    await hub.actions.async_feed(DEV_HID, 0.125)
    received = await feeder.wait_for_command("feed", since=start)
    assert [c.payload for c in received] == [{"portion": 0.125}]


async def test_api_keys_never_logged(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    # The feeder reports each command's status with an API request over MQTT (§5.7),
    # which carries its key in the parameters.
    feeder = await make_feeder(report_command_status=True)
    hub: PetnetHub = loaded_entry.runtime_data
    inbound: list[bytes] = []
    on_message, record_status = hub.inbound.on_message, hub.confirmations.reported
    succeeded = asyncio.Event()
    succeeded_hids: list[str] = []

    def recording(gateway_hid: str, topic: str, payload: bytes) -> None:
        inbound.append(payload)
        on_message(gateway_hid, topic, payload)

    def status_recorded(command_hid: str, status: str) -> None:
        record_status(command_hid, status)
        if status == "succeeded":
            succeeded_hids.append(command_hid)
            succeeded.set()

    monkeypatch.setattr(hub.inbound, "on_message", recording)
    monkeypatch.setattr(hub.confirmations, "reported", status_recorded)
    await feeder.send_heartbeat()
    await feeder.send_raw(f"krs.tel.gts.{feeder.gateway_hid}", b"not json")
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": await wait_for_entity(hass, "button", DEV_HID, "feed_now")},
        blocking=True,
    )
    (feed,) = await feeder.wait_for_command("feed")
    # (The press returns once the feeder reported the dispense; its report on the command
    # itself may come after, and other commands' reports before.)
    async with asyncio.timeout(10):
        while feed.hid not in succeeded_hids:
            succeeded.clear()
            await succeeded.wait()
    assert hub.confirmations.statuses[feed.hid] == "succeeded"
    assert feeder.api_key
    key = feeder.api_key
    assert (
        sum(key.encode() in payload for payload in inbound) >= 2
    )  # received, succeeded
    # The simulator's own MQTT client library logs its connection URI; only our side counts.
    # HA's MQTT client logs inbound payloads at debug level: HA's logging, not ours (see
    # docs/decisions.md, "Keys are shown only by ...").
    server_side = [
        r.getMessage()
        for r in caplog.records
        if not r.name.startswith((*NOT_SERVER_LOGGERS, "homeassistant.components.mqtt"))
    ]
    assert len(server_side) > 10
    assert any(f"Command {feed.hid} succeeded" in message for message in server_side)
    assert not any(key in message for message in server_side)


@pytest.mark.usefixtures("loaded_entry")
async def test_debug_log_names_each_request_and_message(
    hass: HomeAssistant, make_feeder: FeederFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "custom_components.petnet_feeder")
    feeder = await make_feeder()
    hub = current_hub(hass)
    await feeder.send_heartbeat()
    await feeder.send_sensor(voltage_mv=3900)
    await wait_for_feeder(hub, DEV_HID, lambda f: f.telemetry.voltage_v == 3.9)
    await feeder.api_request(
        "/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received"
    )
    await hass.async_block_till_done(wait_background_tasks=True)

    ours = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("custom_components.petnet_feeder")
    ]
    for line in (
        f"Kronos POST /api/v1/kronos/gateways: 200 (gateway {GW_HID})",
        f"Kronos GET /api/v1/kronos/gateways/{GW_HID}/config: 200 (gateway {GW_HID})",
        f"Kronos POST /api/v1/kronos/devices: 200 (gateway {GW_HID})",
        f"Gateway {GW_HID} sent hb for feeder {DEV_HID}",
        f"Gateway {GW_HID} sent sensor for feeder {DEV_HID}",
        f"Gateway {GW_HID} sent API request PUT "
        "/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received (answered)",
    ):
        assert line in ours
    assert feeder.api_key
    assert not any(feeder.api_key in line for line in ours)


async def test_unload_closes_every_port(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
    transport: str,
) -> None:
    feeder = await make_feeder()
    assert feeder.connected
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    # With HA's MQTT only the Kronos ports are ours (the MQTT ones are never bound).
    bound = (
        PORT_KEYS if transport != TRANSPORT_MQTT else (CONF_HTTP_PORT, CONF_HTTPS_PORT)
    )
    for key in bound:
        await _wait_until_bindable(entry_data[key])


async def _wait_until_bindable(port: int, attempts: int = 50) -> None:
    """Bind the port, retrying briefly: binding succeeds only once nothing uses it any more.

    Unload closes the listeners at once; a TLS connection the server closed may still finish
    its close_notify exchange for a few loop iterations (aiohttp does not wait for it), and
    the port is busy until then. The bundled broker's slower stop used to hide that.
    """
    for _ in range(attempts - 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                await asyncio.sleep(0.02)
            else:
                return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, port))
