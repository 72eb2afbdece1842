"""The hub: builds the integration's parts for a config entry and wires them together.

Nothing here decides anything about feeders: state, the Kronos registry, inbound messages, the
outbox, schedules, monitoring and the feeder actions each own their part (see
docs/architecture.md); the hub creates them, connects the events that cross between them, and
starts and stops them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_track_time_interval

from .approvals import SETUP_WINDOW_S, PendingGateway, RegistrationControl
from .compat import async_get_device
from .confirmations import CommandConfirmations
from .const import AVAILABILITY_CHECK_INTERVAL, DOMAIN
from .feeder_actions import FeederActions
from .feeder_clock import FeederClock
from .feeder_view import FeederView
from .inbound import InboundHandler
from .kronos import KronosServer
from .meal_editor import MealEditor
from .models import Feeder
from .monitor import FeedingMonitor, MonitorSettings
from .outbox import Outbox
from .pauses import FeedingPauses
from .pet_editor import PetEditor
from .pet_view import PetView
from .pets import Pet, device_identifier
from .protocol.messages import FeedResult, ScheduleHash
from .registry import GatewayRegistry
from .schedule_sync import ScheduleSync
from .state import FeederState, PetChange
from .store import PetnetStore
from .transport.base import Transport

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class HubSettings:
    """What the hub needs from the config entry."""

    default_portion: float
    grace_minutes: int = 5
    auto_feed_missed: bool = False
    retry_failed: bool = False
    offline_alert_minutes: int = 60
    pairing_window_minutes: int = 10


type PetnetConfigEntry = ConfigEntry[PetnetHub]


def hub_identifier(entry: ConfigEntry) -> str:
    """The hub device's identifier (never a feeder hid: those have no ``hub_`` prefix)."""
    return f"hub_{entry.entry_id}"


