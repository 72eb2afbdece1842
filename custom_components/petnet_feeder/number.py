"""Numbers of a feeder: the recipe (food density, button portion).

The Feed now portion is a select (``select.py``), in cups fractions; a number entity of it
left by an earlier version is removed from the entity registry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.number import (
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .entity import PetnetEntity, PetnetEntityDescription, async_add_feeder_entities
from .feeder_actions import FeederActions
from .feeder_view import FeederView
from .hub import PetnetConfigEntry, PetnetHub
from .models import Feeder
from .translate import translated

PARALLEL_UPDATES = 0

# The key of the number the Feed now portion was before it became a select.
REPLACED_NUMBER_KEYS = ("manual_portion",)


@dataclass(frozen=True, kw_only=True)
class PetnetNumberEntityDescription(NumberEntityDescription, PetnetEntityDescription):
    """A number HA keeps for a feeder, and how to read and set it.

    Kept by HA, so available while the feeder is offline; the feeder gets recipe values with
    its next sync.
    """

    available_while_offline: bool = True
    value_fn: Callable[[FeederView], float | None]
    set_fn: Callable[[FeederActions, Feeder, float], None]


NUMBERS: tuple[PetnetNumberEntityDescription, ...] = (
    PetnetNumberEntityDescription(
        key="grams_per_tablespoon",
        translation_key="grams_per_tablespoon",
        entity_category=EntityCategory.CONFIG,
        native_min_value=1,
        native_max_value=100,
        native_step=1,
        native_unit_of_measurement="g/tbsp",
        mode=NumberMode.BOX,
        value_fn=lambda view: view.feeder.g_per_tbsp,
        set_fn=lambda actions, feeder, value: actions.set_recipe(
            feeder.hid, g_per_tbsp=int(value)
        ),
    ),
    PetnetNumberEntityDescription(
        key="tablespoons_per_button_press",
        translation_key="tablespoons_per_button_press",
        entity_category=EntityCategory.CONFIG,
        native_min_value=1,
        native_max_value=32,
        native_step=1,
        native_unit_of_measurement="tbsp",
        mode=NumberMode.BOX,
        value_fn=lambda view: view.feeder.tbsp_per_feeding,
        set_fn=lambda actions, feeder, value: actions.set_recipe(
            feeder.hid, tbsp_per_feeding=int(value)
        ),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the recipe numbers of every feeder."""
    registry = er.async_get(hass)

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetNumber]:
        for key in REPLACED_NUMBER_KEYS:
            if old := registry.async_get_entity_id(
                Platform.NUMBER, DOMAIN, f"{feeder.hid}_{key}"
            ):
                registry.async_remove(old)
        return [PetnetNumber(hub, feeder, description) for description in NUMBERS]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetNumber(PetnetEntity, NumberEntity):
    """A number of one feeder."""

    entity_description: PetnetNumberEntityDescription
    _shown_properties = ("native_value",)

    @property
    def native_value(self) -> float | None:
        """The stored value."""
        return self.entity_description.value_fn(self.view)

    @translated
    async def async_set_native_value(self, value: float) -> None:
        """Store a new value."""
        self.entity_description.set_fn(self.hub.actions, self.feeder, value)
