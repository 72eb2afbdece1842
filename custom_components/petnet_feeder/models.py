"""State the hub keeps for each gateway and feeder, and how it is stored."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
import re
from typing import TYPE_CHECKING, Any, ClassVar, Self

from .ledger import MealLedger
from .meals import Meal
from .protocol.messages import FeedResult

if TYPE_CHECKING:
    from dataclasses import Field

    from _typeshed import DataclassInstance

_MAC_UID = re.compile(r"^smartfeeder-([0-9a-f]{12})(?:-prod)?$", re.IGNORECASE)


def _known_fields(cls: type[DataclassInstance], data: dict[str, Any]) -> dict[str, Any]:
    """Keep the keys a dataclass knows, so older or newer stored data still loads."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


class _FlatRecord:
    """A dataclass stored as a flat dict; unknown keys (older or newer data) are ignored."""

    __slots__ = ()
    if TYPE_CHECKING:
        # Every subclass is a dataclass (what asdict and fields ask for).
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def to_dict(self) -> dict[str, Any]:
        """Return the stored form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Load the stored form."""
        return cls(**_known_fields(cls, data))


@dataclass(slots=True)
class Gateway(_FlatRecord):
    """A feeder's network endpoint: it owns the MQTT session and the api key."""

    hid: str
    api_key: str
    uid: str | None = None
    name: str | None = None
    software_version: str | None = None
    sdk_version: str | None = None
    discovered_at: float | None = None
    last_seen: float | None = None


@dataclass(slots=True)
class Telemetry(_FlatRecord):
    """The latest sensor reading of a feeder (§5.3), stamped with server time."""

    voltage_v: float | None = None
    usb: bool | None = None
    charging: bool | None = None
    ir: bool | None = None
    rssi: int | None = None
    received_at: float | None = None


@dataclass(slots=True)
class MissedMeal(_FlatRecord):
    """The missed meal a feeder's repair issue is about, until it is resolved."""

    key: str  # "<meal_id>@<target epoch s>", as in Feeder.misses
    meal_id: int
    meal_name: str
    portion: float
    target: float  # epoch s of the missed occurrence
    online: bool  # whether the feeder was online when the meal was missed
    pet_id: str | None = None  # the pet the meal was for


