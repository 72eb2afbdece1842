"""Firmware version parsing and the schedule-API switch (protocol §8)."""

from __future__ import annotations

import re

# A guess inherited from upstream: 2.3.2 is known legacy, 2.7+ known new; no 2.5/2.6 seen.
NEW_SCHEDULE_API_MIN = (2, 5, 0)

_LEADING_VERSION = re.compile(r"\s*[vV]?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
# Guards against absurd digit runs turning into enormous integers.
_MAX_PART_DIGITS = 9


def parse_version(value: object) -> tuple[int, int, int] | None:
    """Parse the leading ``MAJOR[.MINOR[.PATCH]]`` of a version string leniently.

    Missing parts count as 0 and any suffix is ignored (``"2.4"`` -> (2, 4, 0),
    ``"2.8.0-rc1"`` -> (2, 8, 0)). Anything unparsable gives None.
    """
    if not isinstance(value, str):
        return None
    match = _LEADING_VERSION.match(value)
    if match is None:
        return None
    parts = [part or "0" for part in match.groups()]
    if any(len(part) > _MAX_PART_DIGITS for part in parts):
        return None
    major, minor, patch = (int(part) for part in parts)
    return (major, minor, patch)


def uses_new_schedule_api(version: str | None) -> bool:
    """Tell whether a firmware version takes the new schedule API; unknown means legacy."""
    parsed = parse_version(version)
    return parsed is not None and parsed >= NEW_SCHEDULE_API_MIN
