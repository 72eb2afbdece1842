"""Pets, pauses, a pet's day and a meal's pet, without a running Home Assistant."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from custom_components.petnet_feeder import occurrence_cache
from custom_components.petnet_feeder.accounting import (
    feeder_occurrences,
    pet_day_totals,
    pet_last_fed,
    record_meals,
)
from custom_components.petnet_feeder.feeder_clock import FeederClock
from custom_components.petnet_feeder.ledger import LedgerEntry, MealLedger
from custom_components.petnet_feeder.meal_editor import MealEditor
from custom_components.petnet_feeder.meals import Meal, MealState
from custom_components.petnet_feeder.models import (
    PAUSE_LOG_LIMIT,
    Feeder,
    Pause,
    StoredFeedResult,
)
from custom_components.petnet_feeder.pets import (
    Pet,
    device_identifier,
    new_pet_id,
    pet_id_of_identifier,
)
from custom_components.petnet_feeder.protocol.messages import (
    SOURCE_REMOTE,
    SOURCE_SCHEDULE,
    FeedResult,
)

CHICAGO = ZoneInfo("America/Chicago")
WINDOW = timedelta(minutes=1)
TOM, REX = "aaaaaaaaaaaa", "bbbbbbbbbbbb"


def local(hhmm: str, day: int = 1) -> datetime:
    hours, minutes = hhmm.split(":")
    return datetime(2024, 6, day, int(hours), int(minutes), tzinfo=CHICAGO)


def dispensed(
    at: datetime, grams: float, source: int = SOURCE_SCHEDULE
) -> StoredFeedResult:
    start_ms = int(at.timestamp() * 1000)
    result = FeedResult.from_dict(
        {
            "device_hid": "1" * 40,
            "start_ms": start_ms,
            "end_ms": start_ms + 5000,
            "source": source,
            "grams_expected": grams,
            "grams_actual": grams,
        }
    )
    return StoredFeedResult(result=result, received_at=at.timestamp())


def feeder_with_meals() -> Feeder:
    """Breakfast (07:00) and supper (18:00) for Tom, lunch (12:00) for Rex, a snack for nobody."""
    feeder = Feeder(hid="f" * 40, gateway_hid="g" * 40)
    feeder.meals = [
        Meal(1, "Breakfast", 7 * 3600, 0.25, pet_id=TOM),
        Meal(2, "Lunch", 12 * 3600, 0.25, pet_id=REX),
        Meal(3, "Snack", 15 * 3600, 0.125),
        Meal(4, "Supper", 18 * 3600, 0.25, pet_id=TOM),
    ]
    # The meals exist since the day before.
    feeder.ledger = MealLedger(recorded_until=local("00:00").timestamp())
    return feeder


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    occurrence_cache.clear()


# ---------------------------------------------------------------------- the pet


def test_a_pet_round_trips_through_its_stored_form() -> None:
    pet = Pet(TOM, "Tom", "cat", 80.0, ["f1", "f2"])
    assert Pet.from_dict(pet.to_dict()) == pet
    assert pet.model == "Cat"
    assert Pet(REX, "Rex", "other").model == "Pet"


@pytest.mark.parametrize(
    "raw",
    [
        {"name": "Tom", "species": "cat"},
        {"pet_id": "", "name": "Tom"},
        {"pet_id": TOM, "name": ""},
        {"pet_id": TOM, "name": "Tom", "feeders": "f1"},
        {"pet_id": TOM, "name": "Tom", "feeders": [1]},
    ],
)
def test_an_unreadable_stored_pet_is_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Pet.from_dict(raw)


def test_what_can_be_mended_in_a_stored_pet_is() -> None:
    pet = Pet.from_dict(
        {
            "pet_id": TOM,
            "name": "Tom",
            "species": "axolotl",
            "target_g": -3,
            "feeders": ["f1", "f1", "f2"],
        }
    )
    assert (pet.species, pet.target_g, pet.feeders) == ("other", None, ["f1", "f2"])


def test_pet_ids_and_device_identifiers() -> None:
    ids = {new_pet_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(pet_id) == 12 and int(pet_id, 16) >= 0 for pet_id in ids)
    assert pet_id_of_identifier(device_identifier(TOM)) == TOM
    assert pet_id_of_identifier("5238b0c4ceb91b35119887f44f29cb489fcf044a") is None
    assert pet_id_of_identifier("hub_01J0000000") is None


# ---------------------------------------------------------------------- pauses


def test_a_pause_covers_its_span_and_keeps_it_once_ended() -> None:
    pause = Pause()
    assert not pause.current
    pause.start(100.0, 200.0)
    pause.start(150.0, 300.0)  # a new end; it still began at 100
    assert (pause.since, pause.until) == (100.0, 300.0)
    assert [pause.covers(t) for t in (99.0, 100.0, 299.0, 300.0)] == [
        False,
        True,
        True,
        False,
    ]
    pause.end(250.0)
    assert not pause.current
    assert pause.log == [(100.0, 250.0)]
    assert pause.covers(249.0)
    assert not pause.covers(250.0)
    assert Pause.from_dict(pause.to_dict()) == pause


def test_a_pause_ended_at_once_leaves_nothing_and_the_log_is_bounded() -> None:
    pause = Pause()
    pause.start(100.0, None)
    pause.end(100.0)
    assert pause.log == []
    for n in range(PAUSE_LOG_LIMIT + 5):
        pause.start(1000.0 * n, None)
        pause.end(1000.0 * n + 10)
    assert len(pause.log) == PAUSE_LOG_LIMIT
    assert pause.log[0] == (5000.0, 5010.0)


def test_was_paused_covers_only_the_paused_pets_meals() -> None:
    feeder = feeder_with_meals()
    at = local("06:00").timestamp()
    feeder.pause_pet(TOM, at, None)
    assert feeder.pet_paused(TOM)
    assert not feeder.pet_paused(REX)
    assert not feeder.paused
    assert feeder.was_paused(1, local("07:00"))
    assert feeder.was_paused(4, local("18:00"))
    assert not feeder.was_paused(2, local("12:00"))  # Rex's
    assert not feeder.was_paused(3, local("15:00"))  # nobody's
    assert not feeder.was_paused(1, local("05:00"))  # before the pause
    assert not feeder.was_paused(99, local("07:00"))  # no such meal
    feeder.resume_pet(TOM, local("12:00").timestamp())
    assert not feeder.pet_paused(TOM)
    assert feeder.was_paused(1, local("07:00"))  # the log keeps it
    assert not feeder.was_paused(4, local("18:00"))
    # The feeder's own pause covers every meal.
    feeder.pause(local("13:00").timestamp(), None)
    assert all(feeder.was_paused(meal_id, local("19:00")) for meal_id in (1, 2, 3, 4))


def test_pauses_round_trip_through_the_stored_feeder() -> None:
    feeder = feeder_with_meals()
    feeder.pause(100.0, 500.0)
    feeder.resume(300.0)
    feeder.pause(1000.0, None)
    feeder.pause_pet(TOM, 2000.0, 3000.0)
    stored = feeder.to_dict()
    # The feeder's own pause keeps the stored form it had before pets.
    assert (stored["paused_from"], stored["paused_until"]) == (1000.0, None)
    assert stored["pause_log"] == [[100.0, 300.0]]
    assert stored["pet_pauses"] == {TOM: {"since": 2000.0, "until": 3000.0, "log": []}}
    loaded = Feeder.from_dict(stored)
    assert loaded.feeding_pause == feeder.feeding_pause
    assert loaded.pet_pauses == feeder.pet_pauses
    assert loaded.paused and loaded.paused_until is None


def test_a_feeder_stored_before_pets_loads_with_its_pause() -> None:
    old = {
        "hid": "f" * 40,
        "gateway_hid": "g" * 40,
        "paused_from": 100.0,
        "paused_until": 900.0,
        "pause_log": [[10.0, 20.0]],
    }
    feeder = Feeder.from_dict(old)
    assert feeder.feeding_pause == Pause(100.0, 900.0, [(10.0, 20.0)])
    assert feeder.pet_pauses == {}
    with pytest.raises(ValueError):
        Feeder.from_dict({**old, "pet_pauses": {TOM: "paused"}})


# ---------------------------------------------------------------------- a pet's day


def test_a_pets_day_counts_only_its_scheduled_meals() -> None:
    feeder = feeder_with_meals()
    feeder.history = [
        dispensed(local("18:00"), 31.0),  # Tom's supper
        dispensed(local("15:00"), 15.0),  # the snack: nobody's
        dispensed(local("14:00"), 50.0, SOURCE_REMOTE),  # a Feed now: nobody's
        dispensed(local("12:00"), 28.0),  # Rex's lunch
        dispensed(local("07:00", 1), 30.0),  # Tom's breakfast
    ]
    now = local("18:30")
    tom = pet_day_totals(feeder, TOM, CHICAGO, now, WINDOW)
    assert (tom.grams, tom.meals_dispensed, tom.meals_planned) == (61.0, 2, 2)
    rex = pet_day_totals(feeder, REX, CHICAGO, now, WINDOW)
    assert (rex.grams, rex.meals_dispensed, rex.meals_planned) == (28.0, 1, 1)
    last = pet_last_fed(feeder, TOM, CHICAGO, now, WINDOW)
    assert last is not None and last.start_ms == local("18:00").timestamp() * 1000
    assert pet_last_fed(feeder, "nobody", CHICAGO, now, WINDOW) is None


def test_last_fed_looks_back_past_today() -> None:
    feeder = feeder_with_meals()
    feeder.history = [dispensed(local("07:00"), 30.0)]
    record_meals(feeder, CHICAGO, local("23:00"), WINDOW)
    # Three days later nothing of Tom's was dispensed since.
    now = local("10:00", day=4)
    record_meals(feeder, CHICAGO, now, WINDOW)
    assert pet_day_totals(feeder, TOM, CHICAGO, now, WINDOW).grams == 0.0
    last = pet_last_fed(feeder, TOM, CHICAGO, now, WINDOW)
    assert last is not None and last.start_ms == local("07:00").timestamp() * 1000


def test_a_past_occurrence_keeps_the_pet_it_had() -> None:
    feeder = feeder_with_meals()
    feeder.history = [dispensed(local("07:00"), 30.0)]
    now = local("08:00")
    record_meals(feeder, CHICAGO, now, WINDOW)
    # Breakfast is Rex's from now on: this morning's stays Tom's.
    feeder.meals = [replace(feeder.meals[0], pet_id=REX), *feeder.meals[1:]]
    assert pet_day_totals(feeder, TOM, CHICAGO, now, WINDOW).grams == 30.0
    rex = pet_day_totals(feeder, REX, CHICAGO, now, WINDOW)
    assert (rex.grams, rex.meals_planned) == (0.0, 1)  # only lunch today
    entry = feeder.ledger.entries[0]
    assert isinstance(entry, LedgerEntry) and entry.pet_id == TOM


def test_a_pet_pause_makes_its_coming_meals_paused_at_once() -> None:
    """The occurrence cache's key holds the pet pauses: no stale answer after a pause."""
    feeder = feeder_with_meals()
    now = local("08:00")
    record_meals(feeder, CHICAGO, now, WINDOW)

    def supper() -> MealState:
        found = feeder_occurrences(
            feeder, CHICAGO, local("17:00"), local("19:00"), now, WINDOW
        )
        return next(o.state for o in found if o.meal.name == "Supper")

    assert supper() is MealState.UPCOMING
    feeder.pause_pet(TOM, now.timestamp(), None)
    assert supper() is MealState.PAUSED
    feeder.resume_pet(TOM, now.timestamp() + 60)
    assert supper() is MealState.UPCOMING
    assert pet_day_totals(feeder, TOM, CHICAGO, now, WINDOW).meals_planned == 2
    feeder.pause_pet(TOM, now.timestamp() + 120, None)
    assert pet_day_totals(feeder, TOM, CHICAGO, now, WINDOW).meals_planned == 1