@dataclass(slots=True)
class StoredFeedResult:
    """A feed result as received, with the server time it arrived."""

    result: FeedResult
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        """Return the stored form."""
        return {**self.result.to_dict(), "received_at": self.received_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Load the stored form."""
        received_at = float(data.get("received_at") or 0)
        result_data = {k: v for k, v in data.items() if k != "received_at"}
        return cls(result=FeedResult.from_dict(result_data), received_at=received_at)


SKIP_LOG_LIMIT = 50
UNHEARD_LIMIT = 20
PAUSE_LOG_LIMIT = 50


@dataclass(slots=True)
class Pause:
    """Feeding paused (epoch seconds): since when, until when (None: until resumed).

    A feeder's own pause and each pet's pause on a feeder are one of these. The earlier
    pauses are kept in ``log``, so their occurrences still show as paused.
    """

    since: float | None = None
    until: float | None = None
    log: list[tuple[float, float]] = field(default_factory=list)

    @property
    def current(self) -> bool:
        """Paused now (until it is resumed or its end comes)."""
        return self.since is not None

    def covers(self, stamp: float) -> bool:
        """Whether feeding was (or is to be) paused at this instant."""
        if (
            self.since is not None
            and self.since <= stamp
            and (self.until is None or stamp < self.until)
        ):
            return True
        return any(since <= stamp < until for since, until in self.log)

    def start(self, at: float, until: float | None) -> None:
        """Pause from ``at`` (or since the current pause began) until ``until``."""
        if self.since is None:
            self.since = at
        self.until = until

    def end(self, at: float) -> None:
        """End the pause at ``at`` (or at its planned end, if that came first)."""
        if self.since is None:
            return
        end = at if self.until is None else min(at, self.until)
        if end > self.since:
            self.log.append((self.since, end))
            del self.log[:-PAUSE_LOG_LIMIT]
        self.since = self.until = None

    def marks(self) -> tuple[object, ...]:
        """A value that changes whenever the pause does (occurrence cache keys)."""
        return (self.since, self.until, tuple(tuple(entry) for entry in self.log))

    def to_dict(self) -> dict[str, Any]:
        """Return the stored form (a copy: it is written out while the loop goes on)."""
        return {
            "since": self.since,
            "until": self.until,
            "log": [list(entry) for entry in self.log],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Load the stored form."""
        since, until = data.get("since"), data.get("until")
        return cls(
            since=float(since) if since is not None else None,
            until=float(until) if until is not None else None,
            log=[(float(a), float(b)) for a, b in data.get("log") or []],
        )


@dataclass(slots=True)
class Feeder:
    """The feeder as a thing that feeds: telemetry and commands name it."""

    hid: str
    gateway_hid: str
    uid: str | None = None
    name: str | None = None
    software_version: str | None = None
    discovered_at: float | None = None
    last_seen: float | None = None
    last_heartbeat: float | None = None
    telemetry: Telemetry = field(default_factory=Telemetry)
    button_enabled: bool | None = None
    manual_portion: float | None = None
    last_hash: str | None = None
    last_hash_at: float | None = None
    history: list[StoredFeedResult] = field(default_factory=list)
    # Schedule: meals live in HA; the feeder is made to hold them (reconcile.py).
    meals: list[Meal] = field(default_factory=list)
    next_meal_id: int = 1
    time_zone: str | None = None
    firmware_family: str = "auto"
    skipped: dict[int, float] = field(default_factory=dict)
    # Meals held back after the clocks went back, until the repeated hour is over (so that
    # their time, which comes twice, dispenses once): meal id -> epoch seconds.
    clock_holds: dict[int, float] = field(default_factory=dict)
    # Meals whose time the clocks jumped over, sent at the first minute after the jump until
    # it is past: meal id -> (time of day sent, epoch seconds until).
    clock_moves: dict[int, tuple[int, float]] = field(default_factory=dict)
    skip_log: list[tuple[int, float]] = field(default_factory=list)
    # When each meal got its current time: earlier occurrences were never due.
    meal_since: dict[int, float] = field(default_factory=dict)
    sync_pending: bool = False
    # When the owed sync became owed (None while none is): how late a delivery is.
    sync_owed_since: float | None = None
    # HA delivered a schedule once: from then on the feeder holds HA's, even an empty one.
    schedule_owned: bool = False
    last_synced_at: float | None = None
    synced_fingerprint: str | None = None
    # The meals ([id, time_s, portion]) of the day plan last delivered.
    held_meals: list[list[Any]] | None = None
    sent_utc_offset: int | None = None
    expected_hash: str | None = None
    # Food accounting (§9.4) and recipe (§6.3).
    hopper_reference_pct: float | None = None
    hopper_reference_ms: int | None = None
    g_per_tbsp: int | None = None
    tbsp_per_feeding: int | None = None
    recipe_number: int = 1
    # Missed meals already reported ("<meal_id>@<target epoch s>" -> "missed" or "fed").
    misses: dict[str, str] = field(default_factory=dict)
    # The latest missed meal while it is unresolved: its repair issue is raised again at start.
    open_miss: MissedMeal | None = None
    # Up to when Home Assistant could hear the feeder, and the periods it could not (it was
    # stopped): a meal due then is unconfirmed, not missed. Epoch seconds.
    heard_until: float | None = None
    unheard: list[tuple[float, float]] = field(default_factory=list)
    # Feeding paused: the feeder's own pause (all its meals), stored as before in
    # paused_from / paused_until / pause_log.
    feeding_pause: Pause = field(default_factory=Pause)
    # Each pet's pause on this feeder (the meals of that pet): pet id -> its pause.
    pet_pauses: dict[str, Pause] = field(default_factory=dict)
    # Every meal occurrence that was due, and what became of it (stored separately).
    ledger: MealLedger = field(default_factory=MealLedger)

    def note_unheard(self, since: float, until: float) -> None:
        """Remember a period in which nothing the feeder sent could arrive."""
        self.unheard.append((since, until))
        del self.unheard[:-UNHEARD_LIMIT]

    @property
    def paused(self) -> bool:
        """Feeding is paused now (the feeder holds its meals inactive)."""
        return self.feeding_pause.current

    @property
    def paused_until(self) -> float | None:
        """When the feeder's own pause ends (None: until resumed, or not paused)."""
        return self.feeding_pause.until

    def pet_of(self, meal_id: int) -> str | None:
        """The pet a meal of this feeder is for, if any."""
        for meal in self.meals:
            if meal.meal_id == meal_id:
                return meal.pet_id
        return None

    def was_paused(self, meal_id: int, target: datetime) -> bool:
        """Whether this occurrence was (or is to be) paused: all meals, or its pet's.

        The one question the schedule delivery and the meal ledger ask.
        """
        stamp = target.timestamp()
        if self.feeding_pause.covers(stamp):
            return True
        if not self.pet_pauses or (pet_id := self.pet_of(meal_id)) is None:
            return False
        pause = self.pet_pauses.get(pet_id)
        return pause is not None and pause.covers(stamp)

    def pause(self, at: float, until: float | None) -> None:
        """Pause feeding from ``at`` until ``until`` (None: until resumed)."""
        self.feeding_pause.start(at, until)

    def resume(self, at: float) -> None:
        """End the pause at ``at`` (or at its planned end, if that came first)."""
        self.feeding_pause.end(at)

    def pet_paused(self, pet_id: str) -> bool:
        """Whether a pet's meals are paused on this feeder now."""
        pause = self.pet_pauses.get(pet_id)
        return pause is not None and pause.current

    def pause_pet(self, pet_id: str, at: float, until: float | None) -> None:
        """Pause a pet's meals on this feeder from ``at`` until ``until``."""
        self.pet_pauses.setdefault(pet_id, Pause()).start(at, until)

    def resume_pet(self, pet_id: str, at: float) -> None:
        """End a pet's pause on this feeder at ``at``."""
        if (pause := self.pet_pauses.get(pet_id)) is not None:
            pause.end(at)

    def forget_pet(self, pet_id: str) -> None:
        """A removed pet's pauses go with it (its past is in the ledger)."""
        self.pet_pauses.pop(pet_id, None)

    def log_skip(self, meal_id: int, until: float) -> None:
        """Remember a skip that is no longer current, so it still shows as skipped."""
        self.skip_log.append((meal_id, until))
        del self.skip_log[:-SKIP_LOG_LIMIT]

    def was_skipped(self, meal_id: int, target: datetime) -> bool:
        """Whether this occurrence of the meal was (or is to be) skipped."""
        stamp = target.timestamp()
        skips = [until for k, until in self.skip_log if k == meal_id]
        if (current := self.skipped.get(meal_id)) is not None:
            skips.append(current)
        # A skip lasts from a day before the skipped target until its window has passed.
        return any(until - 86400 <= stamp < until for until in skips)

    @property
    def display_name(self) -> str:
        """Name the feeder by the MAC-like part of its uid, or by its hid."""
        if self.uid and (match := _MAC_UID.match(self.uid)):
            return f"SmartFeeder {match.group(1)[-6:].upper()}"
        return f"SmartFeeder {self.hid[:6].upper()}"

    def to_dict(self) -> dict[str, Any]:
        """Return the stored form (history is stored separately)."""
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name
            not in (
                "telemetry",
                "history",
                "ledger",
                "meals",
                "skipped",
                "clock_holds",
                "clock_moves",
                "meal_since",
                "open_miss",
                "feeding_pause",
                "pet_pauses",
            )
        }
        # Copies: the data is written out in a worker thread while the loop goes on.
        data["misses"] = dict(self.misses)
        data["skip_log"] = [list(entry) for entry in self.skip_log]
        data["unheard"] = [list(entry) for entry in self.unheard]
        # The feeder's own pause keeps the stored form it always had.
        data["paused_from"] = self.feeding_pause.since
        data["paused_until"] = self.feeding_pause.until
        data["pause_log"] = [list(entry) for entry in self.feeding_pause.log]
        data["pet_pauses"] = {
            pet_id: pause.to_dict() for pet_id, pause in self.pet_pauses.items()
        }
        data["telemetry"] = self.telemetry.to_dict()
        data["open_miss"] = self.open_miss.to_dict() if self.open_miss else None
        data["meals"] = [meal.to_dict() for meal in self.meals]
        # JSON keys are strings: meal ids are written as such and read back as ints.
        data["skipped"] = {
            str(meal_id): until for meal_id, until in self.skipped.items()
        }
        data["meal_since"] = {
            str(meal_id): since for meal_id, since in self.meal_since.items()
        }
        data["clock_holds"] = {
            str(meal_id): until for meal_id, until in self.clock_holds.items()
        }
        data["clock_moves"] = {
            str(meal_id): [time_s, until]
            for meal_id, (time_s, until) in self.clock_moves.items()
        }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Load the stored form (without history and ledger)."""
        known = _known_fields(cls, data)
        known.pop("history", None)
        known.pop("ledger", None)
        known["telemetry"] = Telemetry.from_dict(data.get("telemetry") or {})
        open_miss = data.get("open_miss")
        known["open_miss"] = MissedMeal.from_dict(open_miss) if open_miss else None
        known["meals"] = [Meal.from_dict(raw) for raw in data.get("meals") or []]
        known["skipped"] = {
            int(k): float(v) for k, v in (data.get("skipped") or {}).items()
        }
        known["meal_since"] = {
            int(k): float(v) for k, v in (data.get("meal_since") or {}).items()
        }
        known["clock_holds"] = {
            int(k): float(v) for k, v in (data.get("clock_holds") or {}).items()
        }
        known["clock_moves"] = {
            int(k): (int(v[0]), float(v[1]))
            for k, v in (data.get("clock_moves") or {}).items()
        }
        known["feeding_pause"] = Pause.from_dict(
            {
                "since": data.get("paused_from"),
                "until": data.get("paused_until"),
                "log": data.get("pause_log"),
            }
        )
        pet_pauses = data.get("pet_pauses") or {}
        if not isinstance(pet_pauses, dict) or not all(
            isinstance(raw, dict) for raw in pet_pauses.values()
        ):
            raise ValueError(f"unreadable pet pauses: {pet_pauses!r}")
        known["pet_pauses"] = {
            str(pet_id): Pause.from_dict(raw) for pet_id, raw in pet_pauses.items()
        }
        return cls(**known)
