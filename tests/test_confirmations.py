"""Command reports: which gateways report, and what a wait for a report gets."""

from __future__ import annotations

from custom_components.petnet_feeder.confirmations import CommandConfirmations

GW = "488533283e3f06ca4ae929fd01f50a9259dd393f"
OTHER = "d9eae8344910399224153df53f12400ceb8c5707"


async def test_a_gateway_reports_once_a_command_sent_to_it_is_reported() -> None:
    confirmations = CommandConfirmations()
    confirmations.reported("unknowncommand", "received")  # not ours: says nothing
    assert not confirmations.reports_status(GW)
    confirmations.sent("a" * 32, GW)
    confirmations.reported("a" * 32, "received")
    assert confirmations.reports_status(GW)
    assert not confirmations.reports_status(OTHER)
    assert confirmations.statuses["a" * 32] == "received"


async def test_received_is_enough_until_the_gateway_reported_an_outcome() -> None:
    confirmations = CommandConfirmations()
    first = confirmations.expect("a" * 32, GW)
    confirmations.reported("a" * 32, "received")
    assert await first == "received"
    confirmations.reported("a" * 32, "succeeded")

    # Now the gateway is known to report outcomes: received alone is not the answer.
    second = confirmations.expect("b" * 32, GW)
    confirmations.reported("b" * 32, "received")
    assert not second.done()
    confirmations.reported("b" * 32, "failed")
    assert await second == "failed"


async def test_forget_and_clear_cancel_waits() -> None:
    confirmations = CommandConfirmations()
    forgotten = confirmations.expect("a" * 32, GW)
    confirmations.forget("a" * 32)
    assert forgotten.cancelled()
    confirmations.reported(
        "a" * 32, "received"
    )  # too late: nobody waits, nothing breaks
    waiting = confirmations.expect("b" * 32, GW)
    confirmations.clear()
    assert waiting.cancelled()


async def test_memory_is_bounded() -> None:
    confirmations = CommandConfirmations()
    for number in range(500):
        command_hid = f"{number:032d}"
        confirmations.sent(command_hid, GW)
        confirmations.reported(command_hid, "received")
    assert len(confirmations.statuses) == 200
    assert f"{499:032d}" in confirmations.statuses
    assert f"{0:032d}" not in confirmations.statuses
