"""Small helpers for ``scripts/develop`` that need no packages beyond the standard library.

``port-free HOST PORT``: exit 0 if HOST:PORT can be bound, 1 if it is in use, 2 if it cannot be
bound for another reason (the reason on stderr). Prints nothing when free.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys


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


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    port_parser = commands.add_parser("port-free")
    port_parser.add_argument("host")
    port_parser.add_argument("port", type=int)
    args = parser.parse_args()

    free, reason = port_free(args.host, args.port)
    if free:
        return 0
    if reason == "in use":
        return 1
    print(reason, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
