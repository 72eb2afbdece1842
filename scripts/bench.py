"""Benchmark: the bundled broker and the hub in a real Home Assistant, against simulated feeders.

Run through ``scripts/bench [--feeders N[,N...]] [--json FILE] [--quick] [--check-keys]
[--profile DIR]``. One process runs Home Assistant (started programmatically from a temporary
config directory without its default integrations or UI, the integration added through its
config flow like a user would); the simulated feeders run in separate load-generator processes
(``--drivers``, default 2), because clients in the broker's own process starve its event loop.
Everything is on loopback, over TLS like real feeders (Kronos HTTPS, MQTTS). Several sizes run
one after the other, each in a fresh process; the report is then a list, one per size.

Phases, in order:

1. ``bare_broker``: a stock amqtt broker (anonymous, no ACL, no integration, same TLS) in this
   process; the drivers open N sessions and publish heartbeats as fast as they can (QoS 1,
   ``--window`` in flight per session). Messages/s counted as the broker takes them in.
2. Home Assistant starts; the integration is added (first setup, certificate included).
3. The N feeders boot (register, key, device, MQTTS) and get a 2-meal schedule. Like the
   firmware's SDK, each reports ``received`` and then ``succeeded`` on every command it gets
   (§5.7), so a delivery's commands go out at the pace of those reports.
4. ``idle``: every feeder sends a time-stamped heartbeat per second for ``--idle-seconds``;
   the hub records, per heartbeat, the time from the feeder's publish to the end of its
   handling (latency). The Store's writes in the window are counted, and so are the writes
   the window's changes scheduled: the one still due at its end is made at once (a forced
   flush) and counted. Liveness is written lazily, so that write is due minutes later; the
   steady-state rate follows from its measured delay (see ``disk_writes_per_1000``).
5. ``push``: on ``--push-samples`` feeders, one after the other 50 ms apart, a meal's portion
   is changed through the ``petnet_feeder.update_meal`` action; per feeder the time from the
   call to the last schedule command of the delivery it caused arriving at the feeder (its
   MQTT client has read the PUBLISH). No heartbeats meanwhile.
6. ``api``: every feeder sends ``--api-rounds`` API requests on krs.api.gts.<gw> (a command
   status report, as the firmware sends after each command), one per second; per request the
   time from its publish to the ACK arriving at the feeder.
7. ``storm``: all feeders reboot at once (schedule wiped, empty hash) while heartbeats go on
   (until every feeder is back, and for at least one heartbeat period);
   per feeder the time from its empty-hash publish to the PUBACK of the last schedule command
   of the delivery that restores it leaving the feeder (both as the feeder sees them; the
   time until it also holds the complete schedule is ``meta.resync_held_ms``).
8. ``integration``: the feeders publish heartbeats as fast as they can, as in phase 1;
   messages/s counted as the hub finishes handling them (end to end).
9. The entry is unloaded and set up again with the N feeders stored: ``setup_s``.

With ``--profile DIR``, py-spy records this process during phases 4, 7, 8 and 9 (DIR/idle.txt,
DIR/storm.txt, DIR/flood.txt, DIR/setup.txt: collapsed stacks) and the top frames by self and
total time are printed and written beside them. The JSON report is printed and, with
``--json FILE``, written to FILE; ``--check-keys`` exits 1 if a figure (REPORT_KEYS) is missing
or null.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Coroutine
import contextlib
import gc
import json
import logging
import os
from pathlib import Path
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Self

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# pylint: disable=wrong-import-position
import aiohttp  # noqa: E402

from feeder_sim import (  # noqa: E402
    Fleet,
    KronosError,
    MqttError,
    SimulatedFeeder,
    ids as sim_ids,
)
from feeder_sim.feeder import (  # noqa: E402
    LEGACY_SCHEDULE_COMMANDS,
    NEW_SCHEDULE_COMMANDS,
    ReceivedCommand,
)
from feeder_sim.mqtt_client import FeederMqttConnection  # noqa: E402

DOMAIN = "petnet_feeder"
LOOPBACK = "127.0.0.1"
MEALS = [
    {"name": "Breakfast", "time_s": 7 * 3600, "portion": 0.25},
    {"name": "Dinner", "time_s": 18 * 3600 + 1800, "portion": 0.25},
]
STAMP_KEY = "bench|t"
PUSH_STAGGER_S = 0.05  # between two meal edits in the push phase
FULL = {
    "idle_seconds": 15.0,
    "flood_seconds": 10.0,
    "push_samples": 100,
    "api_rounds": 3,
}
QUICK = {"idle_seconds": 3.0, "flood_seconds": 3.0, "push_samples": 5, "api_rounds": 2}
# Every figure of a report (dotted paths); --check-keys fails when one is missing or null.
REPORT_KEYS = (
    "feeders",
    *(
        f"heartbeat_latency_ms.{phase}.{cut}"
        for phase in ("idle", "storm")
        for cut in ("p50", "p95", "p99")
    ),
    "resync_ms.p50",
    "resync_ms.p99",
    *(f"push_ms.{cut}" for cut in ("p50", "p95", "p99")),
    *(f"api_ack_ms.{cut}" for cut in ("p50", "p95", "p99")),
    "schedules_restored.restored",
    "schedules_restored.total",
    "throughput_msgs_per_s.integration",
    "throughput_msgs_per_s.bare_broker",
    "throughput_msgs_per_s.ratio",
    "disk_writes_per_1000_heartbeats",
    "rss_mb_per_feeder",
    "setup_s",
)

_LOGGER = logging.getLogger("bench")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def say(message: str) -> None:
    """Progress on stderr; stdout carries the report."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ================================================================= load generator (a process)

SCHEDULE_COMMANDS = LEGACY_SCHEDULE_COMMANDS | NEW_SCHEDULE_COMMANDS


class CommandClock:
    """When each command PUBLISH reached a feeder's MQTT client, and when its PUBACK went out.

    Both as the feeder sees them, on CLOCK_MONOTONIC (one clock for every process here), keyed
    by the command's bytes (each command has its own hid). Installed on amqtt's protocol
    handler in the load-generator processes: amqtt queues an incoming QoS 1 PUBLISH for the
    application and then writes its PUBACK, before the simulator handles the command.
    """

    def __init__(self) -> None:
        """Nothing recorded."""
        self.arrived: dict[bytes, float] = {}
        self.acked: dict[bytes, float] = {}

    def install(self) -> None:
        """Wrap amqtt's QoS 1 flow (the simulator's sessions all use QoS 1)."""
        from amqtt.mqtt.protocol.handler import ProtocolHandler
        from amqtt.session import INCOMING

        flow = ProtocolHandler._handle_qos1_message_flow  # noqa: SLF001
        clock = self

        async def timed(self: Any, app_message: Any) -> None:
            if app_message.direction != INCOMING or not str(
                app_message.topic
            ).startswith(COMMAND_TOPIC_PREFIX):
                await flow(self, app_message)
                return
            key = bytes(app_message.data)
            clock.arrived[key] = time.monotonic()
            await flow(self, app_message)
            clock.acked[key] = time.monotonic()

        ProtocolHandler._handle_qos1_message_flow = timed  # noqa: SLF001

    def clear(self) -> None:
        """Forget everything recorded (between phases)."""
        self.arrived.clear()
        self.acked.clear()


