"""Reading a calendar entity's events as HA's calendar.get_events action returns them."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant


async def get_events(
    hass: HomeAssistant, calendar: str, start: str, end: str
) -> list[dict[str, Any]]:
    response = await hass.services.async_call(
        "calendar",
        "get_events",
        {"entity_id": calendar, "start_date_time": start, "end_date_time": end},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    events: list[dict[str, Any]] = response[calendar]["events"]  # type: ignore[index,assignment]
    return events
