"""Actions of the integration, registered once in async_setup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, time as dt_time, timedelta
from typing import Any, cast

from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util import dt as dt_util
from homeassistant.util.json import JsonValueType
import voluptuous as vol

from .accounting import feeder_occurrences
from .const import (
    ATTR_DURATION,
    ATTR_PORTION,
    ATTR_UNTIL,
    DOMAIN,
    HISTORY_LIMIT,
    MAX_PAIRING_WINDOW_MINUTES,
    SERVICE_ACCEPT_NEW_FEEDERS,
    SERVICE_FEED,
)
from .entity import feeder_hid_of, pet_id_of
from .errors import invalid
from .hub import PetnetHub
from .ledger import LEDGER_DAYS
from .meals import Meal
from .models import Feeder
from .monitor import source_name
from .pets import Pet
from .protocol.commands import MAX_PORTION, MIN_PORTION
from .protocol.messages import FeedResult
from .translate import ha_errors

ATTR_MEAL_ID = "meal_id"
ATTR_NAME = "name"
ATTR_TIME = "time"
ATTR_ENABLED = "enabled"
ATTR_WEEKDAYS = "weekdays"
ATTR_DATE = "date"
# The weekday codes of the actions, Monday first (as date.weekday() counts).
WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ATTR_MEALS = "meals"
ATTR_TIME_ZONE = "time_zone"
ATTR_GRAMS = "grams"
ATTR_LEVEL = "level"
ATTR_LIMIT = "limit"
ATTR_PET = "pet"
ATTR_SPECIES = "species"
ATTR_TARGET_G = "target_g"
ATTR_FEEDERS = "feeders"

PORTION = vol.All(vol.Coerce(float), vol.Range(min=MIN_PORTION, max=MAX_PORTION))
GRAMS = vol.All(vol.Coerce(float), vol.Range(min=0.5, max=2000))
MEAL_NAME = vol.All(cv.string, vol.Length(min=1, max=64))
DEVICE: dict[vol.Marker, Any] = {vol.Required(ATTR_DEVICE_ID): cv.string}
# A portion in cups, or grams (converted with the feeder's recipe): one or the other.
AMOUNT: dict[vol.Marker, Any] = {
    vol.Exclusive(ATTR_PORTION, "amount"): PORTION,
    vol.Exclusive(ATTR_GRAMS, "amount"): GRAMS,
}
WEEKDAYS = vol.All(cv.ensure_list, [vol.In(WEEKDAY_CODES)])
# Which days a meal happens on: chosen weekdays (none: every day), or one date.
MEAL_DAYS: dict[vol.Marker, Any] = {
    vol.Exclusive(ATTR_WEEKDAYS, "days"): WEEKDAYS,
    vol.Exclusive(ATTR_DATE, "days"): cv.date,
}
MEAL_FIELDS: dict[vol.Marker, Any] = {
    **MEAL_DAYS,
    vol.Required(ATTR_NAME): MEAL_NAME,
    vol.Required(ATTR_TIME): cv.time,
    **AMOUNT,
    vol.Optional(ATTR_ENABLED, default=True): cv.boolean,
    # The pet's device; the pet must be fed by the meal's feeder.
    vol.Optional(ATTR_PET): cv.string,
}
# Names, species and targets are checked by the pet editor, whose refusals are translated.
PET_FIELDS: dict[vol.Marker, Any] = {
    vol.Optional(ATTR_TARGET_G): vol.Any(None, vol.Coerce(float)),
    vol.Optional(ATTR_FEEDERS): vol.All(cv.ensure_list, [cv.string]),
}
ADD_PET_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_NAME): cv.string,
        vol.Required(ATTR_SPECIES): cv.string,
        **PET_FIELDS,
    }
)
UPDATE_PET_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_PET): cv.string,
        vol.Optional(ATTR_NAME): cv.string,
        vol.Optional(ATTR_SPECIES): cv.string,
        **PET_FIELDS,
    }
)
REMOVE_PET_SCHEMA = vol.Schema({vol.Required(ATTR_PET): cv.string})

FEED_SCHEMA = vol.Schema({**DEVICE, **AMOUNT})
# No duration: the configured window length; 0 closes the window.
ACCEPT_NEW_FEEDERS_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_DURATION): vol.All(
            cv.time_period,
            vol.Range(
                min=timedelta(0), max=timedelta(minutes=MAX_PAIRING_WINDOW_MINUTES)
            ),
        )
    }
)
HOPPER_SCHEMA = vol.Schema(
    {
        **DEVICE,
        vol.Required(ATTR_LEVEL): vol.All(vol.Coerce(float), vol.Range(min=0, max=100)),
    }
)
HISTORY_SCHEMA = vol.Schema(
    {
        **DEVICE,
        vol.Optional(ATTR_LIMIT, default=20): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=HISTORY_LIMIT)
        ),
    }
)
PAUSE_SCHEMA = vol.Schema({**DEVICE, vol.Optional(ATTR_UNTIL): cv.datetime})
ADD_MEAL_SCHEMA = vol.Schema({**DEVICE, **MEAL_FIELDS})
UPDATE_MEAL_SCHEMA = vol.Schema(
    {
        **DEVICE,
        vol.Required(ATTR_MEAL_ID): vol.Coerce(int),
        vol.Optional(ATTR_NAME): MEAL_NAME,
        vol.Optional(ATTR_TIME): cv.time,
        **AMOUNT,
        vol.Optional(ATTR_ENABLED): cv.boolean,
        **MEAL_DAYS,
        # None takes the meal's pet away.
        vol.Optional(ATTR_PET): vol.Any(None, cv.string),
    }
)
REMOVE_MEAL_SCHEMA = vol.Schema({**DEVICE, vol.Required(ATTR_MEAL_ID): vol.Coerce(int)})
SET_SCHEDULE_SCHEMA = vol.Schema(
    {
        **DEVICE,
        vol.Required(ATTR_MEALS): vol.All(cv.ensure_list, [vol.Schema(MEAL_FIELDS)]),
    }
)
DEVICE_SCHEMA = vol.Schema(DEVICE)
TIME_ZONE_SCHEMA = vol.Schema(
    {**DEVICE, vol.Optional(ATTR_TIME_ZONE): vol.Any(None, cv.string)}
)


def resolve_feeder(hass: HomeAssistant, device_id: str) -> tuple[PetnetHub, Feeder]:
    """Find the loaded hub and the feeder behind an HA device id."""
    device = dr.async_get(hass).async_get(device_id)
    hid = feeder_hid_of(device)
    entries = hass.config_entries.async_loaded_entries(DOMAIN)
    if hid is None or not entries:
        raise invalid("unknown_feeder", feeder=_device_name(device, device_id))
    hub: PetnetHub = entries[0].runtime_data
    return hub, hub.state.feeder(hid)


def resolve_pet(hass: HomeAssistant, device_id: str) -> tuple[PetnetHub, Pet]:
    """Find the loaded hub and the pet behind an HA device id."""
    device = dr.async_get(hass).async_get(device_id)
    pet_id = pet_id_of(device)
    entries = hass.config_entries.async_loaded_entries(DOMAIN)
    if pet_id is None or not entries:
        raise invalid("unknown_pet", pet=_device_name(device, device_id))
    hub: PetnetHub = entries[0].runtime_data
    if (pet := hub.state.pets.get(pet_id)) is None:
        raise invalid("unknown_pet", pet=_device_name(device, device_id))
    return hub, pet


def resolve_feeder_or_pet(
    hass: HomeAssistant, device_id: str
) -> tuple[PetnetHub, Feeder | Pet]:
    """Find the feeder or the pet behind an HA device id (what pausing takes)."""
    device = dr.async_get(hass).async_get(device_id)
    if pet_id_of(device) is not None:
        return resolve_pet(hass, device_id)
    if feeder_hid_of(device) is None:
        raise invalid("unknown_feeder_or_pet", device=_device_name(device, device_id))
    return resolve_feeder(hass, device_id)


def _device_name(device: dr.DeviceEntry | None, device_id: str) -> str:
    """How a refusal names a device: as the user sees it, else by its id."""
    if device is None:
        return device_id
    return device.name_by_user or device.name or device_id


def _device_id(hass: HomeAssistant, identifier: str) -> str | None:
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, identifier)})
    return device.id if device is not None else None


def _meal_pet(
    hass: HomeAssistant, hub: PetnetHub, feeder: Feeder, pet_device: str | None
) -> str | None:
    """The pet id a meal of ``feeder`` gets from the action's ``pet`` (a pet's device)."""
    if pet_device is None:
        return None
    _, pet = resolve_pet(hass, pet_device)
    return hub.pets.pet_for_meal(pet, feeder)


def _pet_name(hub: PetnetHub, pet_id: str | None) -> str | None:
    pet = hub.state.pets.get(pet_id) if pet_id is not None else None
    return pet.name if pet is not None else None


def pet_response(hass: HomeAssistant, hub: PetnetHub, pet: Pet) -> dict[str, Any]:
    """A pet as the pet actions return it; ``device_id`` is what the other actions take."""
    view = hub.pet_view(pet.pet_id)
    return {
        ATTR_DEVICE_ID: hub.pet_device_id(pet.pet_id),
        "pet_id": pet.pet_id,
        ATTR_NAME: pet.name,
        ATTR_SPECIES: pet.species,
        ATTR_TARGET_G: pet.target_g,
        ATTR_FEEDERS: [_device_id(hass, hid) for hid in pet.feeders],
        "paused": view.paused,
    }


def _portion(
    hub: PetnetHub,
    feeder: Feeder,
    data: Mapping[str, Any],
    default: float | None = None,
) -> float:
    """The portion in cups, given in cups or (with a recipe) in grams, else the default."""
    if ATTR_GRAMS in data:
        return hub.actions.cups_for_grams(feeder.hid, data[ATTR_GRAMS])
    if ATTR_PORTION in data:
        return float(data[ATTR_PORTION])
    if default is not None:
        return default
    raise invalid("amount_needed")


def feed_history(hub: PetnetHub, feeder: Feeder, limit: int) -> list[dict[str, Any]]:
    """The newest feed results with the meal each one was matched to."""
    rows = []
    for row in feeder.history[:limit]:
        result = row.result
        occurrence = hub.monitor.occurrence_of(feeder, result)
        rows.append(
            {
                "start": dt_util.utc_from_timestamp(result.start_ms / 1000).isoformat(),
                "end": dt_util.utc_from_timestamp(result.end_ms / 1000).isoformat()
                if result.end_ms
                else None,
                "source": source_name(result.source),
                "grams_expected": result.grams_expected,
                "grams_actual": result.grams_actual,
                "failed": bool(result.fail),
                "error": result.error or None,
                "meal": occurrence.meal.name if occurrence else None,
                "meal_id": occurrence.meal.meal_id if occurrence else None,
                "status": occurrence.state.value
                if occurrence
                else ("failed" if result.fail else "dispensed"),
            }
        )
    return rows


def meal_history(hub: PetnetHub, feeder: Feeder, limit: int) -> list[dict[str, Any]]:
    """The newest meal occurrences that were due, from the ledger, newest first."""
    now = dt_util.utcnow()
    due = feeder_occurrences(
        feeder,
        hub.clock.zone(feeder),
        now - timedelta(days=LEDGER_DAYS),
        now + timedelta(seconds=1),
        now,
        hub.clock.window,
    )
    rows = []
    for occurrence in reversed(due[-limit:]):
        meal, result = occurrence.meal, occurrence.result
        entry = feeder.ledger.entry(meal.meal_id, occurrence.target)
        rows.append(
            {
                "meal": meal.name,
                "meal_id": meal.meal_id,
                "scheduled": occurrence.target.astimezone(UTC).isoformat(),
                "portion": meal.portion,
                ATTR_PET: _pet_name(hub, meal.pet_id),
                "status": occurrence.state.value,
                "missed_reason": entry.missed_reason if entry else None,
                "started": dt_util.utc_from_timestamp(
                    result.start_ms / 1000
                ).isoformat()
                if result
                else None,
                "grams_expected": result.grams_expected if result else None,
                "grams_actual": result.grams_actual if result else None,
                "error": (result.error or None) if result and result.fail else None,
            }
        )
    return rows


def feed_response(result: FeedResult | None) -> dict[str, Any]:
    """What the feed action returns: the feeder's report, or that none came in time."""
    if result is None:
        return {"status": "no_report"}
    return {
        "status": "failed" if result.fail else "dispensed",
        "started": dt_util.utc_from_timestamp(result.start_ms / 1000).isoformat(),
        "grams_expected": result.grams_expected,
        "grams_actual": result.grams_actual,
        "error": (result.error or None) if result.fail else None,
    }