COMMAND_TOPIC_PREFIX = sim_ids.command_topic("")
# What a publish of a simulated feeder can raise when its connection goes away meanwhile (the
# storm drops sessions while heartbeats are in flight): MqttError, or, from amqtt 0.12.1, an
# AttributeError when the session is detached while a QoS 1 publish waits for its PUBACK
# (``self.session.inflight_out`` on None), which the simulator does not wrap.
PUBLISH_ERRORS = (MqttError, AttributeError)
CLOCK = CommandClock()


def last_schedule_command(commands: list[ReceivedCommand]) -> ReceivedCommand | None:
    """The last schedule command in ``commands`` (schedule_mod_end, or legacy schedule)."""
    return next((c for c in reversed(commands) if c.command in SCHEDULE_COMMANDS), None)


def _heartbeat(device_hid: str, *, stamped: bool) -> bytes:
    message: dict[str, Any] = {"_|deviceHid": device_hid, "s|msg_type": "hb"}
    if stamped:
        message[STAMP_KEY] = (
            time.monotonic()
        )  # CLOCK_MONOTONIC: one clock for all processes
    return json.dumps(message, separators=(",", ":")).encode()


class LoadGenerator:
    """Simulated feeders (and, for the ceiling, bare MQTT sessions) driven by the main process."""

    def __init__(self) -> None:
        """Nothing runs until the first command."""
        self.fleet: Fleet | None = None
        self.bare: list[tuple[FeederMqttConnection, str]] = []
        self._push_watch: dict[str, asyncio.Task[float | None]] = {}

    @property
    def feeders(self) -> list[SimulatedFeeder]:
        """The fleet's feeders."""
        return list(self.fleet) if self.fleet is not None else []

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """Run one command from the main process; return its result."""
        name = command.pop("cmd")
        handler = getattr(self, f"cmd_{name}")
        result: dict[str, Any] = await handler(**command)
        return result

    async def cmd_bare_connect(
        self, port: int, first: int, count: int
    ) -> dict[str, Any]:
        """Open sessions to the bare broker (anonymous; any client id)."""
        for index in range(first, first + count):
            client_id = f"bench-bare-{index:05d}"
            conn = FeederMqttConnection(
                client_id=client_id,
                username="bench",
                password="bench",  # noqa: S106 - the bare broker lets anyone in
                host=LOOPBACK,
                port=port,
                tls=True,
            )
            await conn.connect()
            self.bare.append((conn, sim_ids.telemetry_topic(client_id)))
        return {"connected": len(self.bare)}

    async def cmd_bare_flood(self, seconds: float, window: int) -> dict[str, Any]:
        """Publish heartbeats through the bare sessions as fast as they are acknowledged."""
        until = time.monotonic() + seconds
        cpu0 = time.process_time()

        async def worker(conn: FeederMqttConnection, topic: str) -> int:
            payload = _heartbeat("0" * 40, stamped=False)
            sent = 0
            while time.monotonic() < until:
                await conn.publish(topic, payload)
                sent += 1
            return sent

        counts = await asyncio.gather(
            *(worker(conn, topic) for conn, topic in self.bare for _ in range(window))
        )
        return {"sent": sum(counts), "cpu_s": time.process_time() - cpu0}

    async def cmd_bare_close(self) -> dict[str, Any]:
        """Close the bare sessions."""
        for conn, _topic in self.bare:
            await conn.disconnect()
        self.bare.clear()
        return {}

    async def cmd_boot(
        self, kronos_url: str, mqtt_port: int, first: int, count: int
    ) -> dict[str, Any]:
        """Boot the fleet the way feeders do; registration answers 429 are retried."""
        self.fleet = Fleet(
            count,
            kronos_url=kronos_url,
            mqtt_host=LOOPBACK,
            mqtt_port=mqtt_port,
            mqtt_tls=True,
            first_index=first,
            namespace="bench",
            retry_delay=1.0,
            seed=1,
            # Like the firmware's SDK: received, then succeeded, for every command.
            report_command_status=True,
        )
        started = time.monotonic()
        await self.fleet.start()
        return {
            "boot_s": time.monotonic() - started,
            "feeders": [[f.gateway_hid, f.device_hid] for f in self.fleet],
        }

    async def _beat(
        self, feeder: SimulatedFeeder, stop: asyncio.Event, period: float, offset: float
    ) -> int:
        sent = 0
        topic = sim_ids.telemetry_topic(feeder.gateway_hid)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(offset):
                await stop.wait()
        due = time.monotonic()
        while not stop.is_set():
            if feeder.connected:
                with contextlib.suppress(*PUBLISH_ERRORS):
                    await feeder.send_raw(
                        topic, _heartbeat(feeder.device_hid, stamped=True)
                    )
                    sent += 1
            due += period
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, due - time.monotonic())):
                    await stop.wait()
        return sent

    def _beating(self, rate: float) -> tuple[asyncio.Event, list[asyncio.Task[int]]]:
        stop = asyncio.Event()
        feeders = self.feeders
        period = 1 / rate
        tasks = [
            asyncio.create_task(
                self._beat(feeder, stop, period, period * index / len(feeders))
            )
            for index, feeder in enumerate(feeders)
        ]
        return stop, tasks

    async def cmd_heartbeats(self, seconds: float, rate: float) -> dict[str, Any]:
        """Every feeder sends ``rate`` time-stamped heartbeats per second."""
        stop, tasks = self._beating(rate)
        await asyncio.sleep(seconds)
        stop.set()
        return {"sent": sum(await asyncio.gather(*tasks))}

    async def _reboot(
        self, feeder: SimulatedFeeder, expected: list[dict[str, Any]], deadline: float
    ) -> tuple[float | None, float] | None:
        """Power-cycle one feeder; seconds from its empty-hash publish to its schedule.

        Two ends, both as the feeder sees them: the PUBACK of the delivery's last schedule
        command leaving the feeder, and the feeder holding the complete schedule (after it
        handled that command). None if the schedule was not restored in time.
        """
        await feeder.drop()
        feeder.schedule = []
        feeder.utc_offset = None
        while True:
            try:
                await feeder.register_gateway()
                await feeder.fetch_config()
                await feeder.register_device()
                mark = len(feeder.commands)
                await feeder.connect()
                started = time.monotonic()
                await feeder.send_hash("")
                break
            except (
                KronosError,
                *PUBLISH_ERRORS,
                OSError,
                aiohttp.ClientError,
                TimeoutError,
            ):
                if time.monotonic() > deadline:
                    return None
                with contextlib.suppress(MqttError):
                    await feeder.drop()
                await asyncio.sleep(0.5)

        def restored() -> bool:
            return feeder.schedule == expected and any(
                c.command == "schedule_mod_end" for c in feeder.commands[mark:]
            )

        try:
            async with (
                asyncio.timeout(max(0.0, deadline - time.monotonic())),
                feeder._changed,  # noqa: SLF001 - the simulator's change notification
            ):
                await feeder._changed.wait_for(restored)  # noqa: SLF001
        except TimeoutError:
            return None
        held = time.monotonic()
        last = last_schedule_command(feeder.commands[mark:])
        acked = CLOCK.acked.get(last.raw) if last is not None else None
        return (acked - started if acked is not None else None), held - started

    async def cmd_storm(self, rate: float, limit_s: float) -> dict[str, Any]:
        """Reboot every feeder at once while heartbeats go on.

        The heartbeats go on until every feeder is back, and for at least one heartbeat
        period: a small fleet is back before most of its feeders were due to beat.
        """
        expected = {feeder.uid: list(feeder.schedule) for feeder in self.feeders}
        CLOCK.clear()
        stop, tasks = self._beating(rate)
        started = time.monotonic()
        deadline = started + limit_s
        resync = await asyncio.gather(
            *(self._reboot(f, expected[f.uid], deadline) for f in self.feeders)
        )
        await asyncio.sleep(max(0.0, started + 1 / rate - time.monotonic()))
        stop.set()
        CLOCK.clear()
        return {
            "resync_s": [
                value[0]
                for value in resync
                if value is not None and value[0] is not None
            ],
            "resync_held_s": [value[1] for value in resync if value is not None],
            "restored": sum(value is not None for value in resync),
            "total": len(resync),
            "sent": sum(await asyncio.gather(*tasks)),
        }

    async def cmd_push_arm(self, gateways: list[str]) -> dict[str, Any]:
        """Watch these feeders for the next schedule delivery (the main process edits a meal)."""
        CLOCK.clear()
        self._push_watch = {
            feeder.gateway_hid: asyncio.create_task(self._next_delivery(feeder))
            for feeder in self.feeders
            if feeder.gateway_hid in set(gateways)
        }
        return {"armed": len(self._push_watch)}

    async def _next_delivery(self, feeder: SimulatedFeeder) -> float | None:
        """When the last schedule command of the next delivery reached the feeder."""
        mark, before = len(feeder.commands), list(feeder.schedule)

        def delivered() -> bool:
            last = last_schedule_command(feeder.commands[mark:])
            return (
                last is not None
                and last.command in ("schedule", "schedule_mod_end")
                and feeder.schedule != before
            )

        async with feeder._changed:  # noqa: SLF001 - the simulator's change notification
            await feeder._changed.wait_for(delivered)  # noqa: SLF001
        last = last_schedule_command(feeder.commands[mark:])
        return CLOCK.arrived.get(last.raw) if last is not None else None

    async def cmd_push_collect(self, limit_s: float) -> dict[str, Any]:
        """Arrival times of the watched deliveries (None: not within ``limit_s``)."""
        watch, self._push_watch = self._push_watch, {}
        arrived: dict[str, float | None] = {}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                await asyncio.gather(*watch.values(), return_exceptions=True)
        for gateway, task in watch.items():
            if not task.done():
                task.cancel()
                arrived[gateway] = None
            elif task.cancelled() or task.exception() is not None:
                arrived[gateway] = None
            else:
                arrived[gateway] = task.result()
        CLOCK.clear()
        return {"arrived": arrived}

    async def cmd_api(self, rounds: int, rate: float) -> dict[str, Any]:
        """Every feeder sends ``rounds`` API requests on krs.api.gts.<gw>, ``rate`` a second.

        Like the firmware's command-status reports (PUT /api/v1/core/events/<command
        hid>/succeeded); seconds from each request's publish to its ACK arriving.
        """
        period = 1 / rate
        feeders = self.feeders

        async def requests(feeder: SimulatedFeeder, offset: float) -> list[float]:
            await asyncio.sleep(offset)
            hids = [c.hid for c in feeder.commands if c.hid] or ["0" * 40]
            latencies = []
            due = time.monotonic()
            for index in range(rounds):
                started = time.monotonic()
                with contextlib.suppress(*PUBLISH_ERRORS, TimeoutError):
                    await feeder.api_request(
                        f"/api/v1/core/events/{hids[-1 - index % len(hids)]}/succeeded",
                        "PUT",
                        timeout=30,
                    )
                    latencies.append(time.monotonic() - started)
                due += period
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            return latencies

        results = await asyncio.gather(
            *(
                requests(feeder, period * index / len(feeders))
                for index, feeder in enumerate(feeders)
            )
        )
        samples = [value for result in results for value in result]
        return {"api_s": samples, "sent": rounds * len(feeders)}

    async def cmd_flood(self, seconds: float, window: int) -> dict[str, Any]:
        """Every feeder publishes heartbeats as fast as they are acknowledged."""
        until = time.monotonic() + seconds
        cpu0 = time.process_time()

        async def worker(feeder: SimulatedFeeder) -> int:
            topic = sim_ids.telemetry_topic(feeder.gateway_hid)
            payload = _heartbeat(feeder.device_hid, stamped=False)
            sent = 0
            while time.monotonic() < until:
                try:
                    await feeder.send_raw(topic, payload)
                except PUBLISH_ERRORS:
                    break
                sent += 1
            return sent

        counts = await asyncio.gather(
            *(worker(feeder) for feeder in self.feeders for _ in range(window))
        )
        return {"sent": sum(counts), "cpu_s": time.process_time() - cpu0}

    async def cmd_stop(self) -> dict[str, Any]:
        """Stop everything."""
        await self.cmd_bare_close()
        if self.fleet is not None:
            await self.fleet.stop()
        return {}


