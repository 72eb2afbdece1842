"""Switches: a feeder's front button and feeding paused, a pet's feeding paused, pairing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .const import ATTR_UNTIL
from .entity import (
    PetnetEntity,
    PetnetEntityDescription,
    PetnetHubEntity,
    PetnetPetEntity,
    PetnetPetEntityDescription,
    async_add_feeder_entities,
    async_add_pet_entities,
)
from .hub import PetnetConfigEntry, PetnetHub
from .models import Feeder
from .pets import Pet
from .translate import translated

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class PetnetSwitchEntityDescription(SwitchEntityDescription, PetnetEntityDescription):
    """A feeder switch."""


FRONT_BUTTON = PetnetSwitchEntityDescription(
    key="front_button",
    translation_key="front_button",
    entity_category=EntityCategory.CONFIG,
)

ACCEPT_NEW = SwitchEntityDescription(
    key="accept_new_feeders",
    translation_key="accept_new_feeders",
    entity_category=EntityCategory.CONFIG,
)

PAUSED = PetnetSwitchEntityDescription(
    key="paused",
    translation_key="paused",
    # HA's own setting: it can be changed while the feeder is away, and is delivered later.
    available_while_offline=True,
)


@dataclass(frozen=True, kw_only=True)
class PetnetPetSwitchEntityDescription(
    SwitchEntityDescription, PetnetPetEntityDescription
):
    """A pet switch."""


PET_PAUSED = PetnetPetSwitchEntityDescription(key="paused", translation_key="paused")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's pairing switch, every feeder's front button and pause switches, pets'."""
    async_add_entities([PetnetAcceptNewFeedersSwitch(entry.runtime_data, ACCEPT_NEW)])

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetEntity]:
        return [
            PetnetFrontButtonSwitch(hub, feeder, FRONT_BUTTON),
            PetnetPausedSwitch(hub, feeder, PAUSED),
        ]

    def build_pet(hub: PetnetHub, pet: Pet) -> list[PetnetPetPausedSwitch]:
        return [PetnetPetPausedSwitch(hub, pet, PET_PAUSED)]

    async_add_feeder_entities(entry, async_add_entities, build)
    async_add_pet_entities(entry, async_add_entities, build_pet)


class PetnetFrontButtonSwitch(PetnetEntity, SwitchEntity):
    """The feeder does not report this setting, so the state is the last one we sent."""

    entity_description: PetnetSwitchEntityDescription
    _shown_properties = ("is_on",)

    @property
    def is_on(self) -> bool | None:
        """The last state sent to the feeder, unknown until one was sent."""
        return self.feeder.button_enabled

    @translated
    async def async_turn_on(self, **kwargs: Any) -> None:
        """Enable the front button."""
        await self.hub.actions.async_set_button_enabled(self.feeder.hid, True)

    @translated
    async def async_turn_off(self, **kwargs: Any) -> None:
        """Disable the front button."""
        await self.hub.actions.async_set_button_enabled(self.feeder.hid, False)


class PetnetPausedSwitch(PetnetEntity, SwitchEntity):
    """On while feeding is paused; on pauses until turned off, off resumes at once.

    A pause with an end (the pause action) shows its end as ``until``.
    """

    entity_description: PetnetSwitchEntityDescription
    _shown_properties = ("is_on", "extra_state_attributes")

    @property
    def is_on(self) -> bool:
        """Whether feeding is paused now."""
        return self.feeder.paused

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """When the pause ends, if it has an end."""
        until = self.feeder.paused_until
        return {
            ATTR_UNTIL: dt_util.utc_from_timestamp(until).isoformat()
            if until is not None and self.feeder.paused
            else None
        }

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Pause feeding until the switch is turned off."""
        self.hub.pauses.pause(self.feeder)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Resume feeding now."""
        self.hub.pauses.resume(self.feeder)


class PetnetPetPausedSwitch(PetnetPetEntity, SwitchEntity):
    """On while the pet's meals are paused on its feeders; like the feeder's pause switch."""

    entity_description: PetnetPetSwitchEntityDescription

    @property
    def is_on(self) -> bool:
        """Whether the pet's meals are paused now."""
        return self.view.paused

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """When the pause ends, if it has an end."""
        until = self.view.paused_until
        return {ATTR_UNTIL: until.isoformat() if until is not None else None}

    @translated
    async def async_turn_on(self, **kwargs: Any) -> None:
        """Pause the pet's meals until the switch is turned off."""
        self.hub.pauses.pause_pet(self.hub.state.pet(self.pet_id))

    @translated
    async def async_turn_off(self, **kwargs: Any) -> None:
        """Resume the pet's meals now."""
        self.hub.pauses.resume_pet(self.hub.state.pet(self.pet_id))


class PetnetAcceptNewFeedersSwitch(PetnetHubEntity, SwitchEntity):
    """On while new feeders join without a question (the pairing window is open).

    On opens a window of the configured length; off closes it at once. It also turns off by
    itself when the window ends.
    """

    @property
    def is_on(self) -> bool:
        """Whether the pairing window is open."""
        return self.hub.registrations.window_open

    async def async_added_to_hass(self) -> None:
        """Follow the window's openings and closings."""
        self.async_on_remove(
            self.hub.registrations.async_subscribe(self._window_changed)
        )

    @callback
    def _window_changed(self) -> None:
        self.async_write_ha_state()

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Open the pairing window for the configured minutes."""
        self.hub.registrations.open_window(
            self.hub.settings.pairing_window_minutes * 60
        )

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Close the pairing window."""
        self.hub.registrations.close_window()
