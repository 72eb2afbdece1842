"""Binary sensors of a feeder: connectivity and power."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import PetnetConfigEntry
from .entity import PetnetEntity, async_add_feeder_entities
from .hub import PetnetHub
from .models import Feeder

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PetnetBinarySensorEntityDescription(BinarySensorEntityDescription):
    """A feeder binary sensor and how to read it."""

    is_on_fn: Callable[[PetnetHub, Feeder], bool | None]
    always_available: bool = False


BINARY_SENSORS: tuple[PetnetBinarySensorEntityDescription, ...] = (
    PetnetBinarySensorEntityDescription(
        key="connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda hub, feeder: hub.is_online(feeder),
        always_available=True,
    ),
    PetnetBinarySensorEntityDescription(
        key="charging",
        device_class=BinarySensorDeviceClass.BATTERY_CHARGING,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda _hub, feeder: feeder.telemetry.charging,
    ),
    PetnetBinarySensorEntityDescription(
        key="usb_power",
        translation_key="usb_power",
        device_class=BinarySensorDeviceClass.PLUG,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda _hub, feeder: feeder.telemetry.usb,
    ),
    # A problem sensor: on while the feeder may not hold the schedule HA has.
    PetnetBinarySensorEntityDescription(
        key="schedule_sync",
        translation_key="schedule_sync",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda hub, feeder: not hub.schedules.in_sync(feeder),
        always_available=True,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetBinarySensor]:
        return [
            PetnetBinarySensor(hub, feeder, description)
            for description in BINARY_SENSORS
        ]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetBinarySensor(PetnetEntity, BinarySensorEntity):
    """A binary sensor of one feeder."""

    entity_description: PetnetBinarySensorEntityDescription

    @property
    def available(self) -> bool:
        """Connectivity must stay readable while the feeder is offline."""
        return self.entity_description.always_available or super().available

    @property
    def is_on(self) -> bool | None:
        """Read the state from the hub."""
        return self.entity_description.is_on_fn(self.hub, self.feeder)
