"""The arena: the integration with two real feeders, one good and one that misbehaves.

Every hostile test does something nasty and then calls ``arena.check()``, which asserts that
(a) the server still answers: a heartbeat of the good feeder is handled and an API request over
MQTT gets its reply; (b) nothing stored changed, except what the test says the input may
legitimately change; (c) no server-side log record is an error or carries a traceback, and no
api key appears in any server-side log record (debug level included).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
import logging
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.petnet_feeder.const import CONF_MQTT_PORT
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.store import serialize
from feeder_sim import SimulatedFeeder, ids as sim_ids, telemetry

from .feeders import RECENT_STIME, wait_for_feeder
from .logs import NOT_SERVER_LOGGERS
from .raw_mqtt import RawClient

GOOD_UID = "smartfeeder-795ae773737d"
ATTACKER_UID = "smartfeeder-4b09fa082bbd"
# Fields that change with every message or sync; nothing hostile can do harm through them.
VOLATILE = frozenset(
    {
        "last_seen",
        "last_heartbeat",
        "last_hash_at",
        "received_at",
        "last_synced_at",
        "recorded_until",
        # The minute check's mark of when HA last heard: a long flood spans one.
        "heard_until",
    }
)
FEED_STIME = RECENT_STIME


def manual_feed_result(
    device_hid: str, *, after_s: int, actual_g: float, hopper_end: float, **extra: Any
) -> dict[str, Any]:
    """A manual feed's result (32 g asked, 4 s long) ``after_s`` after the arena's feed."""
    return telemetry.feed_result(
        device_hid,
        stime=FEED_STIME + after_s,
        etime=FEED_STIME + after_s + 4,
        expected_g=32,
        actual_g=actual_g,
        hopper_start=hopper_end + 1,
        hopper_end=hopper_end,
        src=4,
        rid="E0000001",
        **extra,
    )


def stored_view(hub: PetnetHub) -> dict[str, Any]:
    """What the hub would store, without the volatile fields."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return dict(strip(serialize(hub.state.gateways, hub.state.feeders)))


