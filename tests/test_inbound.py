"""How the hub treats inbound messages: unknown kinds, malformed ones, API requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import json
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.petnet_feeder.const import CONF_MQTT_PORT
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.transport.bundled import PUBLISH_TIMEOUT
from feeder_sim import SimulatedFeeder

from .helpers.feeders import FeederFactory
from .helpers.raw_mqtt import RawClient, packet

COMMAND_HID = "kemubcrdlsbqgbcnnchcrnbsdhuusbss"


class Deliveries:
    """The messages the hub has started to handle, by payload.

    The hub starts a task per message; a message counts once that task ran its first step
    (the loop runs callbacks in the order they were scheduled): a telemetry message is then
    handled, an API request as far as its reply. A broker's PUBACK says less: it lets a few
    messages wait per session.
    """

    def __init__(self, hub: PetnetHub) -> None:
        self.payloads: list[bytes] = []
        self._changed = asyncio.Event()
        on_message = hub.inbound.on_message
        loop = asyncio.get_running_loop()

        def started(payload: bytes) -> None:
            self.payloads.append(payload)
            self._changed.set()

        def counted(gateway_hid: str, topic: str, payload: bytes) -> None:
            on_message(gateway_hid, topic, payload)
            loop.call_soon(started, bytes(payload))

        hub.inbound.on_message = counted  # type: ignore[method-assign]

    async def wait_for(self, payload: bytes | str, count: int = 1) -> None:
        """Wait until the hub started handling ``count`` messages with this payload."""
        wanted = payload.encode() if isinstance(payload, str) else payload
        async with asyncio.timeout(10):
            while self.payloads.count(wanted) < count:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def deliveries(hub: PetnetHub) -> Deliveries:
    return Deliveries(hub)


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[tuple[int, str]]:
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if text in record.getMessage()
    ]


def api_request(request_id: str) -> bytes:
    return json.dumps(
        {
            "requestId": request_id,
            "eventName": "GatewayToServer_ApiRequest",
            "encrypted": False,
            "parameters": {
                "uri": f"/api/v1/core/events/{COMMAND_HID}/received",
                "method": "PUT",
                "apiKey": "not-logged",
            },
        }
    ).encode()


@pytest.fixture
async def raw_gateway(
    hub: PetnetHub, make_feeder: FeederFactory, entry_data: dict[str, Any]
) -> AsyncIterator[tuple[SimulatedFeeder, RawClient]]:
    """A registered gateway whose MQTT session subscribes to nothing (a raw client)."""
    feeder = await make_feeder(boot=False)
    await feeder.register_gateway()
    await feeder.fetch_config()
    assert feeder.api_key is not None
    client = await RawClient.open(entry_data[CONF_MQTT_PORT])
    gateway = feeder.gateway_hid
    assert await client.connect(gateway, f"/pegasus:{gateway}", feeder.api_key) == 0
    yield feeder, client
    await client.close()


async def test_unknown_kind_is_logged_once_per_kind_and_gateway(
    hub: PetnetHub,
    make_feeder: FeederFactory,
    deliveries: Deliveries,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "custom_components.petnet_feeder")
    first = await make_feeder()
    second = await make_feeder("smartfeeder-4b09fa082bbd")
    for feeder, kinds in ((first, ["odd", "odd", "new", "odd"]), (second, ["odd"])):
        for sent, kind in enumerate(kinds):
            message = json.dumps({"_|deviceHid": feeder.device_hid, "s|msg_type": kind})
            await feeder.send_raw(f"krs.tel.gts.{feeder.gateway_hid}", message)
            await deliveries.wait_for(message, kinds[: sent + 1].count(kind))

    logged = lines(caplog, "Ignoring unknown message type")
    assert sorted(message for _level, message in logged) == sorted(
        [
            f"Ignoring unknown message type 'odd' from gateway {first.gateway_hid}",
            f"Ignoring unknown message type 'new' from gateway {first.gateway_hid}",
            f"Ignoring unknown message type 'odd' from gateway {second.gateway_hid}",
        ]
    )
    assert {level for level, _message in logged} == {logging.DEBUG}
    # Each message still counts as a sign of life.
    assert hub.state.feeders[second.device_hid].last_seen is not None


@pytest.mark.usefixtures("hub")
async def test_malformed_message_names_its_type(
    make_feeder: FeederFactory,
    deliveries: Deliveries,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feeder = await make_feeder()
    topic = f"krs.tel.gts.{feeder.gateway_hid}"
    no_device = json.dumps({"s|msg_type": "sensor"})
    await feeder.send_raw(topic, no_device)
    await deliveries.wait_for(no_device)
    assert lines(caplog, "Dropped malformed message") == [
        (
            logging.WARNING,
            f"Dropped malformed message from gateway {feeder.gateway_hid} on {topic}"
            " (type 'sensor'): _|deviceHid is missing",
        )
    ]
    caplog.clear()
    caplog.set_level(logging.DEBUG, "custom_components.petnet_feeder")
    await feeder.send_raw(topic, b"{garbage")
    api_topic = f"krs.api.gts.{feeder.gateway_hid}"
    await feeder.send_raw(api_topic, b"[]")
    await deliveries.wait_for(b"{garbage")
    await deliveries.wait_for(b"[]")
    logged = lines(caplog, "Dropped malformed message")
    assert [level for level, _message in logged] == [logging.DEBUG] * 2  # warned once
    assert f"on {topic} (type unknown): payload is not valid JSON" in logged[0][1]
    assert f"on {api_topic} (type API request): " in logged[1][1]


async def test_api_request_is_answered_before_anything_else_happens(
    hass: HomeAssistant,
    hub: PetnetHub,
    raw_gateway: tuple[SimulatedFeeder, RawClient],
    deliveries: Deliveries,
) -> None:
    """While the reply cannot be delivered, the request has had no effect."""
    feeder, client = raw_gateway
    gateway = feeder.gateway_hid
    await client.publish(f"krs.api.gts.{gateway}", api_request("GS-1"))
    await deliveries.wait_for(api_request("GS-1"))
    # The hub waits to publish the reply until the gateway subscribes to its reply topic.
    assert COMMAND_HID not in hub.confirmations.statuses

    subscribe_id = 1000
    await client.send(
        packet(
            0x82,
            subscribe_id.to_bytes(2, "big")
            + len(topic := f"krs/api/stg/{gateway}").to_bytes(2, "big")
            + topic.encode()
            + b"\x01",
        )
    )
    reply: bytes | None = None
    while reply is None:
        first, body = await client.read_packet()
        if first >> 4 == 3:  # PUBLISH at QoS 1: topic, packet id, payload
            topic_length = int.from_bytes(body[:2], "big")
            packet_id = body[2 + topic_length : 4 + topic_length]
            assert body[2 : 2 + topic_length].decode() == topic
            assert (
                COMMAND_HID not in hub.confirmations.statuses
            )  # still nothing else done
            reply = body[4 + topic_length :]
            await client.send(packet(0x40, packet_id))
    assert json.loads(reply) == {
        "requestId": "GS-1",
        "eventName": "GatewayToServer_ApiRequest",
        "encrypted": False,
        "parameters": {"status": "OK"},
    }
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hub.confirmations.statuses[COMMAND_HID] == "received"


async def test_reply_nobody_takes_is_logged_once_without_traceback(
    hass: HomeAssistant,
    hub: PetnetHub,
    raw_gateway: tuple[SimulatedFeeder, RawClient],
    deliveries: Deliveries,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "custom_components.petnet_feeder")
    feeder, client = raw_gateway
    for request_id in ("GS-1", "GS-2"):
        await client.publish(
            f"krs.api.gts.{feeder.gateway_hid}", api_request(request_id)
        )
        # Its reply now waits for a subscription that never comes.
        await deliveries.wait_for(api_request(request_id))
        async_fire_time_changed(
            hass, dt_util.utcnow() + timedelta(seconds=PUBLISH_TIMEOUT + 1)
        )
        await hass.async_block_till_done(wait_background_tasks=True)

    logged = lines(caplog, "did not take the reply to its API request in time")
    assert [level for level, _message in logged] == [logging.WARNING, logging.DEBUG]
    assert f"subscribed to krs/api/stg/{feeder.gateway_hid}?" in logged[0][1]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert COMMAND_HID not in hub.confirmations.statuses