async def run_load_generator() -> None:
    """Read commands (JSON lines) on stdin, answer each on stdout."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    CLOCK.install()
    generator = LoadGenerator()
    while line := await reader.readline():
        command = json.loads(line)
        name = command["cmd"]
        try:
            result = {"ok": True, **await generator.handle(command)}
        except Exception as err:  # noqa: BLE001 - reported to the main process
            where = traceback.extract_tb(err.__traceback__)[-3:]
            result = {
                "ok": False,
                "error": f"{err!r} at "
                + " <- ".join(f"{f.filename}:{f.lineno}" for f in reversed(where)),
            }
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        if name == "stop":
            return


class LoadGeneratorProcess:
    """The main process's handle on one load generator."""

    def __init__(self, index: int) -> None:
        """Not started yet."""
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the process (this script with --load-generator)."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--load-generator",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**24,
        )

    async def call(self, **command: Any) -> dict[str, Any]:
        """Send a command and wait for its result."""
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator {self.index} exited")
        result: dict[str, Any] = json.loads(line)
        if not result.pop("ok"):
            raise RuntimeError(
                f"load generator {self.index}: {command['cmd']}: {result['error']}"
            )
        return result

    async def stop(self) -> None:
        """Stop the fleet and wait for the process to end."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(30):
                    await self.call(cmd="stop")
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def call_all(
    generators: list[LoadGeneratorProcess], commands: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run one command per load generator, concurrently."""
    return list(
        await asyncio.gather(
            *(gen.call(**cmd) for gen, cmd in zip(generators, commands, strict=True))
        )
    )


