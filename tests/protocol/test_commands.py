"""Tests for protocol.commands: envelopes, portions, builders and the size limit."""

import json
import re
from typing import Any

import pytest

from custom_components.petnet_feeder.protocol.commands import (
    MAX_COMMAND_BYTES,
    MAX_PORTION,
    MIN_PORTION,
    PORTION_STEP,
    Command,
    budget,
    build_command,
    button_enable_remote,
    command_size,
    feed,
    reboot,
    recipe_id,
    utc_offset,
    validate_portion,
)

DEV = "5238b0c4ceb91b35119887f44f29cb489fcf044a"
HID = "riwnlvmhecfehvhapsfijaenrltskewq"


def _expected(command: str, payload: str, hid: str = HID) -> bytes:
    return (
        f'{{"hid": "{hid}", "name": "SendCommand", "encrypted": false, '
        f'"parameters": {{"deviceHid": "{DEV}", "command": "{command}", '
        f'"payload": "{payload}"}}}}'
    ).encode()


def test_portion_constants() -> None:
    assert PORTION_STEP == 1 / 16
    assert MIN_PORTION == 0.0625
    assert MAX_PORTION == 2.0
    assert MAX_COMMAND_BYTES == 1000


@pytest.mark.parametrize(
    ("cups", "expected"),
    [
        (0.0625, 0.0625),
        (1 / 16, 0.0625),
        (0.125, 0.125),
        (0.25, 0.25),
        (1, 1.0),
        (2, 2.0),
        (2.0, 2.0),
        (31 / 16, 1.9375),
        (0.1 * 3 / 1.2, 0.25),  # float noise: 0.25000000000000006
        (sum([0.1] * 10) / 16 * 3, 0.1875),  # float noise: 0.18749999999999997
        (0.0625 + 1e-12, 0.0625),
    ],
)
def test_validate_portion_accepts(cups: float, expected: float) -> None:
    result = validate_portion(cups)
    assert result == expected
    assert (result * 16).is_integer()


@pytest.mark.parametrize(
    ("cups", "message"),
    [
        (0, "outside"),
        (0.0, "outside"),
        (-0.0625, "outside"),
        (2.0625, "outside"),
        (100, "outside"),
        (0.1, "multiple of 1/16"),
        (0.03125, "multiple of 1/16"),
        (0.0625 + 1e-4, "multiple of 1/16"),
        (float("nan"), "finite number"),
        (float("inf"), "finite number"),
        (float("-inf"), "finite number"),
        (True, "finite number"),
        ("0.25", "finite number"),
        (None, "finite number"),
    ],
)
def test_validate_portion_rejects(cups: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_portion(cups)


def test_feed_step8_byte_exact() -> None:
    command = feed(DEV, 0.0625, command_hid=HID)
    assert command == Command(
        name="feed", hid=HID, payload=_expected("feed", '{\\"portion\\": 0.0625}')
    )


def test_feed_normalises_float_noise() -> None:
    command = feed(DEV, 0.1 * 3 / 1.2, command_hid=HID)
    assert command.payload == _expected("feed", '{\\"portion\\": 0.25}')


def test_feed_refuses_bad_portion() -> None:
    with pytest.raises(ValueError, match="outside"):
        feed(DEV, 3)


def test_reboot_byte_exact() -> None:
    assert reboot(DEV, command_hid=HID).payload == _expected("reboot", "{}")


@pytest.mark.parametrize("enable", [True, False])
def test_button_enable_remote(enable: bool) -> None:
    command = button_enable_remote(DEV, enable, command_hid=HID)
    text = "true" if enable else "false"
    assert command.payload == _expected(
        "button_enable_remote", f'{{\\"enable\\": {text}}}'
    )
    assert command.name == "button_enable_remote"


@pytest.mark.parametrize("enable", [1, 0, "true", None])
def test_button_enable_remote_needs_bool(enable: Any) -> None:
    with pytest.raises(ValueError, match="bool"):
        button_enable_remote(DEV, enable)


def test_utc_offset_step7_byte_exact() -> None:
    command = utc_offset(DEV, -18000, command_hid="tuvxboyvzrmmmmdpumbgcgofdktbdase")
    assert command.payload == (
        b'{"hid": "tuvxboyvzrmmmmdpumbgcgofdktbdase", "name": "SendCommand", '
        b'"encrypted": false, "parameters": {"deviceHid": '
        b'"5238b0c4ceb91b35119887f44f29cb489fcf044a", "command": "utc_offset", '
        b'"payload": "{\\"utc_offset\\": -18000}"}}'
    )


@pytest.mark.parametrize("offset", [-43200, 0, 19800, 50400])
def test_utc_offset_accepts_real_offsets(offset: int) -> None:
    payload = json.loads(utc_offset(DEV, offset).payload)
    assert json.loads(payload["parameters"]["payload"]) == {"utc_offset": offset}


@pytest.mark.parametrize(
    "offset", [50401, -50401, 86400, -18000.0, True, "-18000", None]
)
def test_utc_offset_rejects(offset: Any) -> None:
    with pytest.raises(ValueError, match="utc offset"):
        utc_offset(DEV, offset)


def test_budget_byte_exact() -> None:
    command = budget(
        DEV,
        recipe_number=1,
        tbsp_per_feeding=1,
        g_per_tbsp=8,
        budget_tbsp=3,
        command_hid=HID,
    )
    assert command.payload == _expected(
        "budget",
        '{\\"recipe\\": \\"E0000001\\", \\"tbsp_per_feeding\\": 1, '
        '\\"g_per_tbsp\\": 8, \\"budget_tbsp\\": 3}',
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"recipe_number": 0}, "recipe number"),
        ({"recipe_number": 10_000_000}, "recipe number"),
        ({"tbsp_per_feeding": 0}, "tbsp_per_feeding"),
        ({"tbsp_per_feeding": 33}, "tbsp_per_feeding"),
        ({"tbsp_per_feeding": 1.5}, "tbsp_per_feeding"),
        ({"g_per_tbsp": 0}, "g_per_tbsp"),
        ({"g_per_tbsp": True}, "g_per_tbsp"),
        ({"budget_tbsp": 0}, "budget_tbsp"),
        ({"budget_tbsp": -1}, "budget_tbsp"),
    ],
)
def test_budget_rejects(overrides: dict[str, Any], message: str) -> None:
    kwargs: dict[str, Any] = {
        "recipe_number": 1,
        "tbsp_per_feeding": 1,
        "g_per_tbsp": 8,
        "budget_tbsp": 1,
    } | overrides
    with pytest.raises(ValueError, match=message):
        budget(DEV, **kwargs)


