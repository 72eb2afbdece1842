"""scripts/develop: its fast paths run for real, and its terminal filter and onboarding file.

Nothing here starts Home Assistant: a busy port and a wrong argument are answered before the
toolchain is checked or anything is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
import io
import json
import os
from pathlib import Path
import socket
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest

from .helpers.ports import LOOPBACK, free_port
from .helpers.scripts import load_script_module

ROOT = Path(__file__).parent.parent
DEVELOP = ROOT / "scripts" / "develop"
FAST = 10  # seconds: the fast paths take a fraction of one


support = load_script_module("develop_support")
demo = load_script_module("demo")


def run_develop(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if key != "PETNET_DEV_PORT"
    }
    started = time.monotonic()
    result = subprocess.run(
        [str(DEVELOP), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment, **(env or {})},
        check=False,
    )
    assert time.monotonic() - started < FAST, "a fast path ran the slow setup"
    return result


@contextmanager
def held_port(*, listening: bool) -> Iterator[int]:
    """A free loopback port that a socket holds: bound, and listened on if ``listening``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        port = free_port()
        sock.bind((LOOPBACK, port))
        if listening:
            sock.listen(1)
        yield port


@pytest.fixture
def bound_port(socket_enabled: None) -> Iterator[int]:
    """A loopback port that a socket holds (bound, not listening)."""
    with held_port(listening=False) as port:
        yield port


@pytest.fixture
def listening_port(socket_enabled: None) -> Iterator[int]:
    """A loopback port something listens on, as another Home Assistant would."""
    with held_port(listening=True) as port:
        yield port


def busy_line(port: int) -> str:
    return (
        f"error: port {port} is in use; choose another with --port (or PETNET_DEV_PORT)"
    )


def test_help_names_the_port_option_and_variable() -> None:
    result = run_develop("--help")
    assert result.returncode == 0
    assert "--port N" in result.stdout
    assert "PETNET_DEV_PORT" in result.stdout
    assert "--demo" in result.stdout
    assert "config/home-assistant.log" in result.stdout
    assert result.stderr == ""


def test_busy_port_is_one_line_and_status_1(bound_port: int) -> None:
    result = run_develop("--demo", "--port", str(bound_port))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [busy_line(bound_port)]
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_busy_port_with_equals_sign(listening_port: int) -> None:
    result = run_develop(f"--port={listening_port}")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [busy_line(listening_port)]