def changed_paths(before: Any, after: Any, path: str = "") -> set[str]:
    """Dotted paths whose values differ (dicts are compared key by key)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changed: set[str] = set()
        for key in before.keys() | after.keys():
            sub = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                changed.add(sub)
            else:
                changed |= changed_paths(before[key], after[key], sub)
        return changed
    return set() if before == after else {path}


def _debug_mode_only(record: logging.LogRecord) -> bool:
    """Records asyncio produces only with the loop in debug mode (as in these tests).

    In debug mode asyncio reports every failed TLS handshake of an incoming connection (one
    that timed out, or a client that is not speaking TLS) through the loop's exception
    handler, which Home Assistant logs as an error; without debug mode (Home Assistant's
    default) it says nothing.
    """
    if record.name == "asyncio" and record.levelno == logging.DEBUG:
        return True
    return record.getMessage().startswith(
        "Error doing job: Error on transport creation for incoming connection"
    )


@dataclass
class Arena:
    """The integration, a good feeder (gateway A) and an authenticated attacker (gateway B)."""

    hass: HomeAssistant
    hub: PetnetHub
    entry_data: dict[str, Any]
    good: SimulatedFeeder
    attacker: SimulatedFeeder
    caplog: pytest.LogCaptureFixture
    before: dict[str, Any] = field(default_factory=dict)
    raw_clients: list[RawClient] = field(default_factory=list)

    # -- paths the tests may allow to change ----------------------------------------------

    def feeder_path(self, feeder: SimulatedFeeder, *parts: str) -> str:
        return ".".join(("feeders", feeder.device_hid, *parts))

    def history_path(self, feeder: SimulatedFeeder) -> str:
        return f"history.{feeder.device_hid}"

    @property
    def raw_session_effects(self) -> set[str]:
        """What a raw client logged in as the attacker may change.

        It replaced the attacker's session; the new session is owed a sync it never
        subscribes for.
        """
        return {
            self.feeder_path(self.attacker, "sync_pending"),
            self.feeder_path(self.attacker, "sync_owed_since"),
            self.feeder_path(self.attacker, "sent_utc_offset"),
        }

    # -- actions ---------------------------------------------------------------------------

    def snapshot(self) -> None:
        self.before = stored_view(self.hub)

    async def raw_attacker(self, *, tls: bool = False) -> RawClient:
        """A raw MQTT session logged in as the attacker's gateway (replaces its simulator)."""
        port = self.entry_data[CONF_MQTT_PORT]
        client = await RawClient.open(port, tls=tls)
        self.raw_clients.append(client)
        gateway = self.attacker.gateway_hid
        assert self.attacker.api_key is not None
        code = await client.connect(
            gateway, sim_ids.mqtt_username(gateway), self.attacker.api_key
        )
        assert code == 0
        return client

    async def raw(self) -> RawClient:
        """A raw TCP connection to the plain MQTT port, not logged in."""
        client = await RawClient.open(self.entry_data[CONF_MQTT_PORT])
        self.raw_clients.append(client)
        return client

    async def wait_disconnected(self, gateway_hid: str) -> None:
        """Wait until the broker reports the gateway's session gone (woken by its events)."""
        sessions = self.hub.transport._gateways  # type: ignore[union-attr]
        async with asyncio.timeout(10):
            while self.hub.state.is_connected(gateway_hid):
                await sessions.wait_for_change(gateway_hid)

    async def _heard(self, feeder: SimulatedFeeder, send: Any) -> None:
        """Send a heartbeat of ``feeder`` with ``send`` and wait until the hub handled it."""
        hid = feeder.device_hid
        before = self.hub.state.feeders[hid].last_heartbeat
        await send(
            sim_ids.telemetry_topic(feeder.gateway_hid),
            telemetry.encode(telemetry.heartbeat(hid)),
        )
        await wait_for_feeder(self.hub, hid, lambda f: f.last_heartbeat != before)

    async def barrier(self, raw: RawClient | None = None) -> None:
        """Everything the attacker sent before has been handled (its messages keep order)."""
        if raw is None:
            await self._heard(self.attacker, self.attacker.send_raw)
        else:
            await self._heard(self.attacker, raw.publish)
        await self.hass.async_block_till_done(wait_background_tasks=True)

    async def roundtrip(self) -> None:
        """(a) The good feeder's heartbeat is handled and its API request answered."""
        if not self.good.connected:
            await self.good.connect()
        await self._heard(self.good, self.good.send_raw)
        reply = await self.good.api_request(
            "/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received", timeout=5
        )
        assert reply["parameters"] == {"status": "OK"}

    def server_records(self) -> list[logging.LogRecord]:
        records = [
            *self.caplog.get_records("setup"),
            *self.caplog.get_records("call"),
        ]
        return [r for r in records if not r.name.startswith(NOT_SERVER_LOGGERS)]

    async def check(self, *, may_change: Iterable[str] = ()) -> set[str]:
        """Assert (a), (b) and (c); return the stored paths that changed (all allowed)."""
        await self.roundtrip()
        await self.hass.async_block_till_done(wait_background_tasks=True)
        allowed = tuple(may_change)
        changed = changed_paths(self.before, stored_view(self.hub))
        unexpected = (
            {p for p in changed if not p.startswith(allowed)} if allowed else changed
        )
        assert not unexpected, f"stored state changed: {sorted(unexpected)}"
        records = self.server_records()
        bad = [
            f"{r.name} {r.levelname}: {r.getMessage()}"
            for r in records
            if (r.levelno >= logging.ERROR or r.exc_info) and not _debug_mode_only(r)
        ]
        assert not bad, bad
        keys = [gateway.api_key for gateway in self.hub.state.gateways.values()]
        assert len(keys) >= 2
        for record in records:
            text = f"{record.getMessage()} {record.exc_text or ''}"
            leaked = [key for key in keys if key in text]
            assert not leaked, f"api key in log: {record.name}: {text[:200]}"
        return changed

    def warned(self, text: str) -> bool:
        return any(
            text in r.getMessage() and r.levelno == logging.WARNING
            for r in self.server_records()
        )
