"""Number of a feeder: the portion the feed-now button dispenses."""

from __future__ import annotations

from homeassistant.components.number import (
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from . import PetnetConfigEntry
from .entity import PetnetEntity, async_add_feeder_entities
from .hub import PetnetHub
from .models import Feeder
from .protocol.commands import MAX_PORTION, MIN_PORTION, PORTION_STEP

PARALLEL_UPDATES = 0

UNIT_CUPS = "cups"

MANUAL_PORTION = NumberEntityDescription(
    key="manual_portion",
    translation_key="manual_portion",
    entity_category=EntityCategory.CONFIG,
    native_min_value=MIN_PORTION,
    native_max_value=MAX_PORTION,
    native_step=PORTION_STEP,
    native_unit_of_measurement=UNIT_CUPS,
    mode=NumberMode.BOX,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the portion number of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetPortionNumber]:
        return [PetnetPortionNumber(hub, feeder, MANUAL_PORTION)]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetPortionNumber(PetnetEntity, NumberEntity):
    """Kept by HA (the feeder has no such setting), so it is always available."""

    @property
    def available(self) -> bool:
        """Editable while the feeder is offline too."""
        return True

    @property
    def native_value(self) -> float:
        """The portion in cups."""
        return self.hub.manual_portion(self.feeder)

    async def async_set_native_value(self, value: float) -> None:
        """Store a new portion."""
        self.hub.async_set_manual_portion(self.feeder.hid, value)
