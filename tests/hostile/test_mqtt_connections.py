"""Connections that never log in: a bounded number is held, the rest are closed at once.

The broker takes connections in the order they were accepted and counts each one as the first
thing it does with it, so a connection that is closed at once proves that every earlier one
was counted: no polling is needed to know the broker's count.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from custom_components.petnet_feeder.transport import bundled

from ..helpers.arena import Arena
from ..helpers.raw_mqtt import RawClient


async def closed_at_once(client: RawClient) -> float:
    started = time.monotonic()
    assert await client.at_eof()
    return time.monotonic() - started


async def test_500_idle_connections_hold_at_most_64(
    arena: Arena, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a per-address limit in the way, the total one holds (64)."""
    monkeypatch.setattr(bundled, "MAX_UNAUTHENTICATED_PER_ADDRESS", 1000)
    transport = arena.hub.transport
    idle = [await arena.raw() for _ in range(bundled.MAX_UNAUTHENTICATED)]
    extra = [await arena.raw() for _ in range(436)]
    # Well before the 10 s CONNECT timeout.
    waits = await asyncio.gather(*(closed_at_once(client) for client in extra))
    assert max(waits) < 2
    assert transport.unauthenticated_connections == 64  # type: ignore[union-attr]
    # The feeders that are logged in do not notice.
    await arena.roundtrip()
    assert arena.warned("too many connections have not logged in yet")
    for client in idle:
        await client.close()
    await arena.check()


async def test_one_address_gets_fewer_and_a_login_frees_its_slot(arena: Arena) -> None:
    limit = bundled.MAX_UNAUTHENTICATED_PER_ADDRESS
    assert limit < bundled.MAX_UNAUTHENTICATED
    transport = arena.hub.transport
    idle = [await arena.raw() for _ in range(limit - 1)]
    # Only connections before their CONNECT count: one that logs in takes the last slot
    # until its CONNACK, then frees it for another.
    raw = await arena.raw_attacker()
    idle.append(await arena.raw())
    extra = await arena.raw()
    assert await closed_at_once(extra) < 2
    assert transport.unauthenticated_connections == limit  # type: ignore[union-attr]
    await arena.barrier(raw)
    for client in idle:
        await client.close()
    await arena.check(may_change=arena.raw_session_effects)
