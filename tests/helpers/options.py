"""Changing a config entry's options the way the options flow does."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.petnet_feeder.compat import OPTIONS_FLOW_RELOADS


async def set_options(
    hass: HomeAssistant, entry: MockConfigEntry, options: dict[str, Any]
) -> None:
    """Change the entry's options as the options flow does, reload included.

    Where the options flow reloads the entry itself (Home Assistant 2025.8 and later) no
    update listener does, so changing the options directly needs the reload said aloud.
    """
    hass.config_entries.async_update_entry(entry, options=options)
    if OPTIONS_FLOW_RELOADS:
        assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