# ================================================================= measurement helpers


def percentiles_ms(samples: list[float]) -> dict[str, float | None]:
    """p50, p95 and p99 of samples in seconds, in milliseconds."""
    if len(samples) < 2:
        value = round(samples[0] * 1000, 2) if samples else None
        return {"p50": value, "p95": value, "p99": value}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": round(cuts[49] * 1000, 2),
        "p95": round(cuts[94] * 1000, 2),
        "p99": round(cuts[98] * 1000, 2),
    }


def rss_mb() -> float:
    """Resident set size of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Counters:
    """What the instrumented hub and Store report."""

    def __init__(self) -> None:
        """All zero."""
        self.handled = 0  # telemetry messages whose handling finished
        self.stamped = 0  # of which time-stamped heartbeats
        self.phase = ""
        self.latencies: dict[str, list[float]] = {"idle": [], "storm": []}
        self.writes = 0  # the integration's Store writes
        self.scheduled: list[
            tuple[float, float]
        ] = []  # (loop time, due) of each new write
        self.ingested = 0  # messages the bare broker took in


COUNTERS = Counters()
WORK_DIRS: list[Path] = []  # removed after the loop (HA flags blocking calls inside it)


def instrument() -> None:
    """Count the hub's handled telemetry and the Store's writes (patched on the classes)."""
    from homeassistant.helpers.storage import Store

    from custom_components.petnet_feeder.inbound import InboundHandler

    handle = InboundHandler._handle_telemetry  # noqa: SLF001

    def timed(self: InboundHandler, gateway_hid: str, payload: bytes) -> None:
        handle(self, gateway_hid, payload)
        COUNTERS.handled += 1
        if STAMP_KEY.encode() in payload:
            COUNTERS.stamped += 1
            if COUNTERS.phase in COUNTERS.latencies:
                sent = json.loads(payload)[STAMP_KEY]
                COUNTERS.latencies[COUNTERS.phase].append(time.monotonic() - sent)

    InboundHandler._handle_telemetry = timed  # type: ignore[method-assign]  # noqa: SLF001

    write = Store._async_write_data  # noqa: SLF001

    async def counted(self: Store[Any], path: str, data: dict[str, Any]) -> None:
        if self.key == DOMAIN:
            COUNTERS.writes += 1
        await write(self, path, data)

    Store._async_write_data = counted  # type: ignore[method-assign]  # noqa: SLF001

    from custom_components.petnet_feeder.store import PetnetStore

    schedule_save = PetnetStore.schedule_save

    def noted(self: PetnetStore, *args: Any, **kwargs: Any) -> None:
        before = self._write_at
        schedule_save(self, *args, **kwargs)
        due = self._write_at
        if due is not None and due != before:
            COUNTERS.scheduled.append((self._store.hass.loop.time(), due))

    PetnetStore.schedule_save = noted  # type: ignore[method-assign]


class GcTimer:
    """Time Python's garbage collector spends while the block runs (gc.callbacks).

    py-spy charges a collection to whatever Python line allocated when it started, so a
    profile cannot tell it apart; this can.
    """

    def __init__(self) -> None:
        """Nothing measured yet."""
        self.seconds = 0.0
        self.longest = 0.0
        self.full_collections = 0
        self._started: float | None = None

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            pause = time.perf_counter() - self._started
            self.seconds += pause
            self.longest = max(self.longest, pause)
            self._started = None
            self.full_collections += info.get("generation") == 2

    def __enter__(self) -> Self:
        """Start timing."""
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        """Stop timing."""
        gc.callbacks.remove(self._callback)


def disk_writes_per_1000(
    heartbeats: int, window_s: float, writes: int, write_delay_s: float | None
) -> float:
    """Store writes per 1,000 heartbeats in steady state, from one measured window.

    ``writes``: those the window's heartbeats caused, made in the window or still due at its
    end (flushed and counted). Every heartbeat until a scheduled write is due folds into that
    write, so one write covers ``write_delay_s`` (the measured delay from scheduling to due) of
    heartbeats, or the whole window if that is longer: at the window's heartbeat rate, a
    cycle of ``max(window_s, write_delay_s)`` seconds costs ``writes`` writes.
    """
    if heartbeats <= 0 or window_s <= 0:
        return 0.0
    cycle_s = max(window_s, write_delay_s or 0.0)
    heartbeats_per_cycle = heartbeats / window_s * cycle_s
    return round(writes * 1000 / heartbeats_per_cycle, 4)


async def wait_for(predicate: Any, limit_s: float, what: str) -> None:
    """Poll a condition of this process (the bench is not a test: polling is fine here)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def measure_rate(
    counter: Any, work: Coroutine[Any, Any, Any], seconds: float
) -> tuple[float, float, Any]:
    """Run ``work`` (a flood); messages/s of ``counter()`` in its middle, CPU share, result."""
    flood = asyncio.ensure_future(work)
    warmup = min(2.0, seconds / 4)
    await asyncio.sleep(warmup)
    count0, wall0, cpu0 = counter(), time.monotonic(), time.process_time()
    await asyncio.sleep(seconds - 2 * warmup)
    count1, wall1, cpu1 = counter(), time.monotonic(), time.process_time()
    result = await flood
    return (count1 - count0) / (wall1 - wall0), (cpu1 - cpu0) / (wall1 - wall0), result


