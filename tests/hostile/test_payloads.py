"""Hostile payloads from an authenticated gateway on its own topics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import json
import logging
from typing import Any

from homeassistant.helpers import device_registry as dr
import pytest

from feeder_sim import SimulatedFeeder, ids as sim_ids, telemetry

from ..helpers.arena import FEED_STIME, Arena, manual_feed_result

type Build = Callable[[SimulatedFeeder], bytes]


def _json(message: Any) -> bytes:
    return json.dumps(message).encode()


def _msg(msg_type: Any, **fields: Any) -> Build:
    return lambda f: _json(
        {"_|deviceHid": f.device_hid, "s|msg_type": msg_type, **fields}
    )


def _feed(**fields: Any) -> Build:
    base = {
        "i|stime": FEED_STIME + 3600,
        "i|etime": FEED_STIME + 3604,
        "f|e_g": 32.0,
        "f|a_g": 30.4,
        "i|src": 6,
    }
    return lambda f: _json(
        {"_|deviceHid": f.device_hid, "s|msg_type": "feed_result", **base, **fields}
    )


def _raw_sensor(fields: bytes) -> Build:
    """A sensor message with ``fields`` as they are (no JSON encoder would write them)."""
    return lambda f: (
        b'{"_|deviceHid": "%s", "s|msg_type": "sensor", %s}'
        % (f.device_hid.encode(), fields)
    )


def _raw(data: bytes) -> Build:
    return lambda _f: data


EVERY_FIELD_WRONG: dict[str, Any] = {
    "f|voltage": [1],
    "i|usb": {"a": 1},
    "i|chg": "maybe",
    "i|ir": 7,
    "i|rssi": True,
    "i|stime": [FEED_STIME],
    "i|etime": {"t": 1},
    "f|e_g": "lots",
    "f|a_g": None,
    "i|src": 1.5,
    "b|fail": "perhaps",
    "s|rid": 12,
    "s|err": ["x"],
}


@dataclass(frozen=True)
class Case:
    """What to send, and what (if anything) it may change for the attacker's feeder."""

    build: Build
    may_change: tuple[str, ...] = ()
    check: Callable[[Arena], None] | None = None


def _voltage_is(volts: float) -> Callable[[Arena], None]:
    def check(arena: Arena) -> None:
        assert (
            arena.hub.state.feeders[arena.attacker.device_hid].telemetry.voltage_v
            == volts
        )

    return check


def _history_starts(*starts_ms: int) -> Callable[[Arena], None]:
    def check(arena: Arena) -> None:
        history = arena.hub.state.feeders[arena.attacker.device_hid].history
        assert [row.result.start_ms for row in history] == list(starts_ms)

    return check


def _last_hash_is(value: str | None) -> Callable[[Arena], None]:
    def check(arena: Arena) -> None:
        assert arena.hub.state.feeders[arena.attacker.device_hid].last_hash == value

    return check


OLD_FEED = FEED_STIME * 1000
NEW_FEED = (FEED_STIME + 3600) * 1000

