"""Select of a feeder: which schedule commands it gets (firmware family override, §8)."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import PetnetConfigEntry
from .entity import PetnetEntity, async_add_feeder_entities
from .hub import PetnetHub
from .models import Feeder
from .schedules import FIRMWARE_FAMILIES

PARALLEL_UPDATES = 0

FIRMWARE_FAMILY = SelectEntityDescription(
    key="firmware_family",
    translation_key="firmware_family",
    entity_category=EntityCategory.CONFIG,
    options=list(FIRMWARE_FAMILIES),
    entity_registry_enabled_default=False,
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

    @property
    def available(self) -> bool:
        """A setting kept by HA: editable while the feeder is offline."""
        return True

    @property
    def current_option(self) -> str:
        """The chosen family."""
        return self.feeder.firmware_family

    async def async_select_option(self, option: str) -> None:
        """Choose a family; the schedule is resent in that form."""
        self.hub.schedules.set_firmware_family(self.feeder, option)
