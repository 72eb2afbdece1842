"""Pairing in tests: the window, the discovered feeders, accepting and ignoring them.

A config entry made by a test is new, so its pairing window is open for the first 30 minutes
(as after a real first setup) and every feeder joins. Tests about pairing close it first (the ``window_closed`` fixture).
"""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_INTEGRATION_DISCOVERY,
    ConfigFlowResult,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType

from custom_components.petnet_feeder.const import DOMAIN

EVENT_FLOW_DISCOVERED = "config_entry_discovered"


def discovered(hass: HomeAssistant) -> dict[str, dict[str, Any]]:
    """The feeders shown as discovered (their flows), by gateway hid."""
    return {
        flow["context"]["unique_id"]: dict(flow)
        for flow in hass.config_entries.flow.async_progress_by_handler(
            DOMAIN, match_context={"source": SOURCE_INTEGRATION_DISCOVERY}
        )
    }


async def wait_for_discovered(
    hass: HomeAssistant, gateway_hid: str, timeout: float = 10
) -> dict[str, Any]:
    """Wait until the feeder is shown as discovered; return its flow."""
    shown = asyncio.Event()

    @callback
    def check(_event: Event | None = None) -> None:
        if gateway_hid in discovered(hass):
            shown.set()

    unsub = hass.bus.async_listen(EVENT_FLOW_DISCOVERED, check)
    try:
        check()
        await asyncio.wait_for(shown.wait(), timeout)
    finally:
        unsub()
    return discovered(hass)[gateway_hid]


async def accept(hass: HomeAssistant, gateway_hid: str) -> ConfigFlowResult:
    """Accept a discovered feeder as the owner does (submit its flow's form)."""
    flow = await wait_for_discovered(hass, gateway_hid)
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
    await hass.async_block_till_done()
    return result


async def ignore(hass: HomeAssistant, gateway_hid: str, title: str = "x") -> None:
    """Ignore a feeder as the frontend's Ignore does."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_IGNORE},
        data={"unique_id": gateway_hid, "title": title},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def unignore(hass: HomeAssistant, gateway_hid: str) -> None:
    """Remove the ignore, as the frontend's "Stop ignoring" does."""
    entry = hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, gateway_hid)
    assert entry is not None and entry.source == SOURCE_IGNORE
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()


async def wait_session_closed(hub: Any, gateway_hid: str) -> None:
    """Wait until the bundled broker reports the gateway's session gone (woken by its events)."""
    sessions = hub.transport._gateways
    async with asyncio.timeout(10):
        while hub.transport.is_connected(gateway_hid):
            await sessions.wait_for_change(gateway_hid)
