"""Sensors of a feeder (power, signal, meals, food) and of a pet (its day of meals)."""

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

from .accounting import (
    DayTotals,
    day_totals,
    hopper_percent,
    last_feed,
    last_meal_status,
    local_midnight,
    today_occurrences,
)
from .battery import battery_percent
from .const import ATTR_PORTION
from .entity import (
    PetnetEntity,
    PetnetEntityDescription,
    PetnetPetEntity,
    PetnetPetEntityDescription,
    async_add_feeder_entities,
    async_add_pet_entities,
)
from .feeder_view import FeederView
from .hub import PetnetConfigEntry, PetnetHub
from .meals import MealState
from .models import Feeder
from .monitor import source_name
from .pet_view import PetView
from .pets import Pet

PARALLEL_UPDATES = 0

LAST_MEAL_STATES = (
    MealState.DISPENSED,
    MealState.FAILED,
    MealState.DUE,
    MealState.MISSED,
    MealState.UNCONFIRMED,
    MealState.SKIPPED,
    MealState.PAUSED,
    MealState.UPCOMING,
)


def _timestamp(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


@dataclass(frozen=True, kw_only=True)
class PetnetSensorEntityDescription(SensorEntityDescription, PetnetEntityDescription):
    """A feeder sensor and how to read its value."""

    value_fn: Callable[[FeederView], StateType | datetime]
    attributes_fn: Callable[[FeederView], dict[str, Any] | None] = lambda _view: None
    # When the current cycle of a TOTAL sensor began.
    last_reset_fn: Callable[[FeederView], datetime] | None = None


def _clock(view: FeederView) -> tuple[ZoneInfo, datetime, timedelta]:
    return view.zone, view.now, view.window


def _today(view: FeederView) -> DayTotals:
    return day_totals(view.feeder, *_clock(view))


def _start_of_today(view: FeederView) -> datetime:
    """The feeder's local midnight: where today's totals start."""
    return local_midnight(view.now, view.zone)


def _last_meal_status(view: FeederView) -> str | None:
    state = last_meal_status(view.feeder, *_clock(view))
    return state.value if state is not None else None


def _last_feed_time(view: FeederView) -> datetime | None:
    result = last_feed(view.feeder)
    return _timestamp(result.start_ms / 1000) if result else None


def _last_feed_attributes(view: FeederView) -> dict[str, Any] | None:
    if (result := last_feed(view.feeder)) is None:
        return None
    return {
        "grams_expected": result.grams_expected,
        "grams_actual": result.grams_actual,
        "source": source_name(result.source),
        "failed": bool(result.fail),
    }


# Status codes of the raw feed plan (dispenser-schedule-card, `type: custom`); README's
# status_map names them for the card.
FEED_PLAN_DISPENSED = 0
FEED_PLAN_FAILED = 1
FEED_PLAN_PENDING = 2
FEED_PLAN_SKIPPED = 3  # skipped by the user, or missed
FEED_PLAN_DISABLED = 4
FEED_PLAN_STATUS = {
    MealState.DISPENSED: FEED_PLAN_DISPENSED,
    MealState.FAILED: FEED_PLAN_FAILED,
    MealState.UPCOMING: FEED_PLAN_PENDING,
    MealState.DUE: FEED_PLAN_PENDING,
    MealState.MISSED: FEED_PLAN_SKIPPED,
    # Not known to be missed: shown like a meal whose result is still to come.
    MealState.UNCONFIRMED: FEED_PLAN_PENDING,
    MealState.SKIPPED: FEED_PLAN_SKIPPED,
    MealState.PAUSED: FEED_PLAN_SKIPPED,
    MealState.DISABLED: FEED_PLAN_DISABLED,
}
# Home Assistant keeps at most 255 characters of a state.
MAX_STATE_LENGTH = 255


def _feed_plan(view: FeederView) -> str:
    """Today's meals as `id,hour,minute,tablespoons,status` groups for schedule cards.

    The dispenser-schedule-card shows them as the day's plan.

    Meals that do not fit in a state (about 16 with three-digit ids) are left out whole.
    """
    feeder = view.feeder
    zone, now, window = _clock(view)
    # Keyed by time too: a meal moved today also has its earlier (recorded) occurrence.
    today = {
        (o.meal.meal_id, o.meal.time_s): o
        for o in today_occurrences(feeder, zone, now, window)
    }
    plan = ""
    day = now.astimezone(zone).date()
    # Today's plan only: a weekly or one-off meal of another day is not shown.
    for meal in (meal for meal in feeder.meals if meal.occurs_on(day)):
        occurrence = today.get((meal.meal_id, meal.time_s))
        if not meal.enabled:
            code = FEED_PLAN_DISABLED
        elif occurrence is None:
            code = FEED_PLAN_PENDING  # not due today (added after its time)
        else:
            code = FEED_PLAN_STATUS[occurrence.state]
        group = (
            f"{meal.meal_id},{meal.time_s // 3600},{meal.time_s // 60 % 60},"
            f"{round(meal.portion * 16)},{code}"
        )
        joined = f"{plan},{group}" if plan else group
        if len(joined) > MAX_STATE_LENGTH:
            break
        plan = joined
    return plan


def _next_meal(view: FeederView) -> datetime | None:
    upcoming = view.next_meal
    return upcoming[1] if upcoming else None


ATTR_MEAL_ID = "meal_id"
ATTR_MEAL_NAME = "meal_name"


def _next_meal_attributes(view: FeederView) -> dict[str, Any] | None:
    if (upcoming := view.next_meal) is None:
        return None
    meal = upcoming[0]
    return {
        ATTR_MEAL_ID: meal.meal_id,
        ATTR_MEAL_NAME: meal.name,
        ATTR_PORTION: meal.portion,
    }


SENSORS: tuple[PetnetSensorEntityDescription, ...] = (
    PetnetSensorEntityDescription(
        key="battery_voltage",
        translation_key="battery_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda view: view.feeder.telemetry.voltage_v,
    ),
    PetnetSensorEntityDescription(
        key="battery_level",
        device_class=SensorDeviceClass.BATTERY,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda view: battery_percent(view.feeder.telemetry.voltage_v),
    ),
    PetnetSensorEntityDescription(
        key="wifi_signal",
        translation_key="wifi_signal",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda view: view.feeder.telemetry.rssi,
    ),
    PetnetSensorEntityDescription(
        key="last_seen",
        translation_key="last_seen",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        # It changes with every heartbeat: a logbook line and a recorder row each time.
        # Connectivity already shows whether the feeder is alive.
        entity_registry_enabled_default=False,
        shows_liveness=True,
        value_fn=lambda view: _timestamp(view.feeder.last_seen),
    ),
    PetnetSensorEntityDescription(
        key="next_meal",
        translation_key="next_meal",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_next_meal,
        attributes_fn=_next_meal_attributes,
        available_while_offline=True,
    ),
    PetnetSensorEntityDescription(
        key="last_feed",
        translation_key="last_feed",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_last_feed_time,
        attributes_fn=_last_feed_attributes,
        available_while_offline=True,
    ),
    PetnetSensorEntityDescription(
        key="food_today",
        translation_key="food_today",
        device_class=SensorDeviceClass.WEIGHT,
        # A new cycle starts at the feeder's local midnight, whatever the value does: with
        # TOTAL_INCREASING the recorder would see a reset only in a drop below 90 %, and lose
        # a day when HA is down over midnight and the new day reaches 90 % of the old one.
        state_class=SensorStateClass.TOTAL,
        last_reset_fn=_start_of_today,
        native_unit_of_measurement=UnitOfMass.GRAMS,
        suggested_display_precision=0,
        value_fn=lambda view: _today(view).grams,
        available_while_offline=True,
    ),
    PetnetSensorEntityDescription(
        key="meals_dispensed_today",
        translation_key="meals_dispensed_today",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda view: _today(view).meals_dispensed,
        available_while_offline=True,
    ),
    PetnetSensorEntityDescription(
        key="meals_planned_today",
        translation_key="meals_planned_today",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda view: _today(view).meals_planned,
        available_while_offline=True,
    ),
    PetnetSensorEntityDescription(
        key="last_meal_status",
        translation_key="last_meal_status",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in LAST_MEAL_STATES],
        value_fn=_last_meal_status,
        available_while_offline=True,
    ),
    PetnetSensorEntityDescription(
        key="hopper_level",
        translation_key="hopper_level",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        # An estimate: "99 %", not "99.0 %".
        suggested_display_precision=0,
        value_fn=lambda view: hopper_percent(view.feeder),
        available_while_offline=True,
    ),
    PetnetSensorEntityDescription(
        key="feed_plan",
        translation_key="feed_plan",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_feed_plan,
        available_while_offline=True,
    ),
    PetnetSensorEntityDescription(
        key="last_schedule_sync",
        translation_key="last_schedule_sync",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda view: _timestamp(view.feeder.last_synced_at),
        available_while_offline=True,
    ),
)


