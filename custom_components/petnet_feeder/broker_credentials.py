"""The broker_credentials action: what a user's MQTT broker needs to let the feeders in.

With the HA-MQTT transport the feeders log in to the user's broker as ``/pegasus:<gw>`` with the
api key this integration handed out. This action is the only place those keys are shown: it
returns, for every gateway, the username, the password, the ACL lines (Mosquitto ``acl_file``
syntax) that keep the feeder to its own four topics, and the ``mosquitto_ctrl`` arguments that
create its login with Mosquitto's dynamic-security plugin, bound to the gateway's client id.

Why not a password file: the username contains ``:``, which Mosquitto's password file cannot
hold (``mosquitto_passwd`` refuses it and the broker splits each line at the first ``:``;
checked with Mosquitto 2.0.11). The dynamic-security plugin stores usernames as JSON strings.
"""

from __future__ import annotations

from collections.abc import Mapping

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import ServiceValidationError, Unauthorized, UnknownUser
from homeassistant.util.json import JsonObjectType, JsonValueType
import voluptuous as vol

from .const import DOMAIN
from .protocol import topics

SERVICE_BROKER_CREDENTIALS = "broker_credentials"


def mqtt_username(gateway_hid: str) -> str:
    """The username a gateway's feeder logs in with (§4.1)."""
    return f"{topics.USERNAME_PREFIX}{gateway_hid}"


def acl_lines(gateway_hid: str) -> list[str]:
    """Mosquitto ``acl_file`` lines that allow the gateway its own four topics and nothing else.

    ``write`` covers publishing, ``read`` covers receiving; Mosquitto checks ``read`` when it
    delivers a message, so a feeder that subscribes to more still gets only these two.
    """
    return [
        f"user {mqtt_username(gateway_hid)}",
        f"topic write {topics.telemetry_topic(gateway_hid)}",
        f"topic write {topics.api_request_topic(gateway_hid)}",
        f"topic read {topics.command_topic(gateway_hid)}",
        f"topic read {topics.api_reply_topic(gateway_hid)}",
    ]


def dynsec_create_client(gateway_hid: str, api_key: str) -> str:
    """``mosquitto_ctrl`` arguments (after the connection options) that create the login.

    ``-c <gw>`` binds the login to the gateway's client id (the firmware always uses its hid).
    Without it, one feeder could log in with its own key under another gateway's client id,
    and Mosquitto would close that gateway's live session to make room ("already connected,
    closing old connection"). With it, Mosquitto refuses such a CONNECT (not authorised).
    """
    return f"dynsec createClient {mqtt_username(gateway_hid)} -c {gateway_hid} -p {api_key}"


def _row(gateway_hid: str, api_key: str) -> JsonObjectType:
    acl: list[JsonValueType] = list(acl_lines(gateway_hid))
    return {
        "gateway": gateway_hid,
        "username": mqtt_username(gateway_hid),
        "password": api_key,
        "acl": acl,
        "mosquitto_ctrl": dynsec_create_client(gateway_hid, api_key),
    }


def credentials(gateways: Mapping[str, str]) -> JsonObjectType:
    """The action's answer for gateways given as {hid: api key}, in a stable order."""
    hids = sorted(gateways)
    rows: list[JsonValueType] = [_row(hid, gateways[hid]) for hid in hids]
    acl_file = "\n\n".join("\n".join(acl_lines(hid)) for hid in hids)
    return {"gateways": rows, "acl_file": f"{acl_file}\n" if acl_file else ""}


async def _async_require_admin(hass: HomeAssistant, call: ServiceCall) -> None:
    """Refuse non-admin users, as HA's admin services do (calls without a user pass)."""
    if not (user_id := call.context.user_id):
        return
    user = await hass.auth.async_get_user(user_id)
    if user is None:
        raise UnknownUser(context=call.context, permission="admin", user_id=user_id)
    if not user.is_admin:
        raise Unauthorized(context=call.context, permission="admin", user_id=user_id)


def async_register_broker_credentials(hass: HomeAssistant) -> None:
    """Register the action (once, from async_setup)."""

    async def broker_credentials(call: ServiceCall) -> ServiceResponse:
        await _async_require_admin(hass, call)
        entries = hass.config_entries.async_loaded_entries(DOMAIN)
        if not entries:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="not_loaded"
            )
        hub = entries[0].runtime_data
        return credentials(
            {hid: gateway.api_key for hid, gateway in hub.state.gateways.items()}
        )

    hass.services.async_register(
        DOMAIN,
        SERVICE_BROKER_CREDENTIALS,
        broker_credentials,
        vol.Schema({}),
        supports_response=SupportsResponse.ONLY,
    )
