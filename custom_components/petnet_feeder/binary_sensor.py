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

from .entity import PetnetEntity, PetnetEntityDescription, async_add_feeder_entities
from .feeder_view import FeederView
from .hub import PetnetConfigEntry, PetnetHub
from .models import Feeder

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PetnetBinarySensorEntityDescription(
    BinarySensorEntityDescription, PetnetEntityDescription
):
    """A feeder binary sensor and how to read it."""

    is_on_fn: Callable[[FeederView], bool | None]


BINARY_SENSORS: tuple[PetnetBinarySensorEntityDescription, ...] = (
    PetnetBinarySensorEntityDescription(
        key="connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda view: view.online,
        available_while_offline=True,
        shows_liveness=True,
    ),
    PetnetBinarySensorEntityDescription(
        key="charging",
        device_class=BinarySensorDeviceClass.BATTERY_CHARGING,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda view: view.feeder.telemetry.charging,
    ),
    PetnetBinarySensorEntityDescription(
        key="usb_power",
        translation_key="usb_power",
        device_class=BinarySensorDeviceClass.PLUG,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda view: view.feeder.telemetry.usb,
    ),
    # A problem sensor: on while the feeder may not hold the schedule HA has.
    PetnetBinarySensorEntityDescription(
        key="schedule_sync",
        translation_key="schedule_sync",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda view: not view.in_sync,
        available_while_offline=True,
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
    def is_on(self) -> bool | None:
        """Read the state from the feeder's view."""
        return self.entity_description.is_on_fn(self.view)
