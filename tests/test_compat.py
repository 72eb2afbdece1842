"""The guards that pick the newer Home Assistant API where the running release has it."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.petnet_feeder as petnet
from custom_components.petnet_feeder import compat
from custom_components.petnet_feeder.config_flow import PetnetFeederOptionsFlow
from custom_components.petnet_feeder.const import CONF_DEFAULT_PORTION, DOMAIN
from custom_components.petnet_feeder.transport import ha_mqtt

from .test_config_flow import network_options


async def test_options_flow_reloads_the_entry_once(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entry_data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OptionsFlowWithReload where Home Assistant has it (2025.8+), else an update listener.

    Never both: Home Assistant refuses an update listener beside a reloading options flow.
    """
    with_reload = getattr(config_entries, "OptionsFlowWithReload", None)
    assert compat.OPTIONS_FLOW_RELOADS is (with_reload is not None)
    if with_reload is not None:
        assert issubclass(PetnetFeederOptionsFlow, with_reload)
    assert bool(loaded_entry.update_listeners) is not compat.OPTIONS_FLOW_RELOADS

    setups = 0
    setup_entry = petnet.async_setup_entry

    async def counting(hass: HomeAssistant, entry: Any) -> bool:
        nonlocal setups
        setups += 1
        return await setup_entry(hass, entry)

    monkeypatch.setattr(petnet, "async_setup_entry", counting)
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**network_options(entry_data), CONF_DEFAULT_PORTION: 0.25}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert setups == 1
    assert loaded_entry.runtime_data.settings.default_portion == 0.25


@pytest.fixture
def device(hass: HomeAssistant) -> dr.DeviceEntry:
    entry = MockConfigEntry(domain=DOMAIN)
    entry.add_to_hass(hass)
    return dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "feeder-hid")}
    )


async def test_device_lookup_before_2026_8(
    hass: HomeAssistant, device: dr.DeviceEntry
) -> None:
    assert not hasattr(dr.DeviceRegistry, "async_get_device_by_identifier")
    (entry_id,) = device.config_entries
    assert compat.async_get_device(hass, entry_id, (DOMAIN, "feeder-hid")) == device
    assert compat.async_get_device(hass, entry_id, (DOMAIN, "other")) is None


async def test_device_lookup_scoped_to_the_entry_from_2026_8(
    hass: HomeAssistant, device: dr.DeviceEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the registry has the scoped lookup (2026.8+), it is what is asked.

    Neither tested release has it, so a stand-in with its documented signature
    (identifier, config entry id) takes its place.
    """
    calls: list[tuple[tuple[str, str], str]] = []

    def by_identifier(
        registry: dr.DeviceRegistry, identifier: tuple[str, str], config_entry_id: str
    ) -> dr.DeviceEntry | None:
        calls.append((identifier, config_entry_id))
        found = registry.async_get_device(identifiers={identifier})
        return found if found and config_entry_id in found.config_entries else None

    monkeypatch.setattr(
        dr.DeviceRegistry,
        "async_get_device_by_identifier",
        by_identifier,
        raising=False,
    )
    (entry_id,) = device.config_entries
    assert compat.async_get_device(hass, entry_id, (DOMAIN, "feeder-hid")) == device
    assert (
        compat.async_get_device(hass, "another-entry", (DOMAIN, "feeder-hid")) is None
    )
    assert calls == [
        ((DOMAIN, "feeder-hid"), entry_id),
        ((DOMAIN, "feeder-hid"), "another-entry"),
    ]


def test_mqtt_publish_passes_qos_and_retain_explicitly() -> None:
    """Every MQTT publish of ours names qos and retain, with real values.

    Home Assistant's MQTT publish API stops turning a None qos or retain into a default in
    2027.6 (announced for 2026.6).
    """
    source = Path(ha_mqtt.__file__).read_text(encoding="utf-8")
    calls = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"async_publish", "publish"}
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "mqtt"
    ]
    assert calls
    for call in calls:
        keywords = {keyword.arg: keyword.value for keyword in call.keywords}
        assert {"qos", "retain"} <= keywords.keys()
        for name in ("qos", "retain"):
            value = keywords[name]
            assert not (isinstance(value, ast.Constant) and value.value is None)
