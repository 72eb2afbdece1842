"""Warn once per gateway and kind of misbehaviour, then keep it at debug level.

A feeder that keeps sending something wrong must not fill the log.
"""

from __future__ import annotations

import logging
from typing import Any


class OnceLogger:
    """Remembers what was logged at a higher level already."""

    def __init__(self, logger: logging.Logger) -> None:
        """Log to this logger."""
        self._logger = logger
        self._seen: set[tuple[str, ...]] = set()

    def first_time(self, *key: str) -> bool:
        """True the first time this key is asked about."""
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def warning(self, gateway_hid: str, what: str, msg: str, *args: Any) -> None:
        """Warn the first time a gateway does ``what``, then log at debug level."""
        level = logging.WARNING if self.first_time(gateway_hid, what) else logging.DEBUG
        self._logger.log(level, msg, *args)