def shares(total: int, parts: int) -> list[tuple[int, int]]:
    """(first index, count) of each load generator's feeders."""
    base, extra = divmod(total, parts)
    result, first = [], 0
    for part in range(parts):
        count = base + (1 if part < extra else 0)
        result.append((first, count))
        first += count
    return result


class Profiler:
    """py-spy recordings of this process (Home Assistant's), one file per phase.

    ``py-spy record --format raw --function --threads``: collapsed stacks (one line per
    distinct stack and its sample count; frames as ``function (file:first line)``, under a
    ``thread (<id>): <name>`` root), which flamegraph tools read, and which :func:`top_frames` sums
    up for the event loop's thread (Home Assistant's work; the executor and logging threads
    mostly wait, and py-spy cannot always tell their waiting from running). py-spy samples 100 times a second and pauses
    the process for each sample, so a profiled run's figures are a little worse than an
    unprofiled one's; compare figures from runs without ``--profile``.
    """

    def __init__(self, directory: Path) -> None:
        """Recordings go to ``directory``."""
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.executable = Path(sys.executable).parent / "py-spy"
        if not self.executable.exists():
            raise RuntimeError(
                f"{self.executable} is missing: scripts/bench --profile installs it"
            )
        self.proc: asyncio.subprocess.Process | None = None
        self.phase = ""

    async def start(self, phase: str) -> None:
        """Start recording; py-spy attaches within a moment."""
        self.phase = phase
        # os.open: Home Assistant's blocking-call guard wraps open() in the event loop.
        log = os.open(
            self.directory / f"{phase}.log",
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
            0o644,
        )
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(self.executable),
                "record",
                f"--pid={os.getpid()}",
                "--format=raw",
                "--function",
                "--threads",
                "--rate=100",
                f"--output={self.directory / f'{phase}.txt'}",
                stdout=log,
                stderr=log,
            )
        finally:
            os.close(log)

    async def stop(self) -> None:
        """Stop recording (SIGINT: py-spy writes its file) and print the top frames."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(60):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        path = self.directory / f"{self.phase}.txt"
        try:
            collapsed = read_file(path)
        except FileNotFoundError:
            say(f"py-spy wrote no profile; see {self.directory / self.phase}.log")
            return
        summary = top_frames(collapsed)
        write_file(self.directory / f"{self.phase}-top.txt", summary)
        say(f"profile of the {self.phase} ({path}):\n{summary}")


# Frames on (nearly) every stack of the event loop: left out of the total-time ranking.
TRAMPOLINES = (
    "<module> (bench.py",
    "main (bench.py",
    "run_sizes (bench.py",
    "run (asyncio/runners.py",
    "Runner.run (asyncio/runners.py",
    "BaseEventLoop.run_until_complete ",
    "BaseEventLoop.run_forever ",
    "BaseEventLoop._run_once ",
    "Handle._run ",
)


def top_frames(collapsed: str, limit: int = 15) -> str:
    """The frames with the most samples in the main thread, from py-spy's collapsed stacks.

    Home Assistant's event loop runs in this process's main thread.
    Self time: the frame was running (the innermost one); total time: it was on the stack
    (event-loop trampolines left out). Samples of other threads are only counted.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = others = 0
    for line in collapsed.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        count = int(number)
        frames = stack.split(";")
        if frames[0].startswith("thread ("):
            if not frames[0].endswith(": MainThread"):
                others += count
                continue
            frames = frames[1:]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            if not frame.startswith(TRAMPOLINES):
                total[frame] += count
    lines = [
        f"{samples} samples of the event loop's thread "
        f"(and {others} of other threads, not ranked)"
    ]
    for title, counter in (("self", own), ("total", total)):
        lines.append(f"top {limit} by {title} time:")
        lines.extend(
            f"  {count / max(samples, 1):6.1%}  {frame}"
            for frame, count in counter.most_common(limit)
        )
    return "\n".join(lines) + "\n"


# ================================================================= phases


async def bare_broker_ceiling(
    generators: list[LoadGeneratorProcess],
    split: list[tuple[int, int]],
    cert: Path,
    key: Path,
    args: argparse.Namespace,
) -> tuple[float, float, float]:
    """Messages/s a stock amqtt broker delivers from the same sessions, no integration."""
    from amqtt.broker import Broker

    class CountingBroker(Broker):  # type: ignore[misc]
        async def _broadcast_message(
            self, session: Any, topic: Any, data: Any, force_qos: Any = None
        ) -> None:
            if session is not None:
                COUNTERS.ingested += 1
            await super()._broadcast_message(session, topic, data, force_qos)

    port = free_port()
    broker = CountingBroker(
        {
            "listeners": {
                "default": {
                    "type": "tcp",
                    "bind": f"{LOOPBACK}:{port}",
                    "ssl": True,
                    "certfile": str(cert),
                    "keyfile": str(key),
                }
            },
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                    "allow_anonymous": True
                }
            },
        }
    )
    await broker.start()
    try:
        await call_all(
            generators,
            [
                {"cmd": "bare_connect", "port": port, "first": first, "count": count}
                for first, count in split
            ],
        )
        flood = call_all(
            generators,
            [
                {
                    "cmd": "bare_flood",
                    "seconds": args.flood_seconds,
                    "window": args.window,
                }
                for _ in split
            ],
        )
        rate, cpu, results = await measure_rate(
            lambda: COUNTERS.ingested, flood, args.flood_seconds
        )
        generators_cpu = sum(r["cpu_s"] for r in results) / args.flood_seconds
        await call_all(generators, [{"cmd": "bare_close"} for _ in split])
    finally:
        await broker.shutdown()
    return rate, cpu, generators_cpu


CONFIGURATION_YAML = """\
homeassistant:
  name: Bench
  time_zone: UTC
  unit_system: metric
  latitude: 0
  longitude: 0
  elevation: 0
  country: US
http:
  server_host: 127.0.0.1
  server_port: {http_port}
logger:
  default: warning
"""


def lean_bootstrap() -> None:
    """Start Home Assistant without its default integrations, the frontend first of all.

    Home Assistant sets up a list of default integrations (frontend, backup, analytics, person,
    automation, ...) whatever configuration.yaml says, and falls back to recovery mode, where
    custom integrations are not loaded, when ``frontend`` fails. ``frontend`` needs the
    ``home-assistant-frontend`` package, which only scripts/develop installs. A benchmark has no
    use for the UI or for those integrations; leaving them out keeps the bench on the test
    toolchain alone (no 50 MB UI package to install) and its process free of work nothing
    measures. The integration's own dependencies (``http``, entity platforms) load as usual.
    """
    from homeassistant import bootstrap

    bootstrap.DEFAULT_INTEGRATIONS = set()
    bootstrap.CRITICAL_INTEGRATIONS = set()


