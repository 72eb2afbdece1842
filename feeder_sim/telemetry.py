"""Telemetry and API-request messages a feeder publishes (protocol §5, §5.7).

Builders return plain dicts whose key names, key order and value types are the
ones of the protocol; :func:`encode` turns them into the bytes on the wire.
"""

from __future__ import annotations

import json
from typing import Any

API_EVENT_NAME = "GatewayToServer_ApiRequest"


def encode(message: dict[str, Any]) -> bytes:
    """Encode a message as compact UTF-8 JSON (as an embedded C SDK would)."""
    return json.dumps(message, separators=(",", ":")).encode()


def heartbeat(device_hid: str) -> dict[str, Any]:
    """Return a heartbeat message (§5.2)."""
    return {"_|deviceHid": device_hid, "s|msg_type": "hb"}


def sensor(
    device_hid: str,
    *,
    voltage_mv: float = 4500,
    usb: int = 1,
    chg: int = 0,
    ir: int = 0,
    rssi: int = 99,
) -> dict[str, Any]:
    """Return a sensor message (§5.3); the voltage is in millivolts."""
    return {
        "_|deviceHid": device_hid,
        "s|msg_type": "sensor",
        "f|voltage": voltage_mv,
        "i|usb": int(usb),
        "i|chg": int(chg),
        "i|ir": int(ir),
        "i|rssi": int(rssi),
    }


def feed_result(
    device_hid: str,
    *,
    stime: int,
    etime: int,
    expected_g: float,
    actual_g: float,
    hopper_start: float,
    hopper_end: float,
    src: int,
    rid: str,
    fail: bool = False,
    err: str = "",
    pour: int = 1,
    full: int = 0,
    bowl: bool = True,
) -> dict[str, Any]:
    """Return a feed_result message with every §5.4 key, in the §5.4 order."""
    return {
        "_|deviceHid": device_hid,
        "s|msg_type": "feed_result",
        "i|stime": int(stime),
        "i|etime": int(etime),
        "i|pour": int(pour),
        "i|full": int(full),
        "f|e_g": float(expected_g),
        "f|a_g": float(actual_g),
        "f|h_s": hopper_start,
        "f|h_e": hopper_end,
        "i|src": int(src),
        "b|fail": bool(fail),
        "b|trip": False,
        "b|lrg": False,
        "b|vol": False,
        "b|bowl": bool(bowl),
        "s|rid": rid,
        "s|err": err,
    }


def schedule_hash(device_hid: str, md5: str) -> dict[str, Any]:
    """Return a hash message in the format the project accepts (§5.5 [D])."""
    return {"_|deviceHid": device_hid, "s|msg_type": "hash", "s|local_md5": md5}


def api_request(
    request_id: str,
    *,
    uri: str,
    method: str,
    api_key: str | None,
    timestamp: str,
    signature: str,
    body: str | None = None,
) -> dict[str, Any]:
    """Return an "HTTP via MQTT" API request (§5.7)."""
    parameters: dict[str, Any] = {"uri": uri, "method": method}
    if api_key is not None:
        parameters["apiKey"] = api_key
    if body is not None:
        parameters["body"] = body
    parameters["apiRequestSignature"] = signature
    parameters["apiRequestSignatureVersion"] = "1"
    parameters["timestamp"] = timestamp
    return {
        "requestId": request_id,
        "eventName": API_EVENT_NAME,
        "encrypted": False,
        "parameters": parameters,
        "signature": signature,
        "signatureVersion": "1",
    }
