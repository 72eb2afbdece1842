"""The HA-MQTT transport on HA's mocked MQTT client: subscriptions, routing, windows.

Most tests drive the transport object alone; one loads the whole config entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any
from unittest.mock import MagicMock, patch

import aiohttp
from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady, HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.petnet_feeder.const import (
    CONF_BIND_HOST,
    CONF_HTTP_PORT,
    CONF_TRANSPORT,
    DOMAIN,
    PORT_KEYS,
    TRANSPORT_MQTT,
)
from custom_components.petnet_feeder.transport.base import GatewayNotConnectedError
from custom_components.petnet_feeder.transport.ha_mqtt import (
    CONNECTED_WINDOW,
    HaMqttTransport,
)
from feeder_sim.kronos_client import KronosClient

from .helpers.ports import LOOPBACK, free_port

GW = "488533283e3f06ca4ae929fd01f50a9259dd393f"
UID = "smartfeeder-795ae773737d"  # its gateway hid is GW
OTHER = "9b4d3cb2f1e0a5f9d4c3b2a1f0e9d8c7b6a5f4e3"
TEL = f"krs.tel.gts.{GW}"
API = f"krs.api.gts.{GW}"

# HA's MQTT client keeps timers (debouncers, its misc loop) past the test.
pytestmark = pytest.mark.parametrize("expected_lingering_timers", [True])


class Recorder:
    """A TransportHandler that records what the transport tells the hub."""

    def __init__(self) -> None:
        """Start empty."""
        self.events: list[tuple[Any, ...]] = []

    def api_key_for(self, gateway_hid: str) -> str | None:
        """Not used by this transport."""
        return None

    def on_message(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Record a message."""
        self.events.append(("message", gateway_hid, topic, payload))

    def on_gateway_connected(self, gateway_hid: str) -> None:
        """Record a connect."""
        self.events.append(("connected", gateway_hid))

    def on_gateway_disconnected(self, gateway_hid: str) -> None:
        """Record a disconnect."""
        self.events.append(("disconnected", gateway_hid))


