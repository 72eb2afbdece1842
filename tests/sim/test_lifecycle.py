"""API round trips (§5.7), connection loss, schedule clock, stop(), fleet and CLI."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import re

import pytest

from feeder_sim import Fleet, SimulatedFeeder, run_fleet, uid_for_index
from feeder_sim.__main__ import build_parser, run

from ..helpers.sim_peers import BrokerInfo, FakeKronos, FakeServer

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def booted(
    make_sim_feeder: Callable[..., SimulatedFeeder], **kwargs: object
) -> SimulatedFeeder:
    feeder = make_sim_feeder(**kwargs)
    await feeder.boot()
    return feeder


async def test_api_request_round_trip(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder)
    uri = "/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received"
    reply = await feeder.api_request(uri)
    request = next(
        m.json
        for m in server.messages
        if m.topic == f"krs.api.gts.{feeder.gateway_hid}"
    )
    assert re.fullmatch(r"GS-\d+", request["requestId"])
    assert request["eventName"] == "GatewayToServer_ApiRequest"
    assert request["encrypted"] is False
    assert (request["parameters"]["uri"], request["parameters"]["method"]) == (
        uri,
        "PUT",
    )
    assert request["parameters"]["apiKey"] == feeder.api_key
    assert reply == {
        "requestId": request["requestId"],
        "eventName": "GatewayToServer_ApiRequest",
        "encrypted": False,
        "parameters": {"status": "OK"},
    }
    second = await feeder.api_request(uri.replace("received", "succeeded"))
    assert second["requestId"] != reply["requestId"]
    assert len(feeder.api_latencies) == 2
    assert feeder.protocol_errors == []


async def test_unanswered_api_request_times_out(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder)
    server.answer_api = False
    with pytest.raises(TimeoutError):
        await feeder.api_request("/api/v1/kronos/gateways/x/checkin", timeout=0.1)
    assert "no reply within 0.1 s" in feeder.protocol_errors[0]


async def test_command_status_reports(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder, report_command_status=True)
    await server.send(feeder, "utc_offset", {"utc_offset": 3600}, hid="a" * 32)
    await feeder.wait_for_command("utc_offset")
    uris = [
        m.json["parameters"]["uri"]
        for m in server.messages
        if m.topic.startswith("krs.api.gts.")
    ]
    assert uris == [
        f"/api/v1/core/events/{'a' * 32}/received",
        f"/api/v1/core/events/{'a' * 32}/succeeded",
    ]
    assert feeder.protocol_errors == []


@pytest.mark.usefixtures("broker")
async def test_drop_and_reconnect(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder)
    await feeder.drop()
    assert not feeder.connected
    await feeder.connect()
    await feeder.send_heartbeat()
    await server.wait_telemetry("hb")
    await feeder.disconnect()
    assert not feeder.connected


async def test_started_feeder_reconnects_after_connection_loss(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = make_sim_feeder(retry_delay=0.01)
    await feeder.start()
    assert feeder._conn is not None
    await feeder._conn.abort()  # the network goes away under the feeder
    await feeder.wait_until_connected()
    await feeder.send_heartbeat()
    await server.wait_telemetry("hb")


async def test_run_due_meals_on_the_feeder_clock(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = await booted(make_sim_feeder, g_per_tbsp=8.0)
    dev16 = feeder.device_hid[:16]
    feeder.schedule = [
        {"active": True, "automatic": True, "feeding_id": f"{dev16}_feed1_7:00AM", "name": "FEED0", "portion": 0.25, "reminder": True, "time": 25200},
        {"active": False, "automatic": True, "feeding_id": f"{dev16}_feed3_7:00AM", "name": "FEED1", "portion": 1.0, "reminder": True, "time": 25200},
        {"active": True, "automatic": True, "feeding_id": f"{dev16}_feed2_18:30PM", "name": "FEED2", "portion": 0.5, "reminder": True, "time": 66600},
    ]  # fmt: skip
    await server.send(feeder, "utc_offset", {"utc_offset": -18000})
    await feeder.wait_for_command("utc_offset")

    breakfast = datetime(2024, 6, 1, 12, 0, 3, tzinfo=UTC)  # 07:00:03 at UTC-5
    (result,) = await feeder.run_due_meals(breakfast)
    assert (result["i|stime"], result["i|src"], result["f|e_g"]) == (
        1717243203,
        6,
        32.0,
    )
    assert (
        await feeder.run_due_meals(breakfast + timedelta(seconds=30)) == []
    )  # once per minute
    assert await feeder.run_due_meals(breakfast + timedelta(minutes=1)) == []

    feeder.skip_meals = {66600}
    assert await feeder.run_due_meals(datetime(2024, 6, 1, 23, 30, tzinfo=UTC)) == []
    feeder.skip_meals = set()
    feeder.skip_next_meal = True
    assert await feeder.run_due_meals(breakfast + timedelta(days=1)) == []
    assert feeder.skip_next_meal is False
    assert len(await feeder.run_due_meals(breakfast + timedelta(days=2))) == 1

    feeder.fail_meals = {25200: "motor jam"}
    (jammed,) = await feeder.run_due_meals(breakfast + timedelta(days=3))
    assert (jammed["b|fail"], jammed["s|err"], jammed["f|a_g"]) == (
        True,
        "motor jam",
        0.0,
    )

    results = await server.wait_telemetry("feed_result", count=3)
    assert [(r["i|src"], r["b|fail"]) for r in results] == [
        (6, False),
        (6, False),
        (6, True),
    ]


async def test_stop_leaves_no_tasks(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    before = asyncio.all_tasks()
    feeder = make_sim_feeder(
        heartbeat_interval=0.01, sensor_interval=0.01, report_command_status=True
    )
    await feeder.start(run_schedule=True)
    await server.wait_telemetry("hb", count=2)
    await server.send(feeder, "reboot", {})
    await feeder.wait_for_command("reboot")  # a reboot task is in flight while stopping
    await feeder.stop()
    assert not feeder.connected
    assert feeder._tasks == set()

    def server_side(task: asyncio.Task[object]) -> bool:
        coro = task.get_coro()
        owner = getattr(getattr(coro, "cr_frame", None), "f_locals", {}).get("self")
        return owner in (server, server.client, server.client._handler) or type(
            owner
        ).__name__.startswith(("Broker", "RequestHandler"))

    leftover = [
        t for t in asyncio.all_tasks() - before if not t.done() and not server_side(t)
    ]
    assert leftover == []
    await feeder.stop()  # idempotent


async def test_fleet(
    kronos: FakeKronos, broker: BrokerInfo, server: FakeServer
) -> None:
    fleet = await run_fleet(
        3,
        ["2.3.2", "2.8.0"],
        kronos_url=kronos.url,
        mqtt_port=broker.port,
        mqtt_tls=False,
        heartbeat_interval=60,
    )
    try:
        assert [f.uid for f in fleet] == [uid_for_index(i) for i in range(3)]
        assert all(re.fullmatch(r"smartfeeder-[0-9a-f]{12}", f.uid) for f in fleet)
        assert [f.firmware for f in fleet] == ["2.3.2", "2.8.0", "2.3.2"]
        assert all(f.connected for f in fleet)
        await server.wait_telemetry("hash", count=3)
        assert len(kronos.api_keys) == 3
        assert fleet.protocol_errors == []
    finally:
        await fleet.stop()
    assert not any(f.connected for f in fleet)
    async with Fleet(
        1, kronos_url=kronos.url, mqtt_port=broker.port, mqtt_tls=False, first_index=7
    ) as other:
        assert other.feeders[0].uid == uid_for_index(7)
        assert other.feeders[0].connected


async def test_cli_runs_fleet_until_stopped(
    kronos: FakeKronos,
    broker: BrokerInfo,
    server: FakeServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(
        [
            "--kronos-url", kronos.url, "--mqtt-port", str(broker.port), "--no-tls", "--count", "2",
            "--firmware", "2.3.2,2.8.0", "--heartbeat", "0.01", "--sensor-interval", "0", "--seed", "3",
        ]
    )  # fmt: skip
    assert isinstance(args, argparse.Namespace)
    stop = asyncio.Event()
    task = asyncio.create_task(run(args, stop))
    await server.wait_telemetry("hb", count=4)
    assert server.telemetry("sensor") == []
    stop.set()
    await task
    out = capsys.readouterr().out
    assert "2 feeder(s) running" in out
    assert out.rstrip().endswith("stopped")
