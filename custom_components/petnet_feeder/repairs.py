"""Fix flows of the integration's repair issues, chosen by issue-id prefix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow
from homeassistant.core import HomeAssistant
import voluptuous as vol

from .const import DOMAIN
from .errors import FeederUnreachableError, InvalidRequestError
from .monitor import FAILED_ISSUE, MISSED_ISSUE, FeedingMonitor
from .translate import as_ha_error


class _FeedOnceFlow(RepairsFlow):
    """Offer to dispense a meal's portion now, at most once for that meal."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember which meal this is about."""
        self._data = data

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> data_entry_flow.FlowResult:
        """Start with the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> data_entry_flow.FlowResult:
        """Feed on confirmation; nothing is fed twice for the same meal."""
        if user_input is None:
            return self.async_show_form(step_id="confirm", data_schema=vol.Schema({}))
        entries = self.hass.config_entries.async_loaded_entries(DOMAIN)
        if not entries:
            return self.async_abort(reason="not_loaded")
        try:
            fed = await self._feed(entries[0].runtime_data.monitor)
        except InvalidRequestError as err:
            # Not a connection problem: the feeder was deleted, or the portion is refused.
            return self.async_abort(
                reason="cannot_feed",
                description_placeholders={"error": str(as_ha_error(err))},
            )
        except FeederUnreachableError:
            return self.async_abort(reason="feeder_offline")
        if not fed:
            return self.async_abort(reason="already_fed")
        return self.async_create_entry(data={})

    async def _feed(self, monitor: FeedingMonitor) -> bool:
        """Dispense the portion; False if that was done already."""
        raise NotImplementedError


class FeedMissedMealFlow(_FeedOnceFlow):
    """Offer to feed the missed portion now, exactly once."""

    async def _feed(self, monitor: FeedingMonitor) -> bool:
        return await monitor.async_feed_missed(
            self._data["feeder_hid"], self._data["miss"], float(self._data["portion"])
        )


class RetryFailedDispenseFlow(_FeedOnceFlow):
    """Offer to dispense a failed meal's portion once more."""

    async def _feed(self, monitor: FeedingMonitor) -> bool:
        return await monitor.async_retry_failed(
            self._data["feeder_hid"], self._data["key"], float(self._data["portion"])
        )


type FlowFactory = Callable[[dict[str, Any]], RepairsFlow]

# Issue-id prefix -> fix flow. One line per kind of fixable issue.
FLOWS: dict[str, FlowFactory] = {
    MISSED_ISSUE: FeedMissedMealFlow,
    FAILED_ISSUE: RetryFailedDispenseFlow,
}


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the fix flow of an issue."""
    for prefix, factory in FLOWS.items():
        if issue_id.startswith(prefix):
            return factory(dict(data or {}))
    raise ValueError(f"No fix flow for issue {issue_id}")
