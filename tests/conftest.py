"""Shared fixtures: a real hass, the integration on free loopback ports, simulated feeders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.mqtt.util import EnsureJobAfterCooldown
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

# Imported before any test freezes the clock: ical builds its (pydantic) models at import,
# and models built while freezegun has replaced datetime cannot be created.
from custom_components.petnet_feeder import approvals, calendar_mapping  # noqa: F401
from custom_components.petnet_feeder.const import (
    CONF_BIND_HOST,
    CONF_HTTP_PORT,
    CONF_HTTPS_PORT,
    CONF_MQTT_PORT,
    CONF_MQTTS_PORT,
    CONF_TRANSPORT,
    DOMAIN,
    TRANSPORT_BUNDLED,
    TRANSPORT_MQTT,
)
from custom_components.petnet_feeder.transport.ha_mqtt import HaMqttTransport
from feeder_sim import SimulatedFeeder, ids as sim_ids

from .deprecations import DeprecationReports, fail_on_reports
from .helpers.feeders import FeederFactory, boot_via_broker
from .helpers.mosquitto import (
    HA_CLIENT_ID,
    HA_USERNAME,
    Mosquitto,
    MosquittoUnavailableError,
)
from .helpers.platforms import EntitiesSnapshot, all_entities_enabled
from .helpers.ports import LOOPBACK, free_port
from .helpers.transports import SENT_COMMANDS


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers."""
    config.addinivalue_line(
        "markers", "bundled_only(reason): skip the [mqtt] variant of the test"
    )
    config.addinivalue_line(
        "markers",
        "shipped_timeouts: the Kronos site keeps its own timeouts, not the hostile tests' short ones",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the HA-MQTT variant of tests marked bundled_only, naming the reason."""
    for item in items:
        marker = item.get_closest_marker("bundled_only")
        callspec = getattr(item, "callspec", None)
        if (
            marker is not None
            and callspec is not None
            and callspec.params.get("transport") == TRANSPORT_MQTT
        ):
            item.add_marker(
                pytest.mark.skip(
                    reason=f"bundled broker only: {marker.kwargs['reason']}"
                )
            )


@pytest.fixture(autouse=True)
def deprecation_reports() -> Iterator[DeprecationReports]:
    """Fail the test if Home Assistant reported deprecated use by this integration.

    Declared before every fixture that needs ``hass``, so it is set up before Home Assistant
    and checked after Home Assistant stopped: reports made at teardown count too.
    """
    reports = DeprecationReports()
    root = logging.getLogger()
    root.addHandler(reports)
    try:
        yield reports
    finally:
        root.removeHandler(reports)
    fail_on_reports(reports.records)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ in every test."""


@pytest.fixture(autouse=True)
def isolated_config_dir(hass: HomeAssistant, tmp_path: Path) -> None:
    """Write the generated certificate into the test's own folder, not the shared test config."""
    hass.config.config_dir = str(tmp_path)


@pytest.fixture(autouse=True)
def record_sent_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record the commands the HA-MQTT transport publishes (tests only)."""
    SENT_COMMANDS.clear()
    publish = HaMqttTransport.async_publish

    async def recording(
        self: HaMqttTransport, gateway_hid: str, topic: str, payload: bytes
    ) -> None:
        await publish(self, gateway_hid, topic, payload)
        if topic == sim_ids.command_topic(gateway_hid):
            try:
                command_hid = json.loads(payload)["hid"]
            except (ValueError, KeyError, TypeError):
                return
            SENT_COMMANDS.setdefault(gateway_hid, []).append(command_hid)

    monkeypatch.setattr(HaMqttTransport, "async_publish", recording)


@pytest.fixture
def mqtt_subscribes_at_once() -> Iterator[None]:
    """Let HA's MQTT client send (UN)SUBSCRIBE on the next loop iteration, not after a debounce.

    HA batches them behind ``EnsureJobAfterCooldown`` (which HA lets tests patch): a loop
    timer 0.1-0.5 s after the request. While a test freezes the clock (``freezer``), the
    loop's clock stands still and such a timer never fires; not even one due "now", since
    ``now + clock resolution`` rounds to ``now`` at today's timestamps. So the debounce's
    timer becomes ``call_soon``: requests made in one loop iteration are still one batch.
    """

    def schedule_soon(debouncer: EnsureJobAfterCooldown) -> None:
        if debouncer._timer is None:
            debouncer._timer = debouncer._loop.call_soon(  # type: ignore[assignment]
                debouncer._async_timer_reached
            )

    with patch.object(EnsureJobAfterCooldown, "async_schedule", schedule_soon):
        yield


@pytest.fixture
def transport(request: pytest.FixtureRequest) -> str:
    """The transport under test: bundled unless the module parametrises it (both_transports)."""
    return str(getattr(request, "param", TRANSPORT_BUNDLED))


@pytest.fixture
def mosquitto(socket_enabled: None, tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port (skips the test where it is not installed)."""
    try:
        broker = Mosquitto(tmp_path / "mosquitto")
    except MosquittoUnavailableError as err:
        pytest.skip(f"needs a real Mosquitto: {err}")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def mqtt_entry(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> AsyncIterator[MockConfigEntry]:
    """HA's MQTT integration, set up as a user would, connected to the test's Mosquitto."""
    # pylint: disable-next=import-outside-toplevel
    from homeassistant.components import mqtt

    (Path(hass.config.config_dir) / "configuration.yaml").touch()
    entry = MockConfigEntry(
        domain="mqtt",
        version=1,
        minor_version=2,
        data={
            "broker": LOOPBACK,
            "port": mosquitto.port,
            "username": HA_USERNAME,
            "password": mosquitto.ha_password,
            "client_id": HA_CLIENT_ID,
        },
        options={"discovery": False},
    )
    connected = asyncio.Event()

    @callback
    def connection_changed(up: bool) -> None:
        if up:
            connected.set()

    unsubscribe = mqtt.async_subscribe_connection_status(hass, connection_changed)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    if not mqtt.is_connected(hass):
        await asyncio.wait_for(connected.wait(), 10)
    unsubscribe()
    yield entry
    if entry.state.recoverable:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


@pytest.fixture
def transport_ready(request: pytest.FixtureRequest, transport: str) -> None:
    """Whatever the transport needs before the entry loads: HA's MQTT integration for mqtt."""
    if transport == TRANSPORT_MQTT:
        request.getfixturevalue("mqtt_entry")


@pytest.fixture
def entry_data(socket_enabled: None, transport: str) -> dict[str, Any]:
    """Config entry data with four free loopback ports (MQTT ones unused with HA's MQTT)."""
    return {
        CONF_TRANSPORT: transport,
        CONF_BIND_HOST: LOOPBACK,
        CONF_HTTP_PORT: free_port(),
        CONF_HTTPS_PORT: free_port(),
        CONF_MQTT_PORT: free_port(),
        CONF_MQTTS_PORT: free_port(),
    }


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Options of the config entry (override in a module to test an option)."""
    return {}


@pytest.fixture
def config_entry(
    entry_data: dict[str, Any], entry_options: dict[str, Any]
) -> MockConfigEntry:
    """The integration's single config entry."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Petnet SmartFeeder",
        data=entry_data,
        options=entry_options,
    )


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry, transport_ready: None
) -> AsyncIterator[MockConfigEntry]:
    """The integration set up; unloaded at the end so every listener closes."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    yield config_entry
    if config_entry.state.recoverable and hass.config_entries.async_get_entry(
        config_entry.entry_id
    ):  # not removed by the test
        await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


@pytest.fixture
def feeder_broker(
    request: pytest.FixtureRequest, transport: str, entry_data: dict[str, Any]
) -> Mosquitto | None:
    """The broker simulated feeders log in to: the test's Mosquitto with HA's MQTT, else None."""
    if transport == TRANSPORT_MQTT:
        broker: Mosquitto = request.getfixturevalue("mosquitto")
        return broker
    return None


@pytest.fixture
async def make_feeder(
    hass: HomeAssistant, entry_data: dict[str, Any], feeder_broker: Mosquitto | None
) -> AsyncIterator[FeederFactory]:
    """Start simulated feeders against the integration (and the broker); stop them at the end.

    With the bundled broker feeders use its TLS port; with HA's MQTT they log in to the
    test's Mosquitto (plain MQTT on loopback) with the logins the broker_credentials action
    lists.
    """
    feeders: list[SimulatedFeeder] = []

    async def make(
        uid: str = "smartfeeder-795ae773737d", *, boot: bool = True, **kwargs: Any
    ) -> SimulatedFeeder:
        kwargs.setdefault("firmware", "2.8.0")
        if feeder_broker is None:
            mqtt_port, mqtt_tls = entry_data[CONF_MQTTS_PORT], True
        else:
            mqtt_port, mqtt_tls = feeder_broker.port, False
        feeder = SimulatedFeeder(
            uid=uid,
            kronos_url=f"https://{LOOPBACK}:{entry_data[CONF_HTTPS_PORT]}",
            mqtt_host=LOOPBACK,
            mqtt_port=mqtt_port,
            mqtt_tls=mqtt_tls,
            **kwargs,
        )
        feeders.append(feeder)
        if boot:
            if feeder_broker is None:
                await feeder.boot()
            else:
                await boot_via_broker(hass, feeder_broker, feeder)
        return feeder

    yield make
    for feeder in feeders:
        await feeder.stop()


@pytest.fixture
def hub(loaded_entry: MockConfigEntry) -> Any:
    """The loaded hub; its syncs start quickly (a 0.05 s debounce, no pacing)."""
    hub = loaded_entry.runtime_data
    hub.sync.reconciler_options = {"debounce_s": 0.05, "pacing_s": 0}
    return hub


@pytest.fixture
def window_closed(hub: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The hub with its pairing window closed: new feeders wait for the owner.

    A test's entry is new, so its window is open (as for 30 minutes after a real first
    setup). Discovered feeders are shown at once instead of after a second.
    """
    monkeypatch.setattr(approvals, "DISCOVERY_SYNC_DELAY_S", 0)
    hub.registrations.close_window()
    return hub


@pytest.fixture
def morning(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """The frozen wall clock, half a minute before breakfast (with helpers.feeding.AT_MORNING)."""
    return freezer


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's serializer: registry ids and timestamps become stable placeholders."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Every entity created enabled, as in HA core's tests of the same name."""
    with all_entities_enabled():
        yield


@pytest.fixture
def entities_snapshot(
    hass: HomeAssistant,
    entry_data: dict[str, Any],
    make_feeder: FeederFactory,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    freezer: FrozenDateTimeFactory,
) -> EntitiesSnapshot:
    """Snapshot one platform's entities of a feeder (test_<platform>.py; freeze SNAPSHOT_TIME)."""
    return EntitiesSnapshot(
        hass, entry_data, make_feeder, entity_registry, snapshot, freezer
    )
