"""Binary sensors of a feeder: connectivity and power."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_point_in_utc_time

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
    # When the state may change with time alone (no feeder update): it is written then.
    changes_at_fn: Callable[[FeederView], datetime | None] = lambda _view: None


BINARY_SENSORS: tuple[PetnetBinarySensorEntityDescription, ...] = (
    PetnetBinarySensorEntityDescription(
        key="connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda view: view.online,
        available_while_offline=True,
        # Not written per heartbeat: coming online or going offline notifies every entity.
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
    # A problem sensor: on while the feeder may not hold the schedule HA has and the
    # delivery is late (or cannot happen: the feeder is offline); not during a normal one.
    PetnetBinarySensorEntityDescription(
        key="schedule_sync",
        translation_key="schedule_sync",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda view: view.schedule_problem,
        changes_at_fn=lambda view: view.delivery_late_at,
        available_while_offline=True,
    ),
    # The feeder holds one day's meals; tomorrow's arrive once today's last has passed.
    PetnetBinarySensorEntityDescription(
        key="tomorrow_delivered",
        translation_key="tomorrow_delivered",
        is_on_fn=lambda view: view.tomorrow_delivered,
        changes_at_fn=lambda view: view.next_day_at,
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
    _shown_properties = ("is_on",)

    @property
    def is_on(self) -> bool | None:
        """Read the state from the feeder's view."""
        return self.entity_description.is_on_fn(self.view)

    _unsub_recheck: CALLBACK_TYPE | None = None

    async def async_added_to_hass(self) -> None:
        """Follow the feeder, and the clock where the state depends on it."""
        await super().async_added_to_hass()
        self.async_on_remove(self._cancel_recheck)
        self._schedule_recheck()

    @callback
    def _handle_feeder_update(self) -> None:
        super()._handle_feeder_update()
        self._schedule_recheck()

    @callback
    def _schedule_recheck(self) -> None:
        """Write the state again when time alone may change it."""
        self._cancel_recheck()
        at = self.entity_description.changes_at_fn(self.view)
        if at is not None and at > self.view.now:
            self._unsub_recheck = async_track_point_in_utc_time(
                self.hass, self._recheck, at
            )

    @callback
    def _recheck(self, _now: datetime) -> None:
        self._unsub_recheck = None
        self._handle_feeder_update()

    @callback
    def _cancel_recheck(self) -> None:
        if self._unsub_recheck is not None:
            self._unsub_recheck()
            self._unsub_recheck = None