CASES: dict[str, Case] = {
    "not-json": Case(_raw(b"{hb: yes")),
    "binary": Case(_raw(bytes(range(256)))),
    "not-utf8": Case(_raw(b'{"s|msg_type": "\xff\xfe"}')),
    "empty": Case(_raw(b"")),
    "whitespace": Case(_raw(b"   \n")),
    "deeply-nested-array": Case(_raw(b"[" * 50000 + b"]" * 50000)),
    "deeply-nested-object": Case(
        lambda f: b'{"a":' * 10000
        + _json(telemetry.heartbeat(f.device_hid))
        + b"}" * 10000
    ),
    "json-array": Case(lambda f: _json([telemetry.heartbeat(f.device_hid)])),
    "json-string": Case(_raw(b'"hb"')),
    "json-null": Case(_raw(b"null")),
    "msg-type-missing": Case(lambda f: _json({"_|deviceHid": f.device_hid})),
    "msg-type-number": Case(_msg(7)),
    "msg-type-object": Case(_msg({"hb": True})),
    "device-hid-number": Case(_raw(b'{"_|deviceHid": 5238, "s|msg_type": "hb"}')),
    "device-hid-path": Case(
        _raw(b'{"_|deviceHid": "../../.storage/petnet_feeder", "s|msg_type": "hb"}')
    ),
    "device-hid-10kb": Case(
        _raw(_json({"_|deviceHid": "a" * 10240, "s|msg_type": "hb"}))
    ),
    "device-hid-wildcard": Case(_raw(b'{"_|deviceHid": "#", "s|msg_type": "sensor"}')),
    "sensor-every-field-wrong": Case(_msg("sensor", **EVERY_FIELD_WRONG)),
    "feed-result-every-field-wrong": Case(_msg("feed_result", **EVERY_FIELD_WRONG)),
    "sensor-numbers-as-strings": Case(
        _msg("sensor", **{"f|voltage": "4100", "i|usb": "1", "i|rssi": "77"}),
        may_change=("telemetry",),
        check=_voltage_is(4.1),
    ),
    "feed-result-numbers-as-strings": Case(
        _feed(**{"i|stime": str(FEED_STIME + 3600), "f|a_g": "30.4"}),
        may_change=("history",),
        check=_history_starts(NEW_FEED, OLD_FEED),
    ),
    "sensor-nan": Case(_raw_sensor(b'"f|voltage": NaN')),
    "sensor-infinity": Case(_raw_sensor(b'"f|voltage": Infinity')),
    "sensor-minus-infinity": Case(_raw_sensor(b'"i|rssi": -Infinity')),
    "sensor-1e999": Case(_raw_sensor(b'"f|voltage": 1e999')),
    "sensor-huge-integer": Case(_raw_sensor(b'"f|voltage": ' + b"9" * 5000)),
    "unknown-msg-type": Case(_msg("self_destruct", **{"i|countdown": 10})),
    "msg-type-10kb": Case(_msg("x" * 10240)),
    "feed-result-without-times": Case(
        lambda f: _json({"_|deviceHid": f.device_hid, "s|msg_type": "feed_result"})
    ),
    "feed-result-negative-time": Case(_feed(**{"i|stime": -FEED_STIME, "i|etime": -1})),
    "feed-result-zero-time": Case(_feed(**{"i|stime": 0})),
    "feed-result-time-in-ms": Case(_feed(**{"i|stime": (FEED_STIME + 3600) * 1000})),
    "feed-result-huge-time": Case(_feed(**{"i|stime": 10**30})),
    "feed-result-end-before-start": Case(
        _feed(**{"i|etime": FEED_STIME}),
        may_change=("history",),
        check=_history_starts(NEW_FEED, OLD_FEED),
    ),
    "feed-result-replayed": Case(
        _feed(**{"i|stime": FEED_STIME, "f|a_g": 1.0}),
        check=_history_starts(OLD_FEED),
    ),
    "hash-number": Case(
        _msg("hash", **{"s|local_md5": 12345}),
        may_change=("last_hash",),
        check=_last_hash_is(""),
    ),
    "hash-list": Case(
        _msg("hash", **{"s|local_md5": ["d41d8cd98f00b204e9800998ecf8427e"]}),
        may_change=("last_hash",),
        check=_last_hash_is(""),
    ),
    "hash-10kb": Case(
        _msg("hash", **{"s|local_md5": "f" * 10240}),
        may_change=("last_hash",),
        check=_last_hash_is(""),
    ),
    "hash-not-hex": Case(
        _msg("hash", **{"s|local_md5": "zz<script>"}),
        # The first hash after a sync is taken as what the feeder holds (a later different
        # one triggers a resync): opaque text, stored bounded.
        may_change=("last_hash", "expected_hash"),
        check=_last_hash_is("zz<script>"),
    ),
    "hash-for-the-whole-gateway": Case(
        _raw(b'{"s|msg_type": "hash", "s|local_md5": ""}'),
        may_change=("last_hash",),
        check=_last_hash_is(""),
    ),
}


# Well-formed but of no use: ignored at debug level (unknown kinds are logged once).
IGNORED_QUIETLY = ("unknown-msg-type", "msg-type-10kb", "feed-result-replayed")


