"""Telemetry payloads (§5) and command handling (§6, §7) over a real broker."""

from __future__ import annotations

from collections.abc import Callable
import json
import time

import pytest

from feeder_sim import SimulatedFeeder
from feeder_sim.schedule import schedule_md5

from ..helpers.sim_peers import FakeServer, envelope

pytestmark = pytest.mark.usefixtures("socket_enabled")

FEED_RESULT_KEYS = [
    "_|deviceHid", "s|msg_type", "i|stime", "i|etime", "i|pour", "i|full", "f|e_g", "f|a_g",
    "f|h_s", "f|h_e", "i|src", "b|fail", "b|trip", "b|lrg", "b|vol", "b|bowl", "s|rid", "s|err",
]  # fmt: skip


def check_types(message: dict[str, object]) -> None:
    """Every key's value matches its Konexios type prefix (§5.1)."""
    for key, value in message.items():
        prefix = key.split("|")[0]
        if prefix in ("_", "s"):
            assert isinstance(value, str), key
        elif prefix == "i":
            assert type(value) is int, key
        elif prefix == "f":
            assert type(value) in (int, float), key
        elif prefix == "b":
            assert type(value) is bool, key
        else:
            raise AssertionError(f"unknown prefix in {key}")


async def booted(
    make_sim_feeder: Callable[..., SimulatedFeeder], **kwargs: object
) -> SimulatedFeeder:
    feeder = make_sim_feeder(**kwargs)
    await feeder.boot()
    return feeder


async def test_heartbeat_and_sensor_payloads(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder)
    await feeder.send_heartbeat()
    await feeder.send_sensor()
    await feeder.send_sensor(voltage_mv=3900, usb=0, chg=1, ir=1, rssi=-61)
    (hb,) = await server.wait_telemetry("hb")
    assert hb == {"_|deviceHid": feeder.device_hid, "s|msg_type": "hb"}
    default, custom = await server.wait_telemetry("sensor", count=2)
    assert default == {
        "_|deviceHid": feeder.device_hid,
        "s|msg_type": "sensor",
        "f|voltage": 4500,
        "i|usb": 1,
        "i|chg": 0,
        "i|ir": 0,
        "i|rssi": 99,
    }
    assert list(custom.values())[2:] == [3900, 0, 1, 1, -61]
    check_types(default)
    check_types(custom)
    raw = next(m for m in server.messages if m.json.get("s|msg_type") == "hb")
    assert raw.topic == f"krs.tel.gts.{feeder.gateway_hid}"


