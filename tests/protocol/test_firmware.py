"""Tests for protocol.firmware."""

import pytest

from custom_components.petnet_feeder.protocol.firmware import (
    NEW_SCHEDULE_API_MIN,
    parse_version,
    uses_new_schedule_api,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.8.0", (2, 8, 0)),
        ("2.4.11", (2, 4, 11)),
        ("0.9.1", (0, 9, 1)),
        ("4.2.6", (4, 2, 6)),
        ("2.4", (2, 4, 0)),
        ("2", (2, 0, 0)),
        ("2.8.0-rc1", (2, 8, 0)),
        ("2.8.0.1", (2, 8, 0)),
        ("2.7.3 (build 5)", (2, 7, 3)),
        ("v2.5.0", (2, 5, 0)),
        (" 2.5.1 ", (2, 5, 1)),
        ("2.x", (2, 0, 0)),
        ("", None),
        ("abc", None),
        ("-2.8.0", None),
        (".5", None),
        ("1" * 5000, None),
        (None, None),
        (2.8, None),
        (280, None),
        (b"2.8.0", None),
    ],
)
def test_parse_version(value: object, expected: tuple[int, int, int] | None) -> None:
    assert parse_version(value) == expected


def test_threshold_constant() -> None:
    assert NEW_SCHEDULE_API_MIN == (2, 5, 0)


@pytest.mark.parametrize(
    ("version", "new_api"),
    [
        ("2.5.0", True),
        ("2.5", True),
        ("2.8.0", True),
        ("2.7.2", True),
        ("4.2.6", True),
        ("10.0.0", True),
        ("2.4.20", False),
        ("2.4.99", False),
        ("2.3.2", False),
        ("0.9.1", False),
        ("2", False),
        (None, False),
        ("", False),
        ("unknown", False),
    ],
)
def test_uses_new_schedule_api(version: str | None, new_api: bool) -> None:
    assert uses_new_schedule_api(version) is new_api
