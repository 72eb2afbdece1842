"""Implausible values from a feeder are dropped with one warning; good values stay."""

from __future__ import annotations

import logging
import time

import pytest

from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder

from .helpers.feeders import FeederFactory, wait_for_feeder


@pytest.fixture
async def feeder(make_feeder: FeederFactory) -> SimulatedFeeder:
    """A connected simulated feeder."""
    return await make_feeder()


async def test_an_implausible_voltage_keeps_the_last_good_one(
    hub: PetnetHub, feeder: SimulatedFeeder, caplog: pytest.LogCaptureFixture
) -> None:
    stored = hub.state.feeders[feeder.device_hid]
    await feeder.send_sensor(voltage_mv=4520, rssi=90)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: f.telemetry.rssi == 90)
    for rssi in (91, 92):
        await feeder.send_sensor(voltage_mv=1e308, rssi=rssi)
        await wait_for_feeder(
            hub, feeder.device_hid, lambda f, rssi=rssi: f.telemetry.rssi == rssi
        )
    assert stored.telemetry.voltage_v == 4.52
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and "implausible" in record.getMessage()
    ]
    assert warnings == [
        f"Dropped implausible f|voltage from feeder {feeder.device_hid}"
    ]


async def test_a_feed_result_from_the_future_is_dropped(
    hub: PetnetHub, feeder: SimulatedFeeder, caplog: pytest.LogCaptureFixture
) -> None:
    stored = hub.state.feeders[feeder.device_hid]
    tomorrow = int(time.time()) + 86400
    await feeder.send_feed_result(stime=tomorrow, portion=0.25, src=4)
    await feeder.send_feed_result(stime=int(time.time()), portion=0.25, src=4)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
    assert stored.history[0].result.start_ms < tomorrow * 1000
    assert "starts in the future" in caplog.text
