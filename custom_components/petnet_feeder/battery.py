"""Battery level estimate from the voltage the feeder reports.

Nobody has published how the SmartFeeder's reading maps to charge (protocol U2). The feeder
reports charging, which points to a rechargeable single lithium cell; we assume so and use that
cell's usable range: 3.5 V is empty and 4.1 V full, linear in between, clamped. On USB power the
reading is the supply (about 4.5 V) and shows 100 %. An estimate, labelled as such in the README.
"""

from __future__ import annotations

EMPTY_V = 3.5
FULL_V = 4.1


def battery_percent(voltage_v: float | None) -> int | None:
    """Map a voltage to 0-100 %, or None when there is no reading."""
    if voltage_v is None:
        return None
    fraction = (voltage_v - EMPTY_V) / (FULL_V - EMPTY_V)
    return round(min(1.0, max(0.0, fraction)) * 100)
