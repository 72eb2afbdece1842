"""Config and options flows: transport, listening ports, certificates, and new feeders.

Besides the one entry of the integration, the config flow shows each new feeder that waits
for the owner (``approvals.py``) as a discovered device: its unique id is the gateway hid, so
Home Assistant's own "Ignore" keeps it refused until it is un-ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
import socket
import ssl
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import selector
import voluptuous as vol

from .approvals import DATA_GATEWAY, RegistrationControl
from .compat import OptionsFlowBase
from .const import (
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
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTPS_PORT,
    DEFAULT_MQTT_PORT,
    DEFAULT_MQTTS_PORT,
    DEFAULT_OFFLINE_ALERT_MINUTES,
    DEFAULT_PAIRING_WINDOW_MINUTES,
    DEFAULT_PORTION,
    DOMAIN,
    MAX_PAIRING_WINDOW_MINUTES,
    PORT_KEYS,
    TRANSPORT_BUNDLED,
    TRANSPORT_MQTT,
)
from .protocol.commands import MAX_PORTION, MIN_PORTION, PORTION_STEP

PORT_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=1, max=65535, step=1, mode=selector.NumberSelectorMode.BOX
    )
)
PATH_SELECTOR = selector.TextSelector()
PORTION_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=MIN_PORTION,
        max=MAX_PORTION,
        step=PORTION_STEP,
        unit_of_measurement="cups",
        mode=selector.NumberSelectorMode.BOX,
    )
)
GRACE_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=1,
        max=60,
        step=1,
        unit_of_measurement="min",
        mode=selector.NumberSelectorMode.BOX,
    )
)
OFFLINE_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=5,
        max=1440,
        step=5,
        unit_of_measurement="min",
        mode=selector.NumberSelectorMode.BOX,
    )
)
PAIRING_WINDOW_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=1,
        max=MAX_PAIRING_WINDOW_MINUTES,
        step=1,
        unit_of_measurement="min",
        mode=selector.NumberSelectorMode.BOX,
    )
)
TRANSPORT_SELECTOR = selector.SelectSelector(
    selector.SelectSelectorConfig(
        options=[TRANSPORT_BUNDLED, TRANSPORT_MQTT],
        translation_key=CONF_TRANSPORT,
        mode=selector.SelectSelectorMode.LIST,
    )
)

MQTT_DOMAIN = "mqtt"
HTTP_PORT_KEYS = (CONF_HTTP_PORT, CONF_HTTPS_PORT)
NETWORK_KEYS = (
    CONF_TRANSPORT,
    CONF_BIND_HOST,
    *PORT_KEYS,
    CONF_SSL_CERTIFICATE,
    CONF_SSL_KEY,
    CONF_KRONOS_ON_HA_HTTP,
)
"""The fields of the user and reconfigure steps (the options flow has them too)."""

DEFAULTS: dict[str, Any] = {
    CONF_TRANSPORT: TRANSPORT_BUNDLED,
    CONF_BIND_HOST: DEFAULT_BIND_HOST,
    CONF_HTTP_PORT: DEFAULT_HTTP_PORT,
    CONF_HTTPS_PORT: DEFAULT_HTTPS_PORT,
    CONF_MQTT_PORT: DEFAULT_MQTT_PORT,
    CONF_MQTTS_PORT: DEFAULT_MQTTS_PORT,
}


def _network_schema(values: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    """Fields shared by the user step and the options: where to listen."""
    schema: dict[vol.Marker, Any] = {
        vol.Required(
            CONF_BIND_HOST, default=values.get(CONF_BIND_HOST, DEFAULT_BIND_HOST)
        ): str,
    }
    for key in PORT_KEYS:
        schema[vol.Required(key, default=values.get(key, DEFAULTS[key]))] = (
            PORT_SELECTOR
        )
    for key in (CONF_SSL_CERTIFICATE, CONF_SSL_KEY):
        schema[vol.Optional(key, description={"suggested_value": values.get(key)})] = (
            PATH_SELECTOR
        )
    # Off by default: these routes need no login on a server that may face the internet.
    schema[
        vol.Required(
            CONF_KRONOS_ON_HA_HTTP, default=values.get(CONF_KRONOS_ON_HA_HTTP, False)
        )
    ] = selector.BooleanSelector()
    return schema


def _port_bindable(host: str, port: int) -> bool:
    """Try to listen on the port the way the servers will."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError:
            return False
    return True


def _certificate_usable(cert: str, key: str) -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError):
        return False
    return True


def mqtt_available(hass: HomeAssistant) -> bool:
    """Whether Home Assistant's MQTT integration is set up (a loaded config entry)."""
    return bool(hass.config_entries.async_loaded_entries(MQTT_DOMAIN))


def listened_ports(transport: str) -> tuple[str, ...]:
    """The port fields a transport binds: all four for the bundled broker, else Kronos only."""
    return PORT_KEYS if transport == TRANSPORT_BUNDLED else HTTP_PORT_KEYS


