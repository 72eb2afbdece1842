"""The feeder's Kronos HTTP calls (protocol §1.9, §3).

Requests look like the captured firmware's: ``User-Agent: IOE Client`` (plus
``User-Agent: Eos`` on the config request), ``x-arrow-*`` headers, compact
JSON bodies and **no Content-Type**. TLS certificates are not verified (§2).
"""

from __future__ import annotations

from datetime import UTC, datetime
import hashlib
import hmac
import json
import logging
from typing import Any

import aiohttp
from multidict import CIMultiDict

_LOGGER = logging.getLogger(__name__)

BASE_PATH = "/api/v1/kronos"
SDK_VERSION = "1.3.12"
# Stand-in for the key built into the firmware, used before config is fetched.
BUILTIN_API_KEY = "0" * 64
DEFAULT_SECRET_KEY = "gEhFrm2hRvW2Km47lgt9xRBCtT9uH2Lx77WxYliNGJI="  # noqa: S105 - public constant (§1.5)


class KronosError(Exception):
    """A Kronos call answered with a status other than 200."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        """Keep the call and the answer."""
        super().__init__(f"{method} {path} -> {status}: {body[:200]}")
        self.status = status
        self.body = body


def arrow_date(now: datetime | None = None) -> str:
    """Return an ``x-arrow-date`` value such as ``2020-02-21T23:28:30.000Z``."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def sign(secret_key: str, *parts: str) -> str:
    """Return a 64-hex request signature (nobody checks it, §1.5)."""
    return hmac.new(
        secret_key.encode(), "\n".join(parts).encode(), hashlib.sha256
    ).hexdigest()


class KronosClient:
    """Kronos HTTP client of one feeder."""

    def __init__(
        self, base_url: str, session: aiohttp.ClientSession, *, timeout: float = 10
    ) -> None:
        """Use ``session`` (not owned) for requests to ``base_url``."""
        self._base_url = base_url.rstrip("/")
        self.session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.api_key: str | None = None
        self.secret_key = DEFAULT_SECRET_KEY

    def _headers(
        self, method: str, path: str, body: bytes | None, *, eos: bool
    ) -> CIMultiDict[str]:
        date = arrow_date()
        body_hash = hashlib.sha256(body or b"").hexdigest()
        headers: CIMultiDict[str] = CIMultiDict()
        headers.add("User-Agent", "IOE Client")
        if eos:
            headers.add("User-Agent", "Eos")
        headers.add("x-arrow-apikey", self.api_key or BUILTIN_API_KEY)
        headers.add("x-arrow-date", date)
        headers.add("x-arrow-version", "1")
        headers.add(
            "x-arrow-signature", sign(self.secret_key, method, path, date, body_hash)
        )
        return headers

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        eos: bool = False,
    ) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON body or None)."""
        data = (
            None if body is None else json.dumps(body, separators=(",", ":")).encode()
        )
        url = f"{self._base_url}{BASE_PATH}{path}"
        async with self.session.request(
            method,
            url,
            data=data,
            headers=self._headers(method, BASE_PATH + path, data, eos=eos),
            skip_auto_headers=("Content-Type", "User-Agent"),
            ssl=False,
            timeout=self._timeout,
        ) as response:
            text = await response.text(encoding="utf-8")
        _LOGGER.debug("%s %s -> %s", method, path, response.status)
        try:
            decoded: Any = json.loads(text) if text else None
        except ValueError:
            decoded = text
        return response.status, decoded

    async def _expect_ok(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        eos: bool = False,
    ) -> Any:
        status, decoded = await self.request(method, path, body, eos=eos)
        if status != 200:
            raise KronosError(method, path, status, json.dumps(decoded))
        return decoded

    async def register_gateway(self, uid: str, firmware: str) -> dict[str, Any]:
        """POST /gateways (§3.1) with the captured body."""
        body = {
            "name": "SF Gateway",
            "uid": uid,
            "osName": "FreeRTOS",
            "type": "Local",
            "softwareName": "SMART FEEDER",
            "softwareVersion": firmware,
            "sdkVersion": SDK_VERSION,
        }
        return _require_object(await self._expect_ok("POST", "/gateways", body), "hid")

    async def fetch_config(self, gateway_hid: str) -> dict[str, Any]:
        """GET /gateways/<gw>/config (§3.2); remembers the apiKey."""
        raw = await self._expect_ok("GET", f"/gateways/{gateway_hid}/config", eos=True)
        answer = _require_object(raw, "key")
        key = answer["key"]
        if not isinstance(key, dict) or not isinstance(key.get("apiKey"), str):
            raise KronosError("GET", "config", 200, f"no key.apiKey in {answer!r}")
        self.api_key = key["apiKey"]
        if isinstance(key.get("secretKey"), str):
            self.secret_key = key["secretKey"]
        return answer

    async def register_device(
        self, uid: str, gateway_hid: str, firmware: str
    ) -> dict[str, Any]:
        """POST /devices (§3.3) with the captured body."""
        body = {
            "name": "SF20A",
            "type": "SMART FEEDER",
            "uid": uid,
            "gatewayHid": gateway_hid,
            "softwareName": "SMART FEEDER",
            "softwareVersion": firmware,
        }
        return _require_object(await self._expect_ok("POST", "/devices", body), "hid")

    async def checkin(self, gateway_hid: str) -> int:
        """PUT /gateways/<gw>/checkin (§3.4) without a body; return the status."""
        status, _ = await self.request("PUT", f"/gateways/{gateway_hid}/checkin")
        return status


def _require_object(answer: Any, key: str) -> dict[str, Any]:
    if not isinstance(answer, dict) or key not in answer:
        raise KronosError("?", "?", 200, f"answer without {key!r}: {answer!r}")
    return answer
