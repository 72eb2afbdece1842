"""Kronos HTTP API (§3): the registry endpoints the feeder calls before MQTT.

The same handlers serve an embedded aiohttp site on the feeder-facing ports and, for people with
a reverse proxy, views on Home Assistant's own HTTP server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
import json
import logging
import ssl
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .const import MAX_REQUEST_BYTES
from .protocol import ids

if TYPE_CHECKING:
    from .hub import PetnetHub

_LOGGER = logging.getLogger(__name__)

API_PREFIX = "/api/v1/kronos"
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
COMMAND_STATUSES = ("received", "succeeded", "failed")
# Long enough that an oversized id reaches our handler and gets a JSON answer.
MAX_LINE_BYTES = 16 * 1024

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RegistrationError(ValueError):
    """A registration the hub refuses; the message is safe to show the caller."""


class KronosError(Exception):
    """A request that gets an error answer with a JSON `detail`."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        """Carry the HTTP status and the message for the caller."""
        super().__init__(detail)
        self.status = status
        self.detail = detail


def json_response(body: Any, status: int = HTTPStatus.OK) -> web.Response:
    """Answer with the exact content type and a Content-Length, never chunked (§2)."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": JSON_CONTENT_TYPE},
    )


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """Read a JSON object whatever the Content-Type says; refuse big bodies early."""
    if (
        request.content_length is not None
        and request.content_length > MAX_REQUEST_BYTES
    ):
        raise KronosError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
    body = bytearray()
    while chunk := await request.content.readany():
        body.extend(chunk)
        if len(body) > MAX_REQUEST_BYTES:
            raise KronosError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large"
            )
    try:
        data = json.loads(body.decode(), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise KronosError(
            HTTPStatus.UNPROCESSABLE_ENTITY, "body is not valid JSON"
        ) from err
    if not isinstance(data, dict):
        raise KronosError(HTTPStatus.UNPROCESSABLE_ENTITY, "body must be a JSON object")
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _gateway_id(request: web.Request) -> str:
    hid = request.match_info.get("gateway_hid")
    if not ids.is_safe_id(hid):
        raise KronosError(HTTPStatus.BAD_REQUEST, "invalid gateway id")
    assert hid is not None
    return hid


class KronosApi:
    """The Kronos request handlers, bound to whichever hub is loaded."""

    def __init__(self, hub_getter: Callable[[], PetnetHub | None]) -> None:
        """Look the hub up per request: the entry may be reloaded under a running server."""
        self._hub_getter = hub_getter

    def routes(self) -> list[tuple[str, str, Handler]]:
        """Method, path and handler of every Kronos route."""
        return [
            ("POST", f"{API_PREFIX}/gateways", self.register_gateway),
            (
                "GET",
                f"{API_PREFIX}/gateways/{{gateway_hid}}/config",
                self.gateway_config,
            ),
            ("PUT", f"{API_PREFIX}/gateways/{{gateway_hid}}/checkin", self.checkin),
            ("PUT", f"{API_PREFIX}/gateways/{{gateway_hid}}/heartbeat", self.heartbeat),
            (
                "POST",
                f"{API_PREFIX}/gateways/{{gateway_hid}}/errors",
                self.gateway_error,
            ),
            ("POST", f"{API_PREFIX}/devices", self.register_device),
            ("PUT", "/api/v1/core/events/{command_hid}/{status}", self.command_event),
        ]

    def _hub(self) -> PetnetHub:
        if (hub := self._hub_getter()) is None:
            raise KronosError(HTTPStatus.SERVICE_UNAVAILABLE, "not ready")
        return hub

    async def _answer(self, work: Callable[[], Awaitable[Any]]) -> web.Response:
        try:
            return json_response(await work())
        except KronosError as err:
            return json_response({"detail": err.detail}, err.status)

    async def register_gateway(self, request: web.Request) -> web.Response:
        """POST /gateways (§3.1)."""

        async def work() -> dict[str, Any]:
            hub = self._hub()
            body = await read_json_object(request)
            try:
                hid, created = hub.register_gateway(body)
            except RegistrationError as err:
                raise KronosError(HTTPStatus.BAD_REQUEST, str(err)) from err
            return {
                "hid": hid,
                "message": "OK" if created else "gateway is already registered",
            }

        return await self._answer(work)

    async def gateway_config(self, request: web.Request) -> web.Response:
        """GET /gateways/{gw}/config (§3.2): hands out the MQTT key."""

        async def work() -> dict[str, Any]:
            hub = self._hub()
            hid = _gateway_id(request)
            if (api_key := hub.gateway_api_key(hid)) is None:
                raise KronosError(
                    HTTPStatus.BAD_REQUEST, f"Unregistered Gateway ({hid})"
                )
            return {
                "cloudPlatform": "IoTConnect",
                "key": {"apiKey": api_key, "secretKey": ids.SECRET_KEY},
            }

        return await self._answer(work)

    async def register_device(self, request: web.Request) -> web.Response:
        """POST /devices (§3.3): always answers "already registered"."""

        async def work() -> dict[str, Any]:
            hub = self._hub()
            body = await read_json_object(request)
            try:
                hid = hub.register_device(body)
            except RegistrationError as err:
                status = (
                    HTTPStatus.UNPROCESSABLE_ENTITY
                    if "gatewayHid" in str(err)
                    else HTTPStatus.BAD_REQUEST
                )
                raise KronosError(status, str(err)) from err
            return {
                "hid": hid,
                "links": {},
                "message": "device is already registered",
                "pri": ids.device_pri(hid),
            }

        return await self._answer(work)

    async def checkin(self, request: web.Request) -> web.Response:
        """PUT /gateways/{gw}/checkin (§3.4): creates an unknown gateway."""

        async def work() -> dict[str, Any]:
            hub = self._hub()
            hub.checkin(_gateway_id(request))
            return {}

        return await self._answer(work)

    async def heartbeat(self, request: web.Request) -> web.Response:
        """PUT /gateways/{gw}/heartbeat (§3.5): liveness."""

        async def work() -> dict[str, Any]:
            hub = self._hub()
            hid = _gateway_id(request)
            if not hub.gateway_heard_over_http(hid):
                raise KronosError(
                    HTTPStatus.BAD_REQUEST, f"Unregistered Gateway ({hid})"
                )
            return {}

        return await self._answer(work)

    async def gateway_error(self, request: web.Request) -> web.Response:
        """POST /gateways/{gw}/errors (§3.5): the feeder reports a problem; log it."""

        async def work() -> dict[str, Any]:
            hub = self._hub()
            hid = _gateway_id(request)
            body = await read_json_object(request)
            if hid in hub.gateways:
                _LOGGER.warning(
                    "Feeder gateway %s reports an error: %.200s", hid, body.get("error")
                )
            return {}

        return await self._answer(work)

    async def command_event(self, request: web.Request) -> web.Response:
        """PUT /api/v1/core/events/{cmd}/{status} (§3.5): command delivery reports."""

        async def work() -> dict[str, Any]:
            hub = self._hub()
            command_hid = request.match_info.get("command_hid")
            status = request.match_info.get("status")
            if not ids.is_safe_id(command_hid) or status not in COMMAND_STATUSES:
                raise KronosError(HTTPStatus.NOT_FOUND, "not found")
            assert command_hid is not None
            hub.record_command_status(command_hid, status)
            return {}

        return await self._answer(work)

    async def catch_all(self, request: web.Request) -> web.Response:
        """Other PUT/POST under /api/v1/ get 200 {} (§3.5); anything else 404."""
        if request.method in ("PUT", "POST") and request.path.startswith("/api/v1/"):
            _LOGGER.debug(
                "Unhandled Kronos call %s %.200s", request.method, request.path
            )
            return json_response({})
        return json_response({"detail": "not found"}, HTTPStatus.NOT_FOUND)


class _ClientErrorLogger(logging.LoggerAdapter[logging.Logger]):
    """aiohttp logs a malformed request with a traceback; that is the client's fault."""

    def exception(
        self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any
    ) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self.logger.debug("Refused a malformed HTTP request: %s", exc_info.message)
            return
        self.logger.error(msg, *args, exc_info=exc_info, **kwargs)


class KronosServer:
    """The embedded Kronos site on the HTTP and HTTPS ports the feeder reaches."""

    def __init__(
        self,
        api: KronosApi,
        *,
        host: str,
        http_port: int | None,
        https_port: int | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        """Prepare the site; nothing listens until async_start."""
        self._api = api
        self._host = host
        self._http_port = http_port
        self._https_port = https_port
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        for method, path, handler in self._api.routes():
            app.router.add_route(method, path, handler)
        app.router.add_route("*", "/{tail:.*}", self._api.catch_all)
        return app

    async def async_start(self) -> None:
        """Listen on the configured ports; OSError names a port that cannot be bound."""
        runner = web.AppRunner(
            self._app(),
            access_log=None,
            handle_signals=False,
            logger=_ClientErrorLogger(_LOGGER),
            max_line_size=MAX_LINE_BYTES,
        )
        await runner.setup()
        self._runner = runner
        try:
            if self._http_port:
                await self._start_site(runner, self._http_port, None)
            if self._https_port:
                await self._start_site(runner, self._https_port, self._ssl_context)
        except OSError:
            await self.async_stop()
            raise

    async def _start_site(
        self, runner: web.AppRunner, port: int, ssl_context: ssl.SSLContext | None
    ) -> None:
        site = web.TCPSite(
            runner, self._host, port, ssl_context=ssl_context, reuse_address=True
        )
        try:
            await site.start()
        except OSError as err:
            raise OSError(
                err.errno, f"Kronos port {port} cannot be bound: {err.strerror}"
            ) from err

    async def async_stop(self) -> None:
        """Close every listener and open connection."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