# ---------------------------------------------------------------------- a meal's pet


class NoSync:
    def request_sync(self, *_args: object, **_kwargs: object) -> None:
        pass


def test_a_meals_pet_is_kept_changed_or_cleared_and_its_days_stay() -> None:
    editor = MealEditor(clock=FeederClock(lambda: "UTC", 5), sync=NoSync())  # type: ignore[arg-type]
    feeder = Feeder(hid="f" * 40, gateway_hid="g" * 40)
    meal = editor.add_meal(
        feeder, name="Breakfast", time_s=7 * 3600, portion=0.25, pet_id=TOM
    )
    assert meal.pet_id == TOM
    # The meal's days (set elsewhere, as the calendar does) survive every update.
    weekdays = replace(
        feeder.meals[0],
        weekdays=frozenset({0, 2}),
        first_date=date(2030, 6, 1),
        except_dates=frozenset({date(2030, 6, 5)}),
    )
    feeder.meals = [weekdays]
    assert editor.update_meal(feeder, meal.meal_id, portion=0.5).pet_id == TOM
    assert editor.update_meal(feeder, meal.meal_id, pet_id=REX).pet_id == REX
    cleared = editor.update_meal(feeder, meal.meal_id, name="Late", pet_id=None)
    assert (cleared.name, cleared.portion, cleared.pet_id) == ("Late", 0.5, None)
    assert cleared.weekdays == frozenset({0, 2})
    assert cleared.first_date == date(2030, 6, 1)
    assert cleared.except_dates == frozenset({date(2030, 6, 5)})

    editor.update_meal(feeder, meal.meal_id, pet_id=TOM)
    editor.clear_pet(feeder, TOM)
    assert feeder.meals[0].pet_id is None
    assert feeder.meals[0].weekdays == frozenset({0, 2})
    built = editor.set_schedule(
        feeder,
        [
            {"name": "A", "time_s": 3600, "portion": 0.25, "pet_id": REX},
            {"name": "B", "time_s": 7200, "portion": 0.25},
        ],
    )
    assert [m.pet_id for m in built] == [REX, None]
