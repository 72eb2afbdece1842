"""Helpers of the schedule tests: sequences, meals, waiting until a feeder holds them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.models import Feeder
from feeder_sim import SimulatedFeeder

from .feeders import FeederFactory, device_id, wait_for_feeder
from .transports import wait_until_received

NEW_SEQUENCE = [
    "utc_offset",
    "schedule_clear",
    "schedule_mod_start",
    "schedule_add",
    "schedule_add",
    "schedule_mod_end",
]
LEGACY_SEQUENCE = ["utc_offset", "schedule"]
ONE_MEAL_SEQUENCE = [*NEW_SEQUENCE[:-2], "schedule_mod_end"]
"""A sync of one meal to new firmware."""


async def settle(hub: PetnetHub, feeder: SimulatedFeeder) -> None:
    """Wait until no sync is owed or running for the feeder, and the feeder has what was sent."""
    await hub.sync.reconciler(feeder.device_hid).async_wait_idle()
    await wait_until_received(feeder)


async def add_two_meals(hass: HomeAssistant, feeder: SimulatedFeeder) -> None:
    for name, time, portion in (
        ("Breakfast", "07:00", 0.25),
        ("Dinner", "18:30", 0.25),
    ):
        await hass.services.async_call(
            DOMAIN,
            "add_meal",
            {
                "device_id": device_id(hass, feeder),
                "name": name,
                "time": time,
                "portion": portion,
            },
            blocking=True,
        )


def names_since(feeder: SimulatedFeeder, start: int) -> list[str]:
    return [c.command for c in feeder.commands[start:]]


FIRMWARES = pytest.mark.parametrize(
    ("firmware", "sequence"), [("2.8.0", NEW_SEQUENCE), ("2.3.2", LEGACY_SEQUENCE)]
)
"""Run a test against new (>= 2.5.0) and legacy firmware, with its sync of two meals."""


async def with_meals(
    hass: HomeAssistant, hub: PetnetHub, make_feeder: FeederFactory, **kwargs: Any
) -> SimulatedFeeder:
    """A connected feeder that holds HA's two meals."""
    feeder = await make_feeder(**kwargs)
    # The empty hash of its boot arrives before any meal (else it would start a sync).
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.last_hash_at is not None)
    await add_two_meals(hass, feeder)
    await settle(hub, feeder)
    assert len(feeder.schedule) == 2
    return feeder


def hold_command(
    monkeypatch: pytest.MonkeyPatch,
    hub: PetnetHub,
    gateway_hid: str,
    command: str,
    *,
    sent: asyncio.Event | None = None,
) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the next publish of ``command`` to the gateway until released.

    As if the feeder's PUBACK took its time: returns (held, release); ``held`` is set once
    the publish waits, and it goes out when ``release`` is set. ``sent``, if given, is set
    once that publish returned.
    """
    transport = hub.transport
    assert transport is not None
    publish = transport.async_publish
    held, release = asyncio.Event(), asyncio.Event()
    marker = f'"command": "{command}"'.encode()

    async def slow(gateway: str, topic: str, payload: bytes) -> None:
        if gateway == gateway_hid and not held.is_set() and marker in payload:
            held.set()
            await release.wait()
            try:
                await publish(gateway, topic, payload)
            finally:
                if sent is not None:
                    sent.set()
            return
        await publish(gateway, topic, payload)

    monkeypatch.setattr(transport, "async_publish", slow)
    return held, release


def add_meals(hub: PetnetHub, stored: Feeder, meals: Iterable[tuple[Any, ...]]) -> None:
    """Add meals to the hub's feeder directly: (name, "HH:MM", portion[, enabled=True])."""
    for name, hhmm, portion, *rest in meals:
        enabled = rest[0] if rest else True
        hours, minutes = map(int, hhmm.split(":"))
        hub.meal_editor.add_meal(
            stored,
            name=name,
            time_s=hours * 3600 + minutes * 60,
            portion=portion,
            enabled=enabled,
        )