async def start_home_assistant(config_dir: Path) -> Any:
    """A real Home Assistant from a fresh config directory (the integration from this repo)."""
    from homeassistant import bootstrap, runner

    lean_bootstrap()
    (config_dir / "configuration.yaml").write_text(
        CONFIGURATION_YAML.format(http_port=free_port())
    )
    hass = await bootstrap.async_setup_hass(
        runner.RuntimeConfig(
            config_dir=str(config_dir),
            skip_pip=True,
            log_file=str(config_dir / "home-assistant.log"),
            log_no_color=True,
        )
    )
    if hass is None:
        raise RuntimeError("Home Assistant did not start; see its log")
    await hass.async_start()
    return hass


async def add_integration(hass: Any, ports: dict[str, int]) -> tuple[Any, float]:
    """Add the integration through its config flow, as a user does; return entry, seconds."""
    started = time.monotonic()
    flow = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"],
        {"transport": "bundled", "bind_host": LOOPBACK, **ports},
    )
    if result.get("type") != "create_entry":
        raise RuntimeError(f"config flow did not create the entry: {result}")
    await hass.async_block_till_done()
    entry = result["result"]
    if entry.state.value != "loaded":
        raise RuntimeError(f"entry not loaded: {entry.state} {entry.reason}")
    return entry, time.monotonic() - started


async def push_phase(
    hass: Any, hub: Any, generators: list[LoadGeneratorProcess], samples: int
) -> list[float]:
    """Edit a meal through the ``update_meal`` action on ``samples`` feeders.

    One feeder at a time, ``PUSH_STAGGER_S`` apart; per feeder, seconds from the action's call
    to the last schedule command of the delivery it caused arriving at the feeder.
    """
    from homeassistant.helpers import device_registry as dr

    chosen = list(hub.state.feeders.values())[:samples]
    await call_all(
        generators,
        [
            {"cmd": "push_arm", "gateways": [f.gateway_hid for f in chosen]}
            for _ in generators
        ],
    )
    registry = dr.async_get(hass)
    called: dict[str, float] = {}
    for feeder in chosen:
        device = registry.async_get_device(identifiers={(DOMAIN, feeder.hid)})
        assert device is not None, feeder.hid
        meal = feeder.meals[0]
        called[feeder.gateway_hid] = time.monotonic()
        await hass.services.async_call(
            DOMAIN,
            "update_meal",
            {
                "device_id": device.id,
                "meal_id": meal.meal_id,
                "portion": 0.3125 if meal.portion == 0.25 else 0.25,
            },
            blocking=True,
        )
        await asyncio.sleep(PUSH_STAGGER_S)
    results = await call_all(
        generators, [{"cmd": "push_collect", "limit_s": 60.0} for _ in generators]
    )
    return [
        arrived - called[gateway]
        for result in results
        for gateway, arrived in result["arrived"].items()
        if arrived is not None
    ]


