"""Sensors of a feeder: power, signal and when it was last heard from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricPotential,
    UnitOfMass,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from . import PetnetConfigEntry
from .accounting import (
    DayTotals,
    day_totals,
    hopper_percent,
    last_feed,
    last_meal_status,
    today_occurrences,
)
from .battery import battery_percent
from .entity import PetnetEntity, async_add_feeder_entities
from .hub import PetnetHub
from .meals import MealState
from .models import Feeder
from .monitor import source_name

PARALLEL_UPDATES = 0

LAST_MEAL_STATES = (
    MealState.DISPENSED,
    MealState.FAILED,
    MealState.DUE,
    MealState.MISSED,
    MealState.UPCOMING,
)


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


def _clock(hub: PetnetHub, feeder: Feeder) -> tuple[ZoneInfo, datetime, timedelta]:
    return hub.schedules.zone(feeder), dt_util.utcnow(), hub.schedules.window


def _today(hub: PetnetHub, feeder: Feeder) -> DayTotals:
    return day_totals(feeder, *_clock(hub, feeder))


def _last_meal_status(hub: PetnetHub, feeder: Feeder) -> str | None:
    state = last_meal_status(feeder, *_clock(hub, feeder))
    return state.value if state is not None else None


def _last_feed_time(hub: PetnetHub, feeder: Feeder) -> datetime | None:
    result = last_feed(feeder)
    return _timestamp(result.start_ms / 1000) if result else None


def _last_feed_attributes(hub: PetnetHub, feeder: Feeder) -> dict[str, Any] | None:
    if (result := last_feed(feeder)) is None:
        return None
    return {
        "grams_expected": result.grams_expected,
        "grams_actual": result.grams_actual,
        "source": source_name(result.source),
        "failed": bool(result.fail),
    }


# Status codes of the raw feed plan (dispenser-schedule-card, `type: custom`).
FEED_PLAN_STATUS = {
    MealState.DISPENSED: 0,
    MealState.FAILED: 1,
    MealState.UPCOMING: 2,
    MealState.DUE: 2,
    MealState.MISSED: 3,
    MealState.DISABLED: 4,
}


def _feed_plan(hub: PetnetHub, feeder: Feeder) -> str:
    """Today's meals as `id,hour,minute,tablespoons,status` groups for schedule cards."""
    zone, now, window = _clock(hub, feeder)
    status = {
        o.meal.meal_id: o.state for o in today_occurrences(feeder, zone, now, window)
    }
    groups = [
        f"{meal.meal_id},{meal.time_s // 3600},{meal.time_s // 60 % 60},"
        f"{round(meal.portion * 16)},"
        f"{FEED_PLAN_STATUS[status.get(meal.meal_id, MealState.DISABLED if not meal.enabled else MealState.UPCOMING)]}"
        for meal in feeder.meals
    ]
    return ",".join(groups)[:255]


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
        # It changes with every heartbeat: a logbook line and a recorder row each time.
        # Connectivity already shows whether the feeder is alive.
        entity_registry_enabled_default=False,
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
        key="last_feed",
        translation_key="last_feed",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_last_feed_time,
        attributes_fn=_last_feed_attributes,
        always_available=True,
    ),
    PetnetSensorEntityDescription(
        key="food_today",
        translation_key="food_today",
        device_class=SensorDeviceClass.WEIGHT,
        # Falls to 0 at the feeder's local midnight: statistics count that as a new cycle.
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfMass.GRAMS,
        suggested_display_precision=0,
        value_fn=lambda hub, feeder: _today(hub, feeder).grams,
        always_available=True,
    ),
    PetnetSensorEntityDescription(
        key="meals_dispensed_today",
        translation_key="meals_dispensed_today",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda hub, feeder: _today(hub, feeder).meals_dispensed,
        always_available=True,
    ),
    PetnetSensorEntityDescription(
        key="meals_planned_today",
        translation_key="meals_planned_today",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda hub, feeder: _today(hub, feeder).meals_planned,
        always_available=True,
    ),
    PetnetSensorEntityDescription(
        key="last_meal_status",
        translation_key="last_meal_status",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in LAST_MEAL_STATES],
        value_fn=_last_meal_status,
        always_available=True,
    ),
    PetnetSensorEntityDescription(
        key="hopper_level",
        translation_key="hopper_level",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        value_fn=lambda _hub, feeder: hopper_percent(feeder),
        always_available=True,
    ),
    PetnetSensorEntityDescription(
        key="feed_plan",
        translation_key="feed_plan",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_feed_plan,
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
    async_add_entities: AddConfigEntryEntitiesCallback,
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
