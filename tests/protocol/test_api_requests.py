"""Tests for tunnelled API requests, the ACK and the uris we act on (§5.7)."""

import json
from typing import Any

import pytest

from custom_components.petnet_feeder.protocol.messages import (
    ApiRequest,
    ProtocolError,
    api_ack,
    checkin_gateway_from_uri,
    command_status_from_uri,
    parse_api_request,
)

GW = "488533283e3f06ca4ae929fd01f50a9259dd393f"


def _request(request_id: Any, **parameters: Any) -> bytes:
    return json.dumps(
        {
            "requestId": request_id,
            "eventName": "GatewayToServer_ApiRequest",
            "encrypted": False,
            "parameters": parameters,
        }
    ).encode()


def test_parse_api_request() -> None:
    payload = _request(
        "GS-1717243500",
        uri="/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received",
        method="PUT",
        apiKey="secret",
    )
    assert parse_api_request(payload) == ApiRequest(
        request_id="GS-1717243500",
        uri="/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received",
        method="PUT",
    )


def test_parse_api_request_int_id_and_lowercase_method() -> None:
    assert parse_api_request(_request(17, uri="/x", method="put")) == ApiRequest(
        request_id=17, uri="/x", method="PUT"
    )


@pytest.mark.parametrize("parameters", [None, "x", [1], 5])
def test_parse_api_request_without_usable_parameters(parameters: Any) -> None:
    payload = json.dumps({"requestId": "r", "parameters": parameters}).encode()
    assert parse_api_request(payload) == ApiRequest(
        request_id="r", uri=None, method=None
    )


def test_parse_api_request_odd_parameter_types() -> None:
    assert parse_api_request(_request("r", uri=5, method=["PUT"])) == ApiRequest(
        request_id="r", uri=None, method=None
    )


@pytest.mark.parametrize(
    "request_id", [None, True, False, 1.5, [1], {"id": 1}, "x" * 257, 2**60]
)
def test_parse_api_request_bad_request_id(request_id: Any) -> None:
    with pytest.raises(ProtocolError, match="requestId"):
        parse_api_request(_request(request_id))


def test_parse_api_request_missing_request_id() -> None:
    with pytest.raises(ProtocolError, match="requestId"):
        parse_api_request(b'{"parameters": {"uri": "/x"}}')


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"nope",
        b"[]",
        b"\xff",
        b'{"requestId": NaN}',
        b"[" * 10_000,
        b"{" + b" " * 70_000 + b"}",
    ],
)
def test_parse_api_request_hostile(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_api_request(payload)


def test_api_ack_byte_exact() -> None:
    assert api_ack("GS-1717243500") == (
        b'{"requestId": "GS-1717243500", "eventName": "GatewayToServer_ApiRequest", '
        b'"encrypted": false, "parameters": {"status": "OK"}}'
    )


def test_api_ack_keeps_json_type_of_request_id() -> None:
    assert api_ack(42) == (
        b'{"requestId": 42, "eventName": "GatewayToServer_ApiRequest", '
        b'"encrypted": false, "parameters": {"status": "OK"}}'
    )
    request = parse_api_request(_request(42))
    assert json.loads(api_ack(request.request_id))["requestId"] == 42


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "/api/v1/core/events/kemubcrdlsbqgbcnnchcrnbsdhuusbss/received",
            ("kemubcrdlsbqgbcnnchcrnbsdhuusbss", "received"),
        ),
        ("/api/v1/core/events/abc/succeeded", ("abc", "succeeded")),
        ("/api/v1/core/events/abc/failed", ("abc", "failed")),
        ("/api/v1/core/events/abc/failed/", ("abc", "failed")),
        ("/api/v1/core/events/abc/received?x=1", ("abc", "received")),
        (
            "https://api.arrowconnect.io/api/v1/core/events/abc/received",
            ("abc", "received"),
        ),
        ("/api/v1/core/events/abc/done", None),
        ("/api/v1/core/events//received", None),
        ("/api/v1/core/events/a/b/received", None),
        ("/api/v1/core/events/../received", None),
        ("/api/v1/core/events/a.b/received", None),
        (f"/api/v1/core/events/{'a' * 129}/received", None),
        ("/api/v2/core/events/abc/received", None),
        ("api/v1/core/events/abc/received", None),
        ("/api/v1/core/events/abc/RECEIVED", None),
        ("http://[::1/api/v1/core/events/abc/received", None),
        ("", None),
        (None, None),
    ],
)
def test_command_status_from_uri(
    uri: str | None, expected: tuple[str, str] | None
) -> None:
    assert command_status_from_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"/api/v1/kronos/gateways/{GW}/checkin", GW),
        (f"/api/v1/kronos/gateways/{GW}/checkin/", GW),
        (f"https://api.arrowconnect.io/api/v1/kronos/gateways/{GW}/checkin", GW),
        (f"/api/v1/kronos/gateways/{GW}/config", None),
        (f"/api/v1/kronos/gateways/{GW}/heartbeat", None),
        ("/api/v1/kronos/gateways//checkin", None),
        ("/api/v1/kronos/gateways/../checkin", None),
        ("/api/v1/kronos/gateways/a%2Fb/checkin", None),
        ("/api/v1/kronos/gateways/#/checkin", None),
        ("", None),
        (None, None),
    ],
)
def test_checkin_gateway_from_uri(uri: str | None, expected: str | None) -> None:
    assert checkin_gateway_from_uri(uri) == expected