def _seconds(value: dt_time) -> int:
    return value.hour * 3600 + value.minute * 60


def meal_days(data: Mapping[str, Any]) -> dict[str, Any]:
    """The day fields of a meal from an action's weekdays or date (none given: none)."""
    if (day := data.get(ATTR_DATE)) is not None:
        return {"weekdays": None, "first_date": day, "last_date": day}
    if (codes := data.get(ATTR_WEEKDAYS)) is not None:
        weekdays = frozenset(WEEKDAY_CODES.index(code) for code in codes)
        return {
            "weekdays": weekdays if weekdays and len(weekdays) < 7 else None,
            "first_date": None,
            "last_date": None,
        }
    return {}


def meal_response(meal: Meal, pets: Mapping[str, Pet] | None = None) -> dict[str, Any]:
    """A meal as actions return it: its weekdays or date, and its pet's name, where set."""
    response: dict[str, Any] = {
        ATTR_MEAL_ID: meal.meal_id,
        ATTR_NAME: meal.name,
        ATTR_TIME: f"{meal.time_s // 3600:02d}:{meal.time_s // 60 % 60:02d}",
        ATTR_PORTION: meal.portion,
        ATTR_ENABLED: meal.enabled,
    }
    if meal.weekdays is not None:
        response[ATTR_WEEKDAYS] = [WEEKDAY_CODES[day] for day in sorted(meal.weekdays)]
    if meal.is_one_off and meal.first_date is not None:
        response[ATTR_DATE] = meal.first_date.isoformat()
    else:
        for key in ("first_date", "last_date"):
            if (bound := getattr(meal, key)) is not None:
                response[key] = bound.isoformat()
    if meal.pet_id is not None and (pet := (pets or {}).get(meal.pet_id)):
        response[ATTR_PET] = pet.name
    return response


