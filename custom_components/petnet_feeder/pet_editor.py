"""Editing pets: validation and commit of every change to the pets (who the meals are for).

A change is checked whole before anything is stored. What follows from it for the meals and
the pauses is done through the meal editor and the pauses: a feeder that stops feeding a pet
keeps that pet's meals, for no pet, and no longer holds them paused for it; a paused pet's new
feeder holds its meals paused too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
from typing import Any

from .errors import invalid
from .meal_editor import MealEditor
from .models import Feeder
from .pauses import FeedingPauses
from .pets import MAX_PET_NAME_LENGTH, MAX_TARGET_G, SPECIES, Pet, new_pet_id
from .state import FeederState


class PetEditor:
    """Adds, changes and removes pets; tells whether a pet may have a feeder's meal."""

    def __init__(
        self, state: FeederState, meal_editor: MealEditor, pauses: FeedingPauses
    ) -> None:
        """Keep the pets in ``state``; their meals and pauses follow through the others."""
        self._state = state
        self._meal_editor = meal_editor
        self._pauses = pauses

    def add_pet(
        self,
        *,
        name: object,
        species: object,
        target_g: object = None,
        feeders: Sequence[Feeder] = (),
    ) -> Pet:
        """Add a pet fed by ``feeders``; InvalidRequestError says what is wrong."""
        pet = Pet(
            pet_id=self._new_id(),
            name=self._name(name),
            species=_species(species),
            target_g=_target(target_g),
            feeders=_hids(feeders),
        )
        self._state.add_pet(pet)
        return pet

    def update_pet(self, pet: Pet, changes: Mapping[str, Any]) -> Pet:
        """Change the fields named in ``changes`` (``target_g`` None clears the target).

        A feeder no longer in ``feeders`` keeps the pet's meals, for no pet.
        """
        name = self._name(changes.get("name", pet.name), keep=pet)
        species = _species(changes.get("species", pet.species))
        target = _target(changes["target_g"]) if "target_g" in changes else pet.target_g
        feeders = (
            _hids(changes["feeders"]) if "feeders" in changes else list(pet.feeders)
        )
        # Checked: from here nothing can be refused.
        for hid in pet.feeders:
            if (
                hid not in feeders
                and (feeder := self._state.feeders.get(hid)) is not None
            ):
                self._pauses.resume_pet_on(feeder, pet.pet_id)
                self._meal_editor.clear_pet(feeder, pet.pet_id)
                feeder.forget_pet(pet.pet_id)
                self._state.changed(feeder)
        added = [hid for hid in feeders if hid not in pet.feeders]
        pet.name, pet.species, pet.target_g, pet.feeders = (
            name,
            species,
            target,
            feeders,
        )
        for hid in added:
            if (feeder := self._state.feeders.get(hid)) is not None:
                self._pauses.extend_pet_pause(pet, feeder)
        self._state.pet_changed(pet)
        return pet

    def remove_pet(self, pet: Pet) -> None:
        """Remove a pet: its meals stay, for no pet; what was due keeps its pet."""
        self._pauses.resume_pet(pet)
        for feeder in list(self._state.feeders.values()):
            if pet.pet_id in feeder.pet_pauses or any(
                meal.pet_id == pet.pet_id for meal in feeder.meals
            ):
                self._meal_editor.clear_pet(feeder, pet.pet_id)
                feeder.forget_pet(pet.pet_id)
                self._state.changed(feeder)
        self._state.remove_pet(pet.pet_id)

    def feeder_removed(self, feeder_hid: str) -> None:
        """A deleted feeder feeds no pet any more."""
        for pet in self._state.pets_of(feeder_hid):
            pet.feeders = [hid for hid in pet.feeders if hid != feeder_hid]
            self._state.pet_changed(pet)

    def pet_for_meal(self, pet: Pet, feeder: Feeder) -> str:
        """The pet id a meal of ``feeder`` may carry: the pet must be fed by that feeder."""
        if feeder.hid not in pet.feeders:
            raise invalid(
                "pet_not_fed_by_feeder", pet=pet.name, feeder=feeder.display_name
            )
        return pet.pet_id

    def _new_id(self) -> str:
        while (pet_id := new_pet_id()) in self._state.pets:
            pass
        return pet_id

    def _name(self, name: object, keep: Pet | None = None) -> str:
        """A pet's name: 1-64 characters, no other pet's (ignoring case and spaces)."""
        if (
            not isinstance(name, str)
            or not name.strip()
            or len(name.strip()) > MAX_PET_NAME_LENGTH
        ):
            raise invalid("invalid_pet_name", max=MAX_PET_NAME_LENGTH)
        name = name.strip()
        for other in self._state.pets.values():
            if other is not keep and other.name.casefold() == name.casefold():
                raise invalid("pet_name_taken", name=other.name)
        return name


def _species(species: object) -> str:
    if species not in SPECIES:
        raise invalid("invalid_species", species=species, allowed=", ".join(SPECIES))
    return str(species)


def _target(target_g: object) -> float | None:
    """A daily target in grams: a positive amount up to MAX_TARGET_G, or None (none)."""
    if target_g is None:
        return None
    if (
        isinstance(target_g, bool)
        or not isinstance(target_g, int | float)
        or not math.isfinite(target_g)
        or not 0 < target_g <= MAX_TARGET_G
    ):
        raise invalid("invalid_pet_target", target=target_g, max=f"{MAX_TARGET_G:g}")
    return float(target_g)


def _hids(feeders: Sequence[Feeder]) -> list[str]:
    """The feeders' hids in the order given, each once."""
    return list(dict.fromkeys(feeder.hid for feeder in feeders))
