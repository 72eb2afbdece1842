"""Switch of a feeder: whether its front (manual feed) button works."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the front button switch of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetFrontButtonSwitch]:
        return [PetnetFrontButtonSwitch(hub, feeder, FRONT_BUTTON)]

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
