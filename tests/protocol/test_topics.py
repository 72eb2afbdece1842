"""Tests for protocol.topics: names, usernames and the per-gateway ACL."""

import pytest

from custom_components.petnet_feeder.protocol.topics import (
    USERNAME_PREFIX,
    InboundKind,
    api_reply_topic,
    api_request_topic,
    command_topic,
    gateway_from_username,
    may_publish,
    may_subscribe,
    parse_inbound_topic,
    telemetry_topic,
)

GW = "488533283e3f06ca4ae929fd01f50a9259dd393f"
OTHER_GW = "c3d89400068631f8138a57286982bea94370693d"


def test_topic_names() -> None:
    assert USERNAME_PREFIX == "/pegasus:"
    assert telemetry_topic(GW) == f"krs.tel.gts.{GW}"
    assert api_request_topic(GW) == f"krs.api.gts.{GW}"
    assert command_topic(GW) == f"krs/cmd/stg/{GW}"
    assert api_reply_topic(GW) == f"krs/api/stg/{GW}"


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (f"krs.tel.gts.{GW}", (InboundKind.TELEMETRY, GW)),
        (f"krs.api.gts.{GW}", (InboundKind.API_REQUEST, GW)),
        (f"krs/tel/gts/{GW}", None),
        (f"krs/api/gts/{GW}", None),
        (f"krs/cmd/stg/{GW}", None),
        (f"krsXtelXgts.{GW}", None),
        (f"krs.tel.gts.{GW}/extra", None),
        (f"krs.tel.gts.{GW}.extra", None),
        ("krs.tel.gts.", None),
        ("krs.tel.gts.#", None),
        ("krs.tel.gts.+", None),
        (f"krs.tel.bat.gts.{GW}", None),
        (f"krs.tel.gts.{'a' * 129}", None),
        ("krs.tel.gts.../x", None),
        ("", None),
    ],
)
def test_parse_inbound_topic(
    topic: str, expected: tuple[InboundKind, str] | None
) -> None:
    assert parse_inbound_topic(topic) == expected


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        (f"/pegasus:{GW}", GW),
        ("/pegasus:", None),
        (f"pegasus:{GW}", None),
        (f"/PEGASUS:{GW}", None),
        (f"/pegasus:{GW}/x", None),
        ("/pegasus:#", None),
        ("/pegasus:+", None),
        (f"/pegasus: {GW}", None),
        ("/pegasus:../../etc", None),
        ("local_0123456789abcdef", None),
        ("", None),
        (None, None),
    ],
)
def test_gateway_from_username(username: str | None, expected: str | None) -> None:
    assert gateway_from_username(username) == expected


@pytest.mark.parametrize("topic", [f"krs.tel.gts.{GW}", f"krs.api.gts.{GW}"])
def test_may_publish_own_dotted_topics(topic: str) -> None:
    assert may_publish(GW, topic)


@pytest.mark.parametrize(
    "topic",
    [
        f"krs.tel.gts.{OTHER_GW}",
        f"krs.api.gts.{OTHER_GW}",
        # Slashed forms passed upstream's unescaped-dot regex; we refuse them.
        f"krs/tel/gts/{GW}",
        f"krs/api/gts/{GW}",
        f"krsXtelXgts.{GW}",
        f"krs.telXgts.{GW}",
        f"krsXapiXgtsX{GW}",
        f"krs.cmd.gts.{GW}",
        f"krs/cmd/stg/{GW}",
        f"krs/api/stg/{GW}",
        f"krs.tel.bat.gts.{GW}",
        f"krs.tel.gts.{GW}x",
        f"krs.tel.gts.{GW}/x",
        f"krs.tel.gts.{GW[:-1]}",
        f"xkrs.tel.gts.{GW}",
        "#",
        "+",
        "krs.tel.gts.#",
        "krs.tel.gts.+",
        "",
    ],
)
def test_may_publish_refuses(topic: str) -> None:
    assert not may_publish(GW, topic)


@pytest.mark.parametrize("gateway", ["", "#", "+", "a/b", "a.b", "x" * 129])
def test_may_publish_refuses_unsafe_gateway(gateway: str) -> None:
    assert not may_publish(gateway, f"krs.tel.gts.{gateway}")
    assert not may_subscribe(gateway, f"krs/cmd/stg/{gateway}")


@pytest.mark.parametrize("topic", [f"krs/cmd/stg/{GW}", f"krs/api/stg/{GW}"])
def test_may_subscribe_own_slashed_topics(topic: str) -> None:
    assert may_subscribe(GW, topic)


@pytest.mark.parametrize(
    "topic",
    [
        f"krs/cmd/stg/{OTHER_GW}",
        f"krs/api/stg/{OTHER_GW}",
        "#",
        "+",
        "krs/#",
        "krs/cmd/stg/#",
        "krs/cmd/stg/+",
        "krs/+/stg/" + GW,
        "+/cmd/stg/" + GW,
        f"krs/cmd/stg/{GW}/#",
        f"krs/cmd/stg/{GW}/+",
        f"krs.cmd.stg.{GW}",
        f"krs.tel.gts.{GW}",
        f"krs/tel/gts/{GW}",
        f"krs/cmd/stg/{GW}x",
        f"krs/cmd/stg/{GW[:-1]}",
        f"$share/g/krs/cmd/stg/{GW}",
        "",
    ],
)
def test_may_subscribe_refuses(topic: str) -> None:
    assert not may_subscribe(GW, topic)
