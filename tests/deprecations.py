"""Fail a test when Home Assistant reports deprecated use by this integration.

Home Assistant logs such reports instead of raising for custom integrations: "Detected that
custom integration 'petnet_feeder' ..." (``helpers.frame.report_usage``), or "... was used
from petnet_feeder, this is a deprecated constant ..." and "... please report it to the author
of the 'petnet_feeder' custom integration" (``helpers.deprecation``). A user sees them in the
log; here they fail the test that caused them. Warnings raised in the integration's own modules
are errors through ``filterwarnings`` in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Iterable
import logging

import pytest

from custom_components.petnet_feeder.const import DOMAIN

OWN_LOGGERS = ("custom_components.", "feeder_sim", "tests")
"""Loggers whose messages are ours, not Home Assistant's reports about us."""


def is_deprecation_report(record: logging.LogRecord) -> bool:
    """Whether a log record is Home Assistant reporting deprecated use by this integration."""
    if record.levelno < logging.WARNING or record.name.startswith(OWN_LOGGERS):
        return False
    message = record.getMessage()
    if DOMAIN not in message:
        return False
    return (
        f"Detected that custom integration '{DOMAIN}'" in message
        or "deprecat" in message.lower()
    )


def fail_on_reports(records: Iterable[logging.LogRecord]) -> None:
    """Fail the running test, quoting each report, if there is any."""
    reports = [f"{r.name}: {r.getMessage()}" for r in records]
    if reports:
        pytest.fail(
            "Home Assistant reported deprecated use by this integration:\n  "
            + "\n  ".join(reports),
            pytrace=False,
        )


class DeprecationReports(logging.Handler):
    """Collects Home Assistant's deprecation reports about this integration during a test."""

    def __init__(self) -> None:
        """Collect from WARNING up."""
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record if it is such a report."""
        if is_deprecation_report(record):
            self.records.append(record)
