"""Small helpers for ``scripts/develop`` that need no packages beyond the standard library.

``port-free HOST PORT``: exit 0 if HOST:PORT can be bound, 1 if it is in use, 2 if it cannot be
bound for another reason (the reason on stderr). Prints nothing when free.

``prepare-onboarding CONFIG``: before Home Assistant's first start, mark onboarding's
``core_config`` step done. Finishing that step over HTTP starts config flows for
google_translate, met, radio_browser and shopping_list, and the first three need packages this
setup does not install (and the network): each start would log their errors and tracebacks.
The demo sets the location and time zone itself; in a browser they are under Settings -> System
-> General.

``wait-up URL PID``: wait until Home Assistant's frontend answers (exit 0), Home Assistant
exited (exit 1) or 180 s passed (exit 1).

``filter-log``: read Home Assistant's console output on stdin and write to stderr only what a
developer of this integration needs to see: its warnings and errors, and errors of any logger
that mention it (such as a failed setup). Everything else is in Home Assistant's log file.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
import errno
import json
import os
from pathlib import Path
import queue
import re
import signal
import socket
import sys
import threading
import time
from typing import TextIO
import urllib.error
import urllib.request

INTEGRATION = "petnet_feeder"
OUR_LOGGERS = (f"custom_components.{INTEGRATION}",)
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
# Home Assistant's log format: "%(asctime)s.%(msecs)03d %(levelname)s (%(threadName)s)
# [%(name)s] %(message)s" with "%Y-%m-%d %H:%M:%S" dates.
RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d (?P<time>\d\d:\d\d:\d\d)(?:\.\d+)? (?P<level>[A-Z]+) "
    r"\((?P<thread>[^)]*)\) \[(?P<logger>[^\]]+)\] (?P<message>.*)$"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ONBOARDING_STEPS = ("user", "core_config", "analytics", "integration")
ONBOARDING_STORE_VERSION = 4


class LogFilter:
    """Decide, record by record, which of Home Assistant's console lines to show.

    A record is a line in Home Assistant's format and the lines after it that are not (a
    traceback, a multi-line message). Shown: records at WARNING or above from this
    integration's loggers, and records at ERROR or above from any logger whose text names the
    integration. The latter are held until the record is complete (the next record starts, or
    :meth:`flush`). Lines before the first record (what Home Assistant prints before its
    logging is set up, such as a fatal configuration error) are shown as they are.
    """

    def __init__(
        self, loggers: Iterable[str] = OUR_LOGGERS, mention: str = INTEGRATION
    ) -> None:
        """Show records of ``loggers`` (and their children), and errors naming ``mention``."""
        self._loggers = tuple(loggers)
        self._mention = mention
        self._state = "before"  # before the first record, "show", "hide" or "hold"
        self._held: list[str] = []

    def _ours(self, logger: str) -> bool:
        return any(
            logger == name or logger.startswith(f"{name}.") for name in self._loggers
        )

    def feed(self, line: str) -> list[str]:
        """Take one line (without its newline); return the lines to show now."""
        line = ANSI.sub("", line)
        match = RECORD.match(line)
        if match is None:
            if self._state == "hold":
                self._held.append(line)
                return []
            return [line] if self._state in ("before", "show") else []
        shown = self.flush()
        level = LEVELS.get(match["level"], LEVELS["WARNING"])
        short = (
            f"{match['time']} {match['level']} [{match['logger']}] {match['message']}"
        )
        if level >= LEVELS["WARNING"] and self._ours(match["logger"]):
            self._state = "show"
            shown.append(short)
        elif level >= LEVELS["ERROR"]:
            self._state = "hold"
            self._held = [short]
        else:
            self._state = "hide"
        return shown

    def flush(self) -> list[str]:
        """End the record being held, if any; return its lines if it names the integration."""
        if self._state != "hold":
            return []
        held, self._held = self._held, []
        shown = any(self._mention in line for line in held)
        self._state = "show" if shown else "hide"  # for lines that come late
        return held if shown else []


def filter_log(source: Iterable[str], out: TextIO, hold_seconds: float = 0.5) -> None:
    """Copy what :class:`LogFilter` shows from ``source`` to ``out`` until ``source`` ends.

    A record held for a look at its traceback is decided after ``hold_seconds`` of silence.
    """
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in source:
            lines.put(line.rstrip("\r\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    log_filter = LogFilter()
    writable = True
    while True:
        try:
            line = lines.get(timeout=hold_seconds)
        except queue.Empty:
            line, shown = "", log_filter.flush()
        else:
            shown = log_filter.flush() if line is None else log_filter.feed(line)
        if shown and writable:
            try:
                out.write("".join(f"{text}\n" for text in shown))
                out.flush()
            except BrokenPipeError:  # the terminal is gone: keep reading, so that
                writable = False  # Home Assistant's writes to the pipe do not fail
        if line is None:
            return


def port_free(host: str, port: int) -> tuple[bool, str]:
    """Whether ``host:port`` can be bound for listening, and why not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return False, "in use"
            return False, err.strerror or str(err)
    return True, ""


def prepare_onboarding(config: Path) -> bool:
    """Mark onboarding's core_config step done unless onboarding is finished; True if changed."""
    path = config / ".storage" / "onboarding"
    try:
        store = json.loads(path.read_text(encoding="utf-8"))
        done = store["data"]["done"]
    except FileNotFoundError:
        store = {
            "version": ONBOARDING_STORE_VERSION,
            "minor_version": 1,
            "key": "onboarding",
            "data": {"done": []},
        }
        done = store["data"]["done"]
    if set(ONBOARDING_STEPS) <= set(done) or "core_config" in done:
        return False
    done.append("core_config")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.develop")
    temporary.write_text(json.dumps(store, indent=4), encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)
    return True


def wait_up(url: str, pid: int, timeout: float) -> bool:
    """Wait until the frontend answers at ``url``; False if ``pid`` exited or on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] == "Z":
                return False
        except ProcessLookupError:
            return False
        except OSError:
            pass
        try:
            with urllib.request.urlopen(f"{url}/manifest.json", timeout=2):  # noqa: S310
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return False


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    port_parser = commands.add_parser("port-free")
    port_parser.add_argument("host")
    port_parser.add_argument("port", type=int)
    onboarding_parser = commands.add_parser("prepare-onboarding")
    onboarding_parser.add_argument("config", type=Path)
    wait_parser = commands.add_parser("wait-up")
    wait_parser.add_argument("url")
    wait_parser.add_argument("pid", type=int)
    wait_parser.add_argument("--timeout", type=float, default=180)
    commands.add_parser("filter-log")
    args = parser.parse_args()

    if args.command == "port-free":
        free, reason = port_free(args.host, args.port)
        if free:
            return 0
        if reason == "in use":
            return 1
        print(reason, file=sys.stderr)
        return 2
    if args.command == "prepare-onboarding":
        prepare_onboarding(args.config)
        return 0
    if args.command == "wait-up":
        return 0 if wait_up(args.url.rstrip("/"), args.pid, args.timeout) else 1
    # filter-log: a terminal's Ctrl-C (or a TERM to the script's process group) must not end
    # the filter before Home Assistant has logged its shutdown; the end of input ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        filter_log(sys.stdin, sys.stderr)
    except (
        BrokenPipeError
    ):  # the terminal is gone; keep reading so Home Assistant can write
        for _ in sys.stdin:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
