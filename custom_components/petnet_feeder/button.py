"""Buttons of a feeder: feed now and reboot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.button import (
    ButtonDeviceClass,
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import PetnetConfigEntry
from .entity import PetnetEntity, async_add_feeder_entities
from .hub import PetnetHub
from .models import Feeder

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class PetnetButtonEntityDescription(ButtonEntityDescription):
    """A feeder button and what pressing it does."""

    press_fn: Callable[[PetnetHub, Feeder], Awaitable[None]]
    always_available: bool = False


async def _hopper_refilled(hub: PetnetHub, feeder: Feeder) -> None:
    hub.async_set_hopper_level(feeder.hid, 100)


BUTTONS: tuple[PetnetButtonEntityDescription, ...] = (
    PetnetButtonEntityDescription(
        key="feed_now",
        translation_key="feed_now",
        press_fn=lambda hub, feeder: hub.async_feed(
            feeder.hid, hub.manual_portion(feeder)
        ),
    ),
    PetnetButtonEntityDescription(
        key="sync_schedule",
        translation_key="sync_schedule",
        press_fn=lambda hub, feeder: hub.async_sync_schedule(feeder.hid),
    ),
    PetnetButtonEntityDescription(
        key="hopper_refilled",
        translation_key="hopper_refilled",
        press_fn=_hopper_refilled,
        always_available=True,
    ),
    PetnetButtonEntityDescription(
        key="reboot",
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.CONFIG,
        press_fn=lambda hub, feeder: hub.async_reboot(feeder.hid),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the buttons of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetButton]:
        return [PetnetButton(hub, feeder, description) for description in BUTTONS]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetButton(PetnetEntity, ButtonEntity):
    """A button of one feeder."""

    entity_description: PetnetButtonEntityDescription

    @property
    def available(self) -> bool:
        """Buttons that only change HA's own data work while the feeder is offline."""
        return self.entity_description.always_available or super().available

    async def async_press(self) -> None:
        """Send the command."""
        await self.entity_description.press_fn(self.hub, self.feeder)
