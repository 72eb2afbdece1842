"""Hostile MQTT logins: none of them gets in, and none disturbs the live session it names."""

from __future__ import annotations

import asyncio

import pytest

from feeder_sim import ids as sim_ids

from ..helpers.arena import Arena

REFUSED = 5
GOOD_GW = "488533283e3f06ca4ae929fd01f50a9259dd393f"
UNKNOWN_GW = "c3d89400068631f8138a57286982bea94370693d"


def _credentials(arena: Arena, case: str) -> tuple[str, str | None, str | None]:
    """Client id, username and password of one hostile login."""
    good, attacker = arena.good, arena.attacker
    assert attacker.api_key is not None and good.api_key is not None
    user = sim_ids.mqtt_username
    return {
        "wrong-key": (GOOD_GW, user(GOOD_GW), "0" * 64),
        "key-of-another-gateway": (GOOD_GW, user(GOOD_GW), attacker.api_key),
        "no-password": (GOOD_GW, user(GOOD_GW), None),
        "anonymous": (GOOD_GW, None, None),
        "empty-username": (GOOD_GW, "", good.api_key),
        "username-without-prefix": (GOOD_GW, GOOD_GW, good.api_key),
        "username-with-path": (GOOD_GW, f"/pegasus:../{GOOD_GW}", good.api_key),
        "username-wildcard": ("#", "/pegasus:#", good.api_key),
        "username-10kb": (GOOD_GW, "/pegasus:" + "a" * 10240, good.api_key),
        "unknown-gateway": (UNKNOWN_GW, user(UNKNOWN_GW), good.api_key),
        # Authenticated as B, but with A's client id: would take A's session over.
        "takeover-by-other-gateway": (
            GOOD_GW,
            user(attacker.gateway_hid),
            attacker.api_key,
        ),
        "client-id-not-gateway": (
            "someone",
            user(attacker.gateway_hid),
            attacker.api_key,
        ),
    }[case]


@pytest.mark.parametrize(
    "case",
    [
        "wrong-key",
        "key-of-another-gateway",
        "no-password",
        "anonymous",
        "empty-username",
        "username-without-prefix",
        "username-with-path",
        "username-wildcard",
        "username-10kb",
        "unknown-gateway",
        "takeover-by-other-gateway",
        "client-id-not-gateway",
    ],
)
async def test_refused_login_leaves_the_live_session_alone(
    arena: Arena, case: str
) -> None:
    broker = arena.hub.transport._broker  # type: ignore[union-attr]
    live_session = broker.sessions[GOOD_GW][0]
    client_id, username, password = _credentials(arena, case)
    client = await arena.raw()
    assert await client.connect(client_id, username, password) == REFUSED
    assert await client.at_eof()
    assert broker.sessions[GOOD_GW][0] is live_session
    assert arena.hub.state.is_connected(GOOD_GW)
    assert arena.good.connected
    assert arena.warned("Refused MQTT connection")
    await arena.check()


async def test_second_session_with_the_right_key_replaces_the_first(
    arena: Arena,
) -> None:
    """A reconnect is legitimate (MQTT-3.1.4-2): the old connection goes, nothing else."""
    good = arena.good
    assert good.api_key is not None
    intruder = await arena.raw()
    assert (
        await intruder.connect(GOOD_GW, sim_ids.mqtt_username(GOOD_GW), good.api_key)
        == 0
    )
    # The broker closed the first connection; the feeder notices and reconnects, which in
    # turn closes the intruder's.
    async with asyncio.timeout(10), good._changed:
        await good._changed.wait_for(lambda: not good.connected)
    await good.connect()
    assert await intruder.at_eof()
    # The new session is owed the schedule again (as after any reconnect).
    await arena.hub.sync.reconciler(good.device_hid).async_wait_idle()
    assert len(good.schedule) == 1
    await arena.check()
