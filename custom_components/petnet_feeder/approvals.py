"""Registration control: which unknown gateways become gateways, and when.

Every path that would create a gateway (registration, a check-in of an unknown gateway, a device
naming an unknown gateway) asks :meth:`RegistrationControl.admit` first. A known gateway never
does, so a feeder that is already set up always gets in, whatever else is going on.

``admit`` refuses:

* bursts: a token bucket (``REGISTRATION_BURST`` at once, then ``REGISTRATION_RATE`` per second)
  bounds how fast gateways appear, so a flood of registrations cannot fill storage or the
  device list; the caller answers 429 with ``Retry-After``;
* more than ``MAX_GATEWAYS`` gateways in total (403);
* when the option "accept new feeders automatically" is off: the gateway is *held* as pending.
  Nothing is stored and no key exists for it, so neither the config call nor an MQTT login can
  succeed. A repair issue (``pending_gateway_<hid>``) shows it; its fix flow ("approve") calls
  :meth:`RegistrationControl.approve`, which lets the hub create the gateway with a fresh key.
  The feeder retries its boot until it gets that key. Pending gateways live in memory only: a
  feeder that is still waiting after a restart registers again and shows up again. At most
  ``MAX_PENDING`` wait at once (429 beyond that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import logging
import re
import time
from types import MappingProxyType

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .registry import RegistrationLimitError, RegistrationPendingError
from .repair_issues import raise_issue

_LOGGER = logging.getLogger(__name__)

PENDING_ISSUE = "pending_gateway"
# A home has a handful of feeders; a fleet of 200 (the benchmark) still registers within ~20 s.
REGISTRATION_BURST = 100
REGISTRATION_RATE = 5.0  # new gateways per second once the burst is used up
MAX_GATEWAYS = 1000
MAX_PENDING = 16
PENDING_RETRY_AFTER_S = 60.0

_MAC_UID = re.compile(r"^smartfeeder-([0-9a-f]{12})(?:-prod)?$", re.IGNORECASE)


def pending_issue_id(gateway_hid: str) -> str:
    """Repair issue id of a gateway waiting for approval."""
    return f"{PENDING_ISSUE}_{gateway_hid}"


class TokenBucket:
    """``burst`` tokens at once, refilled at ``rate`` per second."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start full."""
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take(self) -> float:
        """Take a token: 0.0 if one was available, else the seconds until there is one."""
        now = self._clock()
        self._tokens = min(
            self._burst, self._tokens + (now - self._updated) * self._rate
        )
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


@dataclass(slots=True)
class PendingGateway:
    """A gateway that asked to be registered and waits for the user."""

    hid: str
    first_seen: float
    last_seen: float
    uid: str | None = None
    name: str | None = None
    software_version: str | None = None
    sdk_version: str | None = None

    @property
    def label(self) -> str:
        """What the user will see the feeder called (as its device will be named)."""
        if self.uid and (match := _MAC_UID.match(self.uid)):
            return f"SmartFeeder {match.group(1)[-6:].upper()}"
        return f"SmartFeeder {self.hid[:6].upper()}"


class RegistrationControl:
    """Rate limit, cap and (optionally) user approval for new gateways."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        accept_new: bool,
        gateway_count: Callable[[], int],
        on_approved: Callable[[PendingGateway], None],
    ) -> None:
        """Nothing is pending at first; ``on_approved`` creates the gateway in the hub."""
        self._hass = hass
        self.accept_new = accept_new
        self._gateway_count = gateway_count
        self._on_approved = on_approved
        self._bucket = TokenBucket(REGISTRATION_RATE, REGISTRATION_BURST)
        self._pending: dict[str, PendingGateway] = {}

    @property
    def pending(self) -> Mapping[str, PendingGateway]:
        """Gateways waiting for approval, by hid."""
        return MappingProxyType(self._pending)

    def is_pending(self, gateway_hid: str) -> bool:
        """Whether the gateway waits for approval."""
        return gateway_hid in self._pending

    @callback
    def admit(
        self,
        gateway_hid: str,
        *,
        uid: str | None = None,
        name: str | None = None,
        software_version: str | None = None,
        sdk_version: str | None = None,
    ) -> None:
        """Return if an unknown gateway may be created now; raise if it may not (yet).

        Raises RegistrationPendingError when it is held for approval and
        RegistrationLimitError when it is refused (rate, pending queue or total cap).
        """
        now = time.time()
        if (held := self._pending.get(gateway_hid)) is not None:
            held.last_seen = now
            held.uid = uid or held.uid
            held.name = name or held.name
            held.software_version = software_version or held.software_version
            held.sdk_version = sdk_version or held.sdk_version
            raise RegistrationPendingError(gateway_hid)
        if self._gateway_count() >= MAX_GATEWAYS:
            raise RegistrationLimitError(
                f"no more gateways can be registered ({MAX_GATEWAYS} are known)",
                retry_after=None,
            )
        if wait := self._bucket.take():
            _LOGGER.debug("New gateway %s refused by the rate limit", gateway_hid)
            raise RegistrationLimitError(
                "too many new gateways at once; try again later", retry_after=wait
            )
        if self.accept_new:
            return
        if len(self._pending) >= MAX_PENDING:
            raise RegistrationLimitError(
                "too many feeders are waiting for approval in Home Assistant",
                retry_after=PENDING_RETRY_AFTER_S,
            )
        held = PendingGateway(
            hid=gateway_hid,
            first_seen=now,
            last_seen=now,
            uid=uid,
            name=name,
            software_version=software_version,
            sdk_version=sdk_version,
        )
        self._pending[gateway_hid] = held
        _LOGGER.info(
            "New gateway %s (%s) waits for approval under Settings -> Repairs",
            gateway_hid,
            held.label,
        )
        raise_issue(
            self._hass,
            pending_issue_id(gateway_hid),
            PENDING_ISSUE,
            self.placeholders(held),
            data={"gateway_hid": gateway_hid},
        )
        raise RegistrationPendingError(gateway_hid)

    @staticmethod
    def placeholders(held: PendingGateway) -> dict[str, str]:
        """What the repair issue and its fix flow show about a pending gateway."""
        return {
            "feeder": held.label,
            "gateway": held.hid,
            "uid": held.uid or "unknown",
            "version": held.software_version or "unknown",
        }

    @callback
    def approve(self, gateway_hid: str) -> bool:
        """Let a pending gateway in; False if it is not pending (any more)."""
        if (held := self._pending.pop(gateway_hid, None)) is None:
            return False
        ir.async_delete_issue(self._hass, DOMAIN, pending_issue_id(gateway_hid))
        _LOGGER.info("Gateway %s (%s) approved", gateway_hid, held.label)
        self._on_approved(held)
        return True

    @callback
    def clear(self) -> None:
        """Forget every pending gateway and its issue (the entry unloads)."""
        for gateway_hid in list(self._pending):
            ir.async_delete_issue(self._hass, DOMAIN, pending_issue_id(gateway_hid))
        self._pending.clear()
