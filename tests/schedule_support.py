"""Helpers of the schedule tests: sequences, meals, waiting until a feeder holds them."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest

from custom_components.petnet_feeder.const import DOMAIN
from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder

from .conftest import FeederFactory, wait_for_feeder, wait_until_received

NEW_SEQUENCE = [
    "utc_offset",
    "schedule_clear",
    "schedule_mod_start",
    "schedule_add",
    "schedule_add",
    "schedule_mod_end",
]
LEGACY_SEQUENCE = ["utc_offset", "schedule"]


def device_id(hass: HomeAssistant, feeder: SimulatedFeeder) -> str:
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, feeder.device_hid)}
    )
    assert device is not None
    return device.id


async def settle(hub: PetnetHub, feeder: SimulatedFeeder) -> None:
    """Wait until no sync is owed or running for the feeder, and the feeder has what was sent."""
    await hub.schedules.reconciler(feeder.device_hid).async_wait_idle()
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
