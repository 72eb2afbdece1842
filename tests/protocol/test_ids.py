"""Tests for protocol.ids."""

import re

import pytest

from custom_components.petnet_feeder.protocol.ids import (
    APPLICATION_HID,
    SECRET_KEY,
    device_pri,
    hid_from_uid,
    is_safe_id,
    new_api_key,
    new_command_hid,
)


@pytest.mark.parametrize(
    ("uid", "hid"),
    [
        ("smartfeeder-795ae773737d", "488533283e3f06ca4ae929fd01f50a9259dd393f"),
        ("smartfeeder-795ae773737d-prod", "5238b0c4ceb91b35119887f44f29cb489fcf044a"),
        ("smartfeeder-4b09fa082bbd-prod", "c3d89400068631f8138a57286982bea94370693d"),
        ("smartfeeder-1337f33d-123456", "d9eae8344910399224153df53f12400ceb8c5707"),
    ],
)
def test_hid_from_uid_vectors(uid: str, hid: str) -> None:
    assert hid_from_uid(uid) == hid


def test_fixed_constants() -> None:
    assert SECRET_KEY == "gEhFrm2hRvW2Km47lgt9xRBCtT9uH2Lx77WxYliNGJI="
    assert APPLICATION_HID == "38973487e8241ea4483e88ef8ca7934c8663dc25"


def test_pri_strings() -> None:
    assert device_pri("def") == "arw:krn:dev:def"


def test_new_api_key_shape_and_randomness() -> None:
    keys = {new_api_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)


def test_new_command_hid_shape_and_randomness() -> None:
    hids = {new_command_hid() for _ in range(50)}
    assert len(hids) == 50
    assert all(re.fullmatch(r"[a-z]{32}", hid) for hid in hids)


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "488533283e3f06ca4ae929fd01f50a9259dd393f",
        "A-b_9",
        "x" * 128,
    ],
)
def test_is_safe_id_accepts(value: str) -> None:
    assert is_safe_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 129,
        "x" * 10_000,
        "../etc/passwd",
        "a/b",
        "a.b",
        "#",
        "+",
        "abc#",
        "a+b",
        "a b",
        "abc\n",
        "abc\x00",
        "é",
        "ａｂｃ",  # full-width letters are not ASCII  # noqa: RUF001
        "١٢٣",  # Arabic-Indic digits match \d but not [0-9]
        None,
        123,
        True,
        b"abc",
        ["abc"],
    ],
)
def test_is_safe_id_rejects(value: object) -> None:
    assert not is_safe_id(value)
