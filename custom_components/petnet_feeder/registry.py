"""The Kronos registry's rules (§3): gateways, their keys, their devices, check-ins.

What a registration may create and what it must refuse lives here, with the errors it raises;
``kronos.py`` only reads HTTP bodies and maps these errors to HTTP answers. Whether an unknown
gateway may be created now is asked of the admission control (``approvals.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from enum import StrEnum
import logging
from typing import Any, Protocol

from .confirmations import CommandConfirmations
from .log_once import OnceLogger
from .models import Feeder, Gateway
from .protocol import ids, messages
from .state import FeederState, now

_LOGGER = logging.getLogger(__name__)


class RefusalKind(StrEnum):
    """Why a registration was refused (the HTTP edge picks its status from it)."""

    INVALID = "invalid"
    INVALID_GATEWAY = "invalid_gateway"
    CONFLICT = "conflict"


class RegistrationError(ValueError):
    """A registration the registry refuses; the message is safe to show the caller."""

    def __init__(self, detail: str, kind: RefusalKind = RefusalKind.INVALID) -> None:
        """Keep the message and the kind of refusal."""
        super().__init__(detail)
        self.kind = kind


class RegistrationPendingError(Exception):
    """The gateway is held until the user approves it (no key exists for it yet)."""

    def __init__(self, gateway_hid: str) -> None:
        """Name the held gateway."""
        super().__init__(f"Gateway ({gateway_hid}) is waiting for approval")
        self.gateway_hid = gateway_hid


class RegistrationLimitError(Exception):
    """A new gateway refused by a rate limit or a cap; retry_after None means a hard cap."""

    def __init__(self, detail: str, *, retry_after: float | None) -> None:
        """Keep the message for the caller and when it may try again."""
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class Admission(Protocol):
    """Decides whether an unknown gateway may be created now (``approvals.py``)."""

    def admit(
        self,
        gateway_hid: str,
        *,
        uid: str | None = None,
        name: str | None = None,
        software_version: str | None = None,
        sdk_version: str | None = None,
        address: str | None = None,
    ) -> None:
        """Return if it may; raise RegistrationPendingError or RegistrationLimitError."""

    def is_pending(self, gateway_hid: str) -> bool:
        """Whether the gateway waits for the user's approval."""


class RegistryEvents(Protocol):
    """What the registry tells the rest of the integration."""

    def gateway_booting(self, gateway_hid: str) -> None:
        """A gateway is new or (re)booting: it will log in to MQTT soon."""

    def gateway_checked_in(self, gateway_hid: str) -> None:
        """A gateway checked in: its feeders' schedules are owed (§7.6)."""

    def firmware_changed(self, feeder: Feeder) -> None:
        """A feeder reported another firmware version."""


type Spawn = Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]]