class PetnetHub:
    """The parts of one config entry, wired together."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        store: PetnetStore,
        settings: HubSettings,
    ) -> None:
        """Create every part; async_load reads the stored state, async_start runs them."""
        self.hass = hass
        self.entry = entry
        self.settings = settings
        self.transport: Transport | None = None
        self.kronos: KronosServer | None = None
        self._unsub_availability: CALLBACK_TYPE | None = None
        self._stopped = False

        self.state = FeederState(store)
        self.confirmations = CommandConfirmations()
        self.outbox = Outbox(self.confirmations)
        self.clock = FeederClock(lambda: hass.config.time_zone, settings.grace_minutes)
        self.sync = ScheduleSync(hass, self.state, self.clock, self.outbox, self.spawn)
        self.meal_editor = MealEditor(self.clock, self.sync)
        self.pauses = FeedingPauses(hass, self.state, self.clock, self.sync)
        self.pets = PetEditor(self.state, self.meal_editor, self.pauses)
        self.actions = FeederActions(
            self.state, self.outbox, self.sync, settings.default_portion
        )
        self.monitor = FeedingMonitor(
            hass,
            self.state,
            self.clock,
            self.sync,
            self.actions,
            MonitorSettings(
                auto_feed_missed=settings.auto_feed_missed,
                retry_failed=settings.retry_failed,
                offline_alert_minutes=settings.offline_alert_minutes,
            ),
            self.spawn,
        )
        self.monitor.add_check(self.pauses.check)
        self.monitor.add_check(self.sync.check_plans)
        self.registry = GatewayRegistry(
            self.state, self.confirmations, self, self.spawn
        )
        self.registrations = RegistrationControl(
            hass,
            # The integration was added then: a first setup needs no extra step.
            setup_window_until=entry.created_at.timestamp() + SETUP_WINDOW_S,
            gateway_count=lambda: len(self.state.gateways),
            on_accepted=self._gateway_accepted,
            on_ignored=self.async_revoke_gateway,
        )
        self.registry.admission = self.registrations
        self.inbound = InboundHandler(
            self.state,
            self.registry,
            self.outbox,
            self.confirmations,
            self,
            self.spawn,
        )
        # Before any entity platform: a new feeder has its reconciler before its entities,
        # a new pet its device.
        self.state.async_subscribe_new_feeders(self.sync.feeder_added)
        self.state.async_watch_pets(self._pet_watched)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a coroutine in a task the config entry tracks (cancelled at unload)."""
        return self.entry.async_create_background_task(
            self.hass, coro, f"{DOMAIN} {name}"
        )

    def view(self, feeder: Feeder) -> FeederView:
        """One feeder as entities and diagnostics read it."""
        return FeederView(feeder, self.state, self.clock, self.sync, self.actions)

    def pet_view(self, pet_id: str) -> PetView:
        """One pet as entities and diagnostics read it."""
        return PetView(pet_id, self.state, self.clock)

    # ------------------------------------------------------------------ lifecycle

    async def async_load(self) -> None:
        """Read the stored gateways, feeders and history."""
        await self.state.async_load()

    async def async_start(self, transport: Transport, kronos: KronosServer) -> None:
        """Start the broker and the Kronos site; OSError names a port that cannot be bound.

        Their ports are bound, so a port in use fails the setup here, but accept feeders only
        from ``async_start_serving``: once the entities exist, and without a restart's
        reconnecting feeders (TLS handshakes, registrations) slowing the platforms' setup.
        """
        self.transport = transport
        self.kronos = kronos
        self.state.use_connections(transport.is_connected)
        self.outbox.attach(transport)
        # Reconcilers first: a feeder may connect while the Kronos site is still starting.
        self.sync.start()
        await transport.async_start(serve=False)
        await kronos.async_start(serve=False)
        for gateway_hid in self.state.gateways:
            transport.gateway_added(gateway_hid)
        self.monitor.start()
        self.pauses.start()
        self.registrations.start()
        for pet in self.state.pets.values():
            self._update_pet_device(pet)
        self._unsub_availability = async_track_time_interval(
            self.hass,
            self.state.async_check_availability,
            AVAILABILITY_CHECK_INTERVAL,
            cancel_on_shutdown=True,
        )

    async def async_start_serving(self) -> None:
        """Let the feeders in (after the platforms were set up)."""
        assert self.transport is not None and self.kronos is not None
        await self.transport.async_start_serving()
        await self.kronos.async_start_serving()

    async def async_stop(self) -> None:
        """Stop the transport and write everything to disk; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._unsub_availability is not None:
            self._unsub_availability()
            self._unsub_availability = None
        self.monitor.stop()
        self.pauses.stop()
        self.registrations.clear()
        self.outbox.clear()
        await self.sync.async_stop()
        if self.kronos is not None:
            await self.kronos.async_stop()
        if self.transport is not None:
            await self.transport.async_stop()
        await self.state.async_save_now()

    @callback
    def async_remove_feeder(self, feeder_hid: str) -> None:
        """The owner deleted a feeder's device: revoke its gateway for good.

        Its key is gone, so its session is closed and its next login refused; it comes back
        only through pairing. Other feeders of the same gateway (a SmartFeeder has one) go
        with it, devices included.
        """
        if (feeder := self.state.feeders.get(feeder_hid)) is None:
            return
        self._forget_feeder(feeder_hid)
        self.async_revoke_gateway(feeder.gateway_hid)

    @callback
    def async_revoke_gateway(self, gateway_hid: str) -> None:
        """Forget a gateway, its key and its feeders (and their devices); end its session."""
        devices = dr.async_get(self.hass)
        for feeder in self.state.feeders_of(gateway_hid):
            self._forget_feeder(feeder.hid)
            if device := async_get_device(
                self.hass, self.entry.entry_id, (DOMAIN, feeder.hid)
            ):
                devices.async_update_device(
                    device.id, remove_config_entry_id=self.entry.entry_id
                )
        if self.state.gateways.pop(gateway_hid, None) is None:
            return
        _LOGGER.info("Gateway %s removed; its key no longer logs in", gateway_hid)
        self.registry.save_now()
        if self.transport is not None:
            self.transport.gateway_removed(gateway_hid)

    def _forget_feeder(self, feeder_hid: str) -> None:
        if self.state.remove_feeder(feeder_hid):
            self.sync.feeder_removed(feeder_hid)
            self.monitor.feeder_removed(feeder_hid)
            self.pauses.feeder_removed(feeder_hid)
            self.pets.feeder_removed(feeder_hid)

    # ------------------------------------------------------------------ pets

    @callback
    def async_remove_pet_device(self, pet_id: str) -> None:
        """The owner deleted a pet's device: the pet goes (its meals stay, for no pet)."""
        if (pet := self.state.pets.get(pet_id)) is not None:
            self.pets.remove_pet(pet)

    def pet_device_id(self, pet_id: str) -> str | None:
        """The Home Assistant device of a pet."""
        device = async_get_device(
            self.hass, self.entry.entry_id, (DOMAIN, device_identifier(pet_id))
        )
        return device.id if device is not None else None

    def _pet_watched(self, change: PetChange, pet: Pet) -> None:
        """Each pet is a device: made when it is added, kept up to date, gone with it."""
        if change is PetChange.REMOVED:
            if device_id := self.pet_device_id(pet.pet_id):
                dr.async_get(self.hass).async_update_device(
                    device_id, remove_config_entry_id=self.entry.entry_id
                )
            return
        self._update_pet_device(pet)

    def _update_pet_device(self, pet: Pet) -> None:
        """Create or update the pet's device: named as the pet, via its first feeder.

        A pet without a feeder (or whose feeders have no device yet) hangs off the hub's
        device; the link is set only to a device that exists.
        """
        devices = dr.async_get(self.hass)
        device = devices.async_get_or_create(
            config_entry_id=self.entry.entry_id,
            identifiers={(DOMAIN, device_identifier(pet.pet_id))},
            name=pet.name,
            model=pet.model,
        )
        candidates = [*pet.feeders, hub_identifier(self.entry)]
        via = next(
            (
                found
                for identifier in candidates
                if (
                    found := devices.async_get_device(
                        identifiers={(DOMAIN, identifier)}
                    )
                )
            ),
            None,
        )
        devices.async_update_device(
            device.id, via_device_id=via.id if via is not None else None
        )

    def _gateway_accepted(self, held: PendingGateway) -> None:
        self.registry.create_gateway(
            held.hid,
            uid=held.uid,
            name=held.name,
            software_version=held.software_version,
            sdk_version=held.sdk_version,
        )
        self.state.schedule_save()

    # ------------------------------------------------------------------ registry events

    def gateway_booting(self, gateway_hid: str) -> None:
        """A gateway is new or reboots: the transport expects its login."""
        if self.transport is not None:
            self.transport.gateway_added(gateway_hid)

    def gateway_checked_in(self, gateway_hid: str) -> None:
        """A check-in makes the gateway's feeders' schedules owed."""
        self.sync.checkin(gateway_hid)

    def firmware_changed(self, feeder: Feeder) -> None:
        """Show the new version on the device and resend the schedule in its form."""
        if device := async_get_device(
            self.hass, self.entry.entry_id, (DOMAIN, feeder.hid)
        ):
            dr.async_get(self.hass).async_update_device(
                device.id, sw_version=feeder.software_version
            )
        self.sync.firmware_changed(feeder)

    # ------------------------------------------------------------------ inbound events

    def gateway_connected(self, gateway_hid: str) -> None:
        """A session is up: its feeders get their clock and schedule."""
        self.sync.gateway_connected(gateway_hid)

    def gateway_disconnected(self, gateway_hid: str) -> None:
        """A session ended: a running sync restarts once it is back."""
        self.sync.gateway_disconnected(gateway_hid)

    def hash_received(self, feeder: Feeder, message: ScheduleHash) -> None:
        """A schedule hash may show a lost or drifted schedule."""
        self.sync.hash_received(feeder, message)

    def result_stored(self, feeder: Feeder, result: FeedResult) -> None:
        """A new feed result: events, and the missed meal it may resolve."""
        self.monitor.result_stored(feeder, result)
