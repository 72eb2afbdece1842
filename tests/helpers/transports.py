"""Running tests against both transports, and waiting for what HA's MQTT published."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.petnet_feeder.const import TRANSPORT_BUNDLED, TRANSPORT_MQTT
from feeder_sim import SimulatedFeeder

both_transports = pytest.mark.parametrize(
    "transport", [TRANSPORT_BUNDLED, TRANSPORT_MQTT], indirect=True
)
"""Run a module's tests against the bundled broker and against HA's MQTT integration with a
real Mosquitto (``pytestmark = both_transports``); ids ``[bundled]`` and ``[mqtt]``."""


def bundled_only(reason: str) -> pytest.MarkDecorator:
    """Mark a test of a both-transport module that only means something with the bundled broker."""
    return pytest.mark.bundled_only(reason=reason)


SENT_COMMANDS: dict[str, list[str]] = {}
"""Command hids HA's MQTT published per gateway in the running test (see wait_until_received)."""


async def wait_until_received(feeder: SimulatedFeeder, timeout: float = 10) -> None:
    """Wait until the feeder handled every command HA's MQTT published to its gateway.

    With the bundled broker a publish returns after the feeder's own PUBACK, so the feeder
    has the command by then. Through HA's MQTT integration it returns after the *broker's*
    PUBACK, while the message may still be on its way to the feeder.
    """
    wanted = set(SENT_COMMANDS.get(feeder.gateway_hid, ()))
    async with asyncio.timeout(timeout):
        while not wanted <= {command.hid for command in feeder.commands}:
            await feeder.wait_for_command(since=len(feeder.commands), timeout=timeout)
