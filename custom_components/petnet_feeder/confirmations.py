"""What the feeders report about the commands they got (§3.5, §5.7), and waiting for it.

A feeder may report each command as ``received``, then ``succeeded`` or ``failed`` (over MQTT
or HTTP). Nothing requires it. Where a transport cannot see the feeder's own PUBACK (HA's MQTT
integration only sees the broker's), a gateway that has reported before is expected to report
again, and a report that does not come means the command did not arrive.
"""

from __future__ import annotations

import asyncio
import logging

_LOGGER = logging.getLogger(__name__)

_LIMIT = 200  # commands remembered


OUTCOMES = frozenset({"succeeded", "failed"})


class CommandConfirmations:
    """The latest commands sent, their reported status, and which gateways report."""

    def __init__(self) -> None:
        """Start with nothing known."""
        self.statuses: dict[str, str] = {}
        self._gateway_of: dict[str, str] = {}
        # What each gateway has reported so far: "received", and whether outcomes too.
        self._reported_kinds: dict[str, set[str]] = {}
        self._waiters: dict[str, tuple[asyncio.Future[str], bool]] = {}

    def reports_status(self, gateway_hid: str) -> bool:
        """Whether the gateway has reported on a command we sent it."""
        return gateway_hid in self._reported_kinds

    def stopped_reporting(self, gateway_hid: str) -> None:
        """A report is overdue: the gateway counts as not reporting until it reports again."""
        if self._reported_kinds.pop(gateway_hid, None) is not None:
            _LOGGER.debug("Gateway %s did not report on a command in time", gateway_hid)

    def sent(self, command_hid: str, gateway_hid: str) -> None:
        """Remember which gateway a command went to."""
        self._gateway_of[command_hid] = gateway_hid
        _trim(self._gateway_of)

    def expect(self, command_hid: str, gateway_hid: str) -> asyncio.Future[str]:
        """A future for the command's report (call before publishing it).

        From a gateway that has reported outcomes before, the future waits for the outcome
        (``succeeded`` or ``failed``); otherwise ``received`` is enough.
        """
        self.sent(command_hid, gateway_hid)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        wants_outcome = bool(self._reported_kinds.get(gateway_hid, set()) & OUTCOMES)
        self._waiters[command_hid] = (waiter, wants_outcome)
        return waiter

    def forget(self, command_hid: str) -> None:
        """Stop waiting for a command's report."""
        if (entry := self._waiters.pop(command_hid, None)) is not None:
            entry[0].cancel()

    def reported(self, command_hid: str, status: str) -> None:
        """Record a feeder's report on a command."""
        _LOGGER.debug("Command %s %s", command_hid, status)
        self.statuses[command_hid] = status
        _trim(self.statuses)
        if (gateway_hid := self._gateway_of.get(command_hid)) is not None:
            kinds = self._reported_kinds.setdefault(gateway_hid, set())
            if not kinds:
                _LOGGER.debug("Gateway %s reports on its commands", gateway_hid)
            kinds.add(status)
        entry = self._waiters.get(command_hid)
        if entry is None or (entry[1] and status not in OUTCOMES):
            return
        del self._waiters[command_hid]
        if not entry[0].done():
            entry[0].set_result(status)

    def clear(self) -> None:
        """Cancel every wait (the hub stops)."""
        for waiter, _ in self._waiters.values():
            waiter.cancel()
        self._waiters.clear()


def _trim(records: dict[str, str]) -> None:
    while len(records) > _LIMIT:
        del records[next(iter(records))]
