"""Pets: who the meals are for (pure Python, no Home Assistant import).

A pet has a stable id, a name, a species, an optional daily food target in grams and the
feeders that feed it. A meal names its pet (``Meal.pet_id``); a pet's day is the sum of its
meals on all its feeders. Each pet is a device in Home Assistant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import math
from typing import Any, Final, Self
import uuid

SPECIES: Final = ("cat", "dog", "other")
# The device model of each species (what the device page shows and the pickers filter on).
MODELS: Final = {"cat": "Cat", "dog": "Dog", "other": "Pet"}
MAX_PET_NAME_LENGTH: Final = 64
# A day's food for the largest dog is a few kilograms; more is a typing error.
MAX_TARGET_G: Final = 10_000.0
_DEVICE_PREFIX: Final = "pet_"


def new_pet_id() -> str:
    """A fresh pet id: 12 hex digits of a random uuid."""
    return uuid.uuid4().hex[:12]


def device_identifier(pet_id: str) -> str:
    """The identifier of a pet's device (feeder hids and the hub's never start with it)."""
    return f"{_DEVICE_PREFIX}{pet_id}"


def pet_id_of_identifier(identifier: str) -> str | None:
    """The pet id behind a device identifier, or None if it is not a pet's."""
    if identifier.startswith(_DEVICE_PREFIX):
        return identifier[len(_DEVICE_PREFIX) :]
    return None


@dataclass(slots=True)
class Pet:
    """A pet: its meals are the meals that name it, on the feeders that feed it."""

    pet_id: str
    name: str
    species: str
    target_g: float | None = None
    # The hids of the feeders that feed it, in the order given (the first is its device's hub).
    feeders: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        """The device model of its species."""
        return MODELS.get(self.species, MODELS["other"])

    def to_dict(self) -> dict[str, Any]:
        """Return the stored (JSON-serialisable) form."""
        return {
            "pet_id": self.pet_id,
            "name": self.name,
            "species": self.species,
            "target_g": self.target_g,
            "feeders": list(self.feeders),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Load the stored form; raises ValueError when it cannot be read."""
        pet_id, name = data.get("pet_id"), data.get("name")
        species = data.get("species", "other")
        target = data.get("target_g")
        feeders = data.get("feeders") or []
        if not isinstance(pet_id, str) or not pet_id:
            raise ValueError(f"invalid pet id {pet_id!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"invalid pet name {name!r}")
        if species not in SPECIES:
            species = "other"
        if target is not None and (
            isinstance(target, bool)
            or not isinstance(target, int | float)
            or not math.isfinite(target)
            or target <= 0
        ):
            target = None
        if not isinstance(feeders, list) or not all(
            isinstance(hid, str) for hid in feeders
        ):
            raise ValueError(f"invalid feeders of pet {pet_id}: {feeders!r}")
        return cls(
            pet_id=pet_id,
            name=name,
            species=species,
            target_g=float(target) if target is not None else None,
            feeders=list(dict.fromkeys(feeders)),
        )
