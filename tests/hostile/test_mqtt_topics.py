"""Hostile publishes and subscriptions of an authenticated gateway: its own topics only."""

from __future__ import annotations

import pytest

from feeder_sim import ids as sim_ids, telemetry

from ..helpers.arena import Arena, manual_feed_result

SUBACK_FAILURE = 0x80
PINGREQ = b"\xc0\x00"


async def test_publish_to_another_gateways_topics_is_dropped(arena: Arena) -> None:
    good, attacker = arena.good, arena.attacker
    raw = await arena.raw_attacker()
    forged = telemetry.encode(
        manual_feed_result(
            good.device_hid, after_s=600, actual_g=30, hopper_end=49, fail=False, err=""
        )
    )
    await raw.publish(sim_ids.telemetry_topic(good.gateway_hid), forged)
    await raw.publish(
        sim_ids.api_request_topic(good.gateway_hid),
        telemetry.encode(
            telemetry.api_request(
                "GS-1",
                uri=f"/api/v1/kronos/gateways/{good.gateway_hid}/checkin",
                method="PUT",
                api_key=attacker.api_key,
                timestamp="2024-01-01T00:00:00.000Z",
                signature="0" * 64,
            )
        ),
    )
    await arena.barrier(raw)
    assert len(arena.hub.state.feeders[good.device_hid].history) == 1
    assert arena.warned("Refused MQTT publish of gateway")
    await arena.check(may_change=arena.raw_session_effects)


@pytest.mark.parametrize("target", ["own", "other"])
async def test_publish_to_command_topics_is_dropped(arena: Arena, target: str) -> None:
    """A gateway cannot send commands, not to itself and not to another feeder."""
    good = arena.good
    gateway = arena.attacker.gateway_hid if target == "own" else good.gateway_hid
    raw = await arena.raw_attacker()
    commands_before = len(good.commands)
    feed = b'{"hid":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","command":"feed","payload":{"portion":2}}'
    await raw.publish(sim_ids.command_topic(gateway), feed)
    await raw.publish(sim_ids.api_reply_topic(gateway), b'{"requestId":"GS-1"}')
    await arena.barrier(raw)
    await arena.check(may_change=arena.raw_session_effects)
    assert len(good.commands) == commands_before
    assert good.protocol_errors == []


@pytest.mark.parametrize(
    "topic",
    ["#", "+", "krs.tel.gts.#", "krs/tel/gts/+", "$SYS/broker/load", ""],
)
async def test_publish_to_wildcard_and_system_names_is_dropped(
    arena: Arena, topic: str
) -> None:
    raw = await arena.raw_attacker()
    # The payload looks like a packet: it must not be parsed as one either.
    await raw.publish(topic, PINGREQ, wait_ack=topic.startswith("$") or not topic)
    await arena.barrier(raw)  # its PUBACK is the next packet: nothing else was answered
    assert arena.hub.state.is_connected(arena.attacker.gateway_hid)
    await arena.check(may_change=arena.raw_session_effects)


async def test_subscriptions_to_others_and_wildcards_are_refused(arena: Arena) -> None:
    good = arena.good
    raw = await arena.raw_attacker()
    for topic_filter in (
        sim_ids.command_topic(good.gateway_hid),
        sim_ids.api_reply_topic(good.gateway_hid),
        "#",
        "krs.cmd.stg.+",
        "krs/#",
        "$SYS/#",
        sim_ids.telemetry_topic(good.gateway_hid),
    ):
        assert await raw.subscribe(topic_filter) == SUBACK_FAILURE
    # A command for the good feeder reaches it, and only it.
    await arena.hub.actions.async_feed(good.device_hid, 0.25)
    await good.wait_for_command("feed")
    await arena.barrier(raw)  # the next packet the attacker reads is its own PUBACK
    await arena.check(may_change={*arena.raw_session_effects, arena.history_path(good)})


async def test_256_kb_publish_closes_the_connection(arena: Arena) -> None:
    raw = await arena.raw_attacker()
    topic = sim_ids.telemetry_topic(arena.attacker.gateway_hid)
    await raw.publish(topic, b"{" + b" " * (256 * 1024) + b"}", wait_ack=False)
    assert await raw.at_eof()
    await arena.wait_disconnected(arena.attacker.gateway_hid)
    assert arena.warned("over the limit")
    await arena.check(may_change=arena.raw_session_effects)


async def test_oversized_payload_under_the_packet_limit_is_dropped(
    arena: Arena,
) -> None:
    attacker = arena.attacker
    payload = telemetry.encode(
        {**telemetry.heartbeat(attacker.device_hid), "pad": "x" * (100 * 1024)}
    )
    await attacker.send_raw(sim_ids.telemetry_topic(attacker.gateway_hid), payload)
    await arena.barrier()
    assert arena.warned("exceeds 65536 bytes")
    await arena.check()