@pytest.fixture
async def started(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> tuple[HaMqttTransport, Recorder]:
    """A started transport on the mocked MQTT client."""
    recorder = Recorder()
    transport = HaMqttTransport(hass, recorder)
    await transport.async_start()
    return transport, recorder


@pytest.fixture
def subscribed(
    started: tuple[HaMqttTransport, Recorder],
) -> tuple[HaMqttTransport, Recorder]:
    """The started transport, subscribed to gateway GW's topics (not heard from yet)."""
    transport, _ = started
    transport.gateway_added(GW)
    return started


async def hear(hass: HomeAssistant, topic: str, payload: bytes) -> None:
    """Deliver a QoS 1 message as the broker would, and wait until it was handled."""
    async_fire_mqtt_message(hass, topic, payload, qos=1)
    await hass.async_block_till_done()


def our_subscriptions(mqtt_mock: MqttMockHAClient) -> list[tuple[str, int, Any]]:
    """(topic, qos, encoding) of every subscription made for feeder topics."""
    return [
        (call.args[0], call.args[2], call.args[3])
        for call in mqtt_mock.async_subscribe.call_args_list
        if call.args[0].startswith("krs")
    ]


@pytest.fixture(autouse=True)
def no_mqtt_cooldowns() -> Iterator[None]:
    """Let HA's MQTT client send (UN)SUBSCRIBE at once instead of after its debounce."""
    with (
        patch("homeassistant.components.mqtt.client.INITIAL_SUBSCRIBE_COOLDOWN", 0.0),
        patch("homeassistant.components.mqtt.client.SUBSCRIBE_COOLDOWN", 0.0),
        patch("homeassistant.components.mqtt.client.UNSUBSCRIBE_COOLDOWN", 0.0),
    ):
        yield


@pytest.fixture
def mqtt_config_entry_options() -> dict[str, Any]:
    """HA's MQTT without discovery (its many wildcard subscriptions) and birth message."""
    return {mqtt.CONF_BIRTH_MESSAGE: {}, mqtt.CONF_DISCOVERY: False}


def sent_topics(method: MagicMock) -> list[str]:
    """Topics HA's MQTT client passed to the mocked paho ``subscribe`` or ``unsubscribe``."""
    return [
        item[0] if isinstance(item, tuple) else item
        for call in method.call_args_list
        for item in call.args[0]
    ]


async def wait_until_sent(
    hass: HomeAssistant, method: MagicMock, topics: Iterable[str], timeout: float = 5
) -> list[str]:
    """Wait until HA's MQTT client sent (UN)SUBSCRIBE for every topic to the mocked paho client.

    HA's client batches them behind a debounce (0 here) and sends them from a loop task;
    the mocked method is wrapped so that each call wakes this wait.
    """
    wanted = set(topics)
    called = asyncio.Event()
    original = method.side_effect

    def wake(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        hass.loop.call_soon_threadsafe(called.set)
        return result

    method.side_effect = wake
    try:
        async with asyncio.timeout(timeout):
            while not wanted <= set(sent_topics(method)):
                called.clear()
                await called.wait()
    finally:
        method.side_effect = original
    await hass.async_block_till_done()  # and the mocked acknowledgements
    return sent_topics(method)


async def test_gateway_added_subscribes_exact_topics_once(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    mqtt_client_mock: MagicMock,
    subscribed: tuple[HaMqttTransport, Recorder],
) -> None:
    transport, _ = subscribed
    transport.gateway_added(GW)  # again (a check-in): nothing more to subscribe
    assert our_subscriptions(mqtt_mock) == [(TEL, 1, None), (API, 1, None)]
    sent = await wait_until_sent(hass, mqtt_client_mock.subscribe, [TEL, API])
    assert sorted(topic for topic in sent if topic.startswith("krs")) == [API, TEL]
    assert transport.subscribed_gateways == {GW}


async def test_no_wildcard_and_no_unsafe_ids(
    mqtt_mock: MqttMockHAClient,
    started: tuple[HaMqttTransport, Recorder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, _ = started
    for bad in ("#", "+", "a/b", "", "x" * 200):
        transport.gateway_added(bad)
    transport.gateway_added(GW)
    transport.gateway_added(OTHER)
    topics = [topic for topic, _qos, _enc in our_subscriptions(mqtt_mock)]
    assert topics == [TEL, API, f"krs.tel.gts.{OTHER}", f"krs.api.gts.{OTHER}"]
    assert not any("#" in topic or "+" in topic for topic in topics)
    assert "Not subscribing for unusable gateway id" in caplog.text


async def test_stop_unsubscribes_everything(
    hass: HomeAssistant,
    mqtt_client_mock: MagicMock,
    subscribed: tuple[HaMqttTransport, Recorder],
) -> None:
    transport, recorder = subscribed
    transport.gateway_added(OTHER)
    ours = [TEL, API, f"krs.tel.gts.{OTHER}", f"krs.api.gts.{OTHER}"]
    await wait_until_sent(hass, mqtt_client_mock.subscribe, ours)
    await transport.async_stop()
    unsubscribed = await wait_until_sent(hass, mqtt_client_mock.unsubscribe, ours)
    assert sorted(unsubscribed) == sorted(ours)
    assert transport.subscribed_gateways == set()
    # Nothing reaches the hub any more, and a second stop is harmless.
    async_fire_mqtt_message(hass, TEL, b"{}")
    await hass.async_block_till_done()
    assert recorder.events == []
    await transport.async_stop()


async def test_removed_gateway_is_unsubscribed_and_disconnected(
    hass: HomeAssistant,
    mqtt_client_mock: MagicMock,
    subscribed: tuple[HaMqttTransport, Recorder],
) -> None:
    """A revoked gateway: its topics are unsubscribed and nothing of it is heard."""
    transport, recorder = subscribed
    await wait_until_sent(hass, mqtt_client_mock.subscribe, [TEL, API])
    await hear(hass, TEL, b"{}")
    transport.gateway_removed(GW)
    assert recorder.events[-1] == ("disconnected", GW)
    unsubscribed = await wait_until_sent(hass, mqtt_client_mock.unsubscribe, [TEL, API])
    assert sorted(unsubscribed) == sorted([TEL, API])
    assert transport.subscribed_gateways == set()
    assert not transport.is_connected(GW)
    events = len(recorder.events)
    async_fire_mqtt_message(hass, TEL, b"{}")
    await hass.async_block_till_done()
    assert len(recorder.events) == events
    transport.gateway_removed(GW)  # twice: nothing more


async def test_messages_reach_the_hub_and_mark_the_gateway_connected(
    hass: HomeAssistant, subscribed: tuple[HaMqttTransport, Recorder]
) -> None:
    transport, recorder = subscribed
    assert not transport.is_connected(GW)
    async_fire_mqtt_message(hass, TEL, b'{"a": 1}', qos=1)
    await hear(hass, API, b'{"b": 2}')
    assert recorder.events == [
        ("connected", GW),
        ("message", GW, TEL, b'{"a": 1}'),
        ("message", GW, API, b'{"b": 2}'),
    ]
    assert transport.is_connected(GW)
    assert not transport.is_connected(OTHER)


async def test_retained_messages_are_ignored(
    hass: HomeAssistant, subscribed: tuple[HaMqttTransport, Recorder]
) -> None:
    transport, recorder = subscribed
    async_fire_mqtt_message(hass, TEL, b"{}", qos=1, retain=True)
    await hass.async_block_till_done()
    assert recorder.events == []
    assert not transport.is_connected(GW)


async def test_window_lapses_and_a_new_message_reconnects(
    hass: HomeAssistant, subscribed: tuple[HaMqttTransport, Recorder]
) -> None:
    transport, recorder = subscribed
    await hear(hass, TEL, b"1")
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=CONNECTED_WINDOW - 10)
    )
    await hass.async_block_till_done()
    assert transport.is_connected(GW)
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=CONNECTED_WINDOW + 1)
    )
    await hass.async_block_till_done()
    assert not transport.is_connected(GW)
    await hear(hass, TEL, b"2")
    assert [event[0] for event in recorder.events] == [
        "connected",
        "message",
        "disconnected",
        "connected",
        "message",
    ]


