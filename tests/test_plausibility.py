"""Implausible values from a feeder are dropped with one warning; good values stay."""

from __future__ import annotations

import logging
import time

import pytest

from custom_components.petnet_feeder.hub import PetnetHub
from feeder_sim import SimulatedFeeder, ids, telemetry

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


async def test_a_feed_result_from_more_than_a_week_ago_is_dropped(
    hub: PetnetHub, feeder: SimulatedFeeder, caplog: pytest.LogCaptureFixture
) -> None:
    stored = hub.state.feeders[feeder.device_hid]
    eight_days_ago = int(time.time()) - 8 * 86400
    six_days_ago = int(time.time()) - 6 * 86400
    await feeder.send_feed_result(stime=eight_days_ago, portion=0.25, src=4)
    await feeder.send_feed_result(stime=six_days_ago, portion=0.25, src=4)
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
    assert stored.history[0].result.start_ms == six_days_ago * 1000
    assert "starts more than 7 days ago" in caplog.text


async def test_a_feed_result_ending_before_it_starts_keeps_no_end(
    hub: PetnetHub, feeder: SimulatedFeeder, caplog: pytest.LogCaptureFixture
) -> None:
    stored = hub.state.feeders[feeder.device_hid]
    start = int(time.time()) - 60
    message = telemetry.feed_result(
        feeder.device_hid,
        stime=start,
        etime=start - 3600,
        expected_g=30.0,
        actual_g=30.0,
        hopper_start=50,
        hopper_end=49,
        src=4,
        rid="",
        fail=False,
        err="",
    )
    await feeder.send_raw(
        ids.telemetry_topic(feeder.gateway_hid), telemetry.encode(message)
    )
    await wait_for_feeder(hub, feeder.device_hid, lambda f: len(f.history) == 1)
    result = stored.history[0].result
    assert (result.start_ms, result.end_ms, result.grams_actual) == (
        start * 1000,
        None,
        30.0,
    )
    assert f"Dropped implausible i|etime from feeder {feeder.device_hid}" in caplog.text
