"""A simulated Petnet SmartFeeder v2 that speaks the wire protocol.

One :class:`SimulatedFeeder` is one physical feeder: a gateway (MQTT session,
API key) plus its device. It boots like the firmware (§3), publishes telemetry
(§5), obeys commands (§6, §7) and records everything a test may want to
assert on: the commands received, protocol violations of the server, message
sizes and API round-trip times. It never imports the integration.

Everything is asyncio; there are no threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import json
import logging
import random
import time
from typing import Any, ClassVar, Literal

import aiohttp

from . import ids, telemetry
from .envelope import MAX_MESSAGE_BYTES, parse_command
from .kronos_client import KronosClient, KronosError, arrow_date, sign
from .mqtt_client import FeederMqttConnection, InboundMessage, MqttError
from .schedule import HeldSchedule, is_int, is_number, schedule_md5
from .versions import uses_new_schedule_api

_LOGGER = logging.getLogger(__name__)

DEFAULT_RECIPE_ID = "E0000001"
DISPENSE_SECONDS = 4
MEASURED_FRACTION = 0.95  # f|a_g = 95 % of f|e_g
SRC_REMOTE = 4
SRC_BUTTON = 5
SRC_SCHEDULE = 6
LEGACY_SCHEDULE_COMMANDS = frozenset({"schedule"})
NEW_SCHEDULE_COMMANDS = frozenset(
    {"schedule_clear", "schedule_mod_start", "schedule_add", "schedule_mod_end"}
)

type ScheduleApi = Literal["auto", "legacy", "new", "any"]


@dataclass
class ReceivedCommand:
    """One command message as the feeder received it."""

    hid: str
    command: str
    payload: Any
    raw: bytes
    received_at: float
    errors: list[str] = field(default_factory=list)


class SimulatedFeeder:
    """A feeder simulator: boot, telemetry, commands, schedule, reboot."""

    def __init__(
        self,
        *,
        uid: str,
        firmware: str = "2.8.0",
        kronos_url: str,
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int,
        mqtt_tls: bool = True,
        register: bool = True,
        heartbeat_interval: float | None = None,
        g_per_tbsp: float = 8.0,
        tz_offset_s: int = 0,
        sensor_interval: float | None = None,
        retry_delay: float | None = None,
        gateway_hid: str | None = None,
        device_hid: str | None = None,
        report_command_status: bool = False,
        command_queue_limit: int | None = None,
        schedule_api: ScheduleApi = "auto",
        strict_bytes: bool = True,
        mqtt_keepalive: int = 60,
        api_timeout: float = 10,
        http_session: aiohttp.ClientSession | None = None,
        seed: int | str | None = None,
    ) -> None:
        """Create a powered-off feeder; nothing touches the network yet.

        ``gateway_hid``/``device_hid`` are the hids the feeder "already holds"
        (used when ``register`` is False); by default the SHA-1 of the uids.
        Registration replaces them with the server's answer.

        ``command_queue_limit``: like the firmware's SDK in its static builds, at most this many
        commands are held (taken in, acknowledged, not yet carried out); one that arrives
        while the queue is full is acknowledged and dropped (``commands_dropped``).
        """
        self.uid = uid
        self.device_uid = ids.device_uid_for(uid)
        self.firmware = firmware
        self.register = register
        self.kronos_url = kronos_url
        self.mqtt_host = mqtt_host
        self.mqtt_port = mqtt_port
        self.mqtt_tls = mqtt_tls
        self.heartbeat_interval = heartbeat_interval
        self.sensor_interval = sensor_interval
        self.retry_delay = retry_delay
        self.g_per_tbsp = g_per_tbsp
        self.tz_offset_s = tz_offset_s
        self.report_command_status = report_command_status
        self.command_queue_limit = command_queue_limit
        self.schedule_api: ScheduleApi = schedule_api
        self.strict_bytes = strict_bytes
        self.mqtt_keepalive = mqtt_keepalive
        self.api_timeout = api_timeout
        self.gateway_hid = gateway_hid or ids.hid_for_uid(uid)
        self.device_hid = device_hid or ids.hid_for_uid(self.device_uid)

        # Feeder state (what the firmware holds).
        self.utc_offset: int | None = None
        self.button_enabled = True
        self.budget: dict[str, Any] | None = None
        self.recipe_id = DEFAULT_RECIPE_ID
        self.hopper = 62
        self.skip_next_meal = False
        self.skip_meals: set[int] = set()  # event "time" values never dispensed
        # event "time" -> error: the dispense of that meal fails (b|fail) with this s|err
        self.fail_meals: dict[int, str] = {}
        # The error every remote feed (Feed now) is reported failed with; None: they work.
        self.fail_feeds: str | None = None
        self._held = HeldSchedule()

        # Records for tests.
        self.commands: list[ReceivedCommand] = []
        self.protocol_errors: list[str] = []
        self.commands_dropped: list[
            bytes
        ] = []  # payloads dropped by command_queue_limit
        self.max_message_bytes = 0
        self.messages_received = 0
        self.messages_published = 0
        self.api_latencies: list[float] = []
        self.boot_count = 0
        # Every dispense the feeder made, recorded before its result is published (so one
        # whose result could not be sent is here too): stime, src, portion, fail, err, the
        # schedule event's feeding_id (None for Feed now and the button), published.
        self.dispense_log: list[dict[str, Any]] = []
        self._dispensing: dict[str, Any] | None = None

        self._rng = random.Random(seed if seed is not None else uid)  # noqa: S311 - simulation
        self._http = http_session
        self._owns_http = http_session is None
        self._kronos: KronosClient | None = None
        self._conn: FeederMqttConnection | None = None
        self._receive_task: asyncio.Task[None] | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._command_queue: asyncio.Queue[InboundMessage] = asyncio.Queue()
        self._handling_command = False
        self._api_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._last_request_ms = 0
        self._seen_command_hids: set[str] = set()
        self._dispensed: set[tuple[int, int, str]] = set()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: list[
            tuple[FeederMqttConnection | None, asyncio.Task[None] | None]
        ] = []
        self._started = False
        self._stopping = False
        self._booting = False

    # ------------------------------------------------------------------ state

    @property
    def api_key(self) -> str | None:
        """Return the MQTT password from config, None until fetched."""
        return self._kronos.api_key if self._kronos else None

    @property
    def connected(self) -> bool:
        """Return True while the MQTT session is up."""
        return self._conn is not None and self._conn.connected

    @property
    def schedule(self) -> list[dict[str, Any]]:
        """Return the schedule events held (as sent), in index order."""
        return self._held.events

    @schedule.setter
    def schedule(self, events: list[dict[str, Any]]) -> None:
        """Preset the held schedule (e.g. a feeder that kept one across a restart)."""
        self._held.replace(list(events))

    @property
    def local_md5(self) -> str:
        """Return the held schedule's md5 ("" when empty)."""
        return schedule_md5(self._held.events)

    @property
    def effective_utc_offset(self) -> int:
        """Return the offset the feeder's clock runs at (last utc_offset, else tz_offset_s)."""
        return self.utc_offset if self.utc_offset is not None else self.tz_offset_s

    @property
    def expects_new_schedule_api(self) -> bool | None:
        """Return which schedule API the server should use (None: either)."""
        if self.schedule_api == "any":
            return None
        if self.schedule_api == "auto":
            return uses_new_schedule_api(self.firmware)
        return self.schedule_api == "new"

    # ------------------------------------------------------------- HTTP side

    def use_http_session(self, session: aiohttp.ClientSession) -> None:
        """Make HTTP calls through ``session`` (not closed by :meth:`stop`)."""
        self._http = session
        self._owns_http = False

    def _kronos_client(self) -> KronosClient:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
            self._owns_http = True
        if self._kronos is None:
            self._kronos = KronosClient(self.kronos_url, self._http)
        self._kronos.session = self._http
        return self._kronos

    async def register_gateway(self) -> dict[str, Any]:
        """POST /gateways; adopt the hid the server answers."""
        answer = await self._kronos_client().register_gateway(self.uid, self.firmware)
        self.gateway_hid = str(answer["hid"])
        return answer

    async def fetch_config(self) -> dict[str, Any]:
        """GET /gateways/<gw>/config; remember the apiKey."""
        return await self._kronos_client().fetch_config(self.gateway_hid)

    async def register_device(self) -> dict[str, Any]:
        """POST /devices; adopt the hid the server answers."""
        answer = await self._kronos_client().register_device(
            self.device_uid, self.gateway_hid, self.firmware
        )
        self.device_hid = str(answer["hid"])
        return answer

    async def checkin(self) -> int:
        """PUT /gateways/<gw>/checkin; return the HTTP status."""
        return await self._kronos_client().checkin(self.gateway_hid)

    async def kronos_request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        """Send any request under /api/v1/kronos (an odd body, say); (status, JSON)."""
        return await self._kronos_client().request(method, path, body)

    # ------------------------------------------------------------- MQTT side

    async def connect(self) -> None:
        """Open the MQTT session (§4.1) and subscribe to both inbound topics."""
        if self.connected:
            return
        if self._stopping:
            raise MqttError("feeder is stopping")
        if self._conn is not None:  # lost, but the receive loop has not noticed yet
            await self._close_session(abrupt=True)
        if self.api_key is None:
            raise RuntimeError("no apiKey yet: fetch_config() first")
        conn = FeederMqttConnection(
            client_id=self.gateway_hid,
            username=ids.mqtt_username(self.gateway_hid),
            password=self.api_key,
            host=self.mqtt_host,
            port=self.mqtt_port,
            tls=self.mqtt_tls,
            keep_alive=self.mqtt_keepalive,
        )
        await conn.connect()
        try:
            await conn.subscribe(
                [
                    ids.command_topic(self.gateway_hid),
                    ids.api_reply_topic(self.gateway_hid),
                ]
            )
        except (MqttError, asyncio.CancelledError):
            await conn.abort()
            raise
        self._conn = conn
        self._receive_task = asyncio.create_task(
            self._receive_loop(conn), name=f"feeder_sim receive {self.uid}"
        )
        if self._worker_task is None or self._worker_task.done():
            self._worker_task = asyncio.create_task(
                self._command_worker(), name=f"feeder_sim commands {self.uid}"
            )
        _LOGGER.info("%s: MQTT connected", self.uid)
        await self._notify()

    async def disconnect(self) -> None:
        """Close the MQTT session cleanly (DISCONNECT)."""
        await self._close_session(abrupt=False)

    async def drop(self) -> None:
        """Drop the TCP connection without DISCONNECT."""
        await self._close_session(abrupt=True)

    async def _close_session(self, *, abrupt: bool) -> None:
        conn, self._conn = self._conn, None
        receive_task, self._receive_task = self._receive_task, None
        closing = (conn, receive_task)
        # Remembered until done, so stop() can finish a close that was cancelled.
        self._closing.append(closing)
        if conn is not None:
            await (conn.abort() if abrupt else conn.disconnect())
        if receive_task is not None and receive_task is not asyncio.current_task():
            await _finish(receive_task)
        if closing in self._closing:
            self._closing.remove(closing)
        await self._notify()

    async def _finish_closing(self) -> None:
        """Complete closes that were interrupted (their caller was cancelled)."""
        while self._closing:
            conn, receive_task = self._closing.pop()
            if receive_task is not None and receive_task is not asyncio.current_task():
                receive_task.cancel()
                await _finish(receive_task)
            if conn is not None:
                await conn.abort()

    async def boot(self) -> None:
        """Run the §3 boot sequence, connect MQTT and report the schedule hash."""
        self._booting = True
        try:
            if self.register:
                await self.register_gateway()
                await self.fetch_config()
                await self.register_device()
            else:
                await self.checkin()
                await self.fetch_config()
            await self.connect()
            await self.send_hash(self.local_md5)
        finally:
            self._booting = False
        self.boot_count += 1
        _LOGGER.info("%s: booted (%s)", self.uid, self.firmware)
        await self._notify()

    async def reboot(self) -> None:
        """Power-cycle: drop the session, forget schedule and utc_offset, boot again."""
        _LOGGER.info("%s: rebooting", self.uid)
        await self.drop()
        self._held.clear()
        self.utc_offset = None
        _drain(self._command_queue)
        await self._boot_maybe_retrying()

    async def start(self, *, run_schedule: bool = False) -> None:
        """Boot, then run heartbeat/sensor (and optionally schedule) loops."""
        self._started = True
        self._stopping = False
        await self._boot_maybe_retrying()
        if self.heartbeat_interval:
            self._spawn(
                self._every(self.heartbeat_interval, self.send_heartbeat), "heartbeat"
            )
        if self.sensor_interval:
            self._spawn(
                self._every(self.sensor_interval, self._send_varied_sensor), "sensor"
            )
        if run_schedule:
            self._spawn(self._schedule_clock(), "schedule")

    async def stop(self) -> None:
        """End every task and the MQTT session; close the HTTP session if owned."""
        self._stopping = True
        self._started = False
        try:
            while tasks := {
                task
                for task in (*self._tasks, self._worker_task)
                if task is not None
                and not task.done()
                and task is not asyncio.current_task()
            }:
                for task in tasks:
                    task.cancel()
                await _finish(*tasks)
            self._worker_task = None
            await self._finish_closing()
            await self._close_session(abrupt=False)
            for waiter in self._api_waiters.values():
                waiter.cancel()
            self._api_waiters.clear()
            if self._owns_http and self._http is not None:
                await self._http.close()
                self._http = None
        finally:
            self._stopping = False

    # -------------------------------------------------------------- telemetry

    async def _publish(self, topic: str, message: dict[str, Any]) -> dict[str, Any]:
        await self._publish_bytes(topic, telemetry.encode(message))
        return message

    async def _publish_bytes(self, topic: str, payload: bytes) -> None:
        conn = self._conn
        if conn is None:
            raise MqttError("MQTT session is not connected")
        await conn.publish(topic, payload)
        self.messages_published += 1

    async def send_raw(self, topic: str, payload: bytes | str) -> None:
        """Publish arbitrary bytes at QoS 1 (for malformed-message tests)."""
        await self._publish_bytes(
            topic, payload.encode() if isinstance(payload, str) else payload
        )

    async def send_heartbeat(self) -> dict[str, Any]:
        """Publish a heartbeat (§5.2)."""
        return await self._publish(
            ids.telemetry_topic(self.gateway_hid), telemetry.heartbeat(self.device_hid)
        )

    async def send_sensor(
        self,
        *,
        voltage_mv: float = 4500,
        usb: int = 1,
        chg: int = 0,
        ir: int = 0,
        rssi: int = 99,
    ) -> dict[str, Any]:
        """Publish a sensor reading (§5.3); voltage in millivolts."""
        message = telemetry.sensor(
            self.device_hid, voltage_mv=voltage_mv, usb=usb, chg=chg, ir=ir, rssi=rssi
        )
        return await self._publish(ids.telemetry_topic(self.gateway_hid), message)

    async def send_hash(self, md5: str | None = None) -> dict[str, Any]:
        """Publish a hash message (§5.5); ``None`` sends the held schedule's md5."""
        value = self.local_md5 if md5 is None else md5
        return await self._publish(
            ids.telemetry_topic(self.gateway_hid),
            telemetry.schedule_hash(self.device_hid, value),
        )

    async def send_feed_result(
        self, *, stime: int, portion: float, src: int, fail: bool = False, err: str = ""
    ) -> dict[str, Any]:
        """Publish a feed_result (§5.4) for a dispense of ``portion`` cups."""
        record: dict[str, Any] = {
            "stime": stime,
            "src": src,
            "portion": portion,
            "fail": fail,
            "err": err,
            "feeding_id": (self._dispensing or {}).get("feeding_id"),
            "published": False,
        }
        self.dispense_log.append(record)
        expected_g = round(portion * 16 * self.g_per_tbsp, 2)
        actual_g = 0.0 if fail else round(expected_g * MEASURED_FRACTION, 1)
        hopper_start = self.hopper
        if not fail:
            self.hopper = max(0, self.hopper - 1)
        message = telemetry.feed_result(
            self.device_hid,
            stime=stime,
            etime=stime + DISPENSE_SECONDS,
            expected_g=expected_g,
            actual_g=actual_g,
            hopper_start=hopper_start,
            hopper_end=self.hopper,
            src=src,
            rid=self.recipe_id,
            fail=fail,
            err=err,
        )
        sent = await self._publish(ids.telemetry_topic(self.gateway_hid), message)
        record["published"] = True
        return sent

    async def feed_now_via_button(
        self, portion: float | None = None
    ) -> dict[str, Any] | None:
        """Press the front button: dispense (src 5) if the button is enabled.

        The default portion is the budget's ``tbsp_per_feeding`` (else 1 tbsp).
        Returns the feed_result sent, or None when the button is disabled.
        """
        if not self.button_enabled:
            return None
        if portion is None:
            tbsp = (self.budget or {}).get("tbsp_per_feeding")
            portion = tbsp / 16 if is_number(tbsp) and tbsp > 0 else 1 / 16
        return await self.send_feed_result(
            stime=int(time.time()), portion=portion, src=SRC_BUTTON
        )

    async def run_due_meals(self, now_utc: datetime) -> list[dict[str, Any]]:
        """Dispense every active held meal due in ``now_utc``'s minute (feeder clock).

        The feeder clock is UTC + ``effective_utc_offset``. A meal is dispensed
        at most once per minute however often this is called. Meals whose
        ``time`` is in ``skip_meals``, or the next due one when
        ``skip_next_meal`` is set, are missed on purpose; those in
        ``fail_meals`` are reported as failed with that error.
        """
        if now_utc.tzinfo is None:
            now_utc = now_utc.replace(tzinfo=UTC)
        stamp = int(now_utc.timestamp())
        epoch_minute = stamp // 60
        minute_of_day = ((stamp + self.effective_utc_offset) // 60) % 1440
        self._dispensed = {key for key in self._dispensed if key[0] >= epoch_minute}
        results = []
        for index, event in self._held.due(minute_of_day):
            key = (epoch_minute, index, str(event.get("feeding_id")))
            if key in self._dispensed:
                continue
            self._dispensed.add(key)
            if event["time"] in self.skip_meals or self.skip_next_meal:
                self.skip_next_meal = False
                _LOGGER.info("%s: skipping meal %s", self.uid, event.get("name"))
                continue
            portion = event.get("portion")
            if not is_number(portion):
                continue
            error = self.fail_meals.get(event["time"])
            self._dispensing = event
            try:
                results.append(
                    await self.send_feed_result(
                        stime=stamp,
                        portion=portion,
                        src=SRC_SCHEDULE,
                        fail=error is not None,
                        err=error or "",
                    )
                )
            finally:
                self._dispensing = None
        return results

    # ------------------------------------------------------------ API via MQTT

    def _next_request_id(self) -> str:
        self._last_request_ms = max(self._last_request_ms + 1, int(time.time() * 1000))
        return f"GS-{self._last_request_ms}"

    async def api_request(
        self,
        uri: str,
        method: str = "PUT",
        timeout: float = 10,  # noqa: ASYNC109
        body: str | None = None,
    ) -> dict[str, Any]:
        """Send an API request over MQTT (§5.7) and return the server's reply.

        Raises TimeoutError (and records a protocol error) if no reply with
        the same requestId arrives within ``timeout`` seconds.
        """
        request_id = self._next_request_id()
        timestamp = arrow_date()
        signature = sign(
            (self._kronos.secret_key if self._kronos else ""), method, uri, timestamp
        )
        message = telemetry.api_request(
            request_id,
            uri=uri,
            method=method,
            api_key=self.api_key,
            timestamp=timestamp,
            signature=signature,
            body=body,
        )
        waiter: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._api_waiters[request_id] = waiter
        started = time.monotonic()
        try:
            await self._publish(ids.api_request_topic(self.gateway_hid), message)
            async with asyncio.timeout(timeout):
                reply = await waiter
        except TimeoutError:
            self._error(
                f"api request {request_id} {method} {uri}: no reply within {timeout} s"
            )
            raise
        finally:
            self._api_waiters.pop(request_id, None)
        self.api_latencies.append(time.monotonic() - started)
        return reply

    # ---------------------------------------------------------------- waiting

    async def wait_for_command(
        self,
        command: str | None = None,
        *,
        timeout: float = 10,  # noqa: ASYNC109
        count: int = 1,
        since: int = 0,
    ) -> list[ReceivedCommand]:
        """Wait until ``count`` matching commands were received *and handled*.

        Looks at ``commands[since:]``; ``command=None`` matches any. Returns
        every matching command there (at least ``count``).
        """

        def matching() -> list[ReceivedCommand]:
            return [
                c
                for c in self.commands[since:]
                if command is None or c.command == command
            ]

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            got = [c.command for c in self.commands[since:]]
            raise TimeoutError(
                f"{self.uid}: waited {timeout} s for {count} x {command or 'any command'}; got {got}"
            ) from None
        return matching()

    async def wait_for_boot(self, count: int = 1, *, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Wait until the feeder has completed ``count`` boots in total."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.boot_count >= count)

    async def wait_until_connected(self, *, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Wait until the MQTT session is up (e.g. after a reconnect)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.connected)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --------------------------------------------------------------- inbound

    def _error(self, message: str) -> None:
        _LOGGER.warning("%s: protocol error: %s", self.uid, message)
        self.protocol_errors.append(message)

    async def _receive_loop(self, conn: FeederMqttConnection) -> None:
        while (message := await conn.receive()) is not None:
            self.messages_received += 1
            self.max_message_bytes = max(self.max_message_bytes, len(message.payload))
            if message.retain:
                self._error(f"retained message on {message.topic}")
            if message.qos != 1:
                self._error(
                    f"message on {message.topic} delivered at QoS {message.qos}, not 1"
                )
            if message.topic == ids.command_topic(self.gateway_hid):
                held = self._command_queue.qsize() + self._handling_command
                if (
                    self.command_queue_limit is not None
                    and held >= self.command_queue_limit
                ):
                    _LOGGER.info("%s: command queue full, command dropped", self.uid)
                    self.commands_dropped.append(message.payload)
                else:
                    self._command_queue.put_nowait(message)
            elif message.topic == ids.api_reply_topic(self.gateway_hid):
                self._handle_api_reply(message)
            else:
                self._error(f"message on unexpected topic {message.topic!r}")
        if self._conn is conn:
            # Lost without us asking (server closed it, network gone).
            _LOGGER.warning("%s: MQTT connection lost", self.uid)
            self._conn = None
            self._receive_task = None
            await self._notify()
            if self._started and not self._stopping and not self._booting:
                self._spawn(self._reconnect(), "reconnect")

    def _handle_api_reply(self, message: InboundMessage) -> None:
        try:
            text = message.payload.decode()
            reply = json.loads(text)
        except ValueError as err:
            self._error(f"api reply is not UTF-8 JSON: {err}")
            return
        if not isinstance(reply, dict) or "requestId" not in reply:
            self._error(f"api reply without requestId: {reply!r}")
            return
        errors = []
        if self.strict_bytes and json.dumps(reply) != text:
            errors.append("bytes are not json.dumps() form")
        if list(reply) != ["requestId", "eventName", "encrypted", "parameters"]:
            errors.append(f"keys {list(reply)}")
        if reply.get("eventName") != telemetry.API_EVENT_NAME:
            errors.append(f"eventName {reply.get('eventName')!r}")
        if reply.get("encrypted") is not False:
            errors.append(f"encrypted {reply.get('encrypted')!r}")
        params = reply.get("parameters")
        if not isinstance(params, dict) or params.get("status") != "OK":
            errors.append(f"parameters {params!r} without status OK")
        for error in errors:
            self._error(f"api reply {reply['requestId']!r}: {error}")
        request_id = reply["requestId"]
        waiter = (
            self._api_waiters.get(request_id) if isinstance(request_id, str) else None
        )
        if waiter is None:
            self._error(f"api reply for unknown or late requestId {request_id!r}")
        elif not waiter.done():
            waiter.set_result(reply)

    async def _command_worker(self) -> None:
        while True:
            message = await self._command_queue.get()
            self._handling_command = True
            try:
                await self._process_command(message)
            except (MqttError, KronosError, TimeoutError) as err:
                _LOGGER.warning("%s: command handling failed: %r", self.uid, err)
            except Exception:
                # A simulator bug must not stop command processing.
                _LOGGER.exception("%s: command handling crashed", self.uid)
            finally:
                self._handling_command = False
            await self._notify()

    async def _process_command(self, message: InboundMessage) -> None:
        parsed = parse_command(
            message.payload, self.device_hid, strict_bytes=self.strict_bytes
        )
        prefix = f"command {parsed.command or '?'} ({parsed.hid or 'no hid'})"
        if parsed.hid:
            if parsed.hid in self._seen_command_hids:
                parsed.errors.append(f"command hid {parsed.hid} reused")
            self._seen_command_hids.add(parsed.hid)
        if parsed.command:
            parsed.errors.extend(self._schedule_family_errors(parsed.command))
        for error in parsed.errors:
            self._error(f"{prefix}: {error}")
        if not parsed.command:
            return
        received = ReceivedCommand(
            hid=parsed.hid,
            command=parsed.command,
            payload=parsed.payload,
            raw=message.payload,
            received_at=message.received_at,
            errors=list(parsed.errors),
        )
        _LOGGER.info(
            "%s: command %s %s", self.uid, parsed.command, json.dumps(parsed.payload)
        )
        if self.report_command_status and parsed.hid:
            await self._report_status(parsed.hid, "received")
        ok = True
        if parsed.payload_ok:
            ok = await self._apply(parsed.command, parsed.payload)
        self.commands.append(received)
        if self.report_command_status and parsed.hid:
            await self._report_status(parsed.hid, "succeeded" if ok else "failed")
        if parsed.command == "reboot" and parsed.payload_ok:
            self._spawn(self._reboot_task(), "reboot")

    def _schedule_family_errors(self, command: str) -> list[str]:
        expects_new = self.expects_new_schedule_api
        if expects_new is None:
            return []
        if expects_new and command in LEGACY_SCHEDULE_COMMANDS:
            return [f"legacy schedule command sent to firmware {self.firmware} (§8)"]
        if not expects_new and command in NEW_SCHEDULE_COMMANDS:
            return [f"new-API {command} sent to legacy firmware {self.firmware} (§8)"]
        return []

    async def _report_status(self, command_hid: str, status: str) -> None:
        with contextlib.suppress(TimeoutError, MqttError):
            await self.api_request(
                f"/api/v1/core/events/{command_hid}/{status}",
                "PUT",
                timeout=self.api_timeout,
            )

    async def _apply(self, command: str, payload: Any) -> bool:
        """Act on one command; return False if it could not be carried out."""
        handler = self._HANDLERS.get(command)
        if handler is None:
            _LOGGER.info("%s: unknown command %s ignored", self.uid, command)
            return False
        return await handler(self, payload)

    async def _on_feed(self, payload: Any) -> bool:
        portion = payload.get("portion") if isinstance(payload, dict) else None
        if not is_number(portion) or portion <= 0:
            return False
        await self.send_feed_result(
            stime=int(time.time()),
            portion=portion,
            src=SRC_REMOTE,
            fail=self.fail_feeds is not None,
            err=self.fail_feeds or "",
        )
        return True

    async def _on_button(self, payload: Any) -> bool:
        if not isinstance(payload, dict) or not isinstance(payload.get("enable"), bool):
            return False
        self.button_enabled = payload["enable"]
        return True

    async def _on_reboot(self, payload: Any) -> bool:
        return True  # the reboot itself runs after the status report

    async def _on_utc_offset(self, payload: Any) -> bool:
        offset = payload.get("utc_offset") if isinstance(payload, dict) else None
        if not is_int(offset):
            return False
        self.utc_offset = offset
        return True

    async def _on_budget(self, payload: Any) -> bool:
        if not isinstance(payload, dict):
            return False
        self.budget = dict(payload)
        if isinstance(payload.get("recipe"), str):
            self.recipe_id = payload["recipe"]
        density = payload.get("g_per_tbsp")
        if is_number(density) and density > 0:
            self.g_per_tbsp = float(density)
        return True

    async def _on_schedule(self, payload: Any) -> bool:
        if not isinstance(payload, list):
            return False
        self._held.replace([event for event in payload if isinstance(event, dict)])
        return True

    async def _on_schedule_clear(self, payload: Any) -> bool:
        self._held.clear()
        return True

    async def _on_mod_start(self, payload: Any) -> bool:
        size = payload.get("size") if isinstance(payload, dict) else None
        if not is_int(size) or size < 0:
            return False
        for error in self._held.mod_start(size):
            self._error(error)
        return True

    async def _on_schedule_add(self, payload: Any) -> bool:
        if not isinstance(payload, list):
            return False
        ok = True
        for item in payload:
            if not (
                isinstance(item, dict)
                and is_int(item.get("index"))
                and item["index"] >= 0
            ):
                ok = False
                continue
            if not isinstance(item.get("data"), dict):
                ok = False
                continue
            for error in self._held.add(item["index"], item["data"]):
                self._error(error)
        return ok

    async def _on_mod_end(self, payload: Any) -> bool:
        errors = self._held.mod_end()
        for error in errors:
            self._error(error)
        return not errors

    _HANDLERS: ClassVar[
        dict[str, Callable[[SimulatedFeeder, Any], Awaitable[bool]]]
    ] = {
        "feed": _on_feed,
        "button_enable_remote": _on_button,
        "reboot": _on_reboot,
        "utc_offset": _on_utc_offset,
        "budget": _on_budget,
        "schedule": _on_schedule,
        "schedule_clear": _on_schedule_clear,
        "schedule_mod_start": _on_mod_start,
        "schedule_add": _on_schedule_add,
        "schedule_mod_end": _on_mod_end,
    }

    # ------------------------------------------------------- background tasks

    def _spawn(
        self, coro: Coroutine[Any, Any, Any], name: str
    ) -> asyncio.Task[Any] | None:
        if self._stopping:
            coro.close()
            return None
        task = asyncio.create_task(coro, name=f"feeder_sim {name} {self.uid}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOGGER.error("%s: task %s failed: %r", self.uid, task.get_name(), err)

    async def _boot_maybe_retrying(self) -> None:
        await self._retrying(self.boot, "boot")

    async def _reconnect(self) -> None:
        if self.retry_delay is not None:
            await asyncio.sleep(self.retry_delay)
        await self._retrying(self.connect, "reconnect")

    async def _retrying(self, action: Callable[[], Awaitable[None]], what: str) -> None:
        """Run ``action``; with ``retry_delay`` set, retry until it works or stop()."""
        while True:
            try:
                await action()
            except (
                OSError,
                aiohttp.ClientError,
                KronosError,
                MqttError,
                TimeoutError,
            ) as err:
                current = asyncio.current_task()
                if self._stopping or (current is not None and current.cancelling()):
                    raise asyncio.CancelledError from err
                if self.retry_delay is None:
                    raise
                _LOGGER.warning(
                    "%s: %s failed (%r); retrying in %s s",
                    self.uid,
                    what,
                    err,
                    self.retry_delay,
                )
                with contextlib.suppress(MqttError):
                    await self.drop()
                await asyncio.sleep(self.retry_delay)
            else:
                return

    async def _reboot_task(self) -> None:
        await self.reboot()

    async def _every(
        self, interval: float, action: Callable[[], Awaitable[Any]]
    ) -> None:
        while True:
            if self.connected:
                try:
                    await action()
                except MqttError as err:
                    _LOGGER.debug("%s: periodic publish failed: %r", self.uid, err)
            await asyncio.sleep(interval)

    async def _send_varied_sensor(self) -> None:
        await self.send_sensor(
            voltage_mv=4500 + self._rng.randint(-30, 30),
            rssi=min(100, 96 + self._rng.randint(-3, 3)),
        )

    async def _schedule_clock(self) -> None:
        """Run held meals on the feeder's own clock, once per minute."""
        while True:
            if self.connected:
                try:
                    await self.run_due_meals(datetime.now(UTC))
                except MqttError as err:
                    _LOGGER.warning(
                        "%s: scheduled dispense not reported: %r", self.uid, err
                    )
            await asyncio.sleep(60.5 - time.time() % 60)


async def _finish(*tasks: asyncio.Task[Any]) -> None:
    """Wait for tasks to end (cancelled or ending); their failures are retrieved, not raised."""
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOGGER.debug("task %s ended with %r", task.get_name(), err)


def _drain(queue: asyncio.Queue[Any]) -> None:
    while not queue.empty():
        queue.get_nowait()


__all__ = ["MAX_MESSAGE_BYTES", "ReceivedCommand", "SimulatedFeeder"]
