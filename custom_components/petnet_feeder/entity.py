"""Base entities: one feeder's device (or one pet's), availability and push updates."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, MANUFACTURER, MODEL
from .hub import PetnetHub, hub_identifier
from .models import Feeder
from .pet_view import PetView
from .pets import Pet, device_identifier, pet_id_of_identifier
from .state import PetChange


@dataclass(frozen=True, kw_only=True)
class PetnetEntityDescription(EntityDescription):
    """What every feeder entity declares besides HA's own fields."""

    # Settings kept by HA, and what must be readable while the feeder is away (connectivity).
    available_while_offline: bool = False
    # Written for every message heard (a heartbeat), not only when the feeder changed: each
    # write costs the state machine and the recorder, and a feeder sends heartbeats at will.
    shows_liveness: bool = False


class PetnetEntity(Entity):
    """An entity of one feeder, updated when its state says the feeder changed."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: PetnetEntityDescription
    # The properties that make up what the entity shows, besides its availability. A feeder
    # update that leaves them all as last written writes nothing: most updates change one or
    # two of a feeder's 30 entities, and computing a state for Home Assistant costs far more
    # than reading these. None: written on every update.
    _shown_properties: tuple[str, ...] | None = None
    _shown: tuple[Any, ...] | None = None

    def __init__(
        self, hub: PetnetHub, feeder: Feeder, description: PetnetEntityDescription
    ) -> None:
        """Attach the entity to its feeder's device."""
        self.hub = hub
        self.feeder = feeder
        self.view = hub.view(feeder)
        self.entity_description = description
        self._attr_unique_id = f"{feeder.hid}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, feeder.hid)},
            manufacturer=MANUFACTURER,
            model=MODEL,
            name=feeder.display_name,
            sw_version=feeder.software_version,
            serial_number=feeder.uid,
        )

    @property
    def available(self) -> bool:
        """Online (an MQTT session, or heard from in the last 120 s), or not needed."""
        return self.entity_description.available_while_offline or self.view.online

    async def async_added_to_hass(self) -> None:
        """Follow the feeder's updates (liveness alone only where it is what is shown)."""
        self.async_on_remove(
            self.hub.state.async_subscribe_feeder(
                self.feeder.hid,
                self._handle_feeder_update,
                liveness=self.entity_description.shows_liveness,
            )
        )

    @callback
    def async_write_ha_state(self) -> None:
        """Write the state; the next feeder update writes again (what it shows is unknown).

        Writers other than a feeder update (HA's own when the entity is added, a timer's) do
        not pay for reading the shown properties a second time.
        """
        self._write(None)

    @callback
    def _handle_feeder_update(self) -> None:
        shown = self._now_shown()
        if shown is None or shown != self._shown:
            self._write(shown)

    def _now_shown(self) -> tuple[Any, ...] | None:
        if (names := self._shown_properties) is None:
            return None
        return (self.available, *(getattr(self, name) for name in names))

    @callback
    def _write(self, shown: tuple[Any, ...] | None) -> None:
        self._shown = shown
        super().async_write_ha_state()


def async_add_feeder_entities(
    entry: ConfigEntry[PetnetHub],
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[PetnetHub, Feeder], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every feeder now and for each one that appears later."""
    hub = entry.runtime_data
    async_add_entities(
        [
            entity
            for feeder in hub.state.feeders.values()
            for entity in build(hub, feeder)
        ]
    )

    @callback
    def add_new(feeder: Feeder) -> None:
        async_add_entities(build(hub, feeder))

    entry.async_on_unload(hub.state.async_subscribe_new_feeders(add_new))


def hub_device_info(entry: ConfigEntry) -> DeviceInfo:
    """The device of the integration itself, which carries the pairing switch."""
    return DeviceInfo(
        identifiers={(DOMAIN, hub_identifier(entry))},
        entry_type=dr.DeviceEntryType.SERVICE,
        manufacturer=MANUFACTURER,
        name=entry.title,
    )


def is_hub_device(entry: ConfigEntry, device: dr.DeviceEntry) -> bool:
    """Whether ``device`` is the integration's own device, not a feeder's."""
    return (DOMAIN, hub_identifier(entry)) in device.identifiers


class PetnetHubEntity(Entity):
    """An entity of the integration itself (on the hub device), not of a feeder."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, hub: PetnetHub, description: EntityDescription) -> None:
        """Attach the entity to the hub device."""
        self.hub = hub
        self.entity_description = description
        self._attr_unique_id = f"{hub_identifier(hub.entry)}_{description.key}"
        self._attr_device_info = hub_device_info(hub.entry)


def feeder_hid_of(device: dr.DeviceEntry | None) -> str | None:
    """The feeder hid behind an HA device of this integration (not a pet's)."""
    if device is None:
        return None
    return next(
        (
            ident
            for domain, ident in device.identifiers
            if domain == DOMAIN and pet_id_of_identifier(ident) is None
        ),
        None,
    )


def pet_id_of(device: dr.DeviceEntry | None) -> str | None:
    """The pet id behind an HA device of this integration, if it is a pet's."""
    if device is None:
        return None
    return next(
        (
            pet_id
            for domain, ident in device.identifiers
            if domain == DOMAIN and (pet_id := pet_id_of_identifier(ident)) is not None
        ),
        None,
    )


@dataclass(frozen=True, kw_only=True)
class PetnetPetEntityDescription(EntityDescription):
    """What every pet entity declares besides HA's own fields (nothing yet)."""


class PetnetPetEntity(Entity):
    """An entity of one pet, on the pet's device; updated when the pet or its feeders change.

    Always available: a pet's day is Home Assistant's own account, readable while its feeders
    are away.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: PetnetPetEntityDescription

    def __init__(
        self, hub: PetnetHub, pet: Pet, description: PetnetPetEntityDescription
    ) -> None:
        """Attach the entity to its pet's device (made by the hub when the pet was added)."""
        self.hub = hub
        self.pet_id = pet.pet_id
        self.view: PetView = hub.pet_view(pet.pet_id)
        self.entity_description = description
        self._attr_unique_id = f"{device_identifier(pet.pet_id)}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, device_identifier(pet.pet_id))}
        )

    async def async_added_to_hass(self) -> None:
        """Follow the pet's updates (and those of the feeders that feed it)."""
        self.async_on_remove(
            self.hub.state.async_subscribe_pet(self.pet_id, self._handle_pet_update)
        )

    @callback
    def _handle_pet_update(self) -> None:
        if self.view.pet is not None:  # not while it is being removed
            self.async_write_ha_state()


def async_add_pet_entities(
    entry: ConfigEntry[PetnetHub],
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[PetnetHub, Pet], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every pet now and for each one that is added later.

    A removed pet's entities go with its device.
    """
    hub = entry.runtime_data
    async_add_entities(
        [entity for pet in hub.state.pets.values() for entity in build(hub, pet)]
    )

    @callback
    def added(change: PetChange, pet: Pet) -> None:
        if change is PetChange.ADDED:
            async_add_entities(build(hub, pet))

    entry.async_on_unload(hub.state.async_watch_pets(added))
