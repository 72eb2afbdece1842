"""HA's MQTT integration and a real Mosquitto: logins, ACL, the action, unload, switching.

The shared end-to-end modules (test_end_to_end, test_schedule_sync) run against this transport
too; this module holds what only exists with a user's broker.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_time_changed,
)

from custom_components.petnet_feeder.const import (
    CONF_DEFAULT_PORTION,
    CONF_TRANSPORT,
    DOMAIN,
    TRANSPORT_BUNDLED,
    TRANSPORT_MQTT,
)
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import MqttConnectRefusedError, ids as sim_ids
from feeder_sim.envelope import parse_command
from feeder_sim.kronos_client import KronosError
from feeder_sim.mqtt_client import FeederMqttConnection

from .helpers.feeders import (
    RECENT_STIME,
    FeederFactory,
    boot_via_broker,
    provision_broker,
    wait_for_feeder,
)
from .helpers.mosquitto import HA_CLIENT_ID, Mosquitto
from .helpers.ports import LOOPBACK
from .helpers.schedules import ONE_MEAL_SEQUENCE, names_since, settle
from .helpers.transports import both_transports, wait_until_received

GW_A = "488533283e3f06ca4ae929fd01f50a9259dd393f"
UID_B = "smartfeeder-4b09fa082bbd"
NOT_AUTHORIZED = 5


def mqtt_only(test: Any) -> Any:
    """Run a test with transport mqtt only."""
    return pytest.mark.parametrize("transport", [TRANSPORT_MQTT], indirect=True)(test)


def connection(
    broker: Mosquitto, gateway_hid: str, password: str, *, client_id: str | None = None
) -> FeederMqttConnection:
    """A raw feeder-like MQTT connection to the test's Mosquitto."""
    return FeederMqttConnection(
        client_id=client_id or gateway_hid,
        username=sim_ids.mqtt_username(gateway_hid),
        password=password,
        host=LOOPBACK,
        port=broker.port,
        tls=False,
    )


@mqtt_only
async def test_broker_credentials_action(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
) -> None:
    feeder = await make_feeder()
    other = await make_feeder(UID_B)
    hub: PetnetHub = loaded_entry.runtime_data
    response = await hass.services.async_call(
        DOMAIN, "broker_credentials", {}, blocking=True, return_response=True
    )
    assert response is not None
    rows = {row["gateway"]: row for row in response["gateways"]}
    assert set(rows) == {feeder.gateway_hid, other.gateway_hid}
    row = rows[GW_A]
    assert row["username"] == f"/pegasus:{GW_A}"
    assert row["password"] == hub.state.gateways[GW_A].api_key == feeder.api_key
    assert row["acl"] == [
        f"user /pegasus:{GW_A}",
        f"topic write krs.tel.gts.{GW_A}",
        f"topic write krs.api.gts.{GW_A}",
        f"topic read krs/cmd/stg/{GW_A}",
        f"topic read krs/api/stg/{GW_A}",
    ]
    assert row["mosquitto_ctrl"] == (
        f"dynsec createClient /pegasus:{GW_A} -c {GW_A} -p {feeder.api_key}"
    )
    assert (
        response["acl_file"]
        == "\n\n".join("\n".join(rows[hid]["acl"]) for hid in sorted(rows)) + "\n"
    )
    # Serialisable as the action's YAML/JSON answer.
    json.dumps(response)


@mqtt_only
async def test_broker_credentials_list_only_accepted_feeders(
    hass: HomeAssistant,
    hub: PetnetHub,
    window_closed: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """A feeder that waits has no key to list; a removed one is no longer listed."""
    hub.registrations.open_window(60)
    feeder = await make_feeder()
    hub.registrations.close_window()
    waiting = await make_feeder(UID_B, boot=False)
    with pytest.raises(KronosError):
        await waiting.register_gateway()
    assert waiting.gateway_hid in hub.registrations.pending

    async def listed() -> set[str]:
        response = await hass.services.async_call(
            DOMAIN, "broker_credentials", {}, blocking=True, return_response=True
        )
        assert response is not None
        return {row["gateway"] for row in response["gateways"]}

    assert await listed() == {feeder.gateway_hid}
    hub.async_remove_feeder(feeder.device_hid)
    assert await listed() == set()
    assert feeder.gateway_hid not in hub.transport.subscribed_gateways  # type: ignore[union-attr]


async def test_broker_credentials_is_for_admins_only(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
) -> None:
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "broker_credentials",
            {},
            blocking=True,
            return_response=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    with pytest.raises(Exception, match="not found|Unknown"):
        await hass.services.async_call(
            DOMAIN,
            "broker_credentials",
            {},
            blocking=True,
            return_response=True,
            context=Context(user_id="no-such-user"),
        )
    response = await hass.services.async_call(
        DOMAIN,
        "broker_credentials",
        {},
        blocking=True,
        return_response=True,
        context=Context(user_id=hass_admin_user.id),
    )
    assert response == {"gateways": [], "acl_file": ""}
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "broker_credentials", {}, blocking=True, return_response=True
        )


