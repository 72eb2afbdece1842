"""Shared fixtures: a real hass, the integration on free loopback ports, simulated feeders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
import socket
from typing import Any

from homeassistant.core import HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder.const import (
    CONF_BIND_HOST,
    CONF_HTTP_PORT,
    CONF_HTTPS_PORT,
    CONF_MQTT_PORT,
    CONF_MQTTS_PORT,
    CONF_TRANSPORT,
    DOMAIN,
    TRANSPORT_BUNDLED,
)
from feeder_sim import SimulatedFeeder

LOOPBACK = "127.0.0.1"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ in every test."""


@pytest.fixture(autouse=True)
def isolated_config_dir(hass: HomeAssistant, tmp_path: Path) -> None:
    """Write the generated certificate into the test's own folder, not the shared test config."""
    hass.config.config_dir = str(tmp_path)


def free_port() -> int:
    """A port nothing listens on right now (loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def entry_data(socket_enabled: None) -> dict[str, Any]:
    """Config entry data with four free loopback ports."""
    return {
        CONF_TRANSPORT: TRANSPORT_BUNDLED,
        CONF_BIND_HOST: LOOPBACK,
        CONF_HTTP_PORT: free_port(),
        CONF_HTTPS_PORT: free_port(),
        CONF_MQTT_PORT: free_port(),
        CONF_MQTTS_PORT: free_port(),
    }


@pytest.fixture
def config_entry(entry_data: dict[str, Any]) -> MockConfigEntry:
    """The integration's single config entry."""
    return MockConfigEntry(domain=DOMAIN, title="Petnet SmartFeeder", data=entry_data)


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The integration set up; unloaded at the end so every listener closes."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    yield config_entry
    if config_entry.state.recoverable:
        await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


type FeederFactory = Callable[..., Awaitable[SimulatedFeeder]]


@pytest.fixture
async def make_feeder(entry_data: dict[str, Any]) -> AsyncIterator[FeederFactory]:
    """Start simulated feeders against the integration's TLS ports; stop them at the end."""
    feeders: list[SimulatedFeeder] = []

    async def make(
        uid: str = "smartfeeder-795ae773737d", *, boot: bool = True, **kwargs: Any
    ) -> SimulatedFeeder:
        kwargs.setdefault("firmware", "2.8.0")
        feeder = SimulatedFeeder(
            uid=uid,
            kronos_url=f"https://{LOOPBACK}:{entry_data[CONF_HTTPS_PORT]}",
            mqtt_host=LOOPBACK,
            mqtt_port=entry_data[CONF_MQTTS_PORT],
            mqtt_tls=True,
            **kwargs,
        )
        feeders.append(feeder)
        if boot:
            await feeder.boot()
        return feeder

    yield make
    for feeder in feeders:
        await feeder.stop()


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


async def wait_for_feeder(
    hub: Any, feeder_hid: str, predicate: Callable[[Any], bool], timeout: float = 10
) -> None:
    """Wait until the hub's state of a feeder satisfies predicate (woken by the hub's listener)."""
    done = asyncio.Event()

    @callback
    def check() -> None:
        if (feeder := hub.feeders.get(feeder_hid)) is not None and predicate(feeder):
            done.set()

    unsub = hub.async_subscribe_feeder(feeder_hid, check)
    try:
        check()
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        unsub()


@pytest.fixture
def hub(loaded_entry: MockConfigEntry) -> Any:
    """The loaded hub, with schedule syncs that start quickly (no 2 s debounce, no pacing)."""
    hub = loaded_entry.runtime_data
    hub.schedules.reconciler_options = {"debounce_s": 0.05, "pacing_s": 0}
    return hub
