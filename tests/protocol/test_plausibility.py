"""Implausible values are dropped one by one; the message's other values stay."""

from __future__ import annotations

import json

import pytest

from custom_components.petnet_feeder.protocol.messages import (
    FeedResult,
    SensorReading,
    parse_telemetry,
)

DEV = "5238b0c4ceb91b35119887f44f29cb489fcf044a"
STIME = 1_717_243_203


def envelope(**fields: object) -> bytes:
    return json.dumps({"_|deviceHid": DEV, **fields}).encode()


@pytest.mark.parametrize(
    ("voltage_mv", "rssi", "dropped", "voltage_v", "kept_rssi"),
    [
        (4520, 96, (), 4.52, 96),
        (1e308, 96, ("f|voltage",), None, 96),
        (-5, -60, ("f|voltage",), None, -60),
        (4520, 10_000, ("i|rssi",), 4.52, None),
    ],
)
def test_sensor_values_out_of_range_are_dropped(
    voltage_mv: float,
    rssi: int,
    dropped: tuple[str, ...],
    voltage_v: float | None,
    kept_rssi: int | None,
) -> None:
    reading = parse_telemetry(
        envelope(**{"s|msg_type": "sensor", "f|voltage": voltage_mv, "i|rssi": rssi})
    )
    assert isinstance(reading, SensorReading)
    assert reading.implausible == dropped
    assert reading.voltage_v == voltage_v
    assert reading.rssi == kept_rssi


def test_feed_result_grams_out_of_range_are_dropped() -> None:
    result = parse_telemetry(
        envelope(
            **{
                "s|msg_type": "feed_result",
                "i|stime": STIME,
                "f|e_g": 32.0,
                "f|a_g": 1e12,
                "i|src": 6,
            }
        )
    )
    assert isinstance(result, FeedResult)
    assert result.implausible == ("f|a_g",)
    assert (result.grams_expected, result.grams_actual) == (32.0, None)
    assert "implausible" not in result.to_dict()