def test_port_from_the_environment(bound_port: int) -> None:
    result = run_develop(env={"PETNET_DEV_PORT": str(bound_port)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [busy_line(bound_port)]


def test_port_option_wins_over_the_environment(bound_port: int) -> None:
    result = run_develop(
        "--port", str(bound_port), env={"PETNET_DEV_PORT": "not-a-port"}
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [busy_line(bound_port)]


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (
            ["--port", "abc"],
            {},
            "error: --port must be a number from 1 to 65535, not 'abc'",
        ),
        (
            ["--port", "70000"],
            {},
            "error: --port must be a number from 1 to 65535, not '70000'",
        ),
        (["--port"], {}, "error: --port needs a port number"),
        (
            [],
            {"PETNET_DEV_PORT": "0"},
            "error: PETNET_DEV_PORT must be a number from 1 to 65535, not '0'",
        ),
    ],
)
def test_wrong_port_is_one_line_and_status_2(
    args: list[str], env: dict[str, str], line: str
) -> None:
    result = run_develop(*args, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]


def test_unknown_argument_is_refused_with_the_usage() -> None:
    result = run_develop("--prot", "8124")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "error: unknown argument '--prot'"
    assert any("--port N" in line for line in lines[1:])


def test_port_free(bound_port: int, listening_port: int) -> None:
    assert support.port_free(LOOPBACK, bound_port) == (False, "in use")
    assert support.port_free(LOOPBACK, listening_port) == (False, "in use")


# --- the terminal filter ----------------------------------------------------------------------

HA_CONSOLE = """\
Unable to find configuration. Creating default one in /somewhere
2026-12-04 23:06:10.948 WARNING (MainThread) [homeassistant.bootstrap] Skipping pip installation of required modules. This may cause issues
2026-12-04 23:06:10.951 WARNING (SyncWorker_0) [homeassistant.loader] We found a custom integration petnet_feeder which has not been tested by Home Assistant.
2026-12-04 23:06:11.002 INFO (MainThread) [homeassistant.setup] Setting up petnet_feeder
2026-12-04 23:06:11.100 DEBUG (MainThread) [custom_components.petnet_feeder.hub] MQTT broker listening
2026-12-04 23:06:11.200 INFO (MainThread) [custom_components.petnet_feeder] Kronos listens on 443
2026-12-04 23:06:12.000 ERROR (MainThread) [homeassistant.config_entries] Error occurred loading flow for integration met: No module named 'metno'
2026-12-04 23:06:12.001 ERROR (MainThread) [homeassistant.setup] Error during setup of component radio_browser
Traceback (most recent call last):
  File "/venv/homeassistant/setup.py", line 1, in _async_setup_component
ModuleNotFoundError: No module named 'radios'
2026-12-04 23:06:13.000 WARNING (MainThread) [custom_components.petnet_feeder.hub] Feeder 73737d went offline
2026-12-04 23:06:14.000 ERROR (MainThread) [custom_components.petnet_feeder.kronos] Unexpected error in a Kronos request
Traceback (most recent call last):
  File "/x/custom_components/petnet_feeder/kronos.py", line 10, in handle
ValueError: bad body
2026-12-04 23:06:15.000 INFO (MainThread) [homeassistant.core] Starting Home Assistant
2026-12-04 23:06:16.000 ERROR (MainThread) [homeassistant.core] Error doing job: Task exception was never retrieved
Traceback (most recent call last):
  File "/x/custom_components/petnet_feeder/hub.py", line 5, in run
RuntimeError: boom
2026-12-04 23:06:17.000 ERROR (MainThread) [homeassistant.config_entries] Error setting up entry Petnet SmartFeeder for petnet_feeder
2026-12-04 23:06:18.000 WARNING (MainThread) [custom_components.petnet_feeder_other] Not ours
2026-12-04 23:06:19.000 INFO (MainThread) [homeassistant.components.http] Done
"""

SHOWN = """\
Unable to find configuration. Creating default one in /somewhere
23:06:13 WARNING [custom_components.petnet_feeder.hub] Feeder 73737d went offline
23:06:14 ERROR [custom_components.petnet_feeder.kronos] Unexpected error in a Kronos request
Traceback (most recent call last):
  File "/x/custom_components/petnet_feeder/kronos.py", line 10, in handle
ValueError: bad body
23:06:16 ERROR [homeassistant.core] Error doing job: Task exception was never retrieved
Traceback (most recent call last):
  File "/x/custom_components/petnet_feeder/hub.py", line 5, in run
RuntimeError: boom
23:06:17 ERROR [homeassistant.config_entries] Error setting up entry Petnet SmartFeeder for petnet_feeder
"""


def filtered(text: str) -> str:
    log_filter = support.LogFilter()
    shown = [out for line in text.splitlines() for out in log_filter.feed(line)]
    shown += log_filter.flush()
    return "".join(f"{line}\n" for line in shown)


def test_filter_shows_only_this_integrations_warnings_and_errors() -> None:
    assert filtered(HA_CONSOLE) == SHOWN


def test_filter_ignores_colours() -> None:
    coloured = (
        "\x1b[33m2026-12-04 23:06:13.000 WARNING (MainThread) "
        "[custom_components.petnet_feeder] Port 443 taken\x1b[0m"
    )
    assert filtered(coloured) == (
        "23:06:13 WARNING [custom_components.petnet_feeder] Port 443 taken\n"
    )


def test_filter_log_decides_a_held_error_when_the_input_pauses_or_ends() -> None:
    out = io.StringIO()
    lines = iter(
        [
            "2026-12-04 23:06:16.000 ERROR (MainThread) [homeassistant] Setup of petnet_feeder failed\n",
            "Traceback (most recent call last):\n",
        ]
    )
    support.filter_log(lines, out, hold_seconds=0.01)
    assert out.getvalue() == (
        "23:06:16 ERROR [homeassistant] Setup of petnet_feeder failed\n"
        "Traceback (most recent call last):\n"
    )


def test_filter_command_reads_stdin_and_writes_stderr() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "develop_support.py"), "filter-log"],
        input=HA_CONSOLE,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert result.stderr == SHOWN
    assert result.stdout == ""


