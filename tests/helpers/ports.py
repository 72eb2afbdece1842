"""Free loopback ports for the servers the tests start."""

from __future__ import annotations

import os
from pathlib import Path
import random
import socket

LOOPBACK = "127.0.0.1"

_LOWEST = 10_000
_handed_out: set[int] = set()


def _ephemeral_range_start() -> int:
    """Where the kernel starts picking source ports for outgoing connections."""
    try:
        return int(
            Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        )
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_slice(lowest: int, highest: int) -> tuple[int, int]:
    """The part of the range that is this pytest-xdist worker's (all of it without xdist).

    Workers do not share ``_handed_out``: two of them picking from one range took the same
    port about once per suite run, and the later setup could not bind it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count <= 1:
        return lowest, highest
    index = int(worker[2:]) % count
    size = (highest - lowest + 1) // count
    return lowest + index * size, lowest + (index + 1) * size - 1


_LOWEST, _HIGHEST = _worker_slice(
    _LOWEST, max(_ephemeral_range_start() - 1, _LOWEST + 1000)
)


def free_port() -> int:
    """A loopback port nothing listens on, never handed out before in this test run.

    Asking the kernel (bind to port 0) is not enough: a test takes four ports at once and
    the kernel may hand out a port it gave a moment ago, and until the server binds, any
    client connection may take the port as its source port. Ports below the ephemeral range
    are never chosen as source ports, none is handed out twice, and each xdist worker has its
    own ports.
    """
    for _ in range(1000):
        port = random.randint(_LOWEST, _HIGHEST)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port between {_LOWEST} and {_HIGHEST}")
