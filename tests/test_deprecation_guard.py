"""The guard that fails a test on Home Assistant's deprecation reports about this integration."""

from __future__ import annotations

import logging
import warnings

from homeassistant.core import HomeAssistant
from homeassistant.helpers import frame
from homeassistant.loader import async_get_integration
import pytest

from custom_components.petnet_feeder.const import DOMAIN

from .deprecations import DeprecationReports, fail_on_reports, is_deprecation_report


def record(
    logger: str, message: str, level: int = logging.WARNING
) -> logging.LogRecord:
    return logging.LogRecord(logger, level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("logger", "message", "level", "reported"),
    [
        (
            "homeassistant.helpers.frame",
            f"Detected that custom integration '{DOMAIN}' calls a deprecated API at "
            f"custom_components/{DOMAIN}/hub.py, line 1: x. This will stop working in "
            "Home Assistant 2027.8, please create a bug report",
            logging.WARNING,
            True,
        ),
        (
            "homeassistant.const",
            f"ATTR_X was used from {DOMAIN}, this is a deprecated constant which will be "
            "removed in HA Core 2027.8. Use Y instead, please report it to the author of "
            f"the '{DOMAIN}' custom integration",
            logging.WARNING,
            True,
        ),
        (
            "homeassistant.helpers.device_registry",
            f"The deprecated function async_get_device was called from {DOMAIN}",
            logging.ERROR,
            True,
        ),
        # Not reports: HA's notice for every custom integration, another integration's
        # report, our own log lines, and anything below WARNING.
        (
            "homeassistant.loader",
            f"We found a custom integration {DOMAIN} which has not been tested by Home "
            "Assistant. This component might cause stability problems",
            logging.WARNING,
            False,
        ),
        (
            "homeassistant.helpers.frame",
            "Detected that custom integration 'other' calls a deprecated API",
            logging.WARNING,
            False,
        ),
        (
            f"custom_components.{DOMAIN}.hub",
            f"{DOMAIN}: the feeder runs deprecated firmware",
            logging.WARNING,
            False,
        ),
        (
            "homeassistant.helpers.frame",
            f"Detected that custom integration '{DOMAIN}' calls a deprecated API",
            logging.INFO,
            False,
        ),
    ],
)
def test_what_counts_as_a_report(
    logger: str, message: str, level: int, reported: bool
) -> None:
    assert is_deprecation_report(record(logger, message, level)) is reported


def test_reports_fail_the_test_and_name_each() -> None:
    fail_on_reports([])  # nothing reported: passes
    reports = [
        record(
            "homeassistant.helpers.frame",
            f"Detected that custom integration '{DOMAIN}' a",
        ),
        record(
            "homeassistant.const",
            f"B was used from {DOMAIN}, this is a deprecated constant",
        ),
    ]
    with pytest.raises(pytest.fail.Exception) as failed:
        fail_on_reports(reports)
    assert f"Detected that custom integration '{DOMAIN}' a" in str(failed.value)
    assert "this is a deprecated constant" in str(failed.value)


async def test_home_assistants_own_report_is_caught(
    hass: HomeAssistant, deprecation_reports: DeprecationReports
) -> None:
    """A real report from Home Assistant's frame helper reaches the guard of this test."""
    await async_get_integration(hass, DOMAIN)
    frame.report_usage(
        "uses an API that only this test pretends is deprecated",
        breaks_in_ha_version="2099.1",
        integration_domain=DOMAIN,
    )
    assert [r.name for r in deprecation_reports.records] == [
        "homeassistant.helpers.frame"
    ]
    assert (
        f"custom integration '{DOMAIN}'" in deprecation_reports.records[0].getMessage()
    )
    deprecation_reports.records.clear()  # expected here: the test itself passes


def test_deprecation_warning_from_the_integration_is_an_error() -> None:
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit(
            "old API",
            DeprecationWarning,
            filename=f"custom_components/{DOMAIN}/hub.py",
            lineno=1,
            module=f"custom_components.{DOMAIN}.hub",
        )