async def test_boot_signal_ends_the_window(
    hass: HomeAssistant, subscribed: tuple[HaMqttTransport, Recorder]
) -> None:
    """A known gateway registering or checking in (HTTP, before MQTT) is restarting."""
    transport, recorder = subscribed
    await hear(hass, TEL, b"1")
    transport.gateway_added(GW)
    assert not transport.is_connected(GW)
    assert recorder.events[-1] == ("disconnected", GW)


async def test_broker_connection_lost_disconnects_every_gateway(
    hass: HomeAssistant, subscribed: tuple[HaMqttTransport, Recorder]
) -> None:
    transport, recorder = subscribed
    transport.gateway_added(OTHER)
    async_fire_mqtt_message(hass, TEL, b"1", qos=1)
    await hear(hass, f"krs.tel.gts.{OTHER}", b"1")
    async_dispatcher_send(hass, mqtt.MQTT_CONNECTION_STATE, True)
    assert transport.is_connected(GW)
    async_dispatcher_send(hass, mqtt.MQTT_CONNECTION_STATE, False)
    await hass.async_block_till_done()
    assert not transport.is_connected(GW)
    assert not transport.is_connected(OTHER)
    assert ("disconnected", GW) in recorder.events
    assert ("disconnected", OTHER) in recorder.events


async def test_publish(
    hass: HomeAssistant,
    mqtt_client_mock: MagicMock,
    subscribed: tuple[HaMqttTransport, Recorder],
) -> None:
    transport, _ = subscribed
    with pytest.raises(GatewayNotConnectedError):
        await transport.async_publish(GW, f"krs/cmd/stg/{GW}", b"cmd")
    await hear(hass, TEL, b"1")
    await transport.async_publish(GW, f"krs/cmd/stg/{GW}", b"cmd")
    mqtt_client_mock.publish.assert_called_with(f"krs/cmd/stg/{GW}", b"cmd", 1, False)
    with pytest.raises(ValueError, match="not deliverable"):
        await transport.async_publish(GW, f"krs/cmd/stg/{OTHER}", b"cmd")
    with pytest.raises(ValueError, match="not deliverable"):
        await transport.async_publish(GW, TEL, b"cmd")