@pytest.mark.parametrize(
    ("number", "expected"),
    [(1, "E0000001"), (42, "E0000042"), (9_999_999, "E9999999")],
)
def test_recipe_id(number: int, expected: str) -> None:
    assert recipe_id(number) == expected
    assert re.fullmatch(r"E\d{7}", recipe_id(number))


@pytest.mark.parametrize("number", [0, -1, 10_000_000, True, 1.0, "1"])
def test_recipe_id_rejects(number: Any) -> None:
    with pytest.raises(ValueError, match="recipe number"):
        recipe_id(number)


def test_random_command_hid_is_fresh() -> None:
    first = reboot(DEV)
    second = reboot(DEV)
    assert re.fullmatch(r"[a-z]{32}", first.hid)
    assert first.hid != second.hid
    assert json.loads(first.payload)["hid"] == first.hid


@pytest.mark.parametrize(
    ("device_hid", "command", "command_hid", "message"),
    [
        ("", "reboot", HID, "device hid"),
        ("a/b", "reboot", HID, "device hid"),
        ("x" * 129, "reboot", HID, "device hid"),
        (DEV, "re boot", HID, "command name"),
        (DEV, "", HID, "command name"),
        (DEV, "reboot", "a#b", "command hid"),
        (DEV, "reboot", "", "command hid"),
    ],
)
def test_build_command_rejects_bad_ids(
    device_hid: str, command: str, command_hid: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_command(device_hid, command, {}, command_hid=command_hid)


def test_build_command_enforces_size_limit() -> None:
    base = command_size(DEV, "x", {"pad": ""})
    fits = "a" * (MAX_COMMAND_BYTES - base)
    command = build_command(DEV, "x", {"pad": fits}, command_hid=HID)
    assert len(command.payload) == MAX_COMMAND_BYTES
    with pytest.raises(ValueError, match="1000-byte limit"):
        build_command(DEV, "x", {"pad": fits + "a"}, command_hid=HID)


def test_command_size_matches_built_payload() -> None:
    args = {"portion": 0.25}
    assert command_size(DEV, "feed", args) == len(
        build_command(DEV, "feed", args, command_hid=HID).payload
    )


def test_build_command_refuses_nan() -> None:
    with pytest.raises(ValueError):
        build_command(DEV, "feed", {"portion": float("nan")}, command_hid=HID)


def test_command_is_frozen() -> None:
    command = reboot(DEV, command_hid=HID)
    with pytest.raises(AttributeError):
        command.hid = "other"  # type: ignore[misc]
