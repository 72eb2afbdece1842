"""Petnet SmartFeeder: the replacement cloud for Petnet SmartFeeder v2, inside Home Assistant."""

from __future__ import annotations

import logging
from pathlib import Path
import ssl

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .broker_credentials import async_register_broker_credentials
from .compat import OPTIONS_FLOW_RELOADS
from .const import (
    CERT_DIR_NAME,
    CERT_HOSTNAME,
    CONF_ACCEPT_NEW_FEEDERS,
    CONF_AUTO_FEED_MISSED,
    CONF_BIND_HOST,
    CONF_DEFAULT_PORTION,
    CONF_GRACE_MINUTES,
    CONF_HTTP_PORT,
    CONF_HTTPS_PORT,
    CONF_KRONOS_ON_HA_HTTP,
    CONF_MQTT_PORT,
    CONF_MQTTS_PORT,
    CONF_OFFLINE_ALERT_MINUTES,
    CONF_PAIRING_WINDOW_MINUTES,
    CONF_RETRY_FAILED,
    CONF_SSL_CERTIFICATE,
    CONF_SSL_KEY,
    CONF_TRANSPORT,
    DEFAULT_BIND_HOST,
    DEFAULT_GRACE_MINUTES,
    DEFAULT_OFFLINE_ALERT_MINUTES,
    DEFAULT_PAIRING_WINDOW_MINUTES,
    DEFAULT_PORTION,
    DOMAIN,
    TRANSPORT_BUNDLED,
    TRANSPORT_MQTT,
)
from .entity import feeder_hid_of, is_hub_device, pet_id_of
from .hub import HubSettings, PetnetConfigEntry, PetnetHub
from .kronos import KronosApi, KronosServer
from .kronos_views import async_register_views
from .registry import GatewayRegistry
from .services import async_register_services
from .store import PetnetStore
from .tls import ensure_certificate, remove_certificate, server_ssl_context
from .transport.base import Transport
from .transport.bundled import BundledBrokerTransport
from .transport.ha_mqtt import HaMqttTransport

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CALENDAR,
    Platform.EVENT,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]

NOISY_LOGGERS = ("amqtt", "transitions")

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and the Kronos views on HA's own HTTP server, once."""
    # amqtt and its state machine log every connection at INFO; keep that out of the log
    # unless the user configured those loggers themselves.
    for name in NOISY_LOGGERS:
        if (library_logger := logging.getLogger(name)).level == logging.NOTSET:
            library_logger.setLevel(logging.WARNING)
    async_register_services(hass)
    async_register_broker_credentials(hass)
    async_register_views(
        hass,
        KronosApi(lambda: _loaded_registry(hass)),
        enabled=lambda: _kronos_on_ha_http(hass),
    )
    return True


def _loaded_registry(hass: HomeAssistant) -> GatewayRegistry | None:
    entries = hass.config_entries.async_loaded_entries(DOMAIN)
    return entries[0].runtime_data.registry if entries else None


def _kronos_on_ha_http(hass: HomeAssistant) -> bool:
    """Whether the user chose to serve the Kronos routes on HA's own HTTP server."""
    return any(
        {**entry.data, **entry.options}.get(CONF_KRONOS_ON_HA_HTTP, False)
        for entry in hass.config_entries.async_entries(DOMAIN)
    )


def _generated_cert_dir(hass: HomeAssistant) -> Path:
    """Where the self-signed certificate and its key are kept (beside the store)."""
    return Path(hass.config.path(".storage", CERT_DIR_NAME))


def _tls_files(
    hass: HomeAssistant, cert: str | None, key: str | None
) -> tuple[Path, Path]:
    if cert and key:
        return Path(cert), Path(key)
    return ensure_certificate(_generated_cert_dir(hass), CERT_HOSTNAME)


def _ssl_context(
    hass: HomeAssistant, cert: str | None, key: str | None
) -> tuple[Path, Path, ssl.SSLContext]:
    cert_path, key_path = _tls_files(hass, cert, key)
    return cert_path, key_path, server_ssl_context(cert_path, key_path)


async def async_migrate_entry(hass: HomeAssistant, entry: PetnetConfigEntry) -> bool:
    """1.1 -> 1.2: pairing replaced the option "accept new feeders automatically".

    The option is dropped whatever its value: feeders that have a key are not affected, and
    new ones join through a pairing window or by being accepted.
    """
    if entry.version > 1:
        return False
    if entry.minor_version < 2:
        hass.config_entries.async_update_entry(
            entry,
            data={k: v for k, v in entry.data.items() if k != CONF_ACCEPT_NEW_FEEDERS},
            options={
                k: v for k, v in entry.options.items() if k != CONF_ACCEPT_NEW_FEEDERS
            },
            minor_version=2,
        )
    return True


