"""Kronos HTTP API (§3): the registry endpoints the feeder calls before MQTT.

The same handlers serve an embedded aiohttp site on the feeder-facing ports and, for people with
a reverse proxy, views on Home Assistant's own HTTP server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus
import json
import logging
import math
import os
import ssl
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from .const import MAX_REQUEST_BYTES
from .protocol import ids
from .registry import (
    GatewayRegistry,
    RefusalKind,
    RegistrationError,
    RegistrationLimitError,
    RegistrationPendingError,
)
from .tls_listener import tls_protocol_factory

_LOGGER = logging.getLogger(__name__)

API_PREFIX = "/api/v1/kronos"
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
COMMAND_STATUSES = ("received", "succeeded", "failed")
# Long enough that an oversized id reaches our handler and gets a JSON answer.
MAX_LINE_BYTES = 16 * 1024
# Slow or idle clients (slow-loris): a connection must deliver its first request line and
# headers within REQUEST_HEADER_TIMEOUT of being accepted (TLS handshake included), a body within
# BODY_READ_TIMEOUT, and an idle keep-alive connection is closed after KEEPALIVE_TIMEOUT (a
# request that trickles in after a first one is bound by the same keep-alive timer). Feeder
# requests are a few hundred bytes.
REQUEST_HEADER_TIMEOUT = 15.0
BODY_READ_TIMEOUT = 15.0
KEEPALIVE_TIMEOUT = 15.0

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The gateway a request is about when its path does not name it (registrations), for the log.
_GATEWAY_KEY = "petnet_feeder_gateway"


class KronosError(Exception):
    """A request that gets an error answer with a JSON `detail`."""

    def __init__(
        self,
        status: HTTPStatus,
        detail: str,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Carry the status, the message, extra headers and a body other than {detail}."""
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.body = body if body is not None else {"detail": detail}