async def run(args: argparse.Namespace, count: int) -> dict[str, Any]:
    """All phases for ``count`` feeders; returns the report."""
    from custom_components.petnet_feeder.tls import ensure_certificate

    bench_started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="petnet-bench-"))
    spy = Profiler(args.profile) if args.profile is not None else None
    slack_s = max(120.0, 0.3 * count)  # waits that grow with the fleet
    split = shares(count, min(args.drivers, count))
    generators = [LoadGeneratorProcess(index) for index in range(len(split))]
    hass = None
    try:
        for generator in generators:
            await generator.start()
        cert, key = ensure_certificate(work / "tls", "api.arrowconnect.io")

        say(f"bare amqtt broker, {count} sessions, {args.flood_seconds:g} s flood")
        bare_rate, bare_cpu, bare_generators_cpu = await bare_broker_ceiling(
            generators, split, cert, key, args
        )
        say(
            f"  {bare_rate:.0f} msgs/s (CPU: broker {bare_cpu:.0%}, "
            f"load generators {bare_generators_cpu:.0%})"
        )

        instrument()
        say("starting Home Assistant")
        (work / "config").mkdir()
        hass = await start_home_assistant(work / "config")
        ports = {
            "http_port": free_port(),
            "https_port": free_port(),
            "mqtt_port": free_port(),
            "mqtts_port": free_port(),
        }
        entry, setup_first_s = await add_integration(hass, ports)
        hub = entry.runtime_data
        gc.collect()
        rss_before = rss_mb()

        say(f"booting {count} feeders")
        kronos_url = f"https://{LOOPBACK}:{ports['https_port']}"
        boots = await call_all(
            generators,
            [
                {
                    "cmd": "boot",
                    "kronos_url": kronos_url,
                    "mqtt_port": ports["mqtts_port"],
                    "first": first,
                    "count": part,
                }
                for first, part in split
            ],
        )
        boot_s = max(result["boot_s"] for result in boots)
        await wait_for(
            lambda: len(hub.state.feeders) == count
            and all(
                hub.state.is_connected(f.gateway_hid)
                for f in hub.state.feeders.values()
            ),
            slack_s,
            "every feeder connected",
        )
        for feeder in hub.state.feeders.values():
            hub.meal_editor.set_schedule(feeder, MEALS)
        async with asyncio.timeout(slack_s):
            await asyncio.gather(
                *(hub.sync.reconciler(h).async_wait_idle() for h in hub.state.feeders)
            )
        gc.collect()
        rss_fleet = rss_mb()
        say(f"  booted in {boot_s:.1f} s; schedules delivered")

        say(f"idle: 1 heartbeat/s per feeder for {args.idle_seconds:g} s")
        # Write what the boot and the schedules changed now, so the idle window counts only
        # the writes heartbeats cause.
        store = hub.state._store  # noqa: SLF001
        await store.async_save_now()
        COUNTERS.phase = "idle"
        writes0, stamped0 = COUNTERS.writes, COUNTERS.stamped
        scheduled0, window_started = len(COUNTERS.scheduled), time.monotonic()
        window_started_loop = hass.loop.time()
        if spy is not None:
            await spy.start("idle")
        with GcTimer() as idle_gc:
            results = await call_all(
                generators,
                [
                    {"cmd": "heartbeats", "seconds": args.idle_seconds, "rate": 1.0}
                    for _ in split
                ],
            )
            sent = sum(result["sent"] for result in results)
            await wait_for(
                lambda: COUNTERS.stamped - stamped0 >= sent, 30, "heartbeats"
            )
        if spy is not None:
            await spy.stop()
        idle_window_s = time.monotonic() - window_started
        # The monitor's minute check visits every feeder in one go: how long it holds the loop.
        check_started = time.perf_counter()
        hub.monitor.async_check_now()
        minute_check_s = time.perf_counter() - check_started
        idle_heartbeats = COUNTERS.stamped - stamped0
        idle_writes = COUNTERS.writes - writes0
        idle_scheduled = COUNTERS.scheduled[scheduled0:]
        # The write the window's changes scheduled and that is not due yet: its delay as the
        # Store set it, then made now and counted (what the Store would write at its due time).
        lazy_delay_s = None
        if (due := store._write_at) is not None:  # noqa: SLF001
            scheduled_at = max(
                (at for at, when in idle_scheduled if when == due),
                default=window_started_loop,
            )
            lazy_delay_s = due - scheduled_at
            await store.async_save_now()
        idle_flushed = COUNTERS.writes - writes0 - idle_writes
        say(
            f"  {idle_heartbeats} heartbeats in {idle_window_s:.1f} s: {idle_writes} writes,"
            f" {idle_flushed} more due after"
            + (f" {lazy_delay_s:.0f} s" if lazy_delay_s is not None else "")
        )

        samples = min(count, args.push_samples)
        say(
            f"push: a meal edited on {samples} feeders, "
            f"{PUSH_STAGGER_S * 1000:.0f} ms apart"
        )
        push = await push_phase(hass, hub, generators, samples)
        async with asyncio.timeout(slack_s):
            await asyncio.gather(
                *(hub.sync.reconciler(h).async_wait_idle() for h in hub.state.feeders)
            )
        say(f"  {len(push)}/{samples} deliveries arrived")

        say(f"api: {args.api_rounds} API requests per feeder, 1/s each")
        api_results = await call_all(
            generators,
            [{"cmd": "api", "rounds": args.api_rounds, "rate": 1.0} for _ in split],
        )
        api = [value for result in api_results for value in result["api_s"]]
        api_sent = sum(result["sent"] for result in api_results)
        say(f"  {len(api)}/{api_sent} acknowledged")

        say("storm: every feeder reboots at once")
        COUNTERS.phase = "storm"
        stamped0 = COUNTERS.stamped
        if spy is not None:
            await spy.start("storm")
        try:
            storm = await call_all(
                generators,
                [
                    {"cmd": "storm", "rate": 1.0, "limit_s": max(180.0, 0.3 * count)}
                    for _ in split
                ],
            )
        finally:
            if spy is not None:
                await spy.stop()
        sent = sum(result["sent"] for result in storm)
        await wait_for(lambda: COUNTERS.stamped - stamped0 >= sent, 30, "heartbeats")
        COUNTERS.phase = ""
        resync = [value for result in storm for value in result["resync_s"]]
        resync_held = [value for result in storm for value in result["resync_held_s"]]
        restored = sum(result["restored"] for result in storm)
        async with asyncio.timeout(slack_s):
            await asyncio.gather(
                *(hub.sync.reconciler(h).async_wait_idle() for h in hub.state.feeders)
            )
        say(f"  {restored}/{count} schedules restored")

        say(f"integration: {args.flood_seconds:g} s flood")
        flood = call_all(
            generators,
            [
                {
                    "cmd": "flood",
                    "seconds": args.flood_seconds,
                    "window": args.window,
                }
                for _ in split
            ],
        )
        if spy is not None:
            await spy.start("flood")
        try:
            rate, cpu, flood_results = await measure_rate(
                lambda: COUNTERS.handled, flood, args.flood_seconds
            )
        finally:
            if spy is not None:
                await spy.stop()
        flooded = sum(result["sent"] for result in flood_results)
        generators_cpu = sum(r["cpu_s"] for r in flood_results) / args.flood_seconds
        say(
            f"  {rate:.0f} msgs/s (CPU: Home Assistant {cpu:.0%}, "
            f"load generators {generators_cpu:.0%})"
        )
        backlog_started, previous = time.monotonic(), -1
        while COUNTERS.handled != previous:  # until the hub has worked off its backlog
            previous = COUNTERS.handled
            await asyncio.sleep(0.5)
        backlog_s = time.monotonic() - backlog_started - 0.5

        say("restart: unload and set up again with every feeder stored")
        assert await hass.config_entries.async_unload(entry.entry_id)
        if spy is not None:
            await spy.start("setup")
        try:
            with GcTimer() as setup_gc:
                started = time.monotonic()
                assert await hass.config_entries.async_setup(entry.entry_id)
                setup_s = time.monotonic() - started
        finally:
            if spy is not None:
                await spy.stop()
        say(f"  {setup_s:.2f} s")

        return {
            "feeders": count,
            "heartbeat_latency_ms": {
                "idle": percentiles_ms(COUNTERS.latencies["idle"]),
                "storm": percentiles_ms(COUNTERS.latencies["storm"]),
            },
            "resync_ms": {
                key: value
                for key, value in percentiles_ms(resync).items()
                if key in ("p50", "p99")
            },
            "push_ms": percentiles_ms(push),
            "api_ack_ms": percentiles_ms(api),
            "schedules_restored": {"restored": restored, "total": count},
            "throughput_msgs_per_s": {
                "integration": round(rate, 1),
                "bare_broker": round(bare_rate, 1),
                "ratio": round(rate / bare_rate, 3) if bare_rate else None,
            },
            "disk_writes_per_1000_heartbeats": disk_writes_per_1000(
                idle_heartbeats,
                idle_window_s,
                idle_writes + idle_flushed,
                lazy_delay_s,
            ),
            "rss_mb_per_feeder": round((rss_fleet - rss_before) / count, 3),
            "setup_s": round(setup_s, 3),
            "meta": {
                "setup_s_first": round(setup_first_s, 3),
                "setup_gc_s": round(setup_gc.seconds, 3),
                "setup_gc_full_collections": setup_gc.full_collections,
                "minute_check_ms": round(minute_check_s * 1000, 1),
                "idle_gc_s": round(idle_gc.seconds, 3),
                "idle_gc_longest_s": round(idle_gc.longest, 3),
                "idle_gc_full_collections": idle_gc.full_collections,
                "boot_s": round(boot_s, 2),
                "idle_heartbeats": idle_heartbeats,
                "idle_window_s": round(idle_window_s, 2),
                "idle_store_writes": idle_writes,
                "idle_store_writes_scheduled": len(idle_scheduled),
                "idle_store_writes_flushed": idle_flushed,
                "idle_lazy_write_delay_s": (
                    round(lazy_delay_s, 1) if lazy_delay_s is not None else None
                ),
                "disk_writes_per_1000_heartbeats_in_window": round(
                    (idle_writes + idle_flushed) * 1000 / max(idle_heartbeats, 1), 3
                ),
                "store_writes_total": COUNTERS.writes,
                "storm_heartbeats": len(COUNTERS.latencies["storm"]),
                "resync_held_ms": percentiles_ms(resync_held),
                "push_samples": len(push),
                "api_requests": api_sent,
                "api_acked": len(api),
                "flood_messages_sent": flooded,
                "flood_backlog_s": round(backlog_s, 1),
                "cpu_share_integration": round(cpu, 2),
                "cpu_share_bare_broker": round(bare_cpu, 2),
                "cpu_share_load_generators_integration": round(generators_cpu, 2),
                "cpu_share_load_generators_bare": round(bare_generators_cpu, 2),
                "rss_mb_before_feeders": round(rss_before, 1),
                "rss_mb_with_feeders": round(rss_fleet, 1),
                "load_generators": len(generators),
                "window": args.window,
                "cpus": os.cpu_count(),
                "transport": "TLS (Kronos HTTPS, MQTTS) on loopback",
                "duration_s": round(time.monotonic() - bench_started, 1),
            },
        }
    finally:
        if spy is not None:
            await spy.stop()
        for generator in generators:
            await generator.stop()
        if hass is not None:
            await hass.async_stop()
        WORK_DIRS.append(work)