def _schedule_response(hub: PetnetHub, feeder: Feeder) -> dict[str, Any]:
    return {ATTR_MEALS: [meal_response(meal, hub.state.pets) for meal in feeder.meals]}


@callback
def async_register_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""

    def register(
        name: str,
        schema: vol.Schema,
        handler: Callable[[PetnetHub, Feeder, ServiceCall], Awaitable[ServiceResponse]],
        response: SupportsResponse = SupportsResponse.NONE,
    ) -> None:
        async def call(service_call: ServiceCall) -> ServiceResponse:
            with ha_errors():
                hub, feeder = resolve_feeder(hass, service_call.data[ATTR_DEVICE_ID])
                result = await handler(hub, feeder, service_call)
            return result if service_call.return_response else None

        hass.services.async_register(
            DOMAIN, name, call, schema=schema, supports_response=response
        )

    def register_pets(
        name: str,
        schema: vol.Schema,
        handler: Callable[[ServiceCall], Awaitable[ServiceResponse]],
        response: SupportsResponse = SupportsResponse.NONE,
    ) -> None:
        """An action whose devices (pets, or feeders and pets) the handler resolves."""

        async def call(service_call: ServiceCall) -> ServiceResponse:
            with ha_errors():
                result = await handler(service_call)
            return result if service_call.return_response else None

        hass.services.async_register(
            DOMAIN, name, call, schema=schema, supports_response=response
        )

    async def feed(
        hub: PetnetHub, feeder: Feeder, call: ServiceCall
    ) -> ServiceResponse:
        # Neither portion nor grams: what the feed-now button would dispense.
        portion = _portion(hub, feeder, call.data, hub.actions.manual_portion(feeder))
        if not call.return_response:
            await hub.actions.async_feed(feeder.hid, portion)
            return None
        # With a response: wait (about a minute at most) for the feeder's report.
        return feed_response(await hub.monitor.async_feed_and_wait(feeder.hid, portion))

    async def set_hopper_level(
        hub: PetnetHub, feeder: Feeder, call: ServiceCall
    ) -> None:
        hub.actions.set_hopper_level(feeder.hid, call.data[ATTR_LEVEL])

    async def get_feed_history(
        hub: PetnetHub, feeder: Feeder, call: ServiceCall
    ) -> ServiceResponse:
        limit = call.data[ATTR_LIMIT]
        return {
            "results": cast("list[JsonValueType]", feed_history(hub, feeder, limit)),
            "meals": cast("list[JsonValueType]", meal_history(hub, feeder, limit)),
        }

    async def add_meal(
        hub: PetnetHub, feeder: Feeder, call: ServiceCall
    ) -> ServiceResponse:
        meal = hub.meal_editor.add_meal(
            feeder,
            name=call.data[ATTR_NAME],
            time_s=_seconds(call.data[ATTR_TIME]),
            # Neither portion nor grams: the default portion, as in the calendar.
            portion=_portion(hub, feeder, call.data, hub.settings.default_portion),
            enabled=call.data[ATTR_ENABLED],
            **meal_days(call.data),
            pet_id=_meal_pet(hass, hub, feeder, call.data.get(ATTR_PET)),
        )
        return meal_response(meal, hub.state.pets)

    async def update_meal(
        hub: PetnetHub, feeder: Feeder, call: ServiceCall
    ) -> ServiceResponse:
        # Given (a pet, or None to take it away) or left as it is.
        pet: dict[str, str | None] = (
            {"pet_id": _meal_pet(hass, hub, feeder, call.data[ATTR_PET])}
            if ATTR_PET in call.data
            else {}
        )
        meal = hub.meal_editor.update_meal(
            feeder,
            call.data[ATTR_MEAL_ID],
            name=call.data.get(ATTR_NAME),
            time_s=_seconds(call.data[ATTR_TIME]) if ATTR_TIME in call.data else None,
            portion=_portion(hub, feeder, call.data)
            if ATTR_PORTION in call.data or ATTR_GRAMS in call.data
            else None,
            enabled=call.data.get(ATTR_ENABLED),
            **meal_days(call.data),
            **pet,
        )
        return meal_response(meal, hub.state.pets)

    async def remove_meal(
        hub: PetnetHub, feeder: Feeder, call: ServiceCall
    ) -> ServiceResponse:
        hub.meal_editor.remove_meal(feeder, call.data[ATTR_MEAL_ID])
        return _schedule_response(hub, feeder)

    async def set_schedule(
        hub: PetnetHub, feeder: Feeder, call: ServiceCall
    ) -> ServiceResponse:
        hub.meal_editor.set_schedule(
            feeder,
            [
                {
                    "name": meal[ATTR_NAME],
                    "time_s": _seconds(meal[ATTR_TIME]),
                    "portion": _portion(
                        hub, feeder, meal, hub.settings.default_portion
                    ),
                    "enabled": meal[ATTR_ENABLED],
                    **meal_days(meal),
                    "pet_id": _meal_pet(hass, hub, feeder, meal.get(ATTR_PET)),
                }
                for meal in call.data[ATTR_MEALS]
            ],
        )
        return _schedule_response(hub, feeder)

    async def skip_next_meal(
        hub: PetnetHub, feeder: Feeder, call: ServiceCall
    ) -> ServiceResponse:
        meal, target = hub.meal_editor.skip_next_meal(feeder)
        return {**meal_response(meal, hub.state.pets), "skipped": target.isoformat()}

    async def pause_feeding(call: ServiceCall) -> ServiceResponse:
        hub, target = resolve_feeder_or_pet(hass, call.data[ATTR_DEVICE_ID])
        until = call.data.get(ATTR_UNTIL)
        end = (
            hub.pauses.pause_pet(target, until)
            if isinstance(target, Pet)
            else hub.pauses.pause(target, until)
        )
        return {ATTR_UNTIL: end.isoformat() if end is not None else None}

    async def resume_feeding(call: ServiceCall) -> None:
        hub, target = resolve_feeder_or_pet(hass, call.data[ATTR_DEVICE_ID])
        if isinstance(target, Pet):
            hub.pauses.resume_pet(target)
        else:
            hub.pauses.resume(target)

    async def add_pet(call: ServiceCall) -> ServiceResponse:
        feeders = [
            resolve_feeder(hass, device)[1]
            for device in call.data.get(ATTR_FEEDERS, [])
        ]
        hub = _loaded_hub()
        pet = hub.pets.add_pet(
            name=call.data[ATTR_NAME],
            species=call.data[ATTR_SPECIES],
            target_g=call.data.get(ATTR_TARGET_G),
            feeders=feeders,
        )
        return pet_response(hass, hub, pet)

    async def update_pet(call: ServiceCall) -> ServiceResponse:
        hub, pet = resolve_pet(hass, call.data[ATTR_PET])
        changes: dict[str, Any] = {
            key: call.data[key]
            for key in (ATTR_NAME, ATTR_SPECIES, ATTR_TARGET_G)
            if key in call.data
        }
        if ATTR_FEEDERS in call.data:
            changes[ATTR_FEEDERS] = [
                resolve_feeder(hass, device)[1] for device in call.data[ATTR_FEEDERS]
            ]
        return pet_response(hass, hub, hub.pets.update_pet(pet, changes))

    async def remove_pet(call: ServiceCall) -> None:
        hub, pet = resolve_pet(hass, call.data[ATTR_PET])
        hub.pets.remove_pet(pet)

    def _loaded_hub() -> PetnetHub:
        entries = hass.config_entries.async_loaded_entries(DOMAIN)
        if not entries:
            raise invalid("not_loaded")
        hub: PetnetHub = entries[0].runtime_data
        return hub

    async def sync_schedule(hub: PetnetHub, feeder: Feeder, call: ServiceCall) -> None:
        hub.actions.sync_schedule(feeder.hid)

    async def set_time_zone(hub: PetnetHub, feeder: Feeder, call: ServiceCall) -> None:
        hub.meal_editor.set_time_zone(feeder, call.data.get(ATTR_TIME_ZONE) or None)

    async def accept_new_feeders(call: ServiceCall) -> None:
        entries = hass.config_entries.async_loaded_entries(DOMAIN)
        if not entries:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="not_loaded"
            )
        hub: PetnetHub = entries[0].runtime_data
        duration: timedelta | None = call.data.get(ATTR_DURATION)
        if duration is None:
            duration = timedelta(minutes=hub.settings.pairing_window_minutes)
        hub.registrations.open_window(duration.total_seconds())

    # Opening the window lets any feeder in: administrators only, like HA's own.
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_ACCEPT_NEW_FEEDERS,
        accept_new_feeders,
        ACCEPT_NEW_FEEDERS_SCHEMA,
    )
    register(SERVICE_FEED, FEED_SCHEMA, feed, SupportsResponse.OPTIONAL)
    register("set_hopper_level", HOPPER_SCHEMA, set_hopper_level)
    register(
        "get_feed_history", HISTORY_SCHEMA, get_feed_history, SupportsResponse.ONLY
    )
    register("add_meal", ADD_MEAL_SCHEMA, add_meal, SupportsResponse.OPTIONAL)
    register("update_meal", UPDATE_MEAL_SCHEMA, update_meal, SupportsResponse.OPTIONAL)
    register("remove_meal", REMOVE_MEAL_SCHEMA, remove_meal, SupportsResponse.OPTIONAL)
    register(
        "set_schedule", SET_SCHEDULE_SCHEMA, set_schedule, SupportsResponse.OPTIONAL
    )
    register("skip_next_meal", DEVICE_SCHEMA, skip_next_meal, SupportsResponse.OPTIONAL)
    register_pets(
        "pause_feeding", PAUSE_SCHEMA, pause_feeding, SupportsResponse.OPTIONAL
    )
    register_pets("resume_feeding", DEVICE_SCHEMA, resume_feeding)
    register_pets("add_pet", ADD_PET_SCHEMA, add_pet, SupportsResponse.OPTIONAL)
    register_pets(
        "update_pet", UPDATE_PET_SCHEMA, update_pet, SupportsResponse.OPTIONAL
    )
    register_pets("remove_pet", REMOVE_PET_SCHEMA, remove_pet)
    register("sync_schedule", DEVICE_SCHEMA, sync_schedule)
    register("set_time_zone", TIME_ZONE_SCHEMA, set_time_zone)
