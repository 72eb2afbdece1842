"""A real Mosquitto for the HA-MQTT transport tests: started per test on a free loopback port.

Authentication and ACL are set up the way the README tells users to:

- ``password_file`` (made with ``mosquitto_passwd``) for ordinary users, here Home Assistant's;
- Mosquitto's dynamic-security plugin for the feeders' logins, because their username
  ``/pegasus:<gw>`` contains ``:``, which a password file cannot hold. Each login is created
  with the action's ``mosquitto_ctrl`` arguments, which bind it to the gateway's client id. Its
  default ACL access is "deny" everywhere, so it never decides topics and the ACL file does;
- ``acl_file`` with Home Assistant's user (``topic readwrite #``) and, per gateway, the lines the
  ``petnet_feeder.broker_credentials`` action returns. Mosquitto reads it again on SIGHUP.

Nothing here imports the integration.
"""

from __future__ import annotations

from collections.abc import Iterable
import glob
import json
import os
from pathlib import Path
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
from typing import Any

from .ports import LOOPBACK, free_port

HA_USERNAME = "homeassistant"
HA_CLIENT_ID = "ha-petnet-test"
ADMIN_USERNAME = "dynsec-admin"
START_TIMEOUT = 10.0
_POLL_S = 0.02
_PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/usr/lib/*/mosquitto/mosquitto_dynamic_security.so",
)


class MosquittoUnavailableError(Exception):
    """Mosquitto (or one of its tools or its plugin) is not installed."""


def _executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise MosquittoUnavailableError(
            f"{name} is not installed (Debian package 'mosquitto'; scripts/ensure-mosquitto "
            "installs it as root or with sudo -n)"
        )
    return found


def _plugin() -> str:
    for pattern in _PLUGIN_GLOBS:
        if found := sorted(glob.glob(pattern)):
            return found[0]
    raise MosquittoUnavailableError(
        "Mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) is not installed"
    )


def find_tools() -> dict[str, str]:
    """Paths of mosquitto, mosquitto_passwd, mosquitto_ctrl and the plugin, or raise."""
    return {
        "mosquitto": _executable("mosquitto"),
        "mosquitto_passwd": _executable("mosquitto_passwd"),
        "mosquitto_ctrl": _executable("mosquitto_ctrl"),
        "plugin": _plugin(),
    }


class Mosquitto:
    """One broker process with its files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        """Choose files and a port; nothing runs before ``start``."""
        self.tools = find_tools()
        self.directory = directory
        self.port = free_port()
        self.ha_password = secrets.token_hex(16)
        self.admin_password = secrets.token_hex(16)
        self.password_file = directory / "passwd"
        self.acl_file = directory / "acl"
        self.dynsec_file = directory / "dynamic-security.json"
        self.config_file = directory / "mosquitto.conf"
        self.log_file = directory / "mosquitto.log"
        self.logins: dict[str, str] = {}
        self.feeder_acl = ""
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle (sync: called from fixtures, outside the event loop) ---------------------

    def start(self) -> None:
        """Write the files, start the broker and wait until it accepts connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._run(
            self.tools["mosquitto_passwd"],
            "-c",
            "-b",
            str(self.password_file),
            HA_USERNAME,
            self.ha_password,
        )
        self._run(
            self.tools["mosquitto_ctrl"],
            "dynsec",
            "init",
            str(self.dynsec_file),
            ADMIN_USERNAME,
            self.admin_password,
        )
        dynsec = json.loads(self.dynsec_file.read_text())
        # Deny by default means "no opinion" in the plugin: the ACL file decides.
        dynsec["defaultACLAccess"] = dict.fromkeys(
            ("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe"),
            False,
        )
        self.dynsec_file.write_text(json.dumps(dynsec, indent=1))
        self._write_acl()
        self.config_file.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    f"listener {self.port} {LOOPBACK}",
                    "allow_anonymous false",
                    f"password_file {self.password_file}",
                    f"acl_file {self.acl_file}",
                    f"plugin {self.tools['plugin']}",
                    f"plugin_opt_config_file {self.dynsec_file}",
                    "persistence false",
                    f"log_dest file {self.log_file}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "log_type subscribe",
                    "log_type unsubscribe",
                    "connection_messages true",
                    # Only matters as root: stay this user, so the files above stay readable.
                    f"user {pwd.getpwuid(os.geteuid()).pw_name}",
                    "",
                ]
            )
        )
        # setpriv --pdeathsig: no broker outlives a test run that was killed.
        setpriv = shutil.which("setpriv")
        guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        self._process = subprocess.Popen(
            [*guard, self.tools["mosquitto"], "-c", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(
            int(START_TIMEOUT / _POLL_S)
        ):  # counted: the clock may be frozen
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start: {self.log_text()}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(_POLL_S)
        self.stop()
        raise RuntimeError("mosquitto did not start listening in time")

    def stop(self) -> None:
        """Stop the broker (by its pid) and wait for it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    # -- provisioning (async: from tests, through HA's executor) ----------------------------

    async def async_add_logins(self, hass: Any, commands: Iterable[str]) -> None:
        """Run ``mosquitto_ctrl`` login commands the broker has not had yet, as a user would.

        Each command is the ``mosquitto_ctrl`` value of the broker_credentials action (the
        part from ``dynsec`` on: ``dynsec createClient <username> -c <client id> -p <key>``);
        only the connection options are added here.
        """
        for command in commands:
            args = shlex.split(command)
            if args[:2] != ["dynsec", "createClient"] or len(args) < 3:
                raise ValueError(f"not a dynsec createClient command: {args[:2]}")
            username = args[2]
            if self.logins.get(username) == command:
                continue
            await hass.async_add_executor_job(self._ctrl, *args[1:])
            self.logins[username] = command

    async def async_set_feeder_acl(self, hass: Any, acl_text: str) -> None:
        """Replace the feeders' part of the ACL file and make the broker reload it (SIGHUP)."""
        if acl_text == self.feeder_acl:
            return
        self.feeder_acl = acl_text
        before = self.log_text().count("Reloading config.")
        await hass.async_add_executor_job(self._write_acl)
        assert self._process is not None
        self._process.send_signal(signal.SIGHUP)
        await self.async_wait_for_log(
            hass, lambda text: text.count("Reloading config.") > before
        )

    async def async_wait_for_subscription(
        self, hass: Any, topics: Iterable[str], client_id: str = HA_CLIENT_ID
    ) -> None:
        """Wait until the broker has logged ``client_id``'s subscription to every topic."""
        wanted = [f" {client_id} 1 {topic}\n" for topic in topics]
        await self.async_wait_for_log(
            hass, lambda text: all(line in text for line in wanted)
        )

    async def async_wait_for_log(
        self, hass: Any, predicate: Any, timeout: float = 10
    ) -> str:
        """Wait until predicate(text) holds for the broker's log (read in HA's executor).

        The broker's log is the only place its subscriptions and reloads can be seen, so
        it is read again every few milliseconds, in a worker thread: the event loop's own
        timers never fire while a test freezes the clock, and neither do time-based
        deadlines, so the wait counts its reads instead.
        """
        return str(
            await hass.async_add_executor_job(self._wait_for_log, predicate, timeout)
        )

    def _wait_for_log(self, predicate: Any, timeout: float) -> str:
        for _ in range(max(1, int(timeout / _POLL_S))):
            text = self.log_text()
            if predicate(text):
                return text
            time.sleep(_POLL_S)
        text = self.log_text()
        if predicate(text):
            return text
        raise TimeoutError(f"mosquitto log did not show it in time:\n{text}")

    def log_text(self) -> str:
        """The broker's log so far."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- internals --------------------------------------------------------------------------

    def _write_acl(self) -> None:
        self.acl_file.write_text(
            f"user {HA_USERNAME}\ntopic readwrite #\n\n{self.feeder_acl}"
        )

    def _ctrl(self, *args: str) -> None:
        self._run(
            self.tools["mosquitto_ctrl"],
            "-h",
            LOOPBACK,
            "-p",
            str(self.port),
            "-u",
            ADMIN_USERNAME,
            "-P",
            self.admin_password,
            "dynsec",
            *args,
        )

    @staticmethod
    def _run(*args: str) -> None:
        result = subprocess.run(args, capture_output=True, timeout=10, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{result.stdout.decode(errors='replace')}{result.stderr.decode(errors='replace')}"
            )
