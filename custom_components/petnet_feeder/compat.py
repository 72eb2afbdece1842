"""Where Home Assistant releases differ: the newer way where it exists, the older one before.

The integration supports Home Assistant 2025.4.4 and later (hacs.json). Each name here says
which release brought the newer API; docs/compatibility.md lists every such change and how it
is tested.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

if TYPE_CHECKING:
    OptionsFlowBase = config_entries.OptionsFlow
else:
    # 2025.8: an options flow that reloads the entry itself when its options changed.
    OptionsFlowBase = getattr(
        config_entries, "OptionsFlowWithReload", config_entries.OptionsFlow
    )

OPTIONS_FLOW_RELOADS: bool = OptionsFlowBase is not config_entries.OptionsFlow
"""Whether the options flow reloads the entry. Where it does, the entry must not also have an
update listener that reloads it: Home Assistant refuses that combination (a ValueError when the
flow ends), and from 2026.12 refuses an update listener beside any reloading flow method."""


def async_get_device(
    hass: HomeAssistant, config_entry_id: str, identifier: tuple[str, str]
) -> dr.DeviceEntry | None:
    """The device of this config entry with this identifier, if it exists.

    From 2026.8 identifiers are unique per config entry only: ``async_get_device`` is
    deprecated (it logs a warning for custom integrations) in favour of a lookup scoped to the
    config entry.
    """
    registry = dr.async_get(hass)
    if (
        by_identifier := getattr(registry, "async_get_device_by_identifier", None)
    ) is None:
        return registry.async_get_device(identifiers={identifier})
    device: dr.DeviceEntry | None = by_identifier(identifier, config_entry_id)
    return device