async def test_api_reply_counts_as_a_round_trip(
    hass: HomeAssistant, subscribed: tuple[HaMqttTransport, Recorder]
) -> None:
    transport, _ = subscribed
    await hear(hass, API, b"request")
    gateway = transport._gateways[GW]
    gateway.deadline -= 50  # as if the request had come 50 s ago
    await transport.async_publish(GW, f"krs/cmd/stg/{GW}", b"cmd")
    assert gateway.deadline < hass.loop.time() + CONNECTED_WINDOW - 40  # a command: no
    await transport.async_publish(GW, f"krs/api/stg/{GW}", b"ack")
    assert gateway.deadline > hass.loop.time() + CONNECTED_WINDOW - 5  # the reply: yes


@pytest.mark.usefixtures("mqtt_client_mock")
async def test_publish_refused_while_the_broker_is_gone(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    subscribed: tuple[HaMqttTransport, Recorder],
) -> None:
    transport, _ = subscribed
    await hear(hass, TEL, b"1")
    mqtt_mock.connected = False
    with pytest.raises(GatewayNotConnectedError):
        await transport.async_publish(GW, f"krs/cmd/stg/{GW}", b"cmd")
    mqtt_mock.connected = True
    with (
        patch.object(
            mqtt, "async_publish", side_effect=HomeAssistantError("broker said no")
        ),
        pytest.raises(GatewayNotConnectedError, match="broker said no"),
    ):
        await transport.async_publish(GW, f"krs/cmd/stg/{GW}", b"cmd")


