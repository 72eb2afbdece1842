"""Feeder state: gateways, feeders, pets, who listens to them, liveness and the debounced save.

Everything that reads or changes feeder state depends on this one object, and it depends on
none of them: the Kronos registry, inbound messages, schedules, monitoring and the entities
all share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
from enum import StrEnum
import logging
import time

from homeassistant.core import CALLBACK_TYPE, callback

from .const import LAZY_SAVE_DELAY_S, ONLINE_WINDOW
from .errors import invalid
from .models import Feeder, Gateway
from .pets import Pet
from .store import PetnetStore, serialize

_LOGGER = logging.getLogger(__name__)


def now() -> float:
    """Wall-clock time in seconds (one place, so tests that freeze time see it)."""
    return time.time()


def _never_connected(_gateway_hid: str) -> bool:
    return False


class PetChange(StrEnum):
    """What happened to a pet (told to those who watch the pets)."""

    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


type PetWatcher = Callable[[PetChange, Pet], None]


class FeederState:
    """The gateways and feeders in memory, their listeners, and when they were heard."""

    def __init__(self, store: PetnetStore) -> None:
        """Start empty; ``async_load`` reads what is stored."""
        self._store = store
        self.gateways: dict[str, Gateway] = {}
        self.feeders: dict[str, Feeder] = {}
        self.pets: dict[str, Pet] = {}
        # The pets each feeder feeds: a change of the feeder is a change of their day too.
        self._pets_by_feeder: dict[str, list[str]] = {}
        self._pet_listeners: dict[str, set[CALLBACK_TYPE]] = {}
        self._pet_watchers: list[PetWatcher] = []  # in order
        # The feeders of each gateway (add_feeder, remove_feeder and async_load keep it).
        self._by_gateway: dict[str, list[Feeder]] = {}
        self._feeder_listeners: dict[str, set[CALLBACK_TYPE]] = {}
        # The listeners told when only a feeder's liveness moved (a heartbeat).
        self._liveness_listeners: dict[str, set[CALLBACK_TYPE]] = {}
        self._new_feeder_listeners: list[Callable[[Feeder], None]] = []  # in order
        self._online: dict[str, bool] = {}
        self._is_connected: Callable[[str], bool] = _never_connected
        # Inside batch(): the feeders notified so far, and whether only their liveness moved.
        self._batch_depth = 0
        self._to_notify: dict[str, bool] = {}
        store.attach(lambda: serialize(self.gateways, self.feeders, self.pets))

    async def async_load(self) -> None:
        """Read the stored gateways, feeders, history and pets."""
        self.gateways, self.feeders, self.pets = await self._store.async_load()
        self._index_pets()
        self._by_gateway = {}
        for feeder in self.feeders.values():
            self._by_gateway.setdefault(feeder.gateway_hid, []).append(feeder)
        # A feeder heard from just before a restart is online now: only a change is logged.
        for feeder in self.feeders.values():
            self._online[feeder.hid] = self.is_online(feeder)

    def use_connections(self, is_connected: Callable[[str], bool]) -> None:
        """Learn who tells whether a gateway holds an MQTT session (the transport)."""
        self._is_connected = is_connected

    # ------------------------------------------------------------------ persistence

    def schedule_save(self, *, lazy: bool = False) -> None:
        """Save soon; a burst of changes is one write. Lazy: liveness and telemetry only."""
        if lazy:
            self._store.schedule_save(LAZY_SAVE_DELAY_S)
        else:
            self._store.schedule_save()

    async def async_save_now(self) -> None:
        """Write everything at once."""
        await self._store.async_save_now()

    # ------------------------------------------------------------------ lookups

    def feeder(self, feeder_hid: str) -> Feeder:
        """A known feeder; InvalidRequestError otherwise."""
        if (feeder := self.feeders.get(feeder_hid)) is None:
            raise invalid("unknown_feeder", feeder=feeder_hid)
        return feeder

    def feeders_of(self, gateway_hid: str) -> list[Feeder]:
        """The feeders whose messages go through this gateway."""
        return list(self._by_gateway.get(gateway_hid, ()))

    def add_feeder(
        self, hid: str, gateway_hid: str, *, uid: str | None = None
    ) -> Feeder:
        """Create a feeder and tell everyone who waits for new ones."""
        feeder = Feeder(hid=hid, gateway_hid=gateway_hid, uid=uid, discovered_at=now())
        self.feeders[hid] = feeder
        self._by_gateway.setdefault(gateway_hid, []).append(feeder)
        self._online[hid] = False
        _LOGGER.info("New feeder %s on gateway %s", hid, gateway_hid)
        for listener in list(self._new_feeder_listeners):
            listener(feeder)
        return feeder

    def remove_feeder(self, feeder_hid: str) -> bool:
        """Forget a feeder and its listeners; False if it was not known."""
        if (feeder := self.feeders.pop(feeder_hid, None)) is None:
            return False
        siblings = self._by_gateway.get(feeder.gateway_hid, [])
        if feeder in siblings:
            siblings.remove(feeder)
        if not siblings:
            self._by_gateway.pop(feeder.gateway_hid, None)
        self._online.pop(feeder_hid, None)
        self._feeder_listeners.pop(feeder_hid, None)
        self._liveness_listeners.pop(feeder_hid, None)
        self.schedule_save()
        return True

    # ------------------------------------------------------------------ pets

    def pet(self, pet_id: str) -> Pet:
        """A known pet; InvalidRequestError otherwise."""
        if (pet := self.pets.get(pet_id)) is None:
            raise invalid("unknown_pet", pet=pet_id)
        return pet

    def add_pet(self, pet: Pet) -> None:
        """Keep a new pet and tell everyone who watches the pets."""
        self.pets[pet.pet_id] = pet
        self._index_pets()
        self.schedule_save()
        self._tell_watchers(PetChange.ADDED, pet)

    def pet_changed(self, pet: Pet) -> None:
        """A pet's name, species, target or feeders changed: save, tell its entities."""
        self._index_pets()
        self.schedule_save()
        self._tell_watchers(PetChange.CHANGED, pet)
        self.notify_pet(pet.pet_id)

    def remove_pet(self, pet_id: str) -> Pet | None:
        """Forget a pet and its listeners; None if it was not known."""
        if (pet := self.pets.pop(pet_id, None)) is None:
            return None
        self._index_pets()
        self._pet_listeners.pop(pet_id, None)
        self.schedule_save()
        self._tell_watchers(PetChange.REMOVED, pet)
        return pet

    def pets_of(self, feeder_hid: str) -> list[Pet]:
        """The pets a feeder feeds."""
        return [
            self.pets[pet_id] for pet_id in self._pets_by_feeder.get(feeder_hid, ())
        ]

    @callback
    def async_subscribe_pet(
        self, pet_id: str, listener: CALLBACK_TYPE
    ) -> CALLBACK_TYPE:
        """Call listener whenever the pet, or a feeder that feeds it, changes."""
        listeners = self._pet_listeners.setdefault(pet_id, set())
        listeners.add(listener)
        return lambda: listeners.discard(listener)

    @callback
    def async_watch_pets(self, watcher: PetWatcher) -> CALLBACK_TYPE:
        """Call watcher for every pet added, changed or removed (in subscription order)."""
        self._pet_watchers.append(watcher)

        def unsubscribe() -> None:
            if watcher in self._pet_watchers:
                self._pet_watchers.remove(watcher)

        return unsubscribe

    @callback
    def notify_pet(self, pet_id: str) -> None:
        """Tell the pet's entities that its day or its pause may have changed."""
        for listener in list(self._pet_listeners.get(pet_id, ())):
            listener()

    def _tell_watchers(self, change: PetChange, pet: Pet) -> None:
        for watcher in list(self._pet_watchers):
            watcher(change, pet)

    def _index_pets(self) -> None:
        by_feeder: dict[str, list[str]] = {}
        for pet in self.pets.values():
            for feeder_hid in pet.feeders:
                by_feeder.setdefault(feeder_hid, []).append(pet.pet_id)
        self._pets_by_feeder = by_feeder

    # ------------------------------------------------------------------ listeners

    @callback
    def async_subscribe_feeder(
        self, feeder_hid: str, listener: CALLBACK_TYPE, *, liveness: bool = True
    ) -> CALLBACK_TYPE:
        """Call listener whenever the feeder's state changes.

        ``liveness=False``: not when only its last-seen time moved (a heartbeat that changed
        nothing else); a flood of heartbeats then costs no state writes of such entities.
        """
        listeners = self._feeder_listeners.setdefault(feeder_hid, set())
        listeners.add(listener)
        live = self._liveness_listeners.setdefault(feeder_hid, set())
        if liveness:
            live.add(listener)

        def unsubscribe() -> None:
            listeners.discard(listener)
            live.discard(listener)

        return unsubscribe

    @callback
    def async_subscribe_new_feeders(
        self, listener: Callable[[Feeder], None]
    ) -> CALLBACK_TYPE:
        """Call listener for every feeder that appears from now on (in subscription order)."""
        self._new_feeder_listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._new_feeder_listeners:
                self._new_feeder_listeners.remove(listener)

        return unsubscribe

    @callback
    def notify(self, feeder_hid: str, *, liveness_only: bool = False) -> None:
        """Tell the feeder's entities that its state changed (or only that it was heard).

        At once, or inside ``batch()`` once at its end.
        """
        if self._batch_depth:
            self._to_notify[feeder_hid] = (
                self._to_notify.get(feeder_hid, True) and liveness_only
            )
            return
        self._tell(feeder_hid, liveness_only=liveness_only)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Tell each feeder's entities once, at the end, of the changes made inside.

        For synchronous code only (the handling of one message): the several changes one
        message makes (a check-in marks a sync owed, the sync starts) cost one write of each
        entity instead of one per change.
        """
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if not self._batch_depth:
                while self._to_notify:
                    to_notify, self._to_notify = self._to_notify, {}
                    for feeder_hid, liveness_only in to_notify.items():
                        self._tell(feeder_hid, liveness_only=liveness_only)

    def _tell(self, feeder_hid: str, *, liveness_only: bool) -> None:
        listeners = (
            self._liveness_listeners if liveness_only else self._feeder_listeners
        ).get(feeder_hid)
        if listeners:
            for listener in list(listeners):
                listener()
        if not liveness_only:
            # Its pets' day is made of its meals: their entities follow it (never a heartbeat).
            for pet_id in self._pets_by_feeder.get(feeder_hid, ()):
                self.notify_pet(pet_id)

    def changed(self, feeder: Feeder) -> None:
        """A feeder changed in a way worth keeping: save soon and tell its entities."""
        self.schedule_save()
        self.notify(feeder.hid)

    # ------------------------------------------------------------------ liveness

    def is_connected(self, gateway_hid: str) -> bool:
        """Whether the gateway holds an authenticated MQTT session."""
        return self._is_connected(gateway_hid)

    def is_online(self, feeder: Feeder) -> bool:
        """Connected, or anything heard from it in the last 120 s (§9.1)."""
        if self.is_connected(feeder.gateway_hid):
            return True
        return (
            feeder.last_seen is not None
            and now() - feeder.last_seen < ONLINE_WINDOW.total_seconds()
        )

    def heard_from(self, feeder: Feeder, *, at: float, liveness_only: bool) -> None:
        """The feeder was heard from: it is online; tell its entities."""
        feeder.last_seen = at
        came_online = self.set_online(feeder, True)
        self.notify(feeder.hid, liveness_only=liveness_only and not came_online)

    def mark_gateway_seen(self, gateway: Gateway) -> None:
        """Anything from a gateway (HTTP or MQTT) counts as liveness of its feeders."""
        at = now()
        gateway.last_seen = at
        for feeder in self.feeders_of(gateway.hid):
            self.heard_from(feeder, at=at, liveness_only=True)
        self.schedule_save(lazy=True)

    @callback
    def async_check_availability(self, *_: object) -> None:
        """Re-evaluate every feeder's availability (periodically and on disconnect)."""
        for feeder in list(self.feeders.values()):
            if self.set_online(feeder, self.is_online(feeder)):
                self.notify(feeder.hid)

    def set_online(self, feeder: Feeder, online: bool) -> bool:
        """Record availability and log each change once; True if it changed."""
        if self._online.get(feeder.hid) == online:
            return False
        self._online[feeder.hid] = online
        if online:
            _LOGGER.info("Feeder %s is online", feeder.hid)
        else:
            _LOGGER.info("Feeder %s is offline", feeder.hid)
        return True
