"""Persistence of gateways, feeders, feed history, meal ledgers and pets with HA's Store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import SAVE_DELAY_S, STORAGE_KEY, STORAGE_MINOR_VERSION, STORAGE_VERSION
from .ledger import MealLedger
from .models import Feeder, Gateway, StoredFeedResult
from .pets import Pet

_LOGGER = logging.getLogger(__name__)

type StoredData = dict[str, Any]


class _VersionedStore(Store[StoredData]):
    """HA's Store, with the migrations of the stored form's minor versions.

    1.1 -> 1.2: pets were added (a store without them has none).
    """

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: StoredData
    ) -> StoredData:
        if old_major_version != STORAGE_VERSION:
            raise NotImplementedError
        if not isinstance(old_data, dict):
            return old_data  # async_load says it cannot be read
        data = dict(old_data)
        if old_minor_version < 2:
            data.setdefault("pets", {})
        return data


class PetnetStore:
    """Load once, then save in the background: a burst of updates is one write."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the store; nothing is read until async_load."""
        self._store: Store[StoredData] = _VersionedStore(
            hass,
            STORAGE_VERSION,
            STORAGE_KEY,
            private=True,
            atomic_writes=True,
            minor_version=STORAGE_MINOR_VERSION,
        )
        self._hass = hass
        self._data_func: Callable[[], StoredData] | None = None
        # Loop time of the write already scheduled, if any, and its timer.
        self._write_at: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def async_load(
        self,
    ) -> tuple[dict[str, Gateway], dict[str, Feeder], dict[str, Pet]]:
        """Read everything stored; entries that cannot be read are logged and skipped."""
        data = await self._store.async_load() or {}
        if not isinstance(data, dict):
            _LOGGER.warning("Ignoring unreadable stored data (not an object)")
            data = {}
        gateways: dict[str, Gateway] = {}
        feeders: dict[str, Feeder] = {}
        for hid, raw in _section(data, "gateways").items():
            if (gateway := _read(Gateway.from_dict, raw, "gateway", hid)) is not None:
                gateways[hid] = gateway
        history = _section(data, "history")
        ledgers = _section(data, "ledger")
        for hid, raw in _section(data, "feeders").items():
            if (feeder := _read(Feeder.from_dict, raw, "feeder", hid)) is None:
                continue
            rows = history.get(hid) or []
            if not isinstance(rows, list):
                _LOGGER.warning("Skipping unreadable feed history of %s", hid)
                rows = []
            for row in rows:
                if (
                    result := _read(
                        StoredFeedResult.from_dict, row, "feed result of", hid
                    )
                ) is not None:
                    feeder.history.append(result)
            if isinstance(raw_ledger := ledgers.get(hid), dict):
                feeder.ledger = MealLedger.from_dict(raw_ledger)
            elif raw_ledger is not None:
                _LOGGER.warning("Skipping unreadable meal ledger of %s", hid)
            feeders[hid] = feeder
        pets: dict[str, Pet] = {}
        for pet_id, raw in _section(data, "pets").items():
            if (pet := _read(Pet.from_dict, raw, "pet", pet_id)) is not None:
                pets[pet.pet_id] = pet
        return gateways, feeders, pets

    def attach(self, data_func: Callable[[], StoredData]) -> None:
        """Tell the store how to produce what it saves."""
        self._data_func = data_func

    def schedule_save(self, delay: float = SAVE_DELAY_S) -> None:
        """Write within ``delay`` seconds; calls until then are folded into that one write.

        The write is due ``delay`` after the first unsaved change, however many changes follow:
        HA's ``Store.async_delay_save`` alone moves the write later with every call, so steady
        traffic (a heartbeat every few seconds from any feeder) would postpone it until Home
        Assistant stops, and a crash would lose every feed result and new key since the start.
        A shorter delay brings a scheduled write forward, a longer one never pushes it back.

        The data is built on the event loop when the write is due, never in the executor:
        ``async_delay_save`` calls its data function in a worker thread while the loop goes on
        changing the feeders (a fleet booting raised "dictionary changed size during
        iteration" and lost the write).
        """
        if self._data_func is None:
            return
        loop = self._hass.loop
        when = loop.time() + delay
        if self._write_at is not None and self._write_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._write_at = when
        self._timer = loop.call_at(when, self._write_due)

    def _write_due(self) -> None:
        self._timer = None
        self._write_at = None
        self._hass.async_create_background_task(
            self._async_save_logged(), f"{STORAGE_KEY} save", eager_start=True
        )

    async def _async_save_logged(self) -> None:
        try:
            await self.async_save_now()
        except Exception:
            _LOGGER.exception("Could not write the feeders' state")

    async def async_save_now(self) -> None:
        """Write immediately (on unload, and for data that must not wait)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._write_at = None
        if self._data_func is not None:
            await self._store.async_save(self._data_func())

    async def async_remove(self) -> None:
        """Delete the stored data (the config entry was removed)."""
        await self._store.async_remove()


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    """One part of the stored data (gateways, feeders, history); {} if it is not an object."""
    section = data.get(key) or {}
    if not isinstance(section, dict):
        _LOGGER.warning("Ignoring unreadable stored %s", key)
        return {}
    return section


def _read[T](
    load: Callable[[dict[str, Any]], T], raw: object, what: str, hid: str
) -> T | None:
    """Load one stored record, or log and return None if it cannot be read."""
    if isinstance(raw, dict):
        try:
            return load(raw)
        except (TypeError, ValueError, KeyError):
            pass
    _LOGGER.warning("Skipping unreadable stored %s %s", what, hid)
    return None


def serialize(
    gateways: dict[str, Gateway],
    feeders: dict[str, Feeder],
    pets: dict[str, Pet] | None = None,
) -> StoredData:
    """Return the stored form of the hub's state."""
    return {
        "pets": {pet_id: pet.to_dict() for pet_id, pet in (pets or {}).items()},
        "gateways": {hid: gw.to_dict() for hid, gw in gateways.items()},
        "feeders": {hid: feeder.to_dict() for hid, feeder in feeders.items()},
        "history": {
            hid: [row.to_dict() for row in feeder.history]
            for hid, feeder in feeders.items()
            if feeder.history
        },
        "ledger": {
            hid: feeder.ledger.to_dict()
            for hid, feeder in feeders.items()
            if feeder.ledger.recorded_until is not None
        },
    }
