"""Event of a feeder: every feeding (scheduled, manual, button), failure and missed meal."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import PetnetEntity, PetnetEntityDescription, async_add_feeder_entities
from .hub import PetnetConfigEntry, PetnetHub
from .models import Feeder
from .monitor import ATTR_SCHEDULED, ATTR_STARTED, EVENT_TYPES, FeedingEvent

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PetnetEventEntityDescription(EventEntityDescription, PetnetEntityDescription):
    """A feeder event entity."""


FEEDING = PetnetEventEntityDescription(
    key="feeding",
    translation_key="feeding",
    event_types=EVENT_TYPES,
    # A missed meal is reported while the feeder is offline too.
    available_while_offline=True,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PetnetConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the feeding event entity of every feeder."""

    def build(hub: PetnetHub, feeder: Feeder) -> list[PetnetFeedingEvent]:
        return [PetnetFeedingEvent(hub, feeder, FEEDING)]

    async_add_feeder_entities(entry, async_add_entities, build)


class PetnetFeedingEvent(PetnetEntity, EventEntity):
    """Fires on new results only; after a restart HA restores the last one, nothing replays."""

    entity_description: PetnetEventEntityDescription
    _shown_properties = ()  # written when an event fires; else only availability

    # Different in every event and said by the state (the event's time) already: recording
    # them would make every event a new attributes row.
    _unrecorded_attributes = frozenset({ATTR_STARTED, ATTR_SCHEDULED})

    async def async_added_to_hass(self) -> None:
        """Follow the feeder's feeding events."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.hub.monitor.async_subscribe(self.feeder.hid, self._handle_feeding)
        )

    @callback
    def _handle_feeding(self, event: FeedingEvent) -> None:
        self._trigger_event(event.event_type, event.attributes)
        self.async_write_ha_state()
