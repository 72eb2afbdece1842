"""The outbox: per gateway, commands in order, one in flight; nothing waits for a gone feeder.

The transport here is a stand-in whose PUBACKs the test hands out one by one, so the order in
which commands reach "the feeder" is exact. With a real broker and feeder the same is checked
in test_schedule_sync.py (a feed during a sync).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from custom_components.petnet_feeder.confirmations import CommandConfirmations
from custom_components.petnet_feeder.outbox import (
    CommandFailedError,
    CommandUnconfirmedError,
    Outbox,
)
from custom_components.petnet_feeder.protocol import commands
from custom_components.petnet_feeder.protocol.commands import Command
from custom_components.petnet_feeder.transport.base import (
    GatewayNotConnectedError,
    Transport,
)

GW = "488533283e3f06ca4ae929fd01f50a9259dd393f"
OTHER = "d9eae8344910399224153df53f12400ceb8c5707"
DEVICE = "1" * 40


class HeldTransport(Transport):
    """Publishes wait until the test acknowledges them, in the order they came."""

    def __init__(self, *, confirms_delivery: bool = True) -> None:
        self.confirms_delivery = confirms_delivery
        self.connected = {GW, OTHER}
        self.in_flight: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self.changed = asyncio.Event()

    async def async_start(self) -> None:
        """Nothing to start."""

    async def async_stop(self) -> None:
        """Nothing to stop."""

    async def async_publish(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        if gateway_hid not in self.connected:
            raise GatewayNotConnectedError(gateway_hid)
        puback: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight.append((gateway_hid, payload, puback))
        self.changed.set()
        await puback

    def is_connected(self, gateway_hid: str) -> bool:
        return gateway_hid in self.connected

    def gateway_added(self, gateway_hid: str) -> None:
        """Nothing to learn."""

    async def published(self, count: int) -> list[bytes]:
        """Wait until ``count`` publishes are in flight or done; their payloads."""
        async with asyncio.timeout(5):
            while len(self.in_flight) < count:
                self.changed.clear()
                await self.changed.wait()
        return [payload for _gw, payload, _ack in self.in_flight]

    def ack(self, index: int) -> None:
        self.in_flight[index][2].set_result(None)

    def drop(self, gateway_hid: str) -> None:
        """The session ends: what is in flight fails, as a real transport's would."""
        self.connected.discard(gateway_hid)
        for gw, _payload, puback in self.in_flight:
            if gw == gateway_hid and not puback.done():
                puback.set_exception(GatewayNotConnectedError(gateway_hid))


