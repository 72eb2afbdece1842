"""The hub: the replacement cloud's state and behaviour, owned by the config entry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
import logging
import time
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_track_time_interval

from .approvals import PendingGateway, RegistrationControl
from .compat import async_get_device
from .confirmations import CommandConfirmations
from .const import (
    AVAILABILITY_CHECK_INTERVAL,
    DOMAIN,
    HISTORY_LIMIT,
    LAZY_SAVE_DELAY_S,
    MAX_FEEDERS_PER_GATEWAY,
    ONLINE_WINDOW,
)
from .kronos import KronosServer, RegistrationError
from .models import Feeder, Gateway, StoredFeedResult, Telemetry
from .monitor import FeedingMonitor
from .protocol import commands, ids, messages, topics
from .protocol.commands import Command
from .protocol.messages import (
    FeedResult,
    Heartbeat,
    ProtocolError,
    ScheduleHash,
    SensorReading,
    UnknownTelemetry,
)
from .protocol.topics import InboundKind
from .schedules import ScheduleManager
from .store import PetnetStore, serialize
from .transport.base import GatewayNotConnectedError, Transport

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class HubSettings:
    """What the hub needs from the config entry."""

    default_portion: float
    grace_minutes: int = 5
    auto_feed_missed: bool = False
    offline_alert_minutes: int = 60
    accept_new_feeders: bool = True


def _now() -> float:
    return time.time()


def feeder_display_name(feeder: Feeder) -> str:
    """Name a feeder by the MAC-like part of its uid, or by its hid."""
    return feeder.display_name


class PetnetHub:
    """Gateways, feeders and everything that happens to them."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        store: PetnetStore,
        settings: HubSettings,
    ) -> None:
        """Create an empty hub; async_load reads the stored state."""
        self.hass = hass
        self.entry = entry
        self.settings = settings
        self._store = store
        self.gateways: dict[str, Gateway] = {}
        self.feeders: dict[str, Feeder] = {}
        self.transport: Transport | None = None
        self.kronos: KronosServer | None = None
        self._feeder_listeners: dict[str, set[CALLBACK_TYPE]] = {}
        self._liveness_deaf: set[CALLBACK_TYPE] = set()
        self._new_feeder_listeners: set[Callable[[Feeder], None]] = set()
        self._online: dict[str, bool] = {}
        self._logged_once: set[tuple[str, ...]] = set()
        self.confirmations = CommandConfirmations()
        self._key_saves: set[asyncio.Task[None]] = set()
        self._unsub_availability: CALLBACK_TYPE | None = None
        self._stopped = False
        self.schedules = ScheduleManager(hass, self)
        self.monitor = FeedingMonitor(hass, self)
        self.registrations = RegistrationControl(
            hass,
            accept_new=settings.accept_new_feeders,
            gateway_count=lambda: len(self.gateways),
            on_approved=self._gateway_approved,
        )
        store.attach(lambda: serialize(self.gateways, self.feeders))

    # ------------------------------------------------------------------ lifecycle

    async def async_load(self) -> None:
        """Read the stored gateways, feeders and history."""
        self.gateways, self.feeders = await self._store.async_load()
        # A feeder heard from just before a restart is online now: only a change is logged.
        for feeder in self.feeders.values():
            self._online[feeder.hid] = self.is_online(feeder)

    async def async_start(self, transport: Transport, kronos: KronosServer) -> None:
        """Start the broker and the Kronos site; OSError names a port that cannot be bound."""
        self.transport = transport
        self.kronos = kronos
        # Reconcilers first: a feeder may connect while the Kronos site is still starting.
        self.schedules.start()
        await transport.async_start()
        await kronos.async_start()
        for gateway_hid in self.gateways:
            transport.gateway_added(gateway_hid)
        self.monitor.start()
        self._unsub_availability = async_track_time_interval(
            self.hass,
            self._async_check_availability,
            AVAILABILITY_CHECK_INTERVAL,
            cancel_on_shutdown=True,
        )

    async def async_stop(self) -> None:
        """Stop the transport and write everything to disk; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._unsub_availability is not None:
            self._unsub_availability()
            self._unsub_availability = None
        self.monitor.stop()
        self.registrations.clear()
        self.confirmations.clear()
        await self.schedules.async_stop()
        if self.kronos is not None:
            await self.kronos.async_stop()
        if self.transport is not None:
            await self.transport.async_stop()
        await self._store.async_save_now()

    # ------------------------------------------------------------------ listeners

    @callback
    def async_subscribe_feeder(
        self, feeder_hid: str, listener: CALLBACK_TYPE, *, liveness: bool = True
    ) -> CALLBACK_TYPE:
        """Call listener whenever the feeder's state changes.

        ``liveness=False``: not when only its last-seen time moved (a heartbeat that changed
        nothing else); a flood of heartbeats then costs no state writes of such entities.
        """
        listeners = self._feeder_listeners.setdefault(feeder_hid, set())
        if not liveness:
            self._liveness_deaf.add(listener)
        listeners.add(listener)

        def unsubscribe() -> None:
            listeners.discard(listener)
            self._liveness_deaf.discard(listener)

        return unsubscribe

    @callback
    def async_subscribe_new_feeders(
        self, listener: Callable[[Feeder], None]
    ) -> CALLBACK_TYPE:
        """Call listener for every feeder that appears from now on."""
        self._new_feeder_listeners.add(listener)
        return lambda: self._new_feeder_listeners.discard(listener)

    def schedule_save(self, *, lazy: bool = False) -> None:
        """Save soon; a burst of changes is one write. Lazy: liveness and telemetry only."""
        if lazy:
            self._store.schedule_save(LAZY_SAVE_DELAY_S)
        else:
            self._store.schedule_save()

    @callback
    def notify(self, feeder_hid: str, *, liveness_only: bool = False) -> None:
        """Tell the feeder's entities that its state changed (or only that it was heard)."""
        for listener in list(self._feeder_listeners.get(feeder_hid, ())):
            if not (liveness_only and listener in self._liveness_deaf):
                listener()

    # ------------------------------------------------------------------ queries

    def is_connected(self, gateway_hid: str) -> bool:
        """Whether the gateway holds an authenticated MQTT session."""
        return self.transport is not None and self.transport.is_connected(gateway_hid)

    def is_online(self, feeder: Feeder) -> bool:
        """Connected, or anything heard from it in the last 120 s (§9.1)."""
        if self.is_connected(feeder.gateway_hid):
            return True
        return (
            feeder.last_seen is not None
            and _now() - feeder.last_seen < ONLINE_WINDOW.total_seconds()
        )

    def feeder(self, feeder_hid: str) -> Feeder:
        """Return a known feeder or raise a user-facing error."""
        if (feeder := self.feeders.get(feeder_hid)) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_feeder",
                translation_placeholders={"feeder": feeder_hid},
            )
        return feeder

    def manual_portion(self, feeder: Feeder) -> float:
        """The portion the feed-now button dispenses."""
        return feeder.manual_portion or self.settings.default_portion

    # ------------------------------------------------------------------ Kronos registry

    def _new_gateway(self, hid: str) -> Gateway:
        gateway = Gateway(hid=hid, api_key=ids.new_api_key(), discovered_at=_now())
        self.gateways[hid] = gateway
        self._save_new_key()
        if self.transport is not None:
            self.transport.gateway_added(hid)
        _LOGGER.info("New gateway %s", hid)
        return gateway

    def _save_new_key(self) -> None:
        """Write now, not within 10 s: config hands the key out at once (§1.4).

        A key the feeder fetched but the disk never saw locks the feeder out after a crash
        until it is power-cycled. Writes that overlap are folded into one by HA's Store.
        """
        task = self.entry.async_create_background_task(
            self.hass, self._store.async_save_now(), f"{DOMAIN} save a new gateway key"
        )
        self._key_saves.add(task)
        task.add_done_callback(self._key_saves.discard)

    async def async_wait_keys_saved(self) -> None:
        """Return once every new key is on disk (config waits for it before answering)."""
        if self._key_saves:
            # wait(), not gather(): a client that goes away must not cancel the write.
            await asyncio.wait(set(self._key_saves))

    def _admit_gateway(self, hid: str, **info: str | None) -> Gateway:
        """Create an unknown gateway if registration control lets it in (else it raises)."""
        self.registrations.admit(hid, **info)
        return self._new_gateway(hid)

    def _gateway_approved(self, held: PendingGateway) -> None:
        gateway = self._new_gateway(held.hid)
        gateway.uid = held.uid
        gateway.name = held.name
        gateway.software_version = held.software_version
        gateway.sdk_version = held.sdk_version
        self.schedule_save()

    def register_gateway(self, body: Mapping[str, Any]) -> tuple[str, bool]:
        """Register a gateway (§3.1): idempotent, the api key is never rotated."""
        uid = body.get("uid")
        if not isinstance(uid, str) or not uid.strip():
            raise RegistrationError("uid required")
        if len(uid) > messages.MAX_TEXT_LENGTH:
            raise RegistrationError("uid too long")
        hid = ids.hid_from_uid(uid)
        version = _optional_str(body.get("softwareVersion"))
        created = hid not in self.gateways
        gateway = (
            self._admit_gateway(
                hid,
                uid=uid,
                name=_optional_str(body.get("name")),
                software_version=version,
                sdk_version=_optional_str(body.get("sdkVersion")),
            )
            if created
            else self.gateways[hid]
        )
        if not created and self.transport is not None:
            self.transport.gateway_added(hid)  # it (re)boots: see gateway_added
        gateway.uid = uid
        gateway.name = _optional_str(body.get("name")) or gateway.name
        gateway.sdk_version = (
            _optional_str(body.get("sdkVersion")) or gateway.sdk_version
        )
        gateway.last_seen = _now()
        # A body without a version keeps the one we know (FeederNet nulled it, §8 Q9, which
        # would move a feeder with more meals than legacy firmware takes to legacy).
        if version is not None:
            gateway.software_version = version
            for feeder in self.feeders_of(hid):
                self._set_software_version(feeder, version)
        self.schedule_save()
        return hid, created

    def gateway_api_key(self, gateway_hid: str) -> str | None:
        """The key config hands out; None for an unknown gateway (§3.2)."""
        gateway = self.gateways.get(gateway_hid)
        return gateway.api_key if gateway else None

    def register_device(self, body: Mapping[str, Any]) -> str:
        """Register a device (§3.3); an unknown gateway gets a placeholder record."""
        uid = body.get("uid")
        if not isinstance(uid, str) or not uid.strip():
            raise RegistrationError("uid required")
        if len(uid) > messages.MAX_TEXT_LENGTH:
            raise RegistrationError("uid too long")
        gateway_hid = body.get("gatewayHid")
        if not ids.is_safe_id(gateway_hid):
            raise RegistrationError("gatewayHid required")
        assert isinstance(gateway_hid, str)
        hid = ids.hid_from_uid(uid)
        feeder = self.feeders.get(hid)
        if feeder is not None and feeder.gateway_hid != gateway_hid:
            # A device never moves: this would hand one gateway another's feeder.
            self._warn_once(
                gateway_hid,
                "foreign",
                "Registration of feeder %s for gateway %s refused: it belongs to %s",
                hid,
                gateway_hid,
                feeder.gateway_hid,
            )
            raise RegistrationError(
                "device belongs to another gateway", HTTPStatus.CONFLICT
            )
        if gateway_hid not in self.gateways:
            self._admit_gateway(gateway_hid)
        if feeder is None and len(self.feeders_of(gateway_hid)) >= (
            MAX_FEEDERS_PER_GATEWAY
        ):
            raise RegistrationError(
                f"gateway has {MAX_FEEDERS_PER_GATEWAY} devices already",
                HTTPStatus.CONFLICT,
            )
        version = _optional_str(body.get("softwareVersion"))
        if feeder is None:
            feeder = self._add_feeder(hid, gateway_hid, uid=uid)
        feeder.uid = uid
        feeder.name = _optional_str(body.get("name")) or feeder.name
        if version is not None:
            self._set_software_version(feeder, version)
        self.schedule_save()
        self.notify(hid)
        return hid

    def _set_software_version(self, feeder: Feeder, version: str | None) -> None:
        if feeder.software_version == version:
            return
        feeder.software_version = version
        if device := async_get_device(
            self.hass, self.entry.entry_id, (DOMAIN, feeder.hid)
        ):
            dr.async_get(self.hass).async_update_device(device.id, sw_version=version)
        self.schedules.firmware_changed(feeder)
        self.notify(feeder.hid)

    def checkin(self, gateway_hid: str, *, rebooting: bool) -> None:
        """A gateway checks in (§3.4); an unknown one is created with a fresh key.

        ``rebooting``: the check-in came over HTTP, which a feeder does at boot before MQTT,
        so the transport learns that the gateway restarts (see ``gateway_added``). A check-in
        sent as an API request over MQTT (§5.7) comes from a live session: it must not count
        that session as ended.
        """
        if gateway_hid not in self.gateways:
            self._admit_gateway(gateway_hid)
        elif rebooting and self.transport is not None:
            self.transport.gateway_added(gateway_hid)
        self.gateways[gateway_hid].last_seen = _now()
        self.schedules.checkin(gateway_hid)
        self.schedule_save()

    def gateway_heard_over_http(self, gateway_hid: str) -> bool:
        """Count an HTTP heartbeat as liveness; False for an unknown gateway."""
        if (gateway := self.gateways.get(gateway_hid)) is None:
            return False
        self._mark_seen(gateway)
        return True

    def record_command_status(self, command_hid: str, status: str) -> None:
        """Remember the feeder's report on a command (§3.5, §5.7): delivery confirmation."""
        self.confirmations.reported(command_hid, status)

    def _add_feeder(
        self, hid: str, gateway_hid: str, *, uid: str | None = None
    ) -> Feeder:
        feeder = Feeder(hid=hid, gateway_hid=gateway_hid, uid=uid, discovered_at=_now())
        self.feeders[hid] = feeder
        self._online[hid] = False
        self.schedules.feeder_added(feeder)
        _LOGGER.info("New feeder %s on gateway %s", hid, gateway_hid)
        for listener in list(self._new_feeder_listeners):
            listener(feeder)
        return feeder

    @callback
    def async_remove_feeder(self, feeder_hid: str) -> None:
        """Forget a feeder; its gateway and key stay so it can come back without a reboot."""
        if self.feeders.pop(feeder_hid, None) is not None:
            self.schedules.feeder_removed(feeder_hid)
            self.monitor.feeder_removed(feeder_hid)
            self._online.pop(feeder_hid, None)
            self._feeder_listeners.pop(feeder_hid, None)
            self.schedule_save()

    # ------------------------------------------------------------------ transport handler

    def api_key_for(self, gateway_hid: str) -> str | None:
        """Return the MQTT password of a gateway (the broker's auth lookup)."""
        return self.gateway_api_key(gateway_hid)

    def on_message(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        """Handle each inbound message in its own tracked task."""
        self.entry.async_create_background_task(
            self.hass,
            self._async_handle_message(gateway_hid, topic, payload),
            f"{DOMAIN} message from {gateway_hid}",
        )

    def on_gateway_connected(self, gateway_hid: str) -> None:
        """A gateway's MQTT session is up."""
        _LOGGER.debug("Gateway %s connected", gateway_hid)
        if (gateway := self.gateways.get(gateway_hid)) is not None:
            self._mark_seen(gateway)
        self.schedules.gateway_connected(gateway_hid)

    def on_gateway_disconnected(self, gateway_hid: str) -> None:
        """A gateway's MQTT session ended."""
        _LOGGER.debug("Gateway %s disconnected", gateway_hid)
        self.schedules.gateway_disconnected(gateway_hid)
        self._async_check_availability()

    async def _async_handle_message(
        self, gateway_hid: str, topic: str, payload: bytes
    ) -> None:
        api_request = False
        try:
            parsed = topics.parse_inbound_topic(topic)
            if parsed is None or parsed[1] != gateway_hid:
                self._warn_once(
                    gateway_hid,
                    "topic",
                    "Dropped message from gateway %s on unexpected topic %s",
                    gateway_hid,
                    topic,
                )
                return
            kind = parsed[0]
            if api_request := kind is InboundKind.API_REQUEST:
                await self._async_handle_api_request(gateway_hid, payload)
            else:
                self._handle_telemetry(gateway_hid, payload)
        except ProtocolError as err:
            # Gateway, topic and message type, as far as the parser got (§4.5).
            if err.msg_type is not None:
                message_type = repr(err.msg_type)
            else:
                message_type = "API request" if api_request else "unknown"
            self._warn_once(
                gateway_hid,
                "malformed",
                "Dropped malformed message from gateway %s on %s (type %s): %s",
                gateway_hid,
                topic,
                message_type,
                err,
            )
        except GatewayNotConnectedError:
            _LOGGER.debug("Gateway %s went away before its reply was sent", gateway_hid)
        except TimeoutError:
            # Only the reply's publish waits: the feeder never took it (it may not subscribe
            # to its reply topic at all), so the request is dropped like an unanswered one.
            self._warn_once(
                gateway_hid,
                "reply_timeout",
                "Gateway %s did not take the reply to its API request in time (is it "
                "subscribed to %s?); request dropped",
                gateway_hid,
                topics.api_reply_topic(gateway_hid),
            )
        except Exception:
            _LOGGER.exception(
                "Error handling a message from gateway %s on %s", gateway_hid, topic
            )

    async def _async_handle_api_request(self, gateway_hid: str, payload: bytes) -> None:
        request = messages.parse_api_request(payload)
        # The SDK gives up on MQTT and reconnects when the reply is late: answer first.
        if self.transport is not None:
            await self.transport.async_publish(
                gateway_hid,
                topics.api_reply_topic(gateway_hid),
                messages.api_ack(request.request_id),
            )
        # Only method and uri: the request's parameters carry the gateway's key.
        _LOGGER.debug(
            "Gateway %s sent API request %.16s %.200s (answered)",
            gateway_hid,
            request.method,
            request.uri,
        )
        if (gateway := self.gateways.get(gateway_hid)) is not None:
            self._mark_seen(gateway)
        uri = request.uri or ""
        if (status := messages.command_status_from_uri(uri)) is not None:
            self.record_command_status(*status)
        elif messages.checkin_gateway_from_uri(uri) == gateway_hid:
            self.checkin(gateway_hid, rebooting=False)

    def _handle_telemetry(self, gateway_hid: str, payload: bytes) -> None:
        message = messages.parse_telemetry(payload)
        _LOGGER.debug(
            "Gateway %s sent %.64s for feeder %s",
            gateway_hid,
            message.msg_type,
            message.device_hid,
        )
        gateway = self.gateways.get(gateway_hid)
        if gateway is None:
            _LOGGER.debug("Telemetry for unknown gateway %s dropped", gateway_hid)
            return
        gateway.last_seen = _now()
        if isinstance(message, ScheduleHash) and message.device_hid is None:
            for each in self.feeders_of(gateway_hid):
                self._handle_hash(each, message)
            return
        assert message.device_hid is not None
        if (
            feeder := self._feeder_for_message(gateway_hid, message.device_hid)
        ) is None:
            return
        now = _now()
        feeder.last_seen = now
        match message:
            case Heartbeat():
                feeder.last_heartbeat = now
            case SensorReading():
                feeder.telemetry = Telemetry(
                    voltage_v=message.voltage_v,
                    usb=message.usb,
                    charging=message.charging,
                    ir=message.ir,
                    rssi=message.rssi,
                    received_at=now,
                )
            case FeedResult():
                self._store_feed_result(feeder, message, now)
            case ScheduleHash():
                self._handle_hash(feeder, message)
            case UnknownTelemetry():
                if self._first_time(gateway_hid, "kind", message.msg_type):
                    _LOGGER.debug(
                        "Ignoring unknown message type %r from gateway %s",
                        message.msg_type,
                        gateway_hid,
                    )
        came_online = self._set_online(feeder, True)
        self.schedule_save(lazy=not isinstance(message, FeedResult))
        self.notify(
            feeder.hid,
            liveness_only=isinstance(message, Heartbeat | UnknownTelemetry)
            and not came_online,
        )

    def _feeder_for_message(self, gateway_hid: str, device_hid: str) -> Feeder | None:
        """Find (or create) the feeder a message names; a gateway speaks only for its own."""
        feeder = self.feeders.get(device_hid)
        if feeder is None:
            if len(self.feeders_of(gateway_hid)) >= MAX_FEEDERS_PER_GATEWAY:
                self._warn_once(
                    gateway_hid,
                    "too_many",
                    "Gateway %s reported for a new feeder %s but has %s already; dropped",
                    gateway_hid,
                    device_hid,
                    MAX_FEEDERS_PER_GATEWAY,
                )
                return None
            return self._add_feeder(device_hid, gateway_hid)
        if feeder.gateway_hid != gateway_hid:
            self._warn_once(
                gateway_hid,
                "foreign",
                "Gateway %s reported for feeder %s of another gateway; dropped",
                gateway_hid,
                device_hid,
            )
            return None
        return feeder

    def feeders_of(self, gateway_hid: str) -> list[Feeder]:
        """The feeders whose messages go through this gateway."""
        return [f for f in self.feeders.values() if f.gateway_hid == gateway_hid]

    def _store_feed_result(
        self, feeder: Feeder, result: FeedResult, now: float
    ) -> None:
        """Keep a feed result once per start time, newest first, bounded."""
        if any(row.result.start_ms == result.start_ms for row in feeder.history):
            _LOGGER.debug(
                "Duplicate feed result %s of %s ignored", result.start_ms, feeder.hid
            )
            return
        feeder.history.append(StoredFeedResult(result=result, received_at=now))
        feeder.history.sort(key=lambda row: row.result.start_ms, reverse=True)
        del feeder.history[HISTORY_LIMIT:]
        # A result older than every kept one is dropped at once: it fires and resolves nothing.
        if any(row.result is result for row in feeder.history):
            self.monitor.result_stored(feeder, result)

    def _handle_hash(self, feeder: Feeder, message: ScheduleHash) -> None:
        feeder.last_hash = "" if message.is_empty else message.local_md5
        feeder.last_hash_at = _now()
        self.schedules.hash_received(feeder, message)

    def _mark_seen(self, gateway: Gateway) -> None:
        now = _now()
        gateway.last_seen = now
        for feeder in self.feeders_of(gateway.hid):
            feeder.last_seen = now
            came_online = self._set_online(feeder, True)
            self.notify(feeder.hid, liveness_only=not came_online)
        self.schedule_save(lazy=True)

    # ------------------------------------------------------------------ availability

    @callback
    def _async_check_availability(self, *_: Any) -> None:
        for feeder in list(self.feeders.values()):
            if self._set_online(feeder, self.is_online(feeder)):
                self.notify(feeder.hid)

    def _set_online(self, feeder: Feeder, online: bool) -> bool:
        """Record availability and log each change once; True if it changed."""
        if self._online.get(feeder.hid) == online:
            return False
        self._online[feeder.hid] = online
        if online:
            _LOGGER.info("Feeder %s is online", feeder.hid)
        else:
            _LOGGER.info("Feeder %s is offline", feeder.hid)
        return True

    # ------------------------------------------------------------------ commands

    async def async_feed(self, feeder_hid: str, portion: float) -> None:
        """Dispense a portion now; never queued for an offline feeder."""
        feeder = self.feeder(feeder_hid)
        await self._async_send(
            feeder, commands.feed(feeder.hid, _validated_portion(portion))
        )

    async def async_reboot(self, feeder_hid: str) -> None:
        """Restart the feeder."""
        feeder = self.feeder(feeder_hid)
        await self._async_send(feeder, commands.reboot(feeder.hid))

    async def async_set_button_enabled(self, feeder_hid: str, enabled: bool) -> None:
        """Turn the front (manual feed) button on or off."""
        feeder = self.feeder(feeder_hid)
        await self._async_send(
            feeder, commands.button_enable_remote(feeder.hid, enabled)
        )
        feeder.button_enabled = enabled
        self.schedule_save()
        self.notify(feeder.hid)

    async def async_sync_schedule(self, feeder_hid: str) -> None:
        """Send the whole schedule again (button and action)."""
        self.schedules.request_sync(self.feeder(feeder_hid), "requested")

    @callback
    def async_set_hopper_level(self, feeder_hid: str, percent: float) -> None:
        """Set the hopper reference (100 after a refill); later dispenses count down from it."""
        feeder = self.feeder(feeder_hid)
        if not 0 <= percent <= 100:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_hopper_level",
                translation_placeholders={"level": str(percent)},
            )
        feeder.hopper_reference_pct = float(percent)
        feeder.hopper_reference_ms = int(_now() * 1000)
        self.schedule_save()
        self.notify(feeder.hid)

    @callback
    def async_set_recipe(
        self,
        feeder_hid: str,
        *,
        g_per_tbsp: int | None = None,
        tbsp_per_feeding: int | None = None,
    ) -> None:
        """Change the food density or the button portion; the feeder gets them with `budget`."""
        feeder = self.feeder(feeder_hid)
        if g_per_tbsp is not None:
            feeder.g_per_tbsp = int(g_per_tbsp)
        if tbsp_per_feeding is not None:
            feeder.tbsp_per_feeding = int(tbsp_per_feeding)
        self.schedules.request_sync(feeder, "recipe changed")

    def cups_for_grams(self, feeder_hid: str, grams: float) -> float:
        """Convert grams to the nearest 1/16 cup with the feeder's recipe."""
        feeder = self.feeder(feeder_hid)
        if not feeder.g_per_tbsp:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="recipe_needed",
                translation_placeholders={"name": feeder.display_name},
            )
        return _validated_portion(round(grams / feeder.g_per_tbsp) / 16)

    @callback
    def async_set_manual_portion(self, feeder_hid: str, portion: float) -> None:
        """Set the portion the feed-now button dispenses."""
        feeder = self.feeder(feeder_hid)
        feeder.manual_portion = _validated_portion(portion)
        self.schedule_save()
        self.notify(feeder.hid)

    async def _async_send(self, feeder: Feeder, command: Command) -> None:
        if self.transport is None or not self.is_connected(feeder.gateway_hid):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="feeder_offline",
                translation_placeholders={"name": feeder_display_name(feeder)},
            )
        self.confirmations.sent(command.hid, feeder.gateway_hid)
        try:
            await self.transport.async_publish(
                feeder.gateway_hid,
                topics.command_topic(feeder.gateway_hid),
                command.payload,
            )
        except (GatewayNotConnectedError, TimeoutError) as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="feeder_offline",
                translation_placeholders={"name": feeder_display_name(feeder)},
            ) from err
        _LOGGER.debug(
            "Sent %s (%s) to feeder %s", command.name, command.hid, feeder.hid
        )

    # ------------------------------------------------------------------ logging

    def _first_time(self, *key: str) -> bool:
        if key in self._logged_once:
            return False
        self._logged_once.add(key)
        return True

    def _warn_once(self, gateway_hid: str, what: str, msg: str, *args: Any) -> None:
        """Warn the first time a gateway does something wrong, then keep it at debug."""
        level = (
            logging.WARNING if self._first_time(gateway_hid, what) else logging.DEBUG
        )
        _LOGGER.log(level, msg, *args)


def _validated_portion(portion: float) -> float:
    try:
        return commands.validate_portion(portion)
    except ValueError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_portion",
            translation_placeholders={"portion": str(portion)},
        ) from err


def _optional_str(value: object) -> str | None:
    """A non-empty string of bounded length (longer ones are dropped, not stored)."""
    if isinstance(value, str) and 0 < len(value) <= messages.MAX_TEXT_LENGTH:
        return value
    return None