@mqtt_only
async def test_mosquitto_refuses_a_wrong_key_and_an_unknown_feeder(
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    mosquitto: Mosquitto,
) -> None:
    feeder = await make_feeder()
    hub: PetnetHub = loaded_entry.runtime_data
    assert feeder.connected
    wrong = connection(mosquitto, feeder.gateway_hid, "0" * 64)
    with pytest.raises(MqttConnectRefusedError) as refused:
        await wrong.connect()
    assert refused.value.return_code == NOT_AUTHORIZED
    # The live feeder, whose client id the refused CONNECT used, is still there.
    assert feeder.connected
    assert hub.state.feeders[feeder.device_hid].last_heartbeat is None
    await feeder.send_heartbeat()
    await wait_for_feeder(
        hub, feeder.device_hid, lambda f: f.last_heartbeat is not None
    )
    assert "closing old connection" not in mosquitto.log_text()
    stranger = connection(mosquitto, "f" * 40, "0" * 64)
    with pytest.raises(MqttConnectRefusedError):
        await stranger.connect()
    # The simulator itself, holding a key the broker does not know, is refused too.
    key = feeder.api_key
    await feeder.drop()
    feeder._kronos.api_key = "1" * 64
    with pytest.raises(MqttConnectRefusedError) as refused:
        await feeder.connect()
    assert refused.value.return_code == NOT_AUTHORIZED
    feeder._kronos.api_key = key
    await feeder.connect()
    # With its own key it is back.
    before = hub.state.feeders[feeder.device_hid].last_heartbeat
    await feeder.send_heartbeat()
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.last_heartbeat != before)


@mqtt_only
async def test_a_feeder_is_kept_to_its_own_topics(
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    mosquitto: Mosquitto,
) -> None:
    feeder = await make_feeder()
    other = await make_feeder(UID_B)
    hub: PetnetHub = loaded_entry.runtime_data
    await other.send_sensor(voltage_mv=4100)
    await wait_for_feeder(
        hub,
        other.device_hid,
        lambda f: f.telemetry is not None and f.telemetry.voltage_v == 4.1,
    )
    # Feeder A forges a reading of B on B's topic: the broker drops it (ACL "write").
    forged = json.dumps(
        {
            "_|deviceHid": other.device_hid,
            "s|msg_type": "sensor",
            "f|voltage": 3000,
            "i|usb": 0,
            "i|chg": 0,
            "i|ir": 0,
            "i|rssi": 1,
        }
    )
    await feeder.send_raw(sim_ids.telemetry_topic(other.gateway_hid), forged)
    # A's next message on its own topic arrives after the forged one would have.
    await feeder.send_sensor(voltage_mv=3900)
    await wait_for_feeder(
        hub,
        feeder.device_hid,
        lambda f: f.telemetry is not None and f.telemetry.voltage_v == 3.9,
    )
    assert hub.state.feeders[other.device_hid].telemetry.voltage_v == 4.1

    # A (its own login and client id, in a session of its own making) listens on B's
    # command topic and on everything: the broker lets it read only its own topics.
    await feeder.disconnect()
    spy = connection(mosquitto, feeder.gateway_hid, str(feeder.api_key))
    await spy.connect()
    await spy.subscribe([sim_ids.command_topic(other.gateway_hid), "#"])
    start = len(other.commands)
    await hub.actions.async_feed(other.device_hid, 0.25)
    await other.wait_for_command("feed", since=start)
    # HA publishes in order, so B's feed would reach the spy before A's own one does.
    await hub.actions.async_feed(feeder.device_hid, 0.125)
    received = await asyncio.wait_for(spy.receive(), 10)
    assert received is not None
    assert received.topic == sim_ids.command_topic(feeder.gateway_hid)
    command = parse_command(received.payload, feeder.device_hid)
    assert (command.command, command.payload) == ("feed", {"portion": 0.125})
    await spy.disconnect()


