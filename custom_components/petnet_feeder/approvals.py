"""Pairing: which unknown gateways become gateways, and when.

Every path that would create a gateway (registration, a check-in of an unknown gateway, a device
naming an unknown gateway) asks :meth:`RegistrationControl.admit` first. A known gateway never
does, so a feeder that is already set up always gets in, whatever else is going on.

A new gateway gets no key and nothing is stored for it until it is accepted:

* while a *pairing window* is open, every new gateway is accepted at once (up to
  ``MAX_GATEWAYS`` in total). The window is open for ``SETUP_WINDOW_S`` after the config entry
  was created (so a first setup needs no extra step), and for as long as the owner opens it
  later (the *Accept new feeders* switch or the ``accept_new_feeders`` action);
* outside a window the gateway is *pending*: held in memory only, at most ``MAX_PENDING`` (the
  least recently heard is dropped), and shown to the owner as a discovered device (a config
  flow with the gateway hid as unique id). Accepting it creates the gateway with a fresh key;
  the feeder gets it on its next boot attempt. Ignoring it (Home Assistant's own "Ignore")
  keeps it refused until it is un-ignored: an ignored gateway is not even held.

The discovered flows follow the pending gateways at most once per ``DISCOVERY_SYNC_DELAY_S``,
so a flood of new ids costs a bounded amount of work in Home Assistant's flow manager, whatever
its rate.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
import logging
import re
import time
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import SOURCE_IGNORE, SOURCE_INTEGRATION_DISCOVERY
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.data_entry_flow import UnknownFlow
from homeassistant.helpers import discovery_flow
from homeassistant.helpers.event import async_track_point_in_utc_time

from .const import DOMAIN
from .registry import RegistrationLimitError, RegistrationPendingError

_LOGGER = logging.getLogger(__name__)

SETUP_WINDOW_S = 30 * 60
"""The pairing window is open this long after the integration was added."""
MAX_GATEWAYS = 1000
MAX_PENDING = 8
"""Gateways waiting for the owner at once; the least recently heard one is dropped."""
DISCOVERY_SYNC_DELAY_S = 1.0
"""The discovered flows are brought in line with the pending gateways at most this often."""
DATA_GATEWAY = "gateway_hid"

_MAC_UID = re.compile(r"^smartfeeder-([0-9a-f]{12})(?:-prod)?$", re.IGNORECASE)


def now() -> float:
    """Wall-clock time in seconds (frozen along with the rest of HA in tests)."""
    return time.time()


@dataclass(slots=True)
class PendingGateway:
    """A gateway that asked to be registered and waits for the owner."""

    hid: str
    first_seen: float
    last_seen: float
    uid: str | None = None
    name: str | None = None
    software_version: str | None = None
    sdk_version: str | None = None
    address: str | None = None

    @property
    def label(self) -> str:
        """What the owner will see the feeder called (as its device will be named)."""
        if self.uid and (match := _MAC_UID.match(self.uid)):
            return f"SmartFeeder {match.group(1)[-6:].upper()}"
        return f"SmartFeeder {self.hid[:6].upper()}"

    def placeholders(self) -> dict[str, str]:
        """What the discovered flow shows about the gateway."""
        return {
            "name": self.label,
            "address": self.address or "unknown",
            "gateway": self.hid,
            "uid": self.uid or "unknown",
            "version": self.software_version or "unknown",
        }


class RegistrationControl:
    """The pairing window, the pending gateways and their discovered flows."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        setup_window_until: float,
        gateway_count: Callable[[], int],
        on_accepted: Callable[[PendingGateway], None],
        on_ignored: Callable[[str], None],
    ) -> None:
        """Open the window until ``setup_window_until`` (epoch seconds); nothing is pending."""
        self._hass = hass
        self._gateway_count = gateway_count
        self._on_accepted = on_accepted
        self._on_ignored = on_ignored
        self._pending: OrderedDict[str, PendingGateway] = OrderedDict()
        self._window_until = setup_window_until
        self._unsub_window_end: CALLBACK_TYPE | None = None
        self._listeners: set[CALLBACK_TYPE] = set()
        self._sync_timer: Any = None
        self._stopped = False

    # ------------------------------------------------------------------ the window

    @property
    def window_open(self) -> bool:
        """Whether new feeders are accepted without a question right now."""
        return now() < self._window_until

    @property
    def window_ends(self) -> datetime | None:
        """When the open window closes (None while it is closed)."""
        if not self.window_open:
            return None
        return datetime.fromtimestamp(self._window_until, UTC)

    @callback
    def start(self) -> None:
        """Tell the listeners when the window the entry started with closes."""
        self._track_window_end()

    @callback
    def open_window(self, seconds: float) -> None:
        """Accept every new feeder for ``seconds`` from now (0 closes the window)."""
        self._window_until = now() + max(0.0, seconds)
        if seconds > 0:
            _LOGGER.info("New feeders are accepted for %.0f s", seconds)
            # A gateway that waits joins at its next attempt; its flow goes away then.
        else:
            _LOGGER.info("New feeders are no longer accepted without a question")
        self._track_window_end()
        self._notify()

    @callback
    def close_window(self) -> None:
        """Stop accepting new feeders without a question, at once."""
        self.open_window(0)

    def _track_window_end(self) -> None:
        if self._unsub_window_end is not None:
            self._unsub_window_end()
            self._unsub_window_end = None
        if self._stopped or not self.window_open:
            return
        self._unsub_window_end = async_track_point_in_utc_time(
            self._hass,
            self._window_ended,
            datetime.fromtimestamp(self._window_until, UTC),
        )

    @callback
    def _window_ended(self, _now: datetime) -> None:
        self._unsub_window_end = None
        if self.window_open:  # moved later meanwhile
            self._track_window_end()
            return
        _LOGGER.info("The pairing window closed")
        self._notify()

    @callback
    def async_subscribe(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``listener`` whenever the window opens or closes."""
        self._listeners.add(listener)
        return lambda: self._listeners.discard(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    # ------------------------------------------------------------------ admission

    @property
    def pending(self) -> Mapping[str, PendingGateway]:
        """Gateways waiting for the owner, by hid (least recently heard first)."""
        return MappingProxyType(self._pending)

    def is_pending(self, gateway_hid: str) -> bool:
        """Whether the gateway waits for the owner."""
        return gateway_hid in self._pending

    def is_ignored(self, gateway_hid: str) -> bool:
        """Whether the owner ignored this gateway's discovered flow (until un-ignored)."""
        entry = self._hass.config_entries.async_entry_for_domain_unique_id(
            DOMAIN, gateway_hid
        )
        return entry is not None and entry.source == SOURCE_IGNORE

    @callback
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
        """Return if an unknown gateway may be created now; raise if it may not (yet).

        Raises RegistrationPendingError when it waits for the owner (or was ignored) and
        RegistrationLimitError when the total cap is reached.
        """
        if self.is_ignored(gateway_hid):
            raise RegistrationPendingError(gateway_hid)
        if self.window_open:
            if self._gateway_count() >= MAX_GATEWAYS:
                raise RegistrationLimitError(
                    f"no more gateways can be registered ({MAX_GATEWAYS} are known)",
                    retry_after=None,
                )
            if self._pending.pop(gateway_hid, None) is not None:
                self._schedule_sync()
            return
        at = now()
        held = self._pending.get(gateway_hid)
        if held is None:
            held = self._pending[gateway_hid] = PendingGateway(
                hid=gateway_hid, first_seen=at, last_seen=at
            )
            _LOGGER.debug("New gateway %s waits for the owner", gateway_hid)
            while len(self._pending) > MAX_PENDING:
                dropped, _ = self._pending.popitem(last=False)
                _LOGGER.debug("Gateway %s no longer waits (too many wait)", dropped)
            self._schedule_sync()
        else:
            self._pending.move_to_end(gateway_hid)
        held.last_seen = at
        held.uid = uid or held.uid
        held.name = name or held.name
        held.software_version = software_version or held.software_version
        held.sdk_version = sdk_version or held.sdk_version
        held.address = address or held.address
        raise RegistrationPendingError(gateway_hid)

    @callback
    def accept(self, gateway_hid: str) -> bool:
        """Let a pending gateway in; False if it is not pending (any more)."""
        if (held := self._pending.pop(gateway_hid, None)) is None:
            return False
        _LOGGER.info("Gateway %s (%s) accepted", gateway_hid, held.label)
        self._on_accepted(held)
        return True

    @callback
    def ignore(self, gateway_hid: str) -> None:
        """The owner ignored the gateway: forget it, and revoke it if it has a key."""
        self._pending.pop(gateway_hid, None)
        _LOGGER.info("Gateway %s ignored", gateway_hid)
        self._on_ignored(gateway_hid)

    # ------------------------------------------------------------------ discovered flows

    def _schedule_sync(self) -> None:
        if self._sync_timer is None and not self._stopped:
            self._sync_timer = self._hass.loop.call_later(
                DISCOVERY_SYNC_DELAY_S, self._sync_flows
            )

    @callback
    def _sync_flows(self) -> None:
        """Start a flow for each pending gateway that has none; abort the others' flows."""
        self._sync_timer = None
        flows = self._hass.config_entries.flow
        shown: set[str] = set()
        for flow in flows.async_progress_by_handler(
            DOMAIN,
            include_uninitialized=True,
            match_context={"source": SOURCE_INTEGRATION_DISCOVERY},
        ):
            gateway_hid = flow["context"].get("unique_id")
            if gateway_hid is not None and gateway_hid in self._pending:
                shown.add(gateway_hid)
            else:
                _abort(flows, flow["flow_id"])
        for gateway_hid in self._pending:
            if gateway_hid not in shown:
                discovery_flow.async_create_flow(
                    self._hass,
                    DOMAIN,
                    context={"source": SOURCE_INTEGRATION_DISCOVERY},
                    data={DATA_GATEWAY: gateway_hid},
                )

    @callback
    def clear(self) -> None:
        """Forget every pending gateway and its flow; stop the timers (the entry unloads)."""
        self._stopped = True
        if self._unsub_window_end is not None:
            self._unsub_window_end()
            self._unsub_window_end = None
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        self._pending.clear()
        self._listeners.clear()
        flows = self._hass.config_entries.flow
        for flow in flows.async_progress_by_handler(
            DOMAIN,
            include_uninitialized=True,
            match_context={"source": SOURCE_INTEGRATION_DISCOVERY},
        ):
            _abort(flows, flow["flow_id"])


def _abort(flows: Any, flow_id: str) -> None:
    """Abort a discovered flow; one that finished meanwhile is gone already."""
    with contextlib.suppress(UnknownFlow):
        flows.async_abort(flow_id)