async def async_validate_network(
    hass: HomeAssistant, data: dict[str, Any], ports_in_use_by_us: set[int]
) -> dict[str, str]:
    """Check transport, ports and certificate files; return field errors (empty when fine).

    With HA's MQTT integration the MQTT port fields are kept but not bound, so not checked.
    """
    errors: dict[str, str] = {}
    transport = data.get(CONF_TRANSPORT, TRANSPORT_BUNDLED)
    if transport == TRANSPORT_MQTT and not mqtt_available(hass):
        errors[CONF_TRANSPORT] = "mqtt_not_available"
    checked = listened_ports(transport)
    seen: dict[int, str] = {}
    for key in PORT_KEYS:
        port = data[key] = int(data[key])
        if key not in checked:
            continue
        if port in seen:
            errors[key] = "port_duplicate"
        seen[port] = key
    for key in checked:
        port = data[key]
        if key in errors or port in ports_in_use_by_us:
            continue
        if not await hass.async_add_executor_job(
            _port_bindable, data[CONF_BIND_HOST], port
        ):
            errors[key] = "port_unavailable"
    cert = data.get(CONF_SSL_CERTIFICATE) or None
    key_file = data.get(CONF_SSL_KEY) or None
    if bool(cert) != bool(key_file):
        errors[CONF_SSL_CERTIFICATE if not cert else CONF_SSL_KEY] = "certificate_pair"
    elif cert and key_file:
        if not await hass.async_add_executor_job(_certificate_usable, cert, key_file):
            errors[CONF_SSL_CERTIFICATE] = "certificate_unusable"
    return errors


def _entry_settings(entry: ConfigEntry) -> dict[str, Any]:
    """The entry's settings as the integration reads them: options override data."""
    return {**entry.data, **entry.options}


async def async_validate_entry_network(
    hass: HomeAssistant, entry: ConfigEntry, user_input: dict[str, Any]
) -> dict[str, str]:
    """Validate new network settings of an existing entry (reconfigure and options).

    A cleared optional certificate path is made explicit, so that it overrides the one the
    entry keeps. While the entry is loaded its own servers hold its ports: those count as
    free.
    """
    for key in (CONF_SSL_CERTIFICATE, CONF_SSL_KEY):
        user_input.setdefault(key, "")
    ours: set[int] = set()
    if entry.state is ConfigEntryState.LOADED:
        current = _entry_settings(entry)
        held = listened_ports(current.get(CONF_TRANSPORT, TRANSPORT_BUNDLED))
        ours = {int(current[key]) for key in held}
    return await async_validate_network(hass, user_input, ours)