async def async_setup_entry(hass: HomeAssistant, entry: PetnetConfigEntry) -> bool:
    """Bind the Kronos site and the broker, set up the platforms, then let feeders in."""
    settings = {**entry.data, **entry.options}
    hub = PetnetHub(
        hass,
        entry,
        PetnetStore(hass),
        HubSettings(
            default_portion=settings.get(CONF_DEFAULT_PORTION, DEFAULT_PORTION),
            grace_minutes=int(settings.get(CONF_GRACE_MINUTES, DEFAULT_GRACE_MINUTES)),
            auto_feed_missed=bool(settings.get(CONF_AUTO_FEED_MISSED, False)),
            retry_failed=bool(settings.get(CONF_RETRY_FAILED, False)),
            offline_alert_minutes=int(
                settings.get(CONF_OFFLINE_ALERT_MINUTES, DEFAULT_OFFLINE_ALERT_MINUTES)
            ),
            pairing_window_minutes=int(
                settings.get(
                    CONF_PAIRING_WINDOW_MINUTES, DEFAULT_PAIRING_WINDOW_MINUTES
                )
            ),
        ),
    )
    await hub.async_load()
    try:
        cert_path, key_path, context = await hass.async_add_executor_job(
            _ssl_context,
            hass,
            settings.get(CONF_SSL_CERTIFICATE),
            settings.get(CONF_SSL_KEY),
        )
    except (OSError, ssl.SSLError, ValueError) as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="certificate_unusable",
            translation_placeholders={"error": str(err)},
        ) from err
    host = settings.get(CONF_BIND_HOST, DEFAULT_BIND_HOST)
    transport: Transport
    if settings.get(CONF_TRANSPORT, TRANSPORT_BUNDLED) == TRANSPORT_MQTT:
        # The user's broker through HA's MQTT integration; its start waits for that client.
        transport = HaMqttTransport(hass, hub.inbound)
    else:
        transport = BundledBrokerTransport(
            hub.inbound,
            host=host,
            mqtt_port=settings[CONF_MQTT_PORT],
            mqtts_port=settings[CONF_MQTTS_PORT],
            ssl_cert=cert_path,
            ssl_key=key_path,
        )
    kronos = KronosServer(
        KronosApi(lambda: hub.registry),
        host=host,
        http_port=settings[CONF_HTTP_PORT],
        https_port=settings[CONF_HTTPS_PORT],
        ssl_context=context,
    )
    try:
        await hub.async_start(transport, kronos)
    except OSError as err:
        await hub.async_stop()
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="port_unavailable",
            translation_placeholders={"error": str(err)},
        ) from err
    entry.runtime_data = hub
    if not OPTIONS_FLOW_RELOADS:
        # Before Home Assistant 2025.8 the options flow cannot reload the entry itself.
        entry.async_on_unload(entry.add_update_listener(_async_options_updated))

    async def _async_stop_on_shutdown(_event: Event) -> None:
        # Entries are not unloaded when HA stops: close the broker and save now.
        await hub.async_stop()

    # async_listen, not async_listen_once: a once-listener removes itself when it fires, and
    # removing it again at unload (after a stop) logs an error. async_stop runs only once.
    entry.async_on_unload(
        hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _async_stop_on_shutdown)
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await hub.async_start_serving()
    return True


async def _async_options_updated(hass: HomeAssistant, entry: PetnetConfigEntry) -> None:
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: PetnetConfigEntry) -> bool:
    """Stop the platforms, then every listener and task of the hub."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_stop()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: PetnetConfigEntry) -> None:
    """Delete stored feeders and keys, and the generated TLS key, when removed.

    Certificate files the user gave are theirs and stay.
    """
    await PetnetStore(hass).async_remove()
    await hass.async_add_executor_job(remove_certificate, _generated_cert_dir(hass))


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: PetnetConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a feeder or a pet.

    A feeder's key is revoked: it comes back only by pairing. A pet's meals stay, for no pet.
    The hub's own device (the pairing switch) stays while the integration does.
    """
    if is_hub_device(entry, device):
        return False
    if (pet_id := pet_id_of(device)) is not None:
        entry.runtime_data.async_remove_pet_device(pet_id)
    elif (hid := feeder_hid_of(device)) is not None:
        entry.runtime_data.async_remove_feeder(hid)
    return True
