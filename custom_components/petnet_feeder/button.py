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

from .entity import PetnetEntity, PetnetEntityDescription, async_add_feeder_entities
from .errors import FeedFailedError
from .hub import PetnetConfigEntry, PetnetHub
from .models import Feeder
from .translate import translated

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class PetnetButtonEntityDescription(ButtonEntityDescription, PetnetEntityDescription):
    """A feeder button and what pressing it does."""

    press_fn: Callable[[PetnetHub, Feeder], Awaitable[None]]


async def _feed_now(hub: PetnetHub, feeder: Feeder) -> None:
    """Feed, and say so when the feeder reports that the dispense failed (within a minute)."""
    result = await hub.monitor.async_feed_and_wait(
        feeder.hid, hub.actions.manual_portion(feeder)
    )
    if result is not None and result.fail:
        raise FeedFailedError(name=feeder.display_name, error=result.error or "unknown")


async def _sync_schedule(hub: PetnetHub, feeder: Feeder) -> None:
    hub.actions.sync_schedule(feeder.hid)


async def _hopper_refilled(hub: PetnetHub, feeder: Feeder) -> None:
    hub.actions.set_hopper_level(feeder.hid, 100)


async def _reboot(hub: PetnetHub, feeder: Feeder) -> None:
    await hub.actions.async_reboot(feeder.hid)


BUTTONS: tuple[PetnetButtonEntityDescription, ...] = (
    PetnetButtonEntityDescription(
        key="feed_now",
        translation_key="feed_now",
        press_fn=_feed_now,
    ),
    PetnetButtonEntityDescription(
        key="sync_schedule",
        translation_key="sync_schedule",
        press_fn=_sync_schedule,
    ),
    PetnetButtonEntityDescription(
        key="hopper_refilled",
        translation_key="hopper_refilled",
        press_fn=_hopper_refilled,
        available_while_offline=True,
    ),
    PetnetButtonEntityDescription(
        key="reboot",
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.CONFIG,
        press_fn=_reboot,
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
    _shown_properties = ()  # only its availability changes with the feeder

    @translated
    async def async_press(self) -> None:
        """Send the command."""
        await self.entity_description.press_fn(self.hub, self.feeder)