def _network_form(values: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    """The transport and where to listen: the user and reconfigure steps' fields."""
    return {
        vol.Required(
            CONF_TRANSPORT, default=values.get(CONF_TRANSPORT, TRANSPORT_BUNDLED)
        ): TRANSPORT_SELECTOR,
        **_network_schema(values),
    }


def error_placeholders(
    errors: Mapping[str, str], data: Mapping[str, Any]
) -> dict[str, str]:
    """Name the ports that could not be bound, for the port_unavailable message."""
    busy = [
        str(data[key]) for key in PORT_KEYS if errors.get(key) == "port_unavailable"
    ]
    return {"busy_ports": ", ".join(busy)}


def _loaded_registrations(hass: HomeAssistant) -> RegistrationControl | None:
    entries = hass.config_entries.async_loaded_entries(DOMAIN)
    if not entries:
        return None
    registrations: RegistrationControl = entries[0].runtime_data.registrations
    return registrations


class PetnetFeederConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up the replacement cloud once per Home Assistant; accept new feeders."""

    VERSION = 1
    MINOR_VERSION = 2
    _gateway_hid: str

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the transport and where to listen."""
        # One entry; the manifest cannot say so (single_config_entry would refuse every
        # discovered feeder too). Ignored feeders are entries of their own and do not count.
        if self._async_current_entries(include_ignore=False):
            return self.async_abort(reason="single_instance_allowed")
        errors: dict[str, str] = {}
        values: Mapping[str, Any] = user_input or DEFAULTS
        if user_input is not None:
            errors = await async_validate_network(self.hass, user_input, set())
            if not errors:
                return self.async_create_entry(
                    title="Petnet SmartFeeder", data=user_input
                )
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(_network_form(values)),
            errors=errors,
            description_placeholders=error_placeholders(errors, values),
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the transport, the ports and the certificates of the entry.

        The new values go to the entry's data, and the same keys leave its options (where
        the options flow may have put them, and where they would override the data). The
        entry reloads with them once; every feeder, key, schedule and history is kept.
        """
        entry = self._get_reconfigure_entry()
        values: Mapping[str, Any] = _entry_settings(entry)
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await async_validate_entry_network(self.hass, entry, user_input)
            if not errors:
                return self._async_update_and_reload(
                    entry,
                    data={**entry.data, **user_input},
                    options={
                        key: value
                        for key, value in entry.options.items()
                        if key not in NETWORK_KEYS
                    },
                )
            values = {**values, **user_input}
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema(_network_form(values)),
            errors=errors,
            description_placeholders=error_placeholders(errors, values),
        )

    def _async_update_and_reload(
        self, entry: ConfigEntry, data: dict[str, Any], options: dict[str, Any]
    ) -> ConfigFlowResult:
        """Store the new settings and reload the entry exactly once.

        Before Home Assistant 2025.8 a loaded entry has an update listener that reloads it
        whenever its data or options change (compat.OPTIONS_FLOW_RELOADS):
        async_update_reload_and_abort would then reload it a second time.
        """
        if not entry.update_listeners:
            return self.async_update_reload_and_abort(entry, data=data, options=options)
        if not self.hass.config_entries.async_update_entry(
            entry, data=data, options=options
        ):
            # Nothing changed, so the listener does not fire; reload as asked all the same.
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_abort(reason="reconfigure_successful")

    async def async_step_integration_discovery(
        self, discovery_info: dict[str, Any]
    ) -> ConfigFlowResult:
        """A new feeder waits for the owner (approvals.py starts this flow)."""
        self._gateway_hid = str(discovery_info[DATA_GATEWAY])
        await self.async_set_unique_id(self._gateway_hid)
        self._abort_if_unique_id_configured()  # ignored
        registrations = _loaded_registrations(self.hass)
        if (
            registrations is None
            or (held := registrations.pending.get(self._gateway_hid)) is None
        ):
            return self.async_abort(reason="not_pending")
        self.context["title_placeholders"] = {
            "name": held.label,
            "address": held.address or "unknown",
        }
        return await self.async_step_pair()

    async def async_step_pair(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show who asks; on submit the feeder is accepted into the integration's entry."""
        registrations = _loaded_registrations(self.hass)
        if (
            registrations is None
            or (held := registrations.pending.get(self._gateway_hid)) is None
        ):
            return self.async_abort(reason="not_pending")
        if user_input is None:
            return self.async_show_form(
                step_id="pair",
                data_schema=vol.Schema({}),
                description_placeholders=held.placeholders(),
            )
        registrations.accept(self._gateway_hid)
        return self.async_abort(
            reason="paired", description_placeholders={"name": held.label}
        )

    async def async_step_ignore(self, user_input: dict[str, Any]) -> ConfigFlowResult:
        """Ignore a discovered feeder: it stays refused (and loses a key it had)."""
        result = await super().async_step_ignore(user_input)
        if (registrations := _loaded_registrations(self.hass)) is not None:
            registrations.ignore(str(user_input["unique_id"]))
        return result

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: Any) -> PetnetFeederOptionsFlow:
        """Return the options flow."""
        return PetnetFeederOptionsFlow()


class PetnetFeederOptionsFlow(OptionsFlowBase):
    """Change transport, ports, certificates and the default portion; the entry reloads after.

    Switching the transport keeps every gateway, key, schedule and history: they live in the
    integration's store, which the reload reads again whatever the transport.
    """

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Edit the options."""
        current = _entry_settings(self.config_entry)
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await async_validate_entry_network(
                self.hass, self.config_entry, user_input
            )
            if not errors:
                return self.async_create_entry(data=user_input)
            current = {**current, **user_input}
        schema = {
            **_network_form(current),
            vol.Required(
                CONF_DEFAULT_PORTION,
                default=current.get(CONF_DEFAULT_PORTION, DEFAULT_PORTION),
            ): PORTION_SELECTOR,
            vol.Required(
                CONF_GRACE_MINUTES,
                default=current.get(CONF_GRACE_MINUTES, DEFAULT_GRACE_MINUTES),
            ): GRACE_SELECTOR,
            vol.Required(
                CONF_AUTO_FEED_MISSED, default=current.get(CONF_AUTO_FEED_MISSED, False)
            ): selector.BooleanSelector(),
            vol.Required(
                CONF_RETRY_FAILED, default=current.get(CONF_RETRY_FAILED, False)
            ): selector.BooleanSelector(),
            vol.Required(
                CONF_OFFLINE_ALERT_MINUTES,
                default=current.get(
                    CONF_OFFLINE_ALERT_MINUTES, DEFAULT_OFFLINE_ALERT_MINUTES
                ),
            ): OFFLINE_SELECTOR,
            vol.Required(
                CONF_PAIRING_WINDOW_MINUTES,
                default=current.get(
                    CONF_PAIRING_WINDOW_MINUTES, DEFAULT_PAIRING_WINDOW_MINUTES
                ),
            ): PAIRING_WINDOW_SELECTOR,
        }
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(schema),
            errors=errors,
            description_placeholders=error_placeholders(errors, current),
        )
