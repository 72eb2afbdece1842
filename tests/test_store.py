"""The stored state as Home Assistant reads it at start, damaged parts included."""

from __future__ import annotations

from datetime import timedelta
import logging
import threading
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.petnet_feeder.const import DOMAIN, SAVE_DELAY_S, STORAGE_VERSION
from custom_components.petnet_feeder.hub import PetnetHub
from custom_components.petnet_feeder.models import Feeder, Gateway, StoredFeedResult
from custom_components.petnet_feeder.protocol.messages import FeedResult
from custom_components.petnet_feeder.store import PetnetStore

GW_HID = "488533283e3f06ca4ae929fd01f50a9259dd393f"
DEV_HID = "5238b0c4ceb91b35119887f44f29cb489fcf044a"
OTHER_DEV = "c3d89400068631f8138a57286982bea94370693d"
KEY = "4a5cb5b5e3cc0d2fbe4a33aa855571c0d53e071afe3c626ecfdc8878011f3937"
STIME_MS = 1717243203000


def stored(data: Any) -> dict[str, Any]:
    return {"version": STORAGE_VERSION, "minor_version": 1, "key": DOMAIN, "data": data}


def good_row(start_ms: int = STIME_MS) -> dict[str, Any]:
    result = FeedResult.from_dict({"device_hid": DEV_HID, "start_ms": start_ms})
    return StoredFeedResult(result=result, received_at=1717243204.0).to_dict()


async def set_up(hass: HomeAssistant, config_entry: MockConfigEntry) -> PetnetHub:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    hub: PetnetHub = config_entry.runtime_data
    return hub


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.endswith(".store")
    ]


async def test_unreadable_entries_are_skipped_and_the_rest_loads(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass_storage[DOMAIN] = stored(
        {
            "gateways": {
                GW_HID: Gateway(hid=GW_HID, api_key=KEY).to_dict(),
                "no-key": {"hid": "no-key"},
                "not-a-record": "garbage",
            },
            "feeders": {
                DEV_HID: Feeder(hid=DEV_HID, gateway_hid=GW_HID).to_dict(),
                "no-hid": {"gateway_hid": GW_HID},
                "bad-meal": {
                    **Feeder(hid="bad-meal", gateway_hid=GW_HID).to_dict(),
                    "meals": [{"name": "Breakfast"}],
                },
                "a-list": [1, 2],
            },
            "history": {
                DEV_HID: [good_row(), {"device_hid": DEV_HID}, "junk"],
            },
        }
    )
    hub = await set_up(hass, config_entry)

    assert list(hub.state.gateways) == [GW_HID]
    assert hub.state.gateways[GW_HID].api_key == KEY
    assert list(hub.state.feeders) == [DEV_HID]
    assert [row.result.start_ms for row in hub.state.feeders[DEV_HID].history] == [
        STIME_MS
    ]
    assert sorted(warnings(caplog)) == sorted(
        [
            "Skipping unreadable stored gateway no-key",
            "Skipping unreadable stored gateway not-a-record",
            "Skipping unreadable stored feeder no-hid",
            "Skipping unreadable stored feeder bad-meal",
            "Skipping unreadable stored feeder a-list",
            f"Skipping unreadable stored feed result of {DEV_HID}",
            f"Skipping unreadable stored feed result of {DEV_HID}",
        ]
    )
    # The next write keeps what could be read.
    await hub.state.async_save_now()
    data = hass_storage[DOMAIN]["data"]
    assert list(data["gateways"]) == [GW_HID]
    assert list(data["feeders"]) == [DEV_HID]
    assert [row["start_ms"] for row in data["history"][DEV_HID]] == [STIME_MS]
    await hass.config_entries.async_unload(config_entry.entry_id)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            ["not", "an", "object"],
            ["Ignoring unreadable stored data (not an object)"],
            id="data",
        ),
        pytest.param(
            {"gateways": ["x"], "feeders": "x", "history": 3},
            [
                "Ignoring unreadable stored gateways",
                "Ignoring unreadable stored history",
                "Ignoring unreadable stored feeders",
            ],
            id="sections",
        ),
    ],
)
async def test_unreadable_sections_load_as_empty(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    data: Any,
    expected: list[str],
) -> None:
    hass_storage[DOMAIN] = stored(data)
    hub = await set_up(hass, config_entry)
    assert hub.state.gateways == {}
    assert hub.state.feeders == {}
    assert warnings(caplog) == expected
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_history_that_is_not_a_list_is_dropped_alone(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass_storage[DOMAIN] = stored(
        {
            "gateways": {GW_HID: Gateway(hid=GW_HID, api_key=KEY).to_dict()},
            "feeders": {
                DEV_HID: Feeder(hid=DEV_HID, gateway_hid=GW_HID).to_dict(),
                OTHER_DEV: Feeder(hid=OTHER_DEV, gateway_hid=GW_HID).to_dict(),
            },
            "history": {DEV_HID: {"start_ms": STIME_MS}, OTHER_DEV: [good_row()]},
        }
    )
    hub = await set_up(hass, config_entry)
    assert hub.state.feeders[DEV_HID].history == []
    assert len(hub.state.feeders[OTHER_DEV].history) == 1
    assert warnings(caplog) == [f"Skipping unreadable feed history of {DEV_HID}"]
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_a_store_without_a_source_writes_nothing(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Until the hub attached its state, there is nothing to write (not even {})."""
    store = PetnetStore(hass)
    store.schedule_save(0)
    await store.async_save_now()
    await hass.async_block_till_done()
    assert DOMAIN not in hass_storage


async def test_a_delayed_write_builds_its_data_on_the_event_loop(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The feeders change on the loop: reading them from a worker thread races.

    (1000 feeders booting raised "dictionary changed size during iteration" and lost the
    write.)
    """
    # Home Assistant runs the data function of a delayed save in a worker thread (the test
    # harness's storage mock calls it on the loop, which hides that): none may be handed over.
    delayed: list[str] = []
    monkeypatch.setattr(
        Store, "async_delay_save", lambda self, *_args: delayed.append(self.key)
    )
    hub = await set_up(hass, config_entry)
    store = hub.state._store
    build = store._data_func
    assert build is not None
    threads: list[threading.Thread] = []

    def recording() -> dict[str, Any]:
        threads.append(threading.current_thread())
        return build()

    store._data_func = recording
    hub.state.schedule_save()
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=SAVE_DELAY_S + 1)
    )
    await hass.async_block_till_done()
    assert threads == [threading.current_thread()]
    assert DOMAIN not in delayed
    assert DOMAIN in hass_storage
    await hass.config_entries.async_unload(config_entry.entry_id)
