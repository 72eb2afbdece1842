"""Constants for the Petnet SmartFeeder integration."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "petnet_feeder"
MANUFACTURER: Final = "Petnet"
MODEL: Final = "SmartFeeder"

CONF_TRANSPORT: Final = "transport"
CONF_BIND_HOST: Final = "bind_host"
CONF_HTTP_PORT: Final = "http_port"
CONF_HTTPS_PORT: Final = "https_port"
CONF_MQTT_PORT: Final = "mqtt_port"
CONF_MQTTS_PORT: Final = "mqtts_port"
CONF_SSL_CERTIFICATE: Final = "ssl_certificate"
CONF_SSL_KEY: Final = "ssl_key"
CONF_DEFAULT_PORTION: Final = "default_portion"
CONF_GRACE_MINUTES: Final = "grace_minutes"
CONF_AUTO_FEED_MISSED: Final = "auto_feed_missed"
CONF_RETRY_FAILED: Final = "retry_failed_dispense"
CONF_OFFLINE_ALERT_MINUTES: Final = "offline_alert_minutes"
# Removed in config entry version 1.2 (pairing replaced it); dropped by the migration.
CONF_ACCEPT_NEW_FEEDERS: Final = "accept_new_feeders"
CONF_PAIRING_WINDOW_MINUTES: Final = "pairing_window_minutes"
# Also answer the Kronos routes on Home Assistant's own HTTP server (for a reverse proxy).
CONF_KRONOS_ON_HA_HTTP: Final = "kronos_on_ha_http"

TRANSPORT_BUNDLED: Final = "bundled"
TRANSPORT_MQTT: Final = "mqtt"

DEFAULT_BIND_HOST: Final = "0.0.0.0"  # noqa: S104 - feeders on the LAN must reach us
DEFAULT_HTTP_PORT: Final = 5000
DEFAULT_HTTPS_PORT: Final = 443
DEFAULT_MQTT_PORT: Final = 1883
DEFAULT_MQTTS_PORT: Final = 8883
DEFAULT_PORTION: Final = 0.0625
DEFAULT_GRACE_MINUTES: Final = 5
DEFAULT_OFFLINE_ALERT_MINUTES: Final = 60
DEFAULT_PAIRING_WINDOW_MINUTES: Final = 10
MAX_PAIRING_WINDOW_MINUTES: Final = 60

PORT_KEYS: Final = (CONF_HTTP_PORT, CONF_HTTPS_PORT, CONF_MQTT_PORT, CONF_MQTTS_PORT)

# A feeder counts as online while it holds a session or sent anything this recently (§9.1).
ONLINE_WINDOW: Final = timedelta(seconds=120)
AVAILABILITY_CHECK_INTERVAL: Final = timedelta(seconds=15)

# Debounced persistence: heartbeats must never cause one disk write each.
SAVE_DELAY_S: Final = 10
# Liveness and telemetry (last seen, heartbeats, sensor readings, hashes) change all the time and
# matter little after a crash: they are written at most this long after they change.
LAZY_SAVE_DELAY_S: Final = 300
STORAGE_KEY: Final = DOMAIN
STORAGE_VERSION: Final = 1
# 1.2: pets.
STORAGE_MINOR_VERSION: Final = 2

HISTORY_LIMIT: Final = 500
# How long a feeder that reports on its commands may take to report one (§5.7; the SDK's MQTT
# timeouts are 10 s).
CONFIRM_TIMEOUT_S: Final = 10.0
MAX_REQUEST_BYTES: Final = 64 * 1024

CERT_DIR_NAME: Final = "petnet_feeder_tls"
CERT_HOSTNAME: Final = "api.arrowconnect.io"

ATTR_PORTION: Final = "portion"
ATTR_DURATION: Final = "duration"
SERVICE_FEED: Final = "feed"
ATTR_UNTIL: Final = "until"
SERVICE_ACCEPT_NEW_FEEDERS: Final = "accept_new_feeders"