@dataclass(frozen=True, kw_only=True)
class PetnetPetSensorEntityDescription(
    SensorEntityDescription, PetnetPetEntityDescription
):
    """A pet sensor and how to read its value."""

    value_fn: Callable[[PetView], StateType | datetime]
    # When the current cycle of a TOTAL sensor began.
    last_reset_fn: Callable[[PetView], datetime] | None = None


PET_SENSORS: tuple[PetnetPetSensorEntityDescription, ...] = (
    PetnetPetSensorEntityDescription(
        key="food_today",
        translation_key="pet_food_today",
        device_class=SensorDeviceClass.WEIGHT,
        # As the feeder's: a new cycle at local midnight (the first feeder's zone).
        state_class=SensorStateClass.TOTAL,
        last_reset_fn=lambda view: view.start_of_today,
        native_unit_of_measurement=UnitOfMass.GRAMS,
        suggested_display_precision=0,
        value_fn=lambda view: view.today.grams,
    ),
    PetnetPetSensorEntityDescription(
        key="food_target",
        translation_key="pet_food_target",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        value_fn=lambda view: view.target_percent,
    ),
    PetnetPetSensorEntityDescription(
        key="meals_dispensed_today",
        translation_key="meals_dispensed_today",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda view: view.today.meals_dispensed,
    ),
    PetnetPetSensorEntityDescription(
        key="meals_planned_today",
        translation_key="meals_planned_today",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda view: view.today.meals_planned,
    ),
    PetnetPetSensorEntityDescription(
        key="last_fed",
        translation_key="last_fed",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda view: view.last_fed,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every feeder and of every pet."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetSensor]:
        return [PetnetSensor(hub, feeder, description) for description in SENSORS]

    def build_pet(hub: PetnetHub, pet: Pet) -> list[PetnetPetSensor]:
        return [PetnetPetSensor(hub, pet, description) for description in PET_SENSORS]

    async_add_feeder_entities(entry, async_add_entities, build)
    async_add_pet_entities(entry, async_add_entities, build_pet)


class PetnetSensor(PetnetEntity, SensorEntity):
    """A sensor of one feeder."""

    entity_description: PetnetSensorEntityDescription
    # The next meal's details: they change with every meal and are the schedule's, which is
    # not history. (No other sensor has these attributes.)
    _unrecorded_attributes = frozenset({ATTR_MEAL_ID, ATTR_MEAL_NAME, ATTR_PORTION})
    _shown_properties = ("native_value", "extra_state_attributes", "last_reset")

    @property
    def native_value(self) -> StateType | datetime:
        """Read the value from the feeder's state."""
        return self.entity_description.value_fn(self.view)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details of the value, where the sensor has any."""
        return self.entity_description.attributes_fn(self.view)

    @property
    def last_reset(self) -> datetime | None:
        """When the current cycle began, for a sensor that has cycles."""
        if (last_reset_fn := self.entity_description.last_reset_fn) is None:
            return None
        return last_reset_fn(self.view)


class PetnetPetSensor(PetnetPetEntity, SensorEntity):
    """A sensor of one pet."""

    entity_description: PetnetPetSensorEntityDescription

    @property
    def native_value(self) -> StateType | datetime:
        """Read the value from the pet's day."""
        return self.entity_description.value_fn(self.view)

    @property
    def last_reset(self) -> datetime | None:
        """When the current cycle began, for a sensor that has cycles."""
        if (last_reset_fn := self.entity_description.last_reset_fn) is None:
            return None
        return last_reset_fn(self.view)