@mqtt_only
async def test_a_login_cannot_take_over_another_gateways_client_id(
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    mosquitto: Mosquitto,
) -> None:
    """B's correct login under A's client id is refused; A's session is not closed."""
    feeder = await make_feeder()
    other = await make_feeder(UID_B)
    hub: PetnetHub = loaded_entry.runtime_data
    thief = connection(mosquitto, other.gateway_hid, str(other.api_key), client_id=GW_A)
    with pytest.raises(MqttConnectRefusedError) as refused:
        await thief.connect()
    assert refused.value.return_code == NOT_AUTHORIZED
    # A's session is the one it had: it still publishes, and still receives.
    assert feeder.connected
    assert hub.state.feeders[feeder.device_hid].last_heartbeat is None
    await feeder.send_heartbeat()
    await wait_for_feeder(
        hub, feeder.device_hid, lambda f: f.last_heartbeat is not None
    )
    start = len(feeder.commands)
    await hub.actions.async_feed(feeder.device_hid, 0.125)
    received = await feeder.wait_for_command("feed", since=start)
    assert [c.payload for c in received] == [{"portion": 0.125}]
    assert feeder.boot_count == 1
    assert "closing old connection" not in mosquitto.log_text()
    # B itself, with its own client id, is welcome.
    assert other.connected
    await other.send_heartbeat()
    await wait_for_feeder(hub, other.device_hid, lambda f: f.last_heartbeat is not None)


@mqtt_only
async def test_unload_unsubscribes_at_the_broker(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    mosquitto: Mosquitto,
) -> None:
    feeder = await make_feeder()
    tel = sim_ids.telemetry_topic(feeder.gateway_hid)
    api = sim_ids.api_request_topic(feeder.gateway_hid)
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    text = await mosquitto.async_wait_for_log(
        hass,
        lambda log: f" {HA_CLIENT_ID} {tel}\n" in log
        and f" {HA_CLIENT_ID} {api}\n" in log,
    )
    # Nothing of ours was ever a wildcard.
    subscribed = [
        line.split(" ", 3)[3]
        for line in text.splitlines()
        if line.split(" ")[1:2] == [HA_CLIENT_ID] and len(line.split(" ")) == 4
    ]
    assert sorted(subscribed) == sorted([tel, api])
    assert not any("#" in topic or "+" in topic for topic in subscribed)


@mqtt_only
async def test_edit_lost_in_the_window_is_repaired_after_silence(
    hass: HomeAssistant,
    hub: PetnetHub,
    make_feeder: FeederFactory,
) -> None:
    """What HA's MQTT cannot see: a feeder that vanished less than 120 s ago.

    Commands sent then reach the broker and are lost. Once the window lapses the gateway is
    disconnected, and its next message is a reconnect: the full schedule goes out again.
    """
    feeder = await make_feeder()
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, feeder.device_hid)}
    )
    assert device is not None
    reconciler = hub.sync.reconciler(feeder.device_hid)
    await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {"device_id": device.id, "name": "Breakfast", "time": "07:00", "portion": 0.25},
        blocking=True,
    )
    await feeder.wait_for_command("schedule_mod_end")
    await reconciler.async_wait_idle()
    await wait_until_received(feeder)
    assert len(feeder.schedule) == 1

    await feeder.drop()  # gone without a word
    assert hub.state.is_connected(feeder.gateway_hid)
    await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {"device_id": device.id, "name": "Dinner", "time": "18:00", "portion": 0.25},
        blocking=True,
    )
    await reconciler.async_wait_idle()
    assert len(feeder.schedule) == 1  # the sync went to the broker and nowhere else

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=121))
    await hass.async_block_till_done()
    assert not hub.state.is_connected(feeder.gateway_hid)
    restart = len(feeder.commands)
    await feeder.connect()
    await feeder.send_heartbeat()
    await feeder.wait_for_command("schedule_mod_end", since=restart)
    await reconciler.async_wait_idle()
    assert [event["name"] for event in feeder.schedule] == ["FEED0", "FEED1"]


