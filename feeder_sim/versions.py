"""Firmware version parsing and the schedule API family (protocol §8)."""

from __future__ import annotations

import re

NEW_SCHEDULE_API_FROM = (2, 5, 0)
_LEADING_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_version(version: str | None) -> tuple[int, int, int] | None:
    """Parse the leading ``MAJOR[.MINOR[.PATCH]]`` digits; None if unparsable."""
    if not version or not (match := _LEADING_VERSION.match(version)):
        return None
    major, minor, patch = (int(part) if part else 0 for part in match.groups())
    return major, minor, patch


def uses_new_schedule_api(version: str | None) -> bool:
    """Return True if a server should send this firmware the new schedule API."""
    parsed = parse_version(version)
    return parsed is not None and parsed >= NEW_SCHEDULE_API_FROM