async def test_handler_errors_are_logged_not_raised(
    hass: HomeAssistant,
    subscribed: tuple[HaMqttTransport, Recorder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, recorder = subscribed
    with (
        patch.object(recorder, "on_gateway_connected", side_effect=RuntimeError("c")),
        patch.object(recorder, "on_message", side_effect=RuntimeError("m")),
    ):
        await hear(hass, TEL, b"1")
    with patch.object(
        recorder, "on_gateway_disconnected", side_effect=RuntimeError("d")
    ):
        transport.gateway_added(GW)
    assert "Error in the connect handler" in caplog.text
    assert "Error handling a message" in caplog.text
    assert "Error in the disconnect handler" in caplog.text


async def test_start_without_mqtt(hass: HomeAssistant) -> None:
    transport = HaMqttTransport(hass, Recorder())
    with pytest.raises(ConfigEntryNotReady):
        await transport.async_start()
    transport.gateway_added(GW)  # before a start: ignored
    assert transport.subscribed_gateways == set()
    await transport.async_stop()


async def test_start_twice(
    hass: HomeAssistant, started: tuple[HaMqttTransport, Recorder]
) -> None:
    transport, _ = started
    with pytest.raises(RuntimeError):
        await transport.async_start()
    await transport.async_stop()


def mqtt_disabled() -> Any:
    """Make HA's MQTT refuse subscriptions as it does while its entry is disabled."""
    return patch(
        "homeassistant.components.mqtt.client.mqtt_config_entry_enabled",
        return_value=False,
    )


async def test_failed_subscription_is_retried_on_the_next_gateway_added(
    hass: HomeAssistant,
    mqtt_client_mock: MagicMock,
    started: tuple[HaMqttTransport, Recorder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, recorder = started
    with mqtt_disabled():
        transport.gateway_added(GW)
    assert "Cannot subscribe to" in caplog.text
    assert transport.subscribed_gateways == set()
    await hear(hass, TEL, b"1")
    assert recorder.events == []

    transport.gateway_added(GW)  # the gateway checks in again
    assert transport.subscribed_gateways == {GW}
    await wait_until_sent(hass, mqtt_client_mock.subscribe, [TEL, API])
    await hear(hass, TEL, b"2")
    assert recorder.events == [("connected", GW), ("message", GW, TEL, b"2")]


async def test_half_a_subscription_is_undone_and_retried(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    mqtt_client_mock: MagicMock,
    started: tuple[HaMqttTransport, Recorder],
) -> None:
    """The telemetry topic subscribed, the API topic did not: neither stays."""
    transport, recorder = started
    subscribe = mqtt.async_subscribe

    async def api_topic_fails(
        hass: HomeAssistant, topic: str, *args: Any, **kw: Any
    ) -> Any:
        if topic == API:
            raise HomeAssistantError("MQTT is not enabled")
        return await subscribe(hass, topic, *args, **kw)

    with patch.object(mqtt, "async_subscribe", api_topic_fails):
        transport.gateway_added(GW)
    assert transport.subscribed_gateways == set()
    await wait_until_sent(hass, mqtt_client_mock.unsubscribe, [TEL])
    await hear(hass, TEL, b"1")
    assert recorder.events == []

    transport.gateway_added(GW)
    assert our_subscriptions(mqtt_mock)[-2:] == [(TEL, 1, None), (API, 1, None)]
    await hear(hass, API, b"2")
    assert recorder.events == [("connected", GW), ("message", GW, API, b"2")]


async def test_failed_subscription_is_retried_when_the_broker_is_back(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    mqtt_client_mock: MagicMock,
    started: tuple[HaMqttTransport, Recorder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, recorder = started
    transport.gateway_added(OTHER)
    with mqtt_disabled():
        transport.gateway_added(GW)
        async_dispatcher_send(hass, mqtt.MQTT_CONNECTION_STATE, True)  # still refused
    assert transport.subscribed_gateways == {OTHER}
    failures = [
        r for r in caplog.records if r.getMessage().startswith("Cannot subscribe")
    ]
    assert [r.levelname for r in failures] == ["WARNING", "DEBUG"]  # once, then quiet
    before = len(our_subscriptions(mqtt_mock))

    async_dispatcher_send(hass, mqtt.MQTT_CONNECTION_STATE, True)
    assert transport.subscribed_gateways == {GW, OTHER}
    # Only the gateway that had failed is subscribed again, once.
    assert our_subscriptions(mqtt_mock)[before:] == [(TEL, 1, None), (API, 1, None)]
    await wait_until_sent(hass, mqtt_client_mock.subscribe, [TEL, API])
    await hear(hass, TEL, b"1")
    assert recorder.events == [("connected", GW), ("message", GW, TEL, b"1")]
    async_dispatcher_send(hass, mqtt.MQTT_CONNECTION_STATE, True)
    assert len(our_subscriptions(mqtt_mock)) == before + 2


@pytest.mark.usefixtures("socket_enabled")
async def test_entry_subscribes_each_gateway_and_unload_unsubscribes_all(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, mqtt_client_mock: MagicMock
) -> None:
    """The whole entry on transport mqtt: registration and check-in subscribe, unload undoes."""
    ports = {key: free_port() for key in PORT_KEYS}
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_TRANSPORT: TRANSPORT_MQTT, CONF_BIND_HOST: LOOPBACK, **ports},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert our_subscriptions(mqtt_mock) == []  # nothing stored yet, nothing subscribed

    async with aiohttp.ClientSession() as session:
        kronos = KronosClient(f"http://{LOOPBACK}:{ports[CONF_HTTP_PORT]}", session)
        assert (await kronos.register_gateway(UID, "2.8.0"))["hid"] == GW
        # Older firmware only checks in; an unknown gateway is created that way too.
        assert await kronos.checkin(OTHER) == 200
        assert await kronos.checkin(GW) == 200  # known: nothing more to subscribe
    ours = [TEL, API, f"krs.tel.gts.{OTHER}", f"krs.api.gts.{OTHER}"]
    assert our_subscriptions(mqtt_mock) == [(topic, 1, None) for topic in ours]
    # Nothing else was subscribed by us, and nothing was a wildcard.
    subscribed = [call.args[0] for call in mqtt_mock.async_subscribe.call_args_list]
    assert sorted(subscribed) == sorted(ours)
    assert not any("#" in topic or "+" in topic for topic in subscribed)
    await wait_until_sent(hass, mqtt_client_mock.subscribe, ours)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    unsubscribed = await wait_until_sent(hass, mqtt_client_mock.unsubscribe, ours)
    assert sorted(unsubscribed) == sorted(ours)
