"""Select of a feeder: which schedule commands it gets (firmware family override, §8)."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import PetnetEntity, PetnetEntityDescription, async_add_feeder_entities
from .hub import PetnetConfigEntry, PetnetHub
from .models import Feeder
from .schedule_sync import FIRMWARE_FAMILIES
from .translate import translated

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PetnetSelectEntityDescription(SelectEntityDescription, PetnetEntityDescription):
    """A feeder select."""


FIRMWARE_FAMILY = PetnetSelectEntityDescription(
    key="firmware_family",
    translation_key="firmware_family",
    entity_category=EntityCategory.CONFIG,
    options=list(FIRMWARE_FAMILIES),
    entity_registry_enabled_default=False,
    # A setting kept by HA: editable while the feeder is offline.
    available_while_offline=True,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the schedule command family select of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetFirmwareFamilySelect]:
        return [PetnetFirmwareFamilySelect(hub, feeder, FIRMWARE_FAMILY)]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetFirmwareFamilySelect(PetnetEntity, SelectEntity):
    """Automatic by firmware version, or forced legacy / new for odd firmware versions."""

    entity_description: PetnetSelectEntityDescription

    @property
    def current_option(self) -> str:
        """The chosen family."""
        return self.feeder.firmware_family

    @translated
    async def async_select_option(self, option: str) -> None:
        """Choose a family; the schedule is resent in that form."""
        self.hub.meal_editor.set_firmware_family(self.feeder, option)