class GatewayRegistry:
    """Registers gateways and devices, hands out keys, and records check-ins."""

    def __init__(
        self,
        state: FeederState,
        confirmations: CommandConfirmations,
        events: RegistryEvents,
        spawn: Spawn,
    ) -> None:
        """Keep records in ``state``; ``spawn`` runs the immediate key writes."""
        self._state = state
        self._confirmations = confirmations
        self._events = events
        self._spawn = spawn
        self.admission: Admission | None = None
        self._key_saves: set[asyncio.Task[Any]] = set()
        self._log = OnceLogger(_LOGGER)

    # ------------------------------------------------------------------ gateways

    def register_gateway(
        self, body: Mapping[str, Any], address: str | None = None
    ) -> tuple[str, bool]:
        """Register a gateway (§3.1): idempotent, the api key is never rotated.

        An unknown gateway is created only if pairing admits it (``address`` is the
        caller's, shown to the owner).
        """
        uid = _required_uid(body)
        hid = ids.hid_from_uid(uid)
        version = _optional_str(body.get("softwareVersion"))
        gateways = self._state.gateways
        created = hid not in gateways
        if created:
            gateway = self._admit_gateway(
                hid,
                uid=uid,
                name=_optional_str(body.get("name")),
                software_version=version,
                sdk_version=_optional_str(body.get("sdkVersion")),
                address=address,
            )
        else:
            gateway = gateways[hid]
            self._events.gateway_booting(hid)
        gateway.uid = uid
        gateway.name = _optional_str(body.get("name")) or gateway.name
        gateway.sdk_version = (
            _optional_str(body.get("sdkVersion")) or gateway.sdk_version
        )
        gateway.last_seen = now()
        # A body without a version keeps the one we know (§11 Q9: nulling it would move a
        # feeder with more meals than legacy firmware takes to legacy).
        if version is not None:
            gateway.software_version = version
            for feeder in self._state.feeders_of(hid):
                self._set_software_version(feeder, version)
        self._state.schedule_save()
        return hid, created

    def gateway_api_key(self, gateway_hid: str) -> str | None:
        """The key config hands out; None for an unknown gateway (§3.2)."""
        gateway = self._state.gateways.get(gateway_hid)
        return gateway.api_key if gateway else None

    def is_known(self, gateway_hid: str) -> bool:
        """Whether the gateway is registered."""
        return gateway_hid in self._state.gateways

    def is_pending(self, gateway_hid: str) -> bool:
        """Whether the gateway waits for the user's approval."""
        return self.admission is not None and self.admission.is_pending(gateway_hid)

    async def async_wait_keys_saved(self) -> None:
        """Return once every new key is on disk (config waits for it before answering)."""
        if self._key_saves:
            # wait(), not gather(): a client that goes away must not cancel the write.
            await asyncio.wait(set(self._key_saves))

    def checkin(
        self, gateway_hid: str, *, rebooting: bool, address: str | None = None
    ) -> None:
        """A gateway checks in (§3.4); an unknown one is created with a fresh key.

        ``rebooting``: the check-in came over HTTP, which a feeder does at boot before MQTT,
        so the transport learns that the gateway restarts. A check-in sent as an API request
        over MQTT (§5.7) comes from a live session: it must not count that session as ended.
        """
        if gateway_hid not in self._state.gateways:
            self._admit_gateway(gateway_hid, address=address)
        elif rebooting:
            self._events.gateway_booting(gateway_hid)
        self._state.gateways[gateway_hid].last_seen = now()
        self._events.gateway_checked_in(gateway_hid)
        self._state.schedule_save()

    def heard_over_http(self, gateway_hid: str) -> bool:
        """Count an HTTP heartbeat as liveness; False for an unknown gateway."""
        if (gateway := self._state.gateways.get(gateway_hid)) is None:
            return False
        self._state.mark_gateway_seen(gateway)
        return True

    def record_command_status(self, command_hid: str, status: str) -> None:
        """Remember the feeder's report on a command (§3.5, §5.7): delivery confirmation."""
        self._confirmations.reported(command_hid, status)

    def create_gateway(self, hid: str, **info: str | None) -> Gateway:
        """Create a gateway with a fresh key (admitted, or accepted by the owner)."""
        gateway = Gateway(hid=hid, api_key=ids.new_api_key(), discovered_at=now())
        for key, value in info.items():
            setattr(gateway, key, value)
        self._state.gateways[hid] = gateway
        self._save_new_key()
        self._events.gateway_booting(hid)
        _LOGGER.info("New gateway %s", hid)
        return gateway

    def _admit_gateway(self, hid: str, **info: str | None) -> Gateway:
        """Create an unknown gateway if admission lets it in (else it raises)."""
        if self.admission is not None:
            self.admission.admit(hid, **info)
        return self.create_gateway(hid, uid=info.get("uid"))

    def save_now(self) -> None:
        """Write the gateways now (a key was created or revoked)."""
        self._save_new_key()

    def _save_new_key(self) -> None:
        """Write now, not within 10 s: config hands the key out at once (§1.4).

        A key the feeder fetched but the disk never saw locks the feeder out after a crash
        until it is power-cycled. Writes that overlap are folded into one by HA's Store.
        """
        task = self._spawn(self._state.async_save_now(), "save a new gateway key")
        self._key_saves.add(task)
        task.add_done_callback(self._key_save_done)

    def _key_save_done(self, task: asyncio.Task[Any]) -> None:
        self._key_saves.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOGGER.error("Could not write a new gateway key: %r", err)

    # ------------------------------------------------------------------ devices

    def register_device(
        self, body: Mapping[str, Any], address: str | None = None
    ) -> str:
        """Register a device (§3.3) of an accepted gateway, and only its own device.

        A device naming an unknown gateway asks pairing for the gateway first, as a
        registration would (its uid tells the gateway's, §1.2).
        """
        uid = _required_uid(body)
        gateway_hid = body.get("gatewayHid")
        if not ids.is_safe_id(gateway_hid):
            raise RegistrationError("gatewayHid required", RefusalKind.INVALID_GATEWAY)
        assert isinstance(gateway_hid, str)
        hid = ids.hid_from_uid(uid)
        feeder = self._state.feeders.get(hid)
        if feeder is not None and feeder.gateway_hid != gateway_hid:
            # A device never moves: this would hand one gateway another's feeder.
            self._log.warning(
                gateway_hid,
                "foreign",
                "Registration of feeder %s for gateway %s refused: it belongs to %s",
                hid,
                gateway_hid,
                feeder.gateway_hid,
            )
            raise RegistrationError(
                "device belongs to another gateway", RefusalKind.CONFLICT
            )
        gateway = self._state.gateways.get(gateway_hid)
        if gateway is None:
            gateway = self._admit_gateway(
                gateway_hid, uid=ids.gateway_uid_of(uid), address=address
            )
        if feeder is None and not self._may_add_device(gateway, uid):
            self._log.warning(
                gateway_hid,
                "not_own",
                "Registration of device %s for gateway %s refused: a gateway registers "
                "only its own device",
                hid,
                gateway_hid,
            )
            raise RegistrationError(
                "device does not belong to this gateway", RefusalKind.CONFLICT
            )
        version = _optional_str(body.get("softwareVersion"))
        if feeder is None:
            feeder = self._state.add_feeder(hid, gateway_hid, uid=uid)
        feeder.uid = uid
        feeder.name = _optional_str(body.get("name")) or feeder.name
        if version is not None:
            self._set_software_version(feeder, version)
        self._state.schedule_save()
        self._state.notify(hid)
        return hid

    def _may_add_device(self, gateway: Gateway, device_uid: str) -> bool:
        """Whether a new device belongs to the gateway (§1.1, §1.2: one device each).

        Its uid is the gateway's plus ``-prod``; a gateway whose uid is unknown (firmware
        that only checks in) gets the first device it names, and no other.
        """
        if gateway.uid is not None:
            return device_uid == ids.device_uid_for(gateway.uid)
        return not self._state.feeders_of(gateway.hid)

    def feeder_for_message(self, gateway_hid: str, device_hid: str) -> Feeder | None:
        """Find the feeder a message names; a gateway speaks only for its own feeder.

        A message naming a device the gateway does not own is dropped, with one warning
        per gateway; only the gateway's own device is created here (one that reports
        before its registration, or firmware that never registers devices, §11 Q8).
        """
        feeder = self._state.feeders.get(device_hid)
        if feeder is None:
            gateway = self._state.gateways.get(gateway_hid)
            if gateway is None or not self._owns_device_hid(gateway, device_hid):
                self._log.warning(
                    gateway_hid,
                    "unknown_device",
                    "Gateway %s reported for device %s, which is not its own; dropped",
                    gateway_hid,
                    device_hid,
                )
                return None
            return self._state.add_feeder(device_hid, gateway_hid)
        if feeder.gateway_hid != gateway_hid:
            self._log.warning(
                gateway_hid,
                "foreign",
                "Gateway %s reported for feeder %s of another gateway; dropped",
                gateway_hid,
                device_hid,
            )
            return None
        return feeder

    def _owns_device_hid(self, gateway: Gateway, device_hid: str) -> bool:
        if gateway.uid is not None:
            return device_hid == ids.hid_from_uid(ids.device_uid_for(gateway.uid))
        return not self._state.feeders_of(gateway.hid)

    def _set_software_version(self, feeder: Feeder, version: str) -> None:
        if feeder.software_version == version:
            return
        feeder.software_version = version
        self._events.firmware_changed(feeder)
        self._state.notify(feeder.hid)


def _required_uid(body: Mapping[str, Any]) -> str:
    uid = body.get("uid")
    if not isinstance(uid, str) or not uid.strip():
        raise RegistrationError("uid required")
    if len(uid) > messages.MAX_TEXT_LENGTH:
        raise RegistrationError("uid too long")
    return uid


def _optional_str(value: object) -> str | None:
    """A non-empty string of bounded length (longer ones are dropped, not stored)."""
    if isinstance(value, str) and 0 < len(value) <= messages.MAX_TEXT_LENGTH:
        return value
    return None