async def test_background_heartbeats_and_sensors(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = make_sim_feeder(heartbeat_interval=0.02, sensor_interval=0.02, seed=1)
    await feeder.start()
    await server.wait_telemetry("hb", count=3)
    sensors = await server.wait_telemetry("sensor", count=3)
    for sensor in sensors:
        check_types(sensor)
        assert 4400 <= sensor["f|voltage"] <= 4600
        assert 90 <= sensor["i|rssi"] <= 100


async def test_feed_command_reports_feed_result(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder, g_per_tbsp=8.0)
    before = int(time.time())
    await server.send(feeder, "feed", {"portion": 0.0625})
    (command,) = await feeder.wait_for_command("feed")
    assert command.payload == {"portion": 0.0625}
    assert len(command.hid) == 32
    (result,) = await server.wait_telemetry("feed_result")
    assert list(result) == FEED_RESULT_KEYS
    check_types(result)
    assert before <= result["i|stime"] <= int(time.time())
    assert result["i|etime"] == result["i|stime"] + 4
    assert result["f|e_g"] == 8.0  # 1/16 cup = 1 tbsp x 8 g
    assert 0 < result["f|a_g"] < result["f|e_g"]
    assert (result["i|src"], result["b|fail"], result["s|rid"], result["s|err"]) == (
        4,
        False,
        "E0000001",
        "",
    )

    # budget: new recipe id and density are used by the next dispense.
    await server.send(
        feeder,
        "budget",
        {
            "recipe": "E0000002",
            "tbsp_per_feeding": 2,
            "g_per_tbsp": 10,
            "budget_tbsp": 2,
        },
    )
    await server.send(feeder, "feed", {"portion": 0.125})
    await feeder.wait_for_command("feed", count=2)
    _, second = await server.wait_telemetry("feed_result", count=2)
    assert (second["f|e_g"], second["s|rid"]) == (20.0, "E0000002")
    assert feeder.budget == {
        "recipe": "E0000002",
        "tbsp_per_feeding": 2,
        "g_per_tbsp": 10,
        "budget_tbsp": 2,
    }
    assert feeder.protocol_errors == []


async def test_button_and_utc_offset_commands(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder)
    pressed = await feeder.feed_now_via_button()
    assert pressed is not None
    assert (pressed["i|src"], pressed["f|e_g"]) == (5, 8.0)
    await server.send(feeder, "button_enable_remote", {"enable": False})
    await server.send(feeder, "utc_offset", {"utc_offset": -18000})
    await feeder.wait_for_command("utc_offset")
    assert feeder.button_enabled is False
    assert feeder.utc_offset == -18000
    assert await feeder.feed_now_via_button() is None
    await server.wait_telemetry("feed_result", count=1)
    assert [c.command for c in feeder.commands] == [
        "button_enable_remote",
        "utc_offset",
    ]
    assert feeder.protocol_errors == []


async def test_legacy_schedule_command(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder, firmware="2.3.2")
    events = [
        {
            "active": True,
            "automatic": True,
            "feeding_id": f"{feeder.device_hid[:16]}_feed1_1:00AM",
            "name": "FEED0",
            "portion": 0.0625,
            "reminder": True,
            "time": 3600,
        }
    ]
    await server.send(feeder, "schedule", events)
    await feeder.wait_for_command("schedule")
    assert feeder.schedule == events
    assert feeder.local_md5 == schedule_md5(events) != ""
    await feeder.send_hash()
    hashes = await server.wait_telemetry("hash", count=2)
    assert hashes[-1]["s|local_md5"] == feeder.local_md5
    await server.send(feeder, "schedule", [])
    await feeder.wait_for_command("schedule", count=2)
    assert feeder.schedule == []
    assert feeder.protocol_errors == []


# §13 step 7: byte-exact commands for device 5238b0c4..., gateway 48853328...
SPEC_SYNC = [
    r'{"hid": "tuvxboyvzrmmmmdpumbgcgofdktbdase", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "utc_offset", "payload": "{\"utc_offset\": -18000}"}}',
    r'{"hid": "kemubcrdlsbqgbcnnchcrnbsdhuusbss", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_clear", "payload": "{}"}}',
    r'{"hid": "mbhbrejnerdsjrvfdssugldrwcsbtgpv", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_mod_start", "payload": "{\"size\": 2}"}}',
    r'{"hid": "rnykosoljhzfwyhcsjqpkxojtcdqnfyk", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_add", "payload": "[{\"index\": 0, \"data\": {\"active\": true, \"automatic\": true, \"feeding_id\": \"5238b0c4ceb91b35_feed1_7:00AM\", \"name\": \"FEED0\", \"portion\": 0.25, \"reminder\": true, \"time\": 25200}}]"}}',
    r'{"hid": "epnbvcyrszkkwltpszoccipwvcbxwjus", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_add", "payload": "[{\"index\": 1, \"data\": {\"active\": true, \"automatic\": true, \"feeding_id\": \"5238b0c4ceb91b35_feed2_18:30PM\", \"name\": \"FEED1\", \"portion\": 0.25, \"reminder\": true, \"time\": 66600}}]"}}',
    r'{"hid": "vojwmvlaolftdpbgyjexhmmpcfomrien", "name": "SendCommand", "encrypted": false, "parameters": {"deviceHid": "5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "schedule_mod_end", "payload": "{}"}}',
]


async def synced_from_the_spec(
    make_sim_feeder: Callable[..., SimulatedFeeder], server: FakeServer
) -> SimulatedFeeder:
    """A booted feeder sent the spec's schedule sync (its commands may still be arriving)."""
    feeder = await booted(make_sim_feeder, uid="smartfeeder-795ae773737d")
    for raw in SPEC_SYNC:
        await server.send_raw(feeder, raw)
    return feeder


async def test_new_api_schedule_sync_from_the_spec(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await synced_from_the_spec(make_sim_feeder, server)
    commands = await feeder.wait_for_command(count=6)
    assert [c.command for c in commands] == [
        "utc_offset", "schedule_clear", "schedule_mod_start", "schedule_add", "schedule_add", "schedule_mod_end",
    ]  # fmt: skip
    assert [c.raw for c in commands] == [raw.encode() for raw in SPEC_SYNC]
    assert feeder.protocol_errors == []
    assert feeder.utc_offset == -18000
    assert [e["time"] for e in feeder.schedule] == [25200, 66600]
    assert feeder.schedule[1]["feeding_id"] == "5238b0c4ceb91b35_feed2_18:30PM"
    assert 0 < feeder.max_message_bytes <= 1000


async def test_incomplete_new_api_sequence_keeps_what_was_added(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder)
    event = {
        "active": True,
        "automatic": True,
        "feeding_id": f"{feeder.device_hid[:16]}_feed1_7:00AM",
        "name": "FEED0",
        "portion": 0.25,
        "reminder": True,
        "time": 25200,
    }
    await server.send(feeder, "schedule_clear", {})
    await server.send(feeder, "schedule_mod_start", {"size": 2})
    await server.send(feeder, "schedule_add", [{"index": 0, "data": event}])
    await feeder.wait_for_command("schedule_add")
    assert feeder.schedule == [event]
    assert feeder.protocol_errors == []
    await server.send(feeder, "schedule_mod_end", {})
    await feeder.wait_for_command("schedule_mod_end")
    assert feeder.schedule == [event]
    assert any("expected indexes 0..1" in e for e in feeder.protocol_errors)


async def test_envelope_violations_are_recorded(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder, firmware="2.8.0")
    dev = feeder.device_hid
    bad = json.loads(envelope(dev, "feed", {"portion": 0.0625}))
    await server.send_raw(
        feeder,
        json.dumps(bad | {"name": "ServerToGateway_DeviceCommand", "encrypted": True}),
    )
    await server.send_raw(
        feeder,
        json.dumps(
            bad
            | {
                "hid": "X" * 5,
                "parameters": bad["parameters"] | {"deviceHid": "unused"},
            }
        ),
    )
    await server.send_raw(
        feeder,
        json.dumps(
            bad | {"parameters": bad["parameters"] | {"payload": {"portion": 0.0625}}}
        ),
    )
    await server.send_raw(feeder, b"\xff not json")
    await server.send_raw(feeder, json.dumps(bad, separators=(",", ":")))
    await server.send(feeder, "schedule", [])  # legacy command to new firmware (§8)
    await server.send(feeder, "reboot", {}, hid=bad["hid"])  # reused command hid ...
    await feeder.wait_for_command("reboot")
    await feeder.wait_for_boot(2)  # ... still obeyed
    await server.send(feeder, "x" * 10, {"padding": "y" * 1000})
    await feeder.wait_for_command("x" * 10)

    errors = "\n".join(feeder.protocol_errors)
    for fragment in (
        "name 'ServerToGateway_DeviceCommand' != 'SendCommand'",
        "encrypted True is not false",
        "is not 32 lowercase letters",
        "deviceHid 'unused'",
        "payload is not a JSON string",
        "not UTF-8 JSON",
        "envelope bytes are not json.dumps() form",
        "legacy schedule command sent to firmware 2.8.0",
        f"command hid {bad['hid']} reused",
        "> 1000",
    ):
        assert fragment in errors, fragment
    assert feeder.max_message_bytes > 1000
    # Lenient like firmware: readable commands were still carried out.
    assert [c.command for c in feeder.commands].count("feed") == 4
    assert len(await server.wait_telemetry("feed_result", count=3)) == 3


async def test_reboot_wipes_schedule_and_reports_empty_hash(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await synced_from_the_spec(make_sim_feeder, server)
    await feeder.wait_for_command("schedule_mod_end")
    await feeder.send_hash()
    assert feeder.local_md5 != ""
    await server.send(feeder, "reboot", {})
    await feeder.wait_for_boot(2)
    assert feeder.schedule == []
    assert feeder.utc_offset is None
    assert feeder.connected
    hashes = [m["s|local_md5"] for m in await server.wait_telemetry("hash", count=3)]
    assert hashes == ["", feeder_md5 := hashes[1], ""]
    assert feeder_md5 != ""
    assert feeder.protocol_errors == []