def json_response(
    body: Any, status: int = HTTPStatus.OK, headers: dict[str, str] | None = None
) -> web.Response:
    """Answer with the exact content type and a Content-Length, never chunked (§2)."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": JSON_CONTENT_TYPE},
    )


_REFUSAL_STATUS = {
    RefusalKind.INVALID: HTTPStatus.BAD_REQUEST,
    RefusalKind.INVALID_GATEWAY: HTTPStatus.UNPROCESSABLE_ENTITY,
    RefusalKind.CONFLICT: HTTPStatus.CONFLICT,
}


def _refusal_status(err: RegistrationError) -> HTTPStatus:
    return _REFUSAL_STATUS[err.kind]


def _limit_error(err: RegistrationLimitError) -> KronosError:
    if err.retry_after is None:
        return KronosError(HTTPStatus.FORBIDDEN, err.detail)
    return KronosError(
        HTTPStatus.TOO_MANY_REQUESTS,
        err.detail,
        {"Retry-After": str(max(1, math.ceil(err.retry_after)))},
    )


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """Read a JSON object whatever the Content-Type says; refuse big bodies early."""
    if (
        request.content_length is not None
        and request.content_length > MAX_REQUEST_BYTES
    ):
        raise KronosError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT):
            while chunk := await request.content.readany():
                body.extend(chunk)
                if len(body) > MAX_REQUEST_BYTES:
                    raise KronosError(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large"
                    )
    except TimeoutError as err:
        raise KronosError(
            HTTPStatus.REQUEST_TIMEOUT, "request body not received in time"
        ) from err
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
    """The Kronos request handlers, bound to whichever registry is loaded."""

    def __init__(self, registry_getter: Callable[[], GatewayRegistry | None]) -> None:
        """Look the registry up per request: the entry may be reloaded under a server."""
        self._registry_getter = registry_getter

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

    def _registry(self) -> GatewayRegistry:
        if (registry := self._registry_getter()) is None:
            raise KronosError(HTTPStatus.SERVICE_UNAVAILABLE, "not ready")
        return registry

    async def _answer(
        self, request: web.Request, work: Callable[[], Awaitable[Any]]
    ) -> web.Response:
        """Run a handler's work and log the request (never a body: config holds the key)."""
        try:
            response = json_response(await work())
        except RegistrationPendingError as err:
            response = json_response({"message": str(err)}, HTTPStatus.ACCEPTED)
        except RegistrationLimitError as err:
            error = _limit_error(err)
            response = json_response(error.body, error.status, error.headers)
        except KronosError as err:
            response = json_response(err.body, err.status, err.headers)
        _LOGGER.debug(
            "Kronos %s %.200s: %s (gateway %.128s)",
            request.method,
            request.path,
            response.status,
            request.get(_GATEWAY_KEY) or request.match_info.get("gateway_hid"),
        )
        return response

    async def register_gateway(self, request: web.Request) -> web.Response:
        """POST /gateways (§3.1)."""

        async def work() -> dict[str, Any]:
            registry = self._registry()
            body = await read_json_object(request)
            try:
                hid, created = registry.register_gateway(body, request.remote)
                request[_GATEWAY_KEY] = hid
            except RegistrationPendingError as err:
                request[_GATEWAY_KEY] = err.gateway_hid
                # The hid is what the firmware reads; 202 tells it this is not done yet.
                raise KronosError(
                    HTTPStatus.ACCEPTED,
                    str(err),
                    body={"hid": err.gateway_hid, "message": str(err)},
                ) from err
            except RegistrationError as err:
                raise KronosError(_refusal_status(err), str(err)) from err
            return {
                "hid": hid,
                "message": "OK" if created else "gateway is already registered",
            }

        return await self._answer(request, work)

    async def gateway_config(self, request: web.Request) -> web.Response:
        """GET /gateways/{gw}/config (§3.2): hands out the MQTT key."""

        async def work() -> dict[str, Any]:
            registry = self._registry()
            hid = _gateway_id(request)
            # A key is handed out only once it is on disk.
            await registry.async_wait_keys_saved()
            if (api_key := registry.gateway_api_key(hid)) is None:
                if registry.is_pending(hid):
                    raise KronosError(
                        HTTPStatus.BAD_REQUEST,
                        f"Gateway ({hid}) is waiting for approval in Home Assistant",
                    )
                raise KronosError(
                    HTTPStatus.BAD_REQUEST, f"Unregistered Gateway ({hid})"
                )
            return {
                "cloudPlatform": "IoTConnect",
                "key": {"apiKey": api_key, "secretKey": ids.SECRET_KEY},
            }

        return await self._answer(request, work)

    async def register_device(self, request: web.Request) -> web.Response:
        """POST /devices (§3.3): answers "already registered" for every device it takes."""

        async def work() -> dict[str, Any]:
            registry = self._registry()
            body = await read_json_object(request)
            if isinstance(gateway_hid := body.get("gatewayHid"), str):
                request[_GATEWAY_KEY] = gateway_hid
            try:
                hid = registry.register_device(body, request.remote)
            except RegistrationError as err:
                raise KronosError(_refusal_status(err), str(err)) from err
            return {
                "hid": hid,
                "links": {},
                "message": "device is already registered",
                "pri": ids.device_pri(hid),
            }

        return await self._answer(request, work)

    async def checkin(self, request: web.Request) -> web.Response:
        """PUT /gateways/{gw}/checkin (§3.4): an unknown gateway asks pairing first."""

        async def work() -> dict[str, Any]:
            registry = self._registry()
            # At boot, before MQTT.
            registry.checkin(
                _gateway_id(request), rebooting=True, address=request.remote
            )
            return {}

        return await self._answer(request, work)

    async def heartbeat(self, request: web.Request) -> web.Response:
        """PUT /gateways/{gw}/heartbeat (§3.5): liveness."""

        async def work() -> dict[str, Any]:
            registry = self._registry()
            hid = _gateway_id(request)
            if not registry.heard_over_http(hid):
                raise KronosError(
                    HTTPStatus.BAD_REQUEST, f"Unregistered Gateway ({hid})"
                )
            return {}

        return await self._answer(request, work)

    async def gateway_error(self, request: web.Request) -> web.Response:
        """POST /gateways/{gw}/errors (§3.5): the feeder reports a problem; log it."""

        async def work() -> dict[str, Any]:
            registry = self._registry()
            hid = _gateway_id(request)
            body = await read_json_object(request)
            if registry.is_known(hid):
                _LOGGER.warning(
                    "Feeder gateway %s reports an error: %.200s", hid, body.get("error")
                )
            return {}

        return await self._answer(request, work)

    async def command_event(self, request: web.Request) -> web.Response:
        """PUT /api/v1/core/events/{cmd}/{status} (§3.5): command delivery reports."""

        async def work() -> dict[str, Any]:
            registry = self._registry()
            command_hid = request.match_info.get("command_hid")
            status = request.match_info.get("status")
            if not ids.is_safe_id(command_hid) or status not in COMMAND_STATUSES:
                raise KronosError(HTTPStatus.NOT_FOUND, "not found")
            assert command_hid is not None
            registry.record_command_status(command_hid, status)
            return {}

        return await self._answer(request, work)

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
        self._servers: list[asyncio.Server] = []
        # Connections that have not delivered a complete first request yet.
        self._first_request_timers: dict[RequestHandler, asyncio.TimerHandle] = {}

    def _app(self) -> web.Application:
        app = web.Application(
            client_max_size=MAX_REQUEST_BYTES, middlewares=[self._first_request_seen]
        )
        for method, path, handler in self._api.routes():
            app.router.add_route(method, path, handler)
        app.router.add_route("*", "/{tail:.*}", self._api.catch_all)
        return app

    @web.middleware
    async def _first_request_seen(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """A request line and headers arrived: the connection is past its first deadline."""
        if (
            timer := self._first_request_timers.pop(request.protocol, None)
        ) is not None:
            timer.cancel()
        return await handler(request)

    def _protocol_factory(self) -> RequestHandler:
        """Make the handler of one connection, closed if no request arrives in time.

        aiohttp itself only times out idle connections *between* requests (keep-alive): a
        client that connects and sends nothing, or only part of its headers, would hold the
        connection (and a file descriptor of Home Assistant's process) forever.
        """
        assert self._runner is not None and self._runner.server is not None
        protocol = self._runner.server()
        self._first_request_timers[protocol] = asyncio.get_running_loop().call_later(
            REQUEST_HEADER_TIMEOUT, self._first_request_expired, protocol
        )
        return protocol

    def _first_request_expired(self, protocol: RequestHandler) -> None:
        if self._first_request_timers.pop(protocol, None) is not None:
            _LOGGER.debug("Closing a Kronos connection that sent no request in time")
            protocol.force_close()

    async def async_start(self, *, serve: bool = True) -> None:
        """Listen on the configured ports; OSError names a port that cannot be bound.

        With ``serve=False`` the ports are bound but accept nothing until
        ``async_start_serving``.
        """
        runner = web.AppRunner(
            self._app(),
            access_log=None,
            handle_signals=False,
            logger=_ClientErrorLogger(_LOGGER),
            max_line_size=MAX_LINE_BYTES,
            keepalive_timeout=KEEPALIVE_TIMEOUT,
            # A client that goes away ends its request; nothing is left running for it
            # (aiohttp would otherwise keep reading a dropped body for up to 10 s).
            handler_cancellation=True,
        )
        await runner.setup()
        self._runner = runner
        try:
            if self._http_port:
                await self._listen(self._http_port, None)
            if self._https_port:
                await self._listen(self._https_port, self._ssl_context)
            if serve:
                await self.async_start_serving()
        except OSError:
            await self.async_stop()
            raise

    async def async_start_serving(self) -> None:
        """Accept connections on the bound ports."""
        for server in self._servers:
            await server.start_serving()

    async def _listen(self, port: int, ssl_context: ssl.SSLContext | None) -> None:
        factory: Callable[[], asyncio.BaseProtocol] = self._protocol_factory
        if ssl_context is not None:
            factory = tls_protocol_factory(
                factory, ssl_context, handshake_timeout=REQUEST_HEADER_TIMEOUT
            )
        try:
            server = await asyncio.get_running_loop().create_server(
                factory, self._host, port, reuse_address=True, start_serving=False
            )
        except OSError as err:
            reason = os.strerror(err.errno) if err.errno else str(err)
            raise OSError(
                err.errno, f"Kronos port {port} cannot be bound: {reason}"
            ) from err
        self._servers.append(server)

    async def async_stop(self) -> None:
        """Close every listener and open connection."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        for timer in self._first_request_timers.values():
            timer.cancel()
        self._first_request_timers.clear()
        for server in servers:
            await server.wait_closed()