@pytest.mark.parametrize("name", list(CASES))
async def test_payload(arena: Arena, name: str) -> None:
    case = CASES[name]
    attacker = arena.attacker
    await attacker.send_raw(
        sim_ids.telemetry_topic(attacker.gateway_hid), case.build(attacker)
    )
    await arena.barrier()
    assert arena.hub.state.is_connected(attacker.gateway_hid)
    await arena.check(
        may_change=[arena.feeder_path(attacker, p) for p in case.may_change]
        + ([arena.history_path(attacker)] if "history" in case.may_change else [])
    )
    if case.check is not None:
        case.check(arena)
    if not case.may_change and name not in IGNORED_QUIETLY:
        assert arena.warned("Dropped malformed message from gateway")


@pytest.mark.parametrize(
    "message",
    ["hb", "sensor", "feed_result", "empty-hash"],
)
async def test_reports_for_another_gateways_feeder_are_dropped(
    arena: Arena, message: str
) -> None:
    """A gateway may only report for its own devices (GatewayRegistry.feeder_for_message)."""
    good, attacker = arena.good, arena.attacker
    victim = good.device_hid
    payload = {
        "hb": telemetry.heartbeat(victim),
        "sensor": telemetry.sensor(victim, voltage_mv=3500, rssi=1),
        "feed_result": manual_feed_result(
            victim, after_s=7200, actual_g=0, hopper_end=0, fail=True, err="jam"
        ),
        # An empty hash would make the victim's schedule be sent again and again.
        "empty-hash": telemetry.schedule_hash(victim, ""),
    }[message]
    victim_state = arena.hub.state.feeders[victim]
    last_seen = victim_state.last_seen
    syncs = arena.hub.sync.reconciler(victim).syncs_started
    await attacker.send_raw(
        sim_ids.telemetry_topic(attacker.gateway_hid), telemetry.encode(payload)
    )
    await arena.barrier()
    assert victim_state.last_seen == last_seen
    assert arena.hub.sync.reconciler(victim).syncs_started == syncs
    assert arena.warned(f"reported for feeder {victim} of another gateway; dropped")
    await arena.check()


async def test_reports_for_unknown_devices_are_dropped(arena: Arena) -> None:
    """A heartbeat naming a device the gateway does not own creates nothing (no HA device)."""
    attacker = arena.attacker
    devices = len(dr.async_get(arena.hass).devices)
    topic = sim_ids.telemetry_topic(attacker.gateway_hid)
    for index in range(20):
        await attacker.send_raw(
            topic, telemetry.encode(telemetry.heartbeat(f"{index:040x}"))
        )
    await arena.barrier()
    assert [f.hid for f in arena.hub.state.feeders_of(attacker.gateway_hid)] == [
        attacker.device_hid
    ]
    assert len(dr.async_get(arena.hass).devices) == devices
    warnings = [
        r
        for r in arena.server_records()
        if "which is not its own; dropped" in r.getMessage()
        and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1  # one per gateway
    await arena.check()


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"requestId": null}',
        b'{"requestId": true}',
        b'{"requestId": 1e400}',
        b'{"requestId": "' + b"r" * 1000 + b'"}',
        b'{"requestId": "GS-1", "parameters": "PUT /checkin"}',
        b'{"requestId": "GS-2", "parameters": {"uri": ["a"], "method": 5}}',
    ],
    ids=[
        "not-json",
        "array",
        "request-id-null",
        "request-id-bool",
        "request-id-infinite",
        "request-id-1kb",
        "parameters-string",
        "parameters-wrong-types",
    ],
)
async def test_api_request_garbage(arena: Arena, payload: bytes) -> None:
    attacker = arena.attacker
    await attacker.send_raw(sim_ids.api_request_topic(attacker.gateway_hid), payload)
    await arena.barrier()
    await arena.check()
    if b"GS-" not in payload:
        assert arena.warned("Dropped malformed message from gateway")
    assert attacker.protocol_errors == [] or all(
        "unknown or late requestId" in error for error in attacker.protocol_errors
    )


async def test_api_checkin_for_another_gateway_is_ignored(arena: Arena) -> None:
    good, attacker = arena.good, arena.attacker
    syncs = arena.hub.sync.reconciler(good.device_hid).syncs_started
    await attacker.api_request(f"/api/v1/kronos/gateways/{good.gateway_hid}/checkin")
    await arena.barrier()
    assert arena.hub.sync.reconciler(good.device_hid).syncs_started == syncs
    assert not arena.hub.state.feeders[good.device_hid].sync_pending
    await arena.check()
