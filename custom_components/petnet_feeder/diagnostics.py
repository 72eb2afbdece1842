"""Diagnostics of the integration and of one feeder, with keys and uids redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import CONF_SSL_KEY
from .entity import feeder_hid_of, is_hub_device, pet_id_of
from .hub import PetnetConfigEntry, PetnetHub
from .models import Feeder
from .pets import Pet

TO_REDACT = {"api_key", "apiKey", "uid", CONF_SSL_KEY, "password"}
HISTORY_ROWS = 20


def _feeder(hub: PetnetHub, feeder: Feeder) -> dict[str, Any]:
    view = hub.view(feeder)
    data = feeder.to_dict()
    data["history"] = [row.to_dict() for row in feeder.history[:HISTORY_ROWS]]
    data["history_total"] = len(feeder.history)
    # The newest meal occurrences and their outcome: what "Was my pet fed?" rests on.
    data["ledger"] = [
        entry.to_dict() for entry in feeder.ledger.entries[-HISTORY_ROWS:]
    ]
    data["ledger_recorded_until"] = feeder.ledger.recorded_until
    data["online"] = view.online
    data["connected"] = view.connected
    data["schedule_in_sync"] = view.in_sync
    data["uses_new_schedule_api"] = view.uses_new_api
    data["time_zone_used"] = str(view.zone)
    return async_redact_data(data, TO_REDACT)


def _pet(hub: PetnetHub, pet: Pet) -> dict[str, Any]:
    """A pet: who it is, which feeders feed it, whether it is paused (nothing secret)."""
    view = hub.pet_view(pet.pet_id)
    until = view.paused_until
    return {
        **pet.to_dict(),
        "paused": view.paused,
        "paused_until": until.isoformat() if until is not None else None,
    }


def _pairing(hub: PetnetHub) -> dict[str, Any]:
    """The pairing window and the gateways that wait for the owner (no keys exist for them)."""
    registrations = hub.registrations
    ends = registrations.window_ends
    return {
        "window_open": registrations.window_open,
        "window_ends": ends.isoformat() if ends else None,
        "waiting": sorted(registrations.pending),
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PetnetConfigEntry
) -> dict[str, Any]:
    """Everything the hub knows, secrets removed."""
    hub = entry.runtime_data
    return {
        "entry": async_redact_data({**entry.data, **entry.options}, TO_REDACT),
        "gateways": {
            hid: async_redact_data(gw.to_dict(), TO_REDACT)
            for hid, gw in hub.state.gateways.items()
        },
        "feeders": {
            hid: _feeder(hub, feeder) for hid, feeder in hub.state.feeders.items()
        },
        "pets": {pet_id: _pet(hub, pet) for pet_id, pet in hub.state.pets.items()},
        "pairing": _pairing(hub),
    }


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: PetnetConfigEntry, device: dr.DeviceEntry
) -> dict[str, Any]:
    """One feeder and its gateway, secrets removed; pairing for the hub's own device; a pet."""
    hub = entry.runtime_data
    if is_hub_device(entry, device):
        return {"pairing": _pairing(hub)}
    if (pet_id := pet_id_of(device)) is not None:
        pet = hub.state.pets.get(pet_id)
        return {"pet": _pet(hub, pet) if pet is not None else None}
    feeder = hub.state.feeders[feeder_hid_of(device) or ""]
    gateway = hub.state.gateways.get(feeder.gateway_hid)
    return {
        "feeder": _feeder(hub, feeder),
        "gateway": async_redact_data(gateway.to_dict(), TO_REDACT) if gateway else None,
    }
