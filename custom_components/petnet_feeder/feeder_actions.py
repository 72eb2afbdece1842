"""What the owner can tell a feeder to do, and the settings that go with it.

Each command goes out through the outbox; none is kept for a feeder that is not connected.
"""

from __future__ import annotations

import logging

from .errors import FeederUnreachableError, invalid
from .meals import cups_for_grams
from .models import Feeder
from .outbox import Outbox
from .protocol import commands
from .protocol.commands import Command
from .schedule_sync import ScheduleSync
from .state import FeederState, now
from .transport.base import GatewayNotConnectedError

_LOGGER = logging.getLogger(__name__)


def validated_portion(portion: float) -> float:
    """A portion the feeder takes (cups, in 1/16 steps), or InvalidRequestError."""
    try:
        return commands.validate_portion(portion)
    except ValueError as err:
        raise invalid("invalid_portion", portion=portion) from err


class FeederActions:
    """Feed, reboot, the front button, and the feeder's food settings."""

    def __init__(
        self,
        state: FeederState,
        outbox: Outbox,
        sync: ScheduleSync,
        default_portion: float,
    ) -> None:
        """Send through ``outbox``; recipe changes are delivered by ``sync``."""
        self._state = state
        self._outbox = outbox
        self._sync = sync
        self._default_portion = default_portion

    def manual_portion(self, feeder: Feeder) -> float:
        """The portion the feed-now button dispenses."""
        return feeder.manual_portion or self._default_portion

    async def async_feed(self, feeder_hid: str, portion: float) -> None:
        """Dispense a portion now; never queued for an offline feeder."""
        feeder = self._state.feeder(feeder_hid)
        await self._send(feeder, commands.feed(feeder.hid, validated_portion(portion)))

    async def async_reboot(self, feeder_hid: str) -> None:
        """Restart the feeder."""
        feeder = self._state.feeder(feeder_hid)
        await self._send(feeder, commands.reboot(feeder.hid))

    async def async_set_button_enabled(self, feeder_hid: str, enabled: bool) -> None:
        """Turn the front (manual feed) button on or off."""
        feeder = self._state.feeder(feeder_hid)
        await self._send(feeder, commands.button_enable_remote(feeder.hid, enabled))
        feeder.button_enabled = enabled
        self._state.changed(feeder)

    def sync_schedule(self, feeder_hid: str) -> None:
        """Send the whole schedule again (button and action)."""
        self._sync.request_sync(self._state.feeder(feeder_hid), "requested")

    def set_hopper_level(self, feeder_hid: str, percent: float) -> None:
        """Set the hopper reference (100 after a refill); later dispenses count down from it."""
        feeder = self._state.feeder(feeder_hid)
        if not 0 <= percent <= 100:
            raise invalid("invalid_hopper_level", level=percent)
        feeder.hopper_reference_pct = float(percent)
        feeder.hopper_reference_ms = int(now() * 1000)
        self._state.changed(feeder)

    def set_recipe(
        self,
        feeder_hid: str,
        *,
        g_per_tbsp: int | None = None,
        tbsp_per_feeding: int | None = None,
    ) -> None:
        """Change the food density or the button portion; the feeder gets them with `budget`."""
        feeder = self._state.feeder(feeder_hid)
        if g_per_tbsp is not None:
            feeder.g_per_tbsp = int(g_per_tbsp)
        if tbsp_per_feeding is not None:
            feeder.tbsp_per_feeding = int(tbsp_per_feeding)
        self._sync.request_sync(feeder, "recipe changed")

    def set_manual_portion(self, feeder_hid: str, portion: float) -> None:
        """Set the portion the feed-now button dispenses."""
        feeder = self._state.feeder(feeder_hid)
        feeder.manual_portion = validated_portion(portion)
        self._state.changed(feeder)

    def cups_for_grams(self, feeder_hid: str, grams: float) -> float:
        """Grams as the nearest 1/16 cup with the feeder's recipe."""
        feeder = self._state.feeder(feeder_hid)
        if not feeder.g_per_tbsp:
            raise invalid("recipe_needed", name=feeder.display_name)
        sixteenths = round(cups_for_grams(grams, feeder.g_per_tbsp) * 16)
        return validated_portion(sixteenths / 16)

    async def _send(self, feeder: Feeder, command: Command) -> None:
        try:
            await self._outbox.async_send(feeder.gateway_hid, command)
        except (GatewayNotConnectedError, TimeoutError) as err:
            raise FeederUnreachableError(name=feeder.display_name) from err