def start[T](coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task that runs at once up to its first wait (so it is queued when this returns)."""
    return asyncio.eager_task_factory(asyncio.get_running_loop(), coro)


def sync_commands() -> list[Command]:
    return [
        commands.utc_offset(DEVICE, 3600),
        commands.build_command(DEVICE, "schedule_clear", {}),
        commands.build_command(DEVICE, "schedule_mod_end", {}),
    ]


def name_of(payload: bytes) -> str:
    return next(
        name
        for name in (
            "utc_offset",
            "schedule_clear",
            "schedule_mod_end",
            "feed",
            "reboot",
        )
        if f'"command": "{name}"'.encode() in payload
    )


@pytest.fixture
def transport() -> HeldTransport:
    return HeldTransport()


@pytest.fixture
def outbox(transport: HeldTransport) -> Outbox:
    box = Outbox(CommandConfirmations())
    box.attach(transport)
    return box


async def run_sync(outbox: Outbox, gateway_hid: str = GW) -> None:
    for command in sync_commands():
        await outbox.async_send(gateway_hid, command, must_confirm=True)


async def test_one_command_in_flight_per_gateway_and_a_feed_between_sync_commands(
    transport: HeldTransport, outbox: Outbox
) -> None:
    sync = start(run_sync(outbox))
    assert [name_of(p) for p in await transport.published(1)] == ["utc_offset"]
    feed = start(
        outbox.async_send(GW, commands.feed(DEVICE, 0.25, command_hid="f" * 32))
    )
    other = start(
        outbox.async_send(OTHER, commands.reboot(DEVICE, command_hid="r" * 32))
    )
    # Another gateway's lane is its own: its command goes out at once.
    await transport.published(2)
    assert transport.in_flight[1][0] == OTHER
    transport.ack(0)  # utc_offset acknowledged: the feed is next, before schedule_clear
    assert name_of((await transport.published(3))[2]) == "feed"
    assert not feed.done()
    transport.ack(2)
    await feed
    assert [name_of(p) for p in await transport.published(4)][3] == "schedule_clear"
    transport.ack(3)
    transport.ack(1)
    assert name_of((await transport.published(5))[4]) == "schedule_mod_end"
    transport.ack(4)
    await asyncio.gather(sync, other)


async def test_waiting_commands_fail_at_once_when_the_session_ends(
    transport: HeldTransport, outbox: Outbox
) -> None:
    sync = start(run_sync(outbox))
    await transport.published(1)
    feeds = [
        start(
            outbox.async_send(GW, commands.feed(DEVICE, 0.25, command_hid=f"{i}" * 32))
        )
        for i in range(2)
    ]
    outbox.gateway_disconnected(GW)
    for feed in feeds:
        with pytest.raises(GatewayNotConnectedError):
            await feed
    assert not sync.done()  # utc_offset is still in flight: its PUBACK decides
    transport.drop(GW)
    with pytest.raises(GatewayNotConnectedError):
        await sync
    assert len(transport.in_flight) == 1  # nothing was sent after the drop
    # Never queued for later: the next command is refused while the feeder is away.
    with pytest.raises(GatewayNotConnectedError):
        await outbox.async_send(GW, commands.feed(DEVICE, 0.25))


async def test_a_cancelled_caller_hands_its_turn_on(
    transport: HeldTransport, outbox: Outbox
) -> None:
    first = start(outbox.async_send(GW, commands.reboot(DEVICE)))
    await transport.published(1)
    second = start(outbox.async_send(GW, commands.feed(DEVICE, 0.25)))
    third = start(outbox.async_send(GW, commands.reboot(DEVICE)))
    second.cancel()
    transport.ack(0)
    await first
    assert name_of((await transport.published(2))[1]) == "reboot"
    transport.ack(1)
    await third
    assert second.cancelled()


async def test_without_delivery_confirmation_a_reporting_feeder_must_report() -> None:
    transport = HeldTransport(confirms_delivery=False)
    confirmations = CommandConfirmations()
    outbox = Outbox(confirmations, confirm_timeout_s=0.05)
    outbox.attach(transport)
    # Before the gateway ever reported, a broker PUBACK is all there is.
    plain = start(outbox.async_send(GW, commands.reboot(DEVICE)))
    await transport.published(1)
    transport.ack(0)
    await plain
    confirmations.reported(commands_hid(transport, 0), "succeeded")
    assert confirmations.reports_status(GW)

    unreported = start(
        outbox.async_send(GW, commands.feed(DEVICE, 0.25), must_confirm=True)
    )
    await transport.published(2)
    transport.ack(1)
    with pytest.raises(CommandUnconfirmedError):
        await unreported

    failed = start(
        outbox.async_send(GW, commands.feed(DEVICE, 0.25), must_confirm=True)
    )
    await transport.published(3)
    transport.ack(2)
    confirmations.reported(commands_hid(transport, 2), "failed")
    with pytest.raises(CommandFailedError):
        await failed

    # A feed does not fail for a missing report; it holds the lane until the timeout.
    feed = start(outbox.async_send(GW, commands.feed(DEVICE, 0.25)))
    await transport.published(4)
    transport.ack(3)
    await feed


def commands_hid(transport: HeldTransport, index: int) -> str:
    payload = transport.in_flight[index][1].decode()
    return payload.split('"hid": "', 1)[1].split('"', 1)[0]


class RecordingTransport(HeldTransport):
    """Also records, at each publish, the reports the hub had by then."""

    def __init__(self, confirmations: CommandConfirmations) -> None:
        super().__init__()
        self.confirmations = confirmations
        self.reports_at_publish: list[dict[str, str]] = []

    async def async_publish(self, gateway_hid: str, topic: str, payload: bytes) -> None:
        self.reports_at_publish.append(dict(self.confirmations.statuses))
        await super().async_publish(gateway_hid, topic, payload)


async def test_a_reporting_feeder_gets_the_next_command_once_it_reported() -> None:
    """The feeder's PUBACK says it queued a command; its report says it carried it out."""
    confirmations = CommandConfirmations()
    transport = RecordingTransport(confirmations)
    outbox = Outbox(confirmations, confirm_timeout_s=0.05)
    outbox.attach(transport)
    # Before the gateway ever reported, its PUBACK is all there is.
    plain = start(outbox.async_send(GW, commands.reboot(DEVICE)))
    await transport.published(1)
    transport.ack(0)
    await plain
    confirmations.reported(commands_hid(transport, 0), "received")
    confirmations.reported(commands_hid(transport, 0), "succeeded")

    sync = start(run_sync(outbox))
    await transport.published(2)
    transport.ack(1)  # queued by the feeder: the next command waits for the outcome
    first = commands_hid(transport, 1)
    # The reports come after the sync has resumed from the PUBACK (callbacks run in order).
    loop = asyncio.get_running_loop()
    loop.call_soon(confirmations.reported, first, "received")
    loop.call_soon(confirmations.reported, first, "succeeded")
    await transport.published(3)
    assert transport.reports_at_publish[2].get(first) == "succeeded"
    # With the feeder's own PUBACK seen, a failed or missing report only paces: the sync
    # goes on (after the report, or once it is overdue).
    transport.ack(2)
    confirmations.reported(commands_hid(transport, 2), "failed")
    await transport.published(4)
    transport.ack(3)
    await sync
    # The report that did not come: the gateway counts as not reporting until it does again.
    assert not confirmations.reports_status(GW)
    assert [name_of(p) for p in await transport.published(4)] == [
        "reboot",
        "utc_offset",
        "schedule_clear",
        "schedule_mod_end",
    ]
