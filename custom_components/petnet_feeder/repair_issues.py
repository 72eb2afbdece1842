"""Raising the integration's repair issues: one shape for all of them.

None is persistent: each is raised again from what the integration stores (or not at all)
after a restart, so a stale one never outlives its cause.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN


def raise_issue(
    hass: HomeAssistant,
    issue_id: str,
    translation_key: str,
    placeholders: dict[str, str],
    *,
    severity: ir.IssueSeverity = ir.IssueSeverity.WARNING,
    data: dict[str, Any] | None = None,
) -> None:
    """Create or update an issue; it has a fix flow when ``data`` is given."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=data is not None,
        is_persistent=False,
        severity=severity,
        translation_key=translation_key,
        translation_placeholders=placeholders,
        data=data,
    )
