"""Selects of a feeder: the Feed now portion, and which schedule commands it gets (§8)."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import PetnetEntity, PetnetEntityDescription, async_add_feeder_entities
from .errors import invalid
from .hub import PetnetConfigEntry, PetnetHub
from .meals import format_portion
from .models import Feeder
from .protocol.commands import MAX_PORTION, MIN_PORTION, PORTION_STEP
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


def portion_option(cups: float) -> str:
    """A portion's option: its English label as a translation key (``1/4 cup`` -> ``1_4_cup``).

    The frontend shows the option through the ``state`` translations of ``manual_portion``
    (``1/4 cup``, ``1/4 Tasse``, ...).
    """
    return format_portion(cups).replace("/", "_").replace(" ", "_")


# Every portion the feeder takes: "1_16_cup" ("1/16 cup") ... "2_cups" ("2 cups").
PORTION_OPTIONS: dict[str, float] = {
    portion_option(step * PORTION_STEP): step * PORTION_STEP
    for step in range(
        round(MIN_PORTION / PORTION_STEP), round(MAX_PORTION / PORTION_STEP) + 1
    )
}

MANUAL_PORTION = PetnetSelectEntityDescription(
    key="manual_portion",
    translation_key="manual_portion",
    entity_category=EntityCategory.CONFIG,
    options=list(PORTION_OPTIONS),
    # A setting kept by HA: editable while the feeder is offline.
    available_while_offline=True,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the Feed now portion and the schedule command family select of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[SelectEntity]:
        return [
            PetnetManualPortionSelect(hub, feeder, MANUAL_PORTION),
            PetnetFirmwareFamilySelect(hub, feeder, FIRMWARE_FAMILY),
        ]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetFirmwareFamilySelect(PetnetEntity, SelectEntity):
    """Automatic by firmware version, or forced legacy / new for odd firmware versions."""

    entity_description: PetnetSelectEntityDescription
    _shown_properties = ("current_option",)

    @property
    def current_option(self) -> str:
        """The chosen family."""
        return self.feeder.firmware_family

    @translated
    async def async_select_option(self, option: str) -> None:
        """Choose a family; the schedule is resent in that form."""
        self.hub.meal_editor.set_firmware_family(self.feeder, option)


class PetnetManualPortionSelect(PetnetEntity, SelectEntity):
    """The portion Feed now dispenses, in 1/16-cup steps shown as cups ("1/4 cup")."""

    entity_description: PetnetSelectEntityDescription
    _shown_properties = ("current_option",)

    @property
    def current_option(self) -> str:
        """The portion as its option."""
        return portion_option(self.view.manual_portion)

    @translated
    async def async_select_option(self, option: str) -> None:
        """Store the portion of an option."""
        if (portion := PORTION_OPTIONS.get(option)) is None:
            raise invalid("invalid_portion", portion=option)
        self.hub.actions.set_manual_portion(self.feeder.hid, portion)