def feeder_counts(text: str) -> list[int]:
    """``50`` or ``50,200,1000``."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("feeder counts must be at least 1")
    return counts


def build_parser() -> argparse.ArgumentParser:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument(
        "--feeders",
        type=feeder_counts,
        default=[50],
        help="fleet size, or sizes run one after the other: 50,200 (default 50)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="also write the report to this file (a list of reports with several sizes)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: short windows, few samples (figures not meaningful)",
    )
    parser.add_argument(
        "--check-keys",
        action="store_true",
        help="exit 1 if a figure of the report is missing or null",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record py-spy profiles of the Home Assistant process during the idle window, "
        "the storm, the flood and the setup into DIR (one subfolder per size) and print their top "
        "frames",
    )
    parser.add_argument(
        "--drivers", type=int, default=2, help="load-generator processes (default 2)"
    )
    parser.add_argument("--idle-seconds", type=float)
    parser.add_argument("--flood-seconds", type=float)
    parser.add_argument(
        "--push-samples", type=int, help="feeders whose meal is edited (default 100)"
    )
    parser.add_argument(
        "--api-rounds", type=int, help="API requests per feeder (default 3)"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=1,
        help="publishes in flight per session in a flood (a feeder: 1)",
    )
    parser.add_argument("--load-generator", action="store_true", help=argparse.SUPPRESS)
    return parser


def missing_keys(report: dict[str, Any]) -> list[str]:
    """The REPORT_KEYS that ``report`` lacks or holds as null."""
    missing = []
    for key in REPORT_KEYS:
        value: Any = report
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            missing.append(key)
    return missing


def run_sizes(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[int]]:
    """One size in this process; several sizes each in a fresh process, one after the other.

    A process per size: Home Assistant and the instrumentation patch process-wide state. A
    size whose run fails is reported and skipped; returns the reports and the failed sizes.
    """
    if len(args.feeders) == 1:
        return [asyncio.run(run(args, args.feeders[0]))], []
    reports, failed = [], []
    for count in args.feeders:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                f"--feeders={count}",
                f"--json={out.name}",
                f"--drivers={args.drivers}",
                f"--idle-seconds={args.idle_seconds}",
                f"--flood-seconds={args.flood_seconds}",
                f"--push-samples={args.push_samples}",
                f"--api-rounds={args.api_rounds}",
                f"--window={args.window}",
            ]
            if args.profile is not None:
                command.append(f"--profile={args.profile / str(count)}")
            say(f"===== {count} feeders")
            status = subprocess.run(command, check=False, stdout=subprocess.DEVNULL)  # noqa: S603
            if status.returncode != 0:
                say(
                    f"{count} feeders: the run failed (exit {status.returncode}; see above)"
                )
                failed.append(count)
                continue
            reports.append(json.loads(Path(out.name).read_text()))
    if len(reports) > 1:
        say("how the figures grow with the fleet:\n" + growth_table(reports))
    return reports, failed


def growth_table(reports: list[dict[str, Any]]) -> str:
    """Figures side by side per size (Markdown), and their change per 100 feeders added.

    The last column is the slope from the smallest to the largest size: what another 100
    feeders cost in each figure.
    """
    sizes = [report["feeders"] for report in reports]
    span = max(sizes) - min(sizes)
    lines = [
        "| figure | "
        + " | ".join(f"{n} feeders" for n in sizes)
        + " | per 100 feeders more |",
        "|---" * (len(sizes) + 2) + "|",
    ]
    for key in REPORT_KEYS[1:]:
        values: list[Any] = []
        for report in reports:
            value: Any = report
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            values.append(value)
        first = values[sizes.index(min(sizes))]
        last = values[sizes.index(max(sizes))]
        slope = (
            f"{(last - first) * 100 / span:+.3g}"
            if span and isinstance(first, int | float) and isinstance(last, int | float)
            else ""
        )
        lines.append(
            f"| {key} | " + " | ".join(str(v) for v in values) + f" | {slope} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Entry point."""
    parser = build_parser()
    args = parser.parse_args()
    if args.load_generator:
        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
        asyncio.run(run_load_generator())
        return
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        reports, failed = run_sizes(args)
    finally:
        # Not shutil.rmtree: Home Assistant's blocking-call guard still wraps os.scandir.
        for work in WORK_DIRS:
            subprocess.run(["rm", "-rf", str(work)], check=False)  # noqa: S603, S607
    result: Any = reports[0] if len(args.feeders) == 1 else reports
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        write_file(args.json, text + "\n")
    if args.check_keys:
        for report in reports:
            if missing := missing_keys(report):
                say(f"{report.get('feeders')} feeders: missing or null: {missing}")
                failed.append(report.get("feeders"))
        if not failed:
            say(
                f"every figure present ({len(REPORT_KEYS)} keys x {len(reports)} reports)"
            )
    if failed:
        sys.exit(1)


def read_file(path: Path) -> str:
    """Read a file with os calls (see :func:`write_file`)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def write_file(path: Path, text: str) -> None:
    """Write a file with os calls, not ``open``.

    Home Assistant's blocking-call guard keeps wrapping ``open`` in this thread after Home
    Assistant stopped, and would log a warning with a stack for the report's file.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
