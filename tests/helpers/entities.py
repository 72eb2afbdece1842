"""Finding the integration's entities and waiting for their states."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from homeassistant.core import HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event

from custom_components.petnet_feeder.const import DOMAIN


def entity_id(hass: HomeAssistant, platform: str, feeder_hid: str, key: str) -> str:
    """Entity id of a feeder's entity, found by unique id."""
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{feeder_hid}_{key}"
    )
    assert found is not None, f"no {platform} entity {key} for {feeder_hid}"
    return found


async def wait_for_state(
    hass: HomeAssistant,
    entity: str,
    predicate: Callable[[State], bool],
    timeout: float = 10,
) -> State:
    """Wait until an entity's state satisfies predicate (event driven)."""
    current = hass.states.get(entity)
    if current is not None and predicate(current):
        return current
    done: asyncio.Future[State] = hass.loop.create_future()

    @callback
    def changed(event: Any) -> None:
        new = event.data["new_state"]
        if new is not None and predicate(new) and not done.done():
            done.set_result(new)

    unsub = async_track_state_change_event(hass, [entity], changed)
    try:
        return await asyncio.wait_for(done, timeout)
    finally:
        unsub()


async def wait_for_entity(
    hass: HomeAssistant, platform: str, feeder_hid: str, key: str, timeout: float = 10
) -> str:
    """Wait until a feeder's entity exists (devices appear without a reload)."""
    registry = er.async_get(hass)
    unique_id = f"{feeder_hid}_{key}"
    if found := registry.async_get_entity_id(platform, DOMAIN, unique_id):
        return found
    done: asyncio.Future[str] = hass.loop.create_future()

    @callback
    def created(event: Any) -> None:
        if (
            found := registry.async_get_entity_id(platform, DOMAIN, unique_id)
        ) and not done.done():
            done.set_result(found)

    unsub = hass.bus.async_listen(er.EVENT_ENTITY_REGISTRY_UPDATED, created)
    try:
        return await asyncio.wait_for(done, timeout)
    finally:
        unsub()


async def set_number(
    hass: HomeAssistant, feeder_hid: str, key: str, value: float
) -> None:
    """Set a feeder's number entity with HA's number.set_value action (once it exists)."""
    number = await wait_for_entity(hass, "number", feeder_hid, key)
    await hass.services.async_call(
        "number", "set_value", {"entity_id": number, "value": value}, blocking=True
    )


async def select_option(
    hass: HomeAssistant, feeder_hid: str, key: str, option: str
) -> None:
    """Pick a feeder's select option with HA's select.select_option action (once it exists)."""
    select = await wait_for_entity(hass, "select", feeder_hid, key)
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": select, "option": option},
        blocking=True,
    )
