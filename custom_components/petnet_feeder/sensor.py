"""Sensors of a feeder: power, signal and when it was last heard from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfElectricPotential
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.typing import StateType

from . import PetnetConfigEntry
from .battery import battery_percent
from .entity import PetnetEntity, async_add_feeder_entities
from .hub import PetnetHub
from .models import Feeder

PARALLEL_UPDATES = 0


def _timestamp(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


@dataclass(frozen=True, kw_only=True)
class PetnetSensorEntityDescription(SensorEntityDescription):
    """A feeder sensor and how to read its value."""

    value_fn: Callable[[PetnetHub, Feeder], StateType | datetime]
    attributes_fn: Callable[[PetnetHub, Feeder], dict[str, Any] | None] = (
        lambda _h, _f: None
    )
    always_available: bool = False


def _next_meal(hub: PetnetHub, feeder: Feeder) -> datetime | None:
    upcoming = hub.schedules.next_meal(feeder)
    return upcoming[1] if upcoming else None


def _next_meal_attributes(hub: PetnetHub, feeder: Feeder) -> dict[str, Any] | None:
    if (upcoming := hub.schedules.next_meal(feeder)) is None:
        return None
    meal = upcoming[0]
    return {"meal_id": meal.meal_id, "meal_name": meal.name, "portion": meal.portion}


SENSORS: tuple[PetnetSensorEntityDescription, ...] = (
    PetnetSensorEntityDescription(
        key="battery_voltage",
        translation_key="battery_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda _hub, feeder: feeder.telemetry.voltage_v,
    ),
    PetnetSensorEntityDescription(
        key="battery_level",
        device_class=SensorDeviceClass.BATTERY,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda _hub, feeder: battery_percent(feeder.telemetry.voltage_v),
    ),
    PetnetSensorEntityDescription(
        key="wifi_signal",
        translation_key="wifi_signal",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda _hub, feeder: feeder.telemetry.rssi,
    ),
    PetnetSensorEntityDescription(
        key="last_seen",
        translation_key="last_seen",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda _hub, feeder: _timestamp(feeder.last_seen),
    ),
    PetnetSensorEntityDescription(
        key="next_meal",
        translation_key="next_meal",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_next_meal,
        attributes_fn=_next_meal_attributes,
        always_available=True,
    ),
    PetnetSensorEntityDescription(
        key="last_schedule_sync",
        translation_key="last_schedule_sync",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda _hub, feeder: _timestamp(feeder.last_synced_at),
        always_available=True,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the sensors of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetSensor]:
        return [PetnetSensor(hub, feeder, description) for description in SENSORS]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetSensor(PetnetEntity, SensorEntity):
    """A sensor of one feeder."""

    entity_description: PetnetSensorEntityDescription

    @property
    def available(self) -> bool:
        """Schedule sensors show HA's own data, so they stay available offline."""
        return self.entity_description.always_available or super().available

    @property
    def native_value(self) -> StateType | datetime:
        """Read the value from the feeder's state."""
        return self.entity_description.value_fn(self.hub, self.feeder)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details of the value, where the sensor has any."""
        return self.entity_description.attributes_fn(self.hub, self.feeder)
