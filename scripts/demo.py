"""Helper for ``scripts/develop --demo``: onboard Home Assistant, add the integration, watch.

``setup``: wait for Home Assistant to answer, onboard it without a browser if needed (user
``demo`` / ``demo``), create the petnet_feeder config entry through the REST config flow (or
reuse the existing one) and print ``<https_port> <mqtts_port>`` on stdout for the feeder
simulator. Messages go to stderr.

``wait-feeders``: wait until N feeders' Connectivity sensors are on and say how long it took.

``seed``: once per config folder, give each feeder meals (one a few minutes ahead), a recipe
and a full hopper; add a cat fed by the first feeder and a dog fed by the second, with meals of
their own, and give the first feeder weekly meals (Breakfast on weekdays, a weekend brunch)
and a one-off meal.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, datetime, timedelta
import json
import os
from pathlib import Path
import sys
import time
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

DOMAIN = "petnet_feeder"
USERNAME = "demo"
PASSWORD = "demo"  # noqa: S105 - the documented demo login
NAME = "Demo"
CORE_CONFIG = {
    "location_name": "Home",
    "time_zone": "America/Chicago",
    "country": "US",
    "currency": "USD",
    "language": "en",
    "unit_system": "us_customary",
    "latitude": 41.8781,
    "longitude": -87.6298,
    "elevation": 181,
}
# Defaults first, then unprivileged alternatives for a port that cannot be bound.
PORT_CHOICES: dict[str, list[int]] = {
    "http_port": [5000, 15000, 25000],
    "https_port": [443, 8443, 18443],
    "mqtt_port": [1883, 11883, 21883],
    "mqtts_port": [8883, 18883, 28883],
}
PORT_NAMES = {
    "http_port": "Kronos HTTP",
    "https_port": "Kronos HTTPS",
    "mqtt_port": "MQTT",
    "mqtts_port": "MQTTS",
}


# Food density (g/tbsp) and front-button portion (tbsp) of the demo feeders, by unique-id key.
RECIPE = {"grams_per_tablespoon": 8, "tablespoons_per_button_press": 1}
# The device model of a feeder (the integration's own device and pets' have others).
FEEDER_MODEL = "SmartFeeder"
PET_IDENTIFIER = "pet_"  # how a pet's device identifier starts
# The demo's meals. The Snack's time is set at seed time, a few minutes ahead.
BREAKFAST = {"name": "Breakfast", "time": "07:00", "portion": 0.25}
SNACK = {"name": "Snack", "time": "", "portion": 0.0625}
DINNER = {"name": "Dinner", "time": "18:00", "portion": 0.25}
# Only the first feeder's: its Breakfast on weekdays and a brunch at the weekend instead, and
# a one-off meal (its date is set at seed time). A feeder on firmware before 2.5.0 holds about
# 4 meals a day, and scripts/screenshots adds a one-off Lunch for today: at most 4 on any day.
WORKDAYS = ["mon", "tue", "wed", "thu", "fri"]
WEEKLY_MEAL = {
    "name": "Weekend brunch",
    "time": "10:00",
    "portion": 0.125,
    "weekdays": ["sat", "sun"],
}
ONE_OFF_MEAL = {"name": "Vet day treat", "time": "16:00", "portion": 0.0625}
# The minutes these meals take on some day: another meal added later keeps clear of them.
MEAL_TIMES = frozenset(
    str(meal["time"]) for meal in (BREAKFAST, DINNER, WEEKLY_MEAL, ONE_OFF_MEAL)
)
# The first feeder's pet and the second's.
PETS: list[dict[str, Any]] = [
    {"name": "Mochi", "species": "cat", "target_g": 60},
    {"name": "Biscuit", "species": "dog", "target_g": 250},
]


class DemoError(Exception):
    """Something the person running the demo has to fix; the message says what."""


def say(message: str) -> None:
    """Tell the person (stderr: stdout carries the result for the shell script)."""
    print(f"demo: {message}", file=sys.stderr, flush=True)


class HomeAssistant:
    """Just enough of Home Assistant's HTTP and websocket APIs."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        """Talk to the instance at ``url``."""
        self.session = session
        self.url = url.rstrip("/")
        self.client_id = f"{self.url}/"
        self.token: str | None = None

    async def request(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any
    ) -> Any:
        """Send a request; return the JSON answer, or raise DemoError on another status."""
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.session.request(
            method, f"{self.url}{path}", headers=headers, **kwargs
        ) as response:
            text = await response.text()
            if response.status not in expect:
                raise DemoError(f"{method} {path} answered {response.status}: {text}")
            return json.loads(text) if text else None

    async def wait_until_up(
        self,
        pid: int | None,
        timeout: float,  # noqa: ASYNC109
    ) -> dict[str, bool]:
        """Wait until HTTP is up; return the onboarding steps and whether each is done.

        The server starts after onboarding is set up, which removes its API once all
        steps are done: a 404 then means onboarded.
        """
        deadline = time.monotonic() + timeout
        while True:
            if pid is not None and not _alive(pid):
                raise DemoError("Home Assistant exited while starting")
            try:
                async with self.session.get(f"{self.url}/api/onboarding") as response:
                    if response.status == 200:
                        return {s["step"]: s["done"] for s in await response.json()}
                    if response.status == 404:
                        return {}
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise DemoError(
                    f"Home Assistant did not answer on {self.url} in {timeout:.0f} s"
                )
            await asyncio.sleep(0.5)

    async def token_from_code(self, code: str) -> None:
        """Trade an authorization code for an access token."""
        answer = await self.request(
            "POST",
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            },
        )
        self.token = answer["access_token"]

    async def log_in(self) -> None:
        """Log in as the demo user through the login flow."""
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.url}/?auth_callback=1",
            },
        )
        answer = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            json={
                "client_id": self.client_id,
                "username": USERNAME,
                "password": PASSWORD,
            },
        )
        if answer.get("type") != "create_entry":
            raise DemoError(
                f"cannot log in as {USERNAME} / {PASSWORD}: config/ was set up by hand. "
                "Log in as your own user, or delete config/ for a fresh demo."
            )
        await self.token_from_code(answer["result"])

    async def websocket(self, *commands: dict[str, Any]) -> list[Any]:
        """Run websocket commands one after another; their results, or DemoError."""
        results = []
        async with self.session.ws_connect(f"{self.url}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json()).get("type") != "auth_ok":
                raise DemoError("the websocket API refused the token")
            for number, command in enumerate(commands, start=1):
                await ws.send_json({"id": number, **command})
                while (answer := await ws.receive_json()).get("id") != number:
                    pass
                if not answer.get("success"):
                    raise DemoError(f"{command['type']} failed: {answer.get('error')}")
                results.append(answer.get("result"))
        return results

    async def call(
        self,
        domain: str,
        service: str,
        data: dict[str, Any],
        *,
        response: bool = False,
    ) -> Any:
        """Call an action; with ``response``, return what the action returned."""
        path = f"/api/services/{domain}/{service}"
        if response:
            answer = await self.request("POST", f"{path}?return_response", json=data)
            return answer["service_response"]
        await self.request("POST", path, json=data)
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child that exited but was not reaped yet is a zombie: not running either.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return True


async def onboard(ha: HomeAssistant, steps: dict[str, bool]) -> None:
    """Do each onboarding step not done yet; leave ``ha`` logged in.

    The core_config step is never finished over HTTP: that would set up google_translate,
    met and radio_browser, which need packages this setup does not install. scripts/develop
    marks it done before Home Assistant starts; the location and time zone are set here.
    """
    if all(steps.values()):
        await ha.log_in()
        return
    if not steps.get("core_config", True):
        raise DemoError(
            "onboarding's core_config step is not marked done; start the demo with "
            "scripts/develop --demo, which does that before Home Assistant starts"
        )
    say("onboarding Home Assistant (user demo / demo, time zone America/Chicago)")
    if not steps.get("user", True):
        answer = await ha.request(
            "POST",
            "/api/onboarding/users",
            json={
                "client_id": ha.client_id,
                "name": NAME,
                "username": USERNAME,
                "password": PASSWORD,
                "language": "en",
            },
        )
        await ha.token_from_code(answer["auth_code"])
    else:
        await ha.log_in()
    await ha.websocket({"type": "config/core/update", **CORE_CONFIG})
    if not steps.get(
        "analytics", True
    ):  # analytics is not loaded here: nothing is sent
        await ha.request("POST", "/api/onboarding/analytics")
    if not steps.get("integration", True):
        await ha.request(
            "POST",
            "/api/onboarding/integration",
            json={
                "client_id": ha.client_id,
                "redirect_uri": f"{ha.url}/?auth_callback=1",
            },
        )


async def create_entry(ha: HomeAssistant, bind_host: str) -> dict[str, int]:
    """Add the integration with the default ports, moving any that cannot be bound."""
    choice = dict.fromkeys(PORT_CHOICES, 0)
    flow = await ha.request(
        "POST", "/api/config/config_entries/flow", json={"handler": DOMAIN}
    )
    while True:
        ports = {key: PORT_CHOICES[key][index] for key, index in choice.items()}
        answer = await ha.request(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            json={"transport": "bundled", "bind_host": bind_host, **ports},
        )
        if answer.get("type") == "create_entry":
            return ports
        errors = answer.get("errors") or {}
        if answer.get("type") != "form" or not errors:
            raise DemoError(f"the config flow answered {answer}")
        for key, error in errors.items():
            if key not in choice or error != "port_unavailable":
                raise DemoError(f"the config flow refused {key}: {error}")
            choice[key] += 1
            if choice[key] >= len(PORT_CHOICES[key]):
                tried = ", ".join(str(p) for p in PORT_CHOICES[key])
                raise DemoError(
                    f"no port for {PORT_NAMES[key]} could be bound (tried {tried})"
                )
            say(
                f"{PORT_NAMES[key]} port {ports[key]} cannot be bound; "
                f"trying {PORT_CHOICES[key][choice[key]]}"
            )


def stored_ports(config_dir: Path) -> tuple[str, dict[str, int]]:
    """Read the existing entry's listen address and ports (options override data)."""
    path = config_dir / ".storage" / "core.config_entries"
    try:
        entries = json.loads(path.read_text())["data"]["entries"]
    except (OSError, ValueError, KeyError) as err:
        raise DemoError(f"cannot read the config entries from {path}: {err}") from err
    for entry in entries:
        if entry["domain"] == DOMAIN:
            values = {**entry.get("data", {}), **entry.get("options", {})}
            return values.get("bind_host", "0.0.0.0"), {  # noqa: S104
                key: int(values[key]) for key in PORT_CHOICES
            }
    raise DemoError(f"{path} has no {DOMAIN} entry yet; start again in a few seconds")


async def wait_loaded(ha: HomeAssistant, timeout: float) -> None:  # noqa: ASYNC109
    """Wait until the entry is loaded; explain if it failed."""
    deadline = time.monotonic() + timeout
    while True:
        entries = await ha.request(
            "GET", f"/api/config/config_entries/entry?domain={DOMAIN}"
        )
        state = entries[0]["state"] if entries else "missing"
        if state == "loaded":
            return
        if state in ("setup_error", "setup_retry", "migration_error", "failed_unload"):
            reason = entries[0].get("reason") or "see config/home-assistant.log"
            raise DemoError(
                f"the Petnet SmartFeeder entry did not start ({state}: {reason}). If a "
                "port is taken, change it under Settings -> Devices & services -> "
                "Petnet SmartFeeder -> Configure; or delete config/ for a fresh demo."
            )
        if time.monotonic() > deadline:
            raise DemoError(f"the integration is still '{state}' after {timeout:.0f} s")
        await asyncio.sleep(0.5)


async def setup(args: argparse.Namespace) -> None:
    """Onboard, add or reuse the entry, print the simulator's ports."""
    async with aiohttp.ClientSession() as session:
        ha = HomeAssistant(session, args.url)
        steps = await ha.wait_until_up(args.pid, args.timeout)
        await onboard(ha, steps)
        existing = await ha.request(
            "GET", f"/api/config/config_entries/entry?domain={DOMAIN}"
        )
        if existing:
            bind_host, ports = stored_ports(Path(args.config))
            say("reusing the existing Petnet SmartFeeder entry")
        else:
            bind_host = args.bind_host
            ports = await create_entry(ha, bind_host)
            say("added the Petnet SmartFeeder integration")
        await wait_loaded(ha, 60)
    listing = ", ".join(f"{PORT_NAMES[key]} {ports[key]}" for key in PORT_CHOICES)
    say(f"Petnet SmartFeeder listens on {bind_host}: {listing}")
    print(ports["https_port"], ports["mqtts_port"])


async def wait_feeders(args: argparse.Namespace) -> None:
    """Wait until the simulator has booted its feeders and their Connectivity is on.

    Connectivity alone could be a state left from before a restart.
    """
    sim_log = Path(args.sim_log)
    async with aiohttp.ClientSession() as session:
        ha = HomeAssistant(session, args.url)
        await ha.log_in()
        deadline = time.monotonic() + args.timeout
        online: list[str] = []
        while True:
            states = await ha.request("GET", "/api/states")
            online = [
                s["entity_id"]
                for s in states
                if s["entity_id"].startswith("binary_sensor.")
                and s["attributes"].get("device_class") == "connectivity"
                and s["state"] == "on"
            ]
            try:
                booted = "feeder(s) running" in sim_log.read_text()
            except OSError:
                booted = False
            if booted and len(online) >= args.count:
                break
            if time.monotonic() > deadline:
                raise DemoError(
                    f"only {len(online)} of {args.count} feeders are connected after "
                    f"{args.timeout:.0f} s; see {sim_log}"
                )
            await asyncio.sleep(1)
    since = f" ({time.time() - args.since:.0f} s after start)" if args.since else ""
    say(f"{len(online)} feeders connected{since}: {', '.join(sorted(online))}")


def snack_time(now: datetime) -> str:
    """The Snack's HH:MM: four minutes ahead, moved on past a minute another meal has.

    Four: scripts/screenshots pauses the feeders over a meal's minute and a little into the
    next, one or two minutes after the start, and the Snack must stay clear of that.
    """
    moment = now + timedelta(minutes=4)
    while moment.strftime("%H:%M") in MEAL_TIMES:
        moment += timedelta(minutes=1)
    return moment.strftime("%H:%M")


def one_off_date(today: date) -> date:
    """The one-off meal's day: the Wednesday of the coming week (Sunday to Saturday).

    Four to ten days ahead, so that a week view of the calendar can show a week that is all
    still to come, with both weekend days of the weekly meal and the one-off meal in it.
    """
    to_sunday = (6 - today.weekday()) or 7  # weekday(): Monday 0 ... Sunday 6
    return today + timedelta(days=to_sunday + 3)


def demo_feeders(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feeder devices (not the integration's own, not pets'), by name as shown."""
    ours = [
        device
        for device in devices
        if device.get("model") == FEEDER_MODEL
        and any(identifier[0] == DOMAIN for identifier in device["identifiers"])
    ]
    return sorted(ours, key=lambda d: d.get("name_by_user") or d["name"])


def pet_device(devices: list[dict[str, Any]], name: str) -> str | None:
    """The device id of this integration's pet called ``name``, if there is one."""
    for device in devices:
        if device["name"] == name and any(
            identifier[0] == DOMAIN and identifier[1].startswith(PET_IDENTIFIER)
            for identifier in device["identifiers"]
        ):
            return str(device["id"])
    return None


async def seed(args: argparse.Namespace) -> None:
    """Give the demo feeders meals, pets and a recipe, once, so every entity has something.

    One meal is a few minutes ahead: the simulated feeders run their schedule, so its
    dispense shows up as a scheduled Feeding event shortly after the start. The first feeder
    (by name) feeds the cat, and shows the planner: Breakfast on weekdays, a brunch at the
    weekend, and a one-off meal; the second feeds the dog. Pets found by name are reused, so
    a seed that stopped half-way can run again.
    """
    marker = Path(args.marker)
    if marker.exists():
        return
    async with aiohttp.ClientSession() as session:
        ha = HomeAssistant(session, args.url)
        await ha.log_in()
        zone = ZoneInfo((await ha.request("GET", "/api/config"))["time_zone"])
        devices, registry = await ha.websocket(
            {"type": "config/device_registry/list"},
            {"type": "config/entity_registry/list"},
        )
        feeders = demo_feeders(devices)
        if not feeders:
            raise DemoError("no feeder devices to give meals to")
        pets: dict[str, str] = {}  # feeder device id -> its pet's device id
        for feeder, pet in zip(feeders, PETS, strict=False):
            device_id = pet_device(devices, pet["name"])
            if device_id is None:
                answer = await ha.call(
                    DOMAIN,
                    "add_pet",
                    {**pet, "feeders": [feeder["id"]]},
                    response=True,
                )
                device_id = answer["device_id"]
            pets[feeder["id"]] = device_id
        now = datetime.now(zone)
        snack = snack_time(now)
        outing = one_off_date(now.date())
        snack_meal = {**SNACK, "time": snack}
        for index, feeder in enumerate(feeders):
            owner = {"pet": pets[feeder["id"]]} if feeder["id"] in pets else {}
            # The cat has all its feeder's meals; the dog all but the snack (nobody's).
            days = {"weekdays": WORKDAYS} if index == 0 else {}
            meals = [
                {**BREAKFAST, **days, **owner},
                {**snack_meal, **(owner if index == 0 else {})},
                {**DINNER, **owner},
            ]
            await ha.call(
                DOMAIN, "set_schedule", {"device_id": feeder["id"], "meals": meals}
            )
            await ha.call(
                DOMAIN, "set_hopper_level", {"device_id": feeder["id"], "level": 100}
            )
        first = feeders[0]["id"]
        extra = [WEEKLY_MEAL, {**ONE_OFF_MEAL, "date": outing.isoformat()}]
        owner = {"pet": pets[first]} if first in pets else {}
        for meal in extra:
            await ha.call(DOMAIN, "add_meal", {"device_id": first, **meal, **owner})
        feeder_ids = {feeder["id"] for feeder in feeders}
        for entry in registry:
            if entry["platform"] != DOMAIN or entry["device_id"] not in feeder_ids:
                continue
            value = RECIPE.get(entry["unique_id"].split("_", 1)[-1])  # "<hid>_<key>"
            if entry["entity_id"].startswith("number.") and value is not None:
                await ha.call(
                    "number",
                    "set_value",
                    {"entity_id": entry["entity_id"], "value": value},
                )
    marker.write_text("meals added by scripts/develop --demo\n")
    say(
        f"gave each feeder three meals (Breakfast 07:00, Snack {snack}, Dinner 18:00), a "
        f"recipe and a full hopper; the snack is dispensed in about 4 minutes"
    )
    named = [
        f"{pet['name']} ({feeder['name_by_user'] or feeder['name']})"
        for feeder, pet in zip(feeders, PETS, strict=False)
    ]
    say(
        f"pets: {' and '.join(named)}. The first feeder has Breakfast on weekdays only, "
        f"{WEEKLY_MEAL['name']} on Saturday and Sunday at {WEEKLY_MEAL['time']}, and "
        f"{ONE_OFF_MEAL['name']} once, on {outing:%A %Y-%m-%d} at {ONE_OFF_MEAL['time']}"
    )


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    setup_parser = commands.add_parser("setup", help="onboard and add the integration")
    setup_parser.add_argument("--url", required=True)
    setup_parser.add_argument(
        "--config", required=True, help="the configuration folder"
    )
    setup_parser.add_argument("--pid", type=int, help="Home Assistant's process id")
    setup_parser.add_argument(
        "--bind-host", default="127.0.0.1", help="where a new entry listens for feeders"
    )
    setup_parser.add_argument("--timeout", type=float, default=180)
    wait_parser = commands.add_parser("wait-feeders", help="wait for connected feeders")
    wait_parser.add_argument("--url", required=True)
    wait_parser.add_argument("--count", type=int, default=3)
    wait_parser.add_argument("--timeout", type=float, default=120)
    wait_parser.add_argument("--since", type=float, help="start time (epoch seconds)")
    wait_parser.add_argument("--sim-log", required=True, help="the simulator's output")
    seed_parser = commands.add_parser(
        "seed", help="give the feeders meals and pets, once"
    )
    seed_parser.add_argument("--url", required=True)
    seed_parser.add_argument(
        "--marker", required=True, help="written once done; its presence skips the step"
    )
    args = parser.parse_args()
    run = {"setup": setup, "wait-feeders": wait_feeders, "seed": seed}[args.command]
    try:
        asyncio.run(run(args))
    except DemoError as err:
        say(f"error: {err}")
        return 1
    except aiohttp.ClientError as err:
        say(f"error: Home Assistant at {args.url}: {err!r}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