# --- onboarding -------------------------------------------------------------------------------


def stored_steps(config: Path) -> list[str]:
    store = json.loads((config / ".storage" / "onboarding").read_text())
    assert store["key"] == "onboarding"
    assert store["version"] == 4
    return store["data"]["done"]


def test_fresh_config_gets_core_config_marked_done(tmp_path: Path) -> None:
    """Finishing core_config over HTTP would start met, radio_browser and the like."""
    assert support.prepare_onboarding(tmp_path)
    assert stored_steps(tmp_path) == ["core_config"]
    assert not support.prepare_onboarding(tmp_path)
    assert stored_steps(tmp_path) == ["core_config"]


def test_half_done_onboarding_gets_core_config_marked_done(tmp_path: Path) -> None:
    (tmp_path / ".storage").mkdir()
    store = {"version": 4, "minor_version": 1, "key": "onboarding"}
    (tmp_path / ".storage" / "onboarding").write_text(
        json.dumps({**store, "data": {"done": ["user"]}})
    )
    assert support.prepare_onboarding(tmp_path)
    assert stored_steps(tmp_path) == ["user", "core_config"]


def test_finished_onboarding_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".storage").mkdir()
    path = tmp_path / ".storage" / "onboarding"
    text = json.dumps(
        {
            "version": 4,
            "minor_version": 1,
            "key": "onboarding",
            "data": {"done": ["user", "core_config", "analytics", "integration"]},
        }
    )
    path.write_text(text)
    assert not support.prepare_onboarding(tmp_path)
    assert path.read_text() == text


def test_demo_one_off_meal_is_the_wednesday_of_the_coming_week() -> None:
    """The planner screenshot shows a whole week to come, with it and both weekend days."""
    for offset in range(7):
        today = date(2026, 12, 6) + timedelta(days=offset)  # a Sunday, then each day
        outing = demo.one_off_date(today)
        assert outing.weekday() == 2, today  # Wednesday
        assert 4 <= (outing - today).days <= 10, today
        # In the Sunday-to-Saturday week after today's.
        next_sunday = today + timedelta(days=7 - (today.weekday() + 1) % 7)
        assert outing - next_sunday == timedelta(days=3), today


def test_demo_snack_keeps_clear_of_the_other_meals() -> None:
    zone = ZoneInfo("America/Chicago")
    assert demo.snack_time(datetime(2026, 12, 5, 0, 30, 10, tzinfo=zone)) == "00:34"
    # 06:56 plus four minutes is Breakfast's 07:00; 09:56 is the weekend brunch's 10:00.
    assert demo.snack_time(datetime(2026, 12, 5, 6, 56, tzinfo=zone)) == "07:01"
    assert demo.snack_time(datetime(2026, 12, 5, 9, 56, tzinfo=zone)) == "10:01"


def test_demo_feeders_are_the_feeder_devices_by_name() -> None:
    """Not the integration's own device nor a pet's, which have entities too."""

    def device(name: str, model: str | None, identifier: str) -> dict[str, object]:
        return {
            "id": name.lower(),
            "name": name,
            "name_by_user": None,
            "model": model,
            "identifiers": [["petnet_feeder", identifier]],
        }

    devices = [
        device("SmartFeeder D09C7F", "SmartFeeder", "d09c7f"),
        device("Petnet SmartFeeder", None, "hub_entry"),
        device("Mochi", "Cat", "pet_0123456789ab"),
        device("SmartFeeder 3ADCD8", "SmartFeeder", "3adcd8"),
    ]
    assert [d["name"] for d in demo.demo_feeders(devices)] == [
        "SmartFeeder 3ADCD8",
        "SmartFeeder D09C7F",
    ]
    assert demo.pet_device(devices, "Mochi") == "mochi"
    assert demo.pet_device(devices, "SmartFeeder 3ADCD8") is None
