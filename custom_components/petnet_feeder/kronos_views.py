"""The Kronos routes on Home Assistant's own HTTP server, for a reverse proxy in front of HA."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from homeassistant.components.http import HomeAssistantView
from homeassistant.core import HomeAssistant, callback

from .kronos import Handler, KronosApi


class KronosView(HomeAssistantView):
    """One Kronos route; the feeder cannot authenticate to HA, so no auth is required."""

    requires_auth = False

    def __init__(self, method: str, url: str, handler: Handler) -> None:
        """Bind one HTTP method of one path to its Kronos handler."""
        self.url = url
        self.name = f"api:petnet_feeder:{method.lower()}:{url}"

        async def handle(
            request: web.Request, **_match_info: Any
        ) -> web.StreamResponse:
            return await handler(request)

        setattr(self, method.lower(), handle)


@callback
def async_register_views(hass: HomeAssistant, api: KronosApi) -> None:
    """Register every Kronos route (views live as long as HA's HTTP server)."""
    for method, url, handler in api.routes():
        hass.http.register_view(KronosView(method, url, handler))
