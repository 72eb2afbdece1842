"""Switches of a feeder: whether its front (manual feed) button works, and feeding paused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .const import ATTR_UNTIL
from .entity import PetnetEntity, PetnetEntityDescription, async_add_feeder_entities
from .hub import PetnetConfigEntry, PetnetHub
from .models import Feeder
from .translate import translated

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class PetnetSwitchEntityDescription(SwitchEntityDescription, PetnetEntityDescription):
    """A feeder switch."""


FRONT_BUTTON = PetnetSwitchEntityDescription(
    key="front_button",
    translation_key="front_button",
    entity_category=EntityCategory.CONFIG,
)


PAUSED = PetnetSwitchEntityDescription(
    key="paused",
    translation_key="paused",
    # HA's own setting: it can be changed while the feeder is away, and is delivered later.
    available_while_offline=True,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the front button switch of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetEntity]:
        return [
            PetnetFrontButtonSwitch(hub, feeder, FRONT_BUTTON),
            PetnetPausedSwitch(hub, feeder, PAUSED),
        ]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetFrontButtonSwitch(PetnetEntity, SwitchEntity):
    """The feeder does not report this setting, so the state is the last one we sent."""

    entity_description: PetnetSwitchEntityDescription

    @property
    def is_on(self) -> bool | None:
        """The last state sent to the feeder, unknown until one was sent."""
        return self.feeder.button_enabled

    @translated
    async def async_turn_on(self, **kwargs: Any) -> None:
        """Enable the front button."""
        await self.hub.actions.async_set_button_enabled(self.feeder.hid, True)

    @translated
    async def async_turn_off(self, **kwargs: Any) -> None:
        """Disable the front button."""
        await self.hub.actions.async_set_button_enabled(self.feeder.hid, False)


class PetnetPausedSwitch(PetnetEntity, SwitchEntity):
    """On while feeding is paused; on pauses until turned off, off resumes at once.

    A pause with an end (the pause action) shows its end as ``until``.
    """

    entity_description: PetnetSwitchEntityDescription

    @property
    def is_on(self) -> bool:
        """Whether feeding is paused now."""
        return self.feeder.paused

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """When the pause ends, if it has an end."""
        until = self.feeder.paused_until
        return {
            ATTR_UNTIL: dt_util.utc_from_timestamp(until).isoformat()
            if until is not None and self.feeder.paused
            else None
        }

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Pause feeding until the switch is turned off."""
        self.hub.pauses.pause(self.feeder)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Resume feeding now."""
        self.hub.pauses.resume(self.feeder)