@pytest.mark.usefixtures("mqtt_entry")
@both_transports
async def test_switching_transport_keeps_everything(
    hass: HomeAssistant,
    transport: str,
    mosquitto: Mosquitto,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Options -> other transport -> reload: same gateways, keys, meals, history, devices."""
    target = TRANSPORT_MQTT if transport == TRANSPORT_BUNDLED else TRANSPORT_BUNDLED
    hub: PetnetHub = loaded_entry.runtime_data
    hub.sync.reconciler_options = {"debounce_s": 0.05, "pacing_s": 0}
    feeder = await make_feeder()
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, feeder.device_hid)}
    )
    assert device is not None
    await hass.services.async_call(
        DOMAIN,
        "add_meal",
        {"device_id": device.id, "name": "Breakfast", "time": "07:00", "portion": 0.25},
        blocking=True,
    )
    await feeder.wait_for_command("schedule_mod_end")
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    await wait_until_received(feeder)
    await feeder.send_feed_result(stime=RECENT_STIME, portion=0.25, src=6)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
    key = hub.state.gateways[feeder.gateway_hid].api_key
    meals = list(hub.state.feeders[feeder.device_hid].meals)
    assert [(m.name, m.time_s, m.portion) for m in meals] == [
        ("Breakfast", 25200, 0.25)
    ]
    devices = len(dr.async_get(hass).devices)

    flow = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    options = {
        key: value
        for key, value in {**loaded_entry.data, **loaded_entry.options}.items()
        if key != CONF_TRANSPORT
    }
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"],
        {**options, CONF_TRANSPORT: target, CONF_DEFAULT_PORTION: 0.125},
    )
    assert result["type"] == "create_entry", result.get("errors")
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED

    hub = loaded_entry.runtime_data
    assert type(hub.transport).__name__ == (
        "HaMqttTransport" if target == TRANSPORT_MQTT else "BundledBrokerTransport"
    )
    assert hub.state.gateways[feeder.gateway_hid].api_key == key
    assert [
        row.result.start_ms for row in hub.state.feeders[feeder.device_hid].history
    ] == [RECENT_STIME * 1000]
    assert hub.state.feeders[feeder.device_hid].meals == meals
    assert len(dr.async_get(hass).devices) == devices
    assert (
        hass_storage[DOMAIN]["data"]["gateways"][feeder.gateway_hid]["api_key"] == key
    )

    # The feeder, pointed at the other broker with the key it already has, works on.
    await feeder.drop()
    if target == TRANSPORT_MQTT:
        feeder.mqtt_port, feeder.mqtt_tls = mosquitto.port, False
        await provision_broker(hass, mosquitto)
        await mosquitto.async_wait_for_subscription(
            hass,
            [
                sim_ids.telemetry_topic(feeder.gateway_hid),
                sim_ids.api_request_topic(feeder.gateway_hid),
            ],
        )
    else:
        settings = {**loaded_entry.data, **loaded_entry.options}
        feeder.mqtt_port, feeder.mqtt_tls = settings["mqtts_port"], True
    # Forget what it held: what it holds afterwards came over the other transport.
    feeder.schedule = []
    start = len(feeder.commands)
    await feeder.connect()
    await feeder.send_heartbeat()
    await wait_for_feeder(
        hub, feeder.device_hid, lambda _: hub.state.is_connected(GW_A)
    )
    # The (re)connect delivers the clock and the whole schedule.
    await feeder.wait_for_command("schedule_mod_end", since=start)
    await settle(hub, feeder)
    assert names_since(feeder, start) == ONE_MEAL_SEQUENCE
    assert [(e["time"], e["portion"], e["active"]) for e in feeder.schedule] == [
        (25200, 0.25, True)
    ]
    assert hub.sync.in_sync(hub.state.feeders[feeder.device_hid])
    start = len(feeder.commands)
    await hub.actions.async_feed(feeder.device_hid, 0.125)
    received = await feeder.wait_for_command("feed", since=start)
    assert [c.payload for c in received] == [{"portion": 0.125}]
    # Its feed result arrives too (and is not cut off by the end of the test).
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 2)


@mqtt_only
async def test_reboot_before_the_login_exists_then_boot(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    make_feeder: FeederFactory,
    mosquitto: Mosquitto,
) -> None:
    """A new feeder cannot log in until the user adds its login; then it boots normally."""
    feeder = await make_feeder(boot=False)
    await feeder.register_gateway()
    await feeder.fetch_config()
    with pytest.raises(MqttConnectRefusedError):
        await feeder.connect()
    await boot_via_broker(hass, mosquitto, feeder)
    assert feeder.connected
    hub: PetnetHub = loaded_entry.runtime_data
    await wait_for_feeder(
        hub, feeder.device_hid, lambda _: hub.state.is_connected(GW_A)
    )
