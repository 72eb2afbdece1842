"""The Kronos routes on Home Assistant's own HTTP server, for a reverse proxy in front of HA."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import HomeAssistantView

from .kronos import Handler, KronosApi, json_response


class KronosView(HomeAssistantView):
    """One Kronos route; the feeder cannot authenticate to HA, so no auth is required.

    Anyone who reaches Home Assistant could then register gateways and read a gateway's key,
    so the route answers only while the user turned the option on; otherwise it is a 404.
    """

    requires_auth = False

    def __init__(
        self, method: str, url: str, handler: Handler, enabled: Callable[[], bool]
    ) -> None:
        """Bind one HTTP method of one path to its Kronos handler."""
        self.url = url
        self.name = f"api:petnet_feeder:{method.lower()}:{url}"

        async def handle(
            request: web.Request, **_match_info: Any
        ) -> web.StreamResponse:
            if not enabled():
                return json_response({"detail": "not found"}, HTTPStatus.NOT_FOUND)
            return await handler(request)

        setattr(self, method.lower(), handle)


@callback
def async_register_views(
    hass: HomeAssistant, api: KronosApi, enabled: Callable[[], bool]
) -> None:
    """Register every Kronos route (views live as long as HA's HTTP server)."""
    for method, url, handler in api.routes():
        hass.http.register_view(KronosView(method, url, handler, enabled))
