"""The one way out to the feeders: per gateway, commands in order, one in flight.

A feeder handles one command at a time. Every command (a feed, a reboot, each command of a
schedule sync) waits for its turn in its gateway's lane; the turns are handed out in the order
they were asked for, so a feed asked for while a sync runs goes out between two of the sync's
commands, never later than the command then in flight. A command holds the lane until its
PUBACK and, once the gateway has reported on a command before (§5.7), until the feeder reports
on this one or the report is overdue: the feeder acknowledges a command when it queues it, not
when it has carried it out, and its queue is small (docs/decisions.md, *Schedules*). The next
command then goes out at once; there is no fixed pause between commands.

When the gateway's session ends, commands still waiting for their turn fail at once: nothing is
queued for a feeder that is not there (a feed is never dispensed later by surprise).

This is the only reader of ``Transport.confirms_delivery`` and, outside ``transport/``, the only
caller of ``Transport.async_publish``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
import logging

from .confirmations import CommandConfirmations
from .const import CONFIRM_TIMEOUT_S
from .protocol import topics
from .protocol.commands import OutboundCommand
from .transport.base import GatewayNotConnectedError, Transport

_LOGGER = logging.getLogger(__name__)


class CommandFailedError(Exception):
    """The feeder reported the command as failed."""


class CommandUnconfirmedError(TimeoutError):
    """A feeder that reports on its commands did not report on this one in time."""


@dataclass(slots=True)
class _Lane:
    """One gateway's queue: whether a command is in flight, and who waits for a turn."""

    busy: bool = False
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)


class Outbox:
    """Sends commands to feeders through the transport, one at a time per gateway."""

    def __init__(
        self,
        confirmations: CommandConfirmations,
        *,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
    ) -> None:
        """Reports are matched by ``confirmations``; nothing goes out before ``attach``."""
        self._transport: Transport | None = None
        self.confirmations = confirmations
        self.confirm_timeout_s = confirm_timeout_s
        self._lanes: dict[str, _Lane] = {}

    def attach(self, transport: Transport) -> None:
        """Send through this transport from now on."""
        self._transport = transport

    def is_connected(self, gateway_hid: str) -> bool:
        """Whether the gateway holds a session commands can go to."""
        return self._transport is not None and self._transport.is_connected(gateway_hid)

    async def async_send(
        self, gateway_hid: str, command: OutboundCommand, *, must_confirm: bool = False
    ) -> None:
        """Send one command when its turn comes; return once the feeder has it.

        Raises GatewayNotConnectedError (no session, or it ended while the command waited or
        was in flight) and TimeoutError (no PUBACK in time). With ``must_confirm``, a feeder
        that reports on its commands must report this one: CommandUnconfirmedError when it
        does not in time, CommandFailedError when it reports a failure.
        """
        transport = self._transport
        if transport is None or not transport.is_connected(gateway_hid):
            raise GatewayNotConnectedError(f"Gateway {gateway_hid} is not connected")
        lane = self._lanes.setdefault(gateway_hid, _Lane())
        await self._take_turn(lane)
        try:
            await self._deliver(
                transport, gateway_hid, command, must_confirm=must_confirm
            )
        finally:
            self._pass_turn(gateway_hid, lane)

    async def async_reply(self, gateway_hid: str, payload: bytes) -> None:
        """Answer an API request at once, outside the lane (§5.7: the reply must be quick)."""
        if self._transport is None:
            raise GatewayNotConnectedError(f"Gateway {gateway_hid} is not connected")
        await self._transport.async_publish(
            gateway_hid, topics.api_reply_topic(gateway_hid), payload
        )

    def gateway_disconnected(self, gateway_hid: str) -> None:
        """The session ended: every command waiting for its turn fails now."""
        if (lane := self._lanes.get(gateway_hid)) is None:
            return
        while lane.waiting:
            turn = lane.waiting.popleft()
            if not turn.done():
                turn.set_exception(
                    GatewayNotConnectedError(f"Gateway {gateway_hid} disconnected")
                )
        if not lane.busy:
            del self._lanes[gateway_hid]

    def clear(self) -> None:
        """Fail every waiting command (the integration stops)."""
        for gateway_hid in list(self._lanes):
            self.gateway_disconnected(gateway_hid)
        self.confirmations.clear()

    async def _take_turn(self, lane: _Lane) -> None:
        if not lane.busy and not lane.waiting:
            lane.busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn in lane.waiting:
                lane.waiting.remove(turn)
            elif turn.done() and not turn.cancelled() and turn.exception() is None:
                # The turn was handed over just as the caller went away: hand it on.
                self._hand_on(lane)
            raise

    def _pass_turn(self, gateway_hid: str, lane: _Lane) -> None:
        self._hand_on(lane)
        if not lane.busy and self._lanes.get(gateway_hid) is lane:
            del self._lanes[gateway_hid]

    @staticmethod
    def _hand_on(lane: _Lane) -> None:
        while lane.waiting:
            turn = lane.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        lane.busy = False

    async def _deliver(
        self,
        transport: Transport,
        gateway_hid: str,
        command: OutboundCommand,
        *,
        must_confirm: bool,
    ) -> None:
        confirmations = self.confirmations
        waiter = None
        if confirmations.reports_status(gateway_hid):
            waiter = confirmations.expect(command.hid, gateway_hid)
        else:
            confirmations.sent(command.hid, gateway_hid)
        try:
            await transport.async_publish(
                gateway_hid, topics.command_topic(gateway_hid), command.payload
            )
            if waiter is not None and transport.confirms_delivery:
                # The feeder's own PUBACK is seen: the report only paces the lane, and a
                # missing or failed one does not fail the command.
                if not await self._wait_for_report(waiter, command, must_confirm=False):
                    # Until it reports again, it counts as not reporting: one lost report
                    # costs one wait, not one per command.
                    confirmations.stopped_reporting(gateway_hid)
            elif waiter is not None:
                await self._wait_for_report(waiter, command, must_confirm=must_confirm)
        finally:
            if waiter is not None:
                confirmations.forget(command.hid)
        _LOGGER.debug(
            "Sent %s (%s) to gateway %s", command.name, command.hid, gateway_hid
        )

    async def _wait_for_report(
        self,
        waiter: asyncio.Future[str],
        command: OutboundCommand,
        *,
        must_confirm: bool,
    ) -> bool:
        """Wait for the report; False if it is overdue (and need not come)."""
        try:
            async with asyncio.timeout(self.confirm_timeout_s):
                status = await waiter
        except TimeoutError:
            if not must_confirm:
                return False
            raise CommandUnconfirmedError(
                f"the feeder did not report on {command.name} ({command.hid}) "
                f"within {self.confirm_timeout_s:g} s"
            ) from None
        if must_confirm and status == "failed":
            raise CommandFailedError(
                f"the feeder reported {command.name} ({command.hid}) as failed"
            )
        return True
