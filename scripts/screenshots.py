"""Take the README's screenshots in headless Chromium against ``scripts/develop --demo``.

Run through ``scripts/screenshots``, which installs Chromium first. Steps:

1. Start ``scripts/develop --demo`` on a free port with a fresh configuration folder (its own
   process group; stopped at the end whatever happens) and wait for its banner.
2. Log in as the demo user over HTTP, create the README's example dashboard through the
   websocket API, and make one feeder miss a meal for real: the grace period is set to one
   minute, a one-off meal is added for the next minute, and the simulated feeders are paused
   (SIGSTOP) over that minute, so they dispense nothing. The integration then raises its
   missed-meal repair.
3. Start chromedriver and drive Chromium over plain WebDriver HTTP calls: the access and
   refresh tokens go into the frontend's ``hassTokens`` entry of localStorage, each page is
   opened, and its screenshot is taken once its expected text is on screen, no spinner is left
   and what it shows has stopped changing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from contextlib import suppress
from datetime import datetime, timedelta
import json
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any
import urllib.error
import urllib.request
from zoneinfo import ZoneInfo

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import (
    DOMAIN,
    MEAL_TIMES,
    ONE_OFF_MEAL,
    PASSWORD,
    PETS,
    USERNAME,
    WEEKLY_MEAL,
    HomeAssistant,
    demo_feeders,
    pet_device,
)

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 800
DASHBOARD_HEIGHT = 1360
# The planner's week: wider, with the sidebar collapsed to its icons, so that seven days of
# meal names fit in their columns; lower, since a day holds only a few meals.
PLANNER_WIDTH, PLANNER_HEIGHT = 1600, 600
RAW_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
DASHBOARD = "feeder-example"
README_NAME = "smartfeeder_73737d"  # the feeder name the README's example uses
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--lang=en-US",
    f"--window-size={WIDTH},{HEIGHT}",
]
# Collects the visible text of the page through every shadow root, and whether a spinner or a
# loading screen is still shown.
PAGE_STATE_JS = """
const texts = [];
let busy = [];
const BUSY = new Set(["ha-spinner", "ha-circular-progress", "hass-loading-screen",
                      "ha-skeleton", "mwc-circular-progress"]);
function visible(el) {
  const box = el.getBoundingClientRect();
  return box.width > 0 && box.height > 0;
}
function walk(root) {
  for (const el of root.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    if (BUSY.has(tag) && visible(el)) busy.push(tag);
    for (const node of el.childNodes) {
      if (node.nodeType === 3 && node.textContent.trim()) texts.push(node.textContent.trim());
    }
    if (el.shadowRoot) walk(el.shadowRoot);
  }
}
walk(document);
return {text: texts.join(" "), busy: busy, url: location.pathname};
"""
# Clicks the innermost visible element (through shadow roots) whose text contains arguments[0].
CLICK_TEXT_JS = """
const wanted = arguments[0];
let found = null;
function walk(root) {
  for (const el of root.querySelectorAll("*")) {
    if (el.shadowRoot) walk(el.shadowRoot);
    for (const node of el.childNodes) {
      if (node.nodeType === 3 && node.textContent.includes(wanted)) {
        const box = el.getBoundingClientRect();
        if (box.width > 0 && box.height > 0 && !found) found = el;
      }
    }
  }
}
walk(document);
if (!found) return false;
found.click();
return true;
"""

# Clicks the first visible element (through shadow roots) that arguments[1] picks out:
# arguments[0] "value" compares the element's ``value`` property (the view buttons of Home
# Assistant's calendar carry their view's name there), "selector" matches a CSS selector (the
# calendar's arrow to the next period is an ha-icon-button-next).
CLICK_MATCHING_JS = """
const [how, wanted] = arguments;
const matches = how === "value" ? (el) => el.value === wanted : (el) => el.matches(wanted);
function walk(root) {
  for (const el of root.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (matches(el) && box.width > 0 && box.height > 0) return el;
    if (el.shadowRoot) {
      const found = walk(el.shadowRoot);
      if (found) return found;
    }
  }
  return null;
}
const found = walk(document);
if (!found) return false;
found.click();
return true;
"""
# Home Assistant 2025.4 loads an integration's icon from the brands CDN, which this offline
# machine cannot reach; 2026.3 and later serve the integration's own brand/icon.png, which this
# shows in its place. Returns how many such images are not loaded yet.
BRAND_ICON_JS = """
const [domain, icon] = arguments;
let pending = 0;
function walk(root) {
  for (const el of root.querySelectorAll("*")) {
    if (el.tagName === "IMG" && el.src.includes(`brands.home-assistant.io/`) &&
        el.src.includes(`/${domain}/`)) {
      el.removeAttribute("srcset");
      el.src = icon;
    }
    if (el.tagName === "IMG" && el.src === icon && !el.complete) pending++;
    if (el.shadowRoot) walk(el.shadowRoot);
  }
}
walk(document);
return pending;
"""


class ScreenshotError(Exception):
    """What went wrong, for one line of output."""


def say(message: str) -> None:
    """Progress, with the time since the start."""
    print(f"screenshots: [{time.monotonic() - STARTED:5.0f} s] {message}", flush=True)


STARTED = time.monotonic()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- scripts/develop


class Develop:
    """``scripts/develop --demo`` in its own process group; its output kept in a file."""

    def __init__(self, port: int, config: Path, log: Path) -> None:
        """Prepare; :meth:`start` starts it."""
        self.port = port
        self.config = config
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.ready = threading.Event()

    @property
    def url(self) -> str:
        """Home Assistant's address."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it; a thread copies its output to the log file."""
        command = [
            str(ROOT / "scripts" / "develop"),
            "--demo",
            "--port",
            str(self.port),
            "--config",
            str(self.config),
        ]
        self.process = subprocess.Popen(  # noqa: S603
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log.open("w", encoding="utf-8") as log:
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))
                log.write(line)
                log.flush()
                if line.startswith("develop: ready after"):
                    self.ready.set()

    def wait_ready(self, timeout: float) -> None:
        """Wait for the banner; ScreenshotError if it exited or took too long."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.5):
            if self.process.poll() is not None:
                raise ScreenshotError(
                    f"scripts/develop exited ({self.process.returncode}); it said:\n"
                    + "\n".join(self.output[-15:])
                )
            if time.monotonic() > deadline:
                raise ScreenshotError(
                    f"scripts/develop was not ready in {timeout:.0f} s"
                )

    def said(self, pattern: str) -> re.Match[str] | None:
        """The first line of its output that matches ``pattern``."""
        for line in self.output:
            if match := re.search(pattern, line):
                return match
        return None

    def simulator_pid(self) -> int:
        """The feeder simulator's process id: a child of the script running ``feeder_sim``."""
        assert self.process is not None
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(") ", 1)[1].split()[1])
                cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.process.pid and b"feeder_sim" in cmdline:
                return int(stat.parent.name)
        raise ScreenshotError(
            "cannot find the feeder simulator started by scripts/develop"
        )

    def stop(self) -> None:
        """Stop it (it stops the feeders and Home Assistant), however it is."""
        if self.process is None or self.process.poll() is not None:
            return
        say("stopping scripts/develop")
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


# --------------------------------------------------------------------------------- WebDriver


class Browser:
    """Chromium through chromedriver's WebDriver HTTP interface (no client library)."""

    def __init__(self, profile: Path, time_zone: str) -> None:
        """Start chromedriver and a Chromium session with a fresh profile.

        Chromium runs in ``time_zone`` (Home Assistant's), so that the frontend shows the
        same times as Home Assistant and the feeders.
        """
        self.port = free_port()
        self.driver = subprocess.Popen(  # noqa: S603
            [
                shutil.which("chromedriver") or "chromedriver",
                f"--port={self.port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "TZ": time_zone},
        )
        self.session = ""
        deadline = time.monotonic() + 30
        while True:
            try:
                self._call("GET", "/status")
                break
            except (urllib.error.URLError, OSError) as err:
                if time.monotonic() > deadline or self.driver.poll() is not None:
                    raise ScreenshotError(f"chromedriver did not start: {err}") from err
                time.sleep(0.2)
        options = {
            "binary": shutil.which("chromium") or "/usr/bin/chromium",
            "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"],
        }
        answer = self._call(
            "POST",
            "/session",
            {
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": options,
                    }
                }
            },
        )
        self.session = answer["sessionId"]
        self.resize(WIDTH, HEIGHT)

    def resize(self, width: int, height: int) -> None:
        """Make the page itself (not the window, as --window-size does) this size."""
        inner = self.run("return [window.innerWidth, window.innerHeight];")
        outer = self.command("GET", "/window/rect")
        self.command(
            "POST",
            "/window/rect",
            {
                "width": outer["width"] + width - inner[0],
                "height": outer["height"] + height - inner[1],
            },
        )

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise ScreenshotError(f"WebDriver {method} {path}: {detail}") from err

    def command(self, method: str, path: str, body: Any = None) -> Any:
        """A command of this session."""
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        """Navigate and wait for the document to load."""
        self.command("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """Run JavaScript in the page; its return value."""
        return self.command(
            "POST", "/execute/sync", {"script": script, "args": list(args)}
        )

    def wait_for(
        self, wanted: list[str], what: str, timeout: float = 60, settle: float = 1.5
    ) -> str:
        """Wait until the page shows every text in ``wanted``, no spinner, and is still.

        Still: the visible text did not change for ``settle`` seconds. Returns the text.
        """
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            state = self.run(PAGE_STATE_JS)
            text = state["text"]
            missing = [item for item in wanted if item not in text]
            if text != last:
                last, since = text, time.monotonic()
            if not missing and not state["busy"] and time.monotonic() - since >= settle:
                return str(text)
            if time.monotonic() > deadline:
                raise ScreenshotError(
                    f"{what} ({state['url']}) did not finish rendering in {timeout:.0f} s: "
                    f"missing {missing}, busy {state['busy']}; it shows: {text[:300]}"
                )
            time.sleep(0.25)

    def click_value(self, value: str) -> bool:
        """Click what has the ``value`` property ``value``; False if nothing has."""
        return bool(self.run(CLICK_MATCHING_JS, "value", value))

    def click_selector(self, selector: str) -> bool:
        """Click what matches the CSS ``selector``; False if nothing does."""
        return bool(self.run(CLICK_MATCHING_JS, "selector", selector))

    def show_brand_icon(self) -> None:
        """Show the integration's own icon where the page wants it from the brands CDN."""
        icon = ROOT / "custom_components" / DOMAIN / "brand" / "icon.png"
        data = f"data:image/png;base64,{base64.b64encode(icon.read_bytes()).decode()}"
        deadline = time.monotonic() + 10
        while self.run(BRAND_ICON_JS, DOMAIN, data) and time.monotonic() < deadline:
            time.sleep(0.1)

    def click_text(self, text: str) -> bool:
        """Click what shows ``text``; False if nothing does."""
        return bool(self.run(CLICK_TEXT_JS, text))

    def screenshot(self, path: Path) -> None:
        """Save the viewport as PNG."""
        self.show_brand_icon()
        path.write_bytes(base64.b64decode(self.command("GET", "/screenshot")))
        say(
            f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
            f"({path.stat().st_size // 1024} KB)"
        )

    def close(self) -> None:
        """End the session and chromedriver."""
        if self.session:
            with suppress(ScreenshotError, OSError):
                self._call("DELETE", f"/session/{self.session}")
            self.session = ""
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(10)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.driver.pid, signal.SIGKILL)


# ---------------------------------------------------------------------- Home Assistant state


async def log_in(ha: HomeAssistant) -> dict[str, Any]:
    """Log in as the demo user; the token answer, as the frontend keeps it."""
    flow = await ha.request(
        "POST",
        "/auth/login_flow",
        json={
            "client_id": ha.client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": f"{ha.url}/?auth_callback=1",
        },
    )
    answer = await ha.request(
        "POST",
        f"/auth/login_flow/{flow['flow_id']}",
        json={"client_id": ha.client_id, "username": USERNAME, "password": PASSWORD},
    )
    tokens = await ha.request(
        "POST",
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["result"],
            "client_id": ha.client_id,
        },
    )
    ha.token = tokens["access_token"]
    return {
        **tokens,
        "hassUrl": ha.url,
        "clientId": ha.client_id,
        "expires": int(time.time() * 1000) + tokens["expires_in"] * 1000,
    }


async def devices_of(ha: HomeAssistant) -> list[dict[str, Any]]:
    """The device registry, each device with its ``entities`` (entity ids)."""
    devices, entities = await ha.websocket(
        {"type": "config/device_registry/list"},
        {"type": "config/entity_registry/list"},
    )
    for device in devices:
        device["entities"] = [
            e["entity_id"] for e in entities if e["device_id"] == device["id"]
        ]
    return list(devices)


async def set_grace(ha: HomeAssistant, minutes: int) -> None:
    """Set the integration's grace period through its options flow (the entry reloads)."""
    (entry,) = await ha.request(
        "GET", f"/api/config/config_entries/entry?domain={DOMAIN}"
    )
    form = await ha.request(
        "POST",
        "/api/config/config_entries/options/flow",
        json={"handler": entry["entry_id"]},
    )
    values = {
        field["name"]: field["default"]
        for field in form["data_schema"]
        if "default" in field
    }
    values["grace_minutes"] = minutes
    answer = await ha.request(
        "POST",
        f"/api/config/config_entries/options/flow/{form['flow_id']}",
        json=values,
    )
    if answer.get("type") != "create_entry":
        raise ScreenshotError(f"the options flow answered {answer}")


async def wait_connected(ha: HomeAssistant, count: int, timeout: float) -> None:  # noqa: ASYNC109
    """Wait until ``count`` Connectivity sensors are on."""
    deadline = time.monotonic() + timeout
    while True:
        states = await ha.request("GET", "/api/states")
        online = [
            s
            for s in states
            if s["attributes"].get("device_class") == "connectivity"
            and s["entity_id"].startswith("binary_sensor.")
            and s["state"] == "on"
        ]
        if len(online) >= count:
            return
        if time.monotonic() > deadline:
            raise ScreenshotError(f"only {len(online)} feeders reconnected")
        await asyncio.sleep(1)


async def open_issues(ha: HomeAssistant) -> list[dict[str, Any]]:
    """The repair issues of petnet_feeder that are not ignored."""
    (answer,) = await ha.websocket({"type": "repairs/list_issues"})
    return [
        issue
        for issue in answer["issues"]
        if issue["domain"] == DOMAIN and not issue.get("ignored")
    ]


def example_dashboard(name: str) -> dict[str, Any]:
    """The README's example dashboard card, for the feeder ``name`` (e.g. smartfeeder_1a2b3c)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Example dashboard", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    if match is None:
        raise ScreenshotError("README.md has no YAML under 'Example dashboard'")
    card = yaml.safe_load(match.group(1).replace(README_NAME, name))
    return {"title": "Feeder", "views": [{"title": "Feeder", "cards": [card]}]}


async def create_dashboard(ha: HomeAssistant, name: str) -> None:
    """Create the example dashboard (storage mode) and save the README's card in it."""
    await ha.websocket(
        {
            "type": "lovelace/dashboards/create",
            "url_path": DASHBOARD,
            "title": "Feeder",
            "icon": "mdi:bowl-mix",
            "show_in_sidebar": True,
            "require_admin": False,
            "mode": "storage",
        },
        {
            "type": "lovelace/config/save",
            "url_path": DASHBOARD,
            "config": example_dashboard(name),
        },
    )


def next_free_minute(now: datetime, taken: set[str]) -> datetime:
    """The first whole minute at least 45 s ahead where it and the next are not ``taken``.

    The feeders are paused over the meal's minute and a little into the next one, so a
    meal in that next minute (the demo's Snack) could be missed too.
    """
    minute = (now + timedelta(seconds=45)).replace(second=0, microsecond=0)
    minute += timedelta(minutes=1)
    while {
        minute.strftime("%H:%M"),
        (minute + timedelta(minutes=1)).strftime("%H:%M"),
    } & taken:
        minute += timedelta(minutes=1)
    return minute


async def sleep_until(moment: datetime) -> None:
    """Sleep until the wall clock reaches ``moment``."""
    await asyncio.sleep(max(0.0, moment.timestamp() - time.time()))


async def miss_a_meal(
    ha: HomeAssistant, develop: Develop, feeder: dict[str, Any], zone: ZoneInfo
) -> None:
    """Make ``feeder`` miss a meal for real, and wait for the integration's repair.

    The simulator checks its meals once a minute, just after the minute starts; paused from
    just before the meal's minute to just after it, it dispenses nothing for that minute.
    """
    say("setting the grace period to 1 minute (the entry reloads)")
    await set_grace(ha, 1)
    await wait_connected(ha, 3, 120)
    snack = develop.said(r"Snack (\d\d:\d\d)")
    taken = {*MEAL_TIMES, *([snack.group(1)] if snack else [])}
    meal = next_free_minute(datetime.now(zone), taken)
    await ha.call(
        DOMAIN,
        "add_meal",
        {
            "device_id": feeder["id"],
            "name": "Lunch",
            "time": meal.strftime("%H:%M"),
            "portion": 0.25,
            # Once: with the demo's meals, the firmware before 2.5.0 holds no more that day.
            "date": meal.date().isoformat(),
        },
    )
    simulator = develop.simulator_pid()
    say(
        f"added a one-off Lunch at {meal:%H:%M}; pausing the simulated feeders over that minute"
    )
    await sleep_until(meal - timedelta(seconds=0.3))
    os.kill(simulator, signal.SIGSTOP)
    try:
        await sleep_until(meal + timedelta(seconds=60.3))
    finally:
        os.kill(simulator, signal.SIGCONT)
    say("waiting for the missed-meal repair (grace 1 min and 2 more)")
    deadline = time.monotonic() + 360
    while not await open_issues(ha):
        if time.monotonic() > deadline:
            raise ScreenshotError("no repair issue appeared for the missed meal")
        await asyncio.sleep(2)
    if snack:  # let the demo's snack be dispensed too, for the calendar
        hour, minute = (int(part) for part in snack.group(1).split(":"))
        due = datetime.now(zone).replace(
            hour=hour, minute=minute, second=0, microsecond=0
        )
        await sleep_until(due + timedelta(seconds=20))
    await wait_connected(ha, 3, 120)


# ------------------------------------------------------------------------------- screenshots


def open_device_page(
    browser: Browser, url: str, device_id: str, wanted: list[str], what: str
) -> None:
    """Open a device page and wait until it shows ``wanted`` and its logbook.

    The logbook card may render before the states it formats have arrived, and then shows
    raw values (an ISO time, "dispensed"): open the page again until it has them.
    """
    for attempt in range(1, 4):
        browser.open(f"{url}/config/devices/device/{device_id}")
        text = browser.wait_for([*wanted, "Logbook"], what)
        if not RAW_TIME.search(text):
            return
        say(f"the {what}'s logbook shows raw times (try {attempt}); opening it again")


def take_planner(browser: Browser, url: str, name: str, out: Path) -> None:
    """The meal calendar's week view, on the week of the demo's one-off meal.

    The demo puts that meal in the coming week, which is all still to come: each day shows
    the daily meals, Saturday and Sunday the weekend meal, and one day the one-off meal. The
    page is wider and the sidebar collapsed (what its menu button does) while it is taken.
    """
    browser.run("localStorage.setItem('dockedSidebar', '\"auto\"');")
    browser.resize(PLANNER_WIDTH, PLANNER_HEIGHT)
    try:
        browser.open(f"{url}/calendar")
        browser.wait_for([name, "Snack", "Dinner"], "calendar")
        if not browser.click_value("dayGridWeek"):
            raise ScreenshotError("the calendar has no week view button")
        text = browser.wait_for(["Snack", "Dinner"], "calendar's week")
        for _ in range(3):
            if ONE_OFF_MEAL["name"] in text:
                break
            if not browser.click_selector("ha-icon-button-next"):
                raise ScreenshotError("the calendar has no button to the next week")
            text = browser.wait_for(["Snack", "Dinner"], "calendar's next week")
        text = browser.wait_for(
            ["Breakfast", WEEKLY_MEAL["name"], ONE_OFF_MEAL["name"]],
            "the planner's week",
        )
        if text.count(WEEKLY_MEAL["name"]) < 2:
            say(f"the planner's week shows {WEEKLY_MEAL['name']} only once")
        browser.screenshot(out / "planner.png")
    finally:
        browser.run("localStorage.removeItem('dockedSidebar');")
        browser.resize(WIDTH, HEIGHT)


def take_screenshots(
    browser: Browser,
    url: str,
    tokens: dict[str, Any],
    feeder: dict[str, Any],
    others: list[dict[str, Any]],
    pet: dict[str, Any],
    issue_title: str,
    out: Path,
) -> None:
    """Log the browser in and capture each page."""
    name = feeder.get("name_by_user") or feeder["name"]
    hidden = [e for d in others for e in d["entities"] if e.startswith("calendar.")]
    # The frontend reads its tokens from localStorage; one page of the origin sets them.
    browser.open(f"{url}/manifest.json")
    browser.run(
        "localStorage.setItem('hassTokens', arguments[0]);"
        "localStorage.setItem('deSelectedCalendars', arguments[1]);",
        json.dumps(tokens),
        json.dumps(hidden),
    )

    open_device_page(
        browser,
        url,
        feeder["id"],
        [name, "Food dispensed today", "Next meal"],
        "device page",
    )
    browser.screenshot(out / "device.png")

    browser.open(f"{url}/calendar")
    # Today's meals: the first feeder's Breakfast is on weekdays only.
    browser.wait_for([name, "Snack", "Lunch", "Dinner"], "calendar")
    if not browser.click_value("listWeek"):
        raise ScreenshotError("the calendar has no list view button")
    browser.wait_for(["Snack", "Lunch", "Dinner"], "calendar's list")
    if not browser.click_text("Snack"):
        raise ScreenshotError("the calendar shows no Snack")
    browser.wait_for(["Dispensed", "1/16 cup"], "the Snack's event")
    browser.screenshot(out / "calendar.png")

    take_planner(browser, url, name, out)

    open_device_page(
        browser,
        url,
        pet["id"],
        [pet["name"], "Food today of target", "Meals planned today", "Last fed"],
        "pet's page",
    )
    browser.screenshot(out / "pet.png")

    browser.open(f"{url}/config/repairs")
    browser.wait_for([issue_title], "repairs")
    if browser.click_text(issue_title):
        try:
            browser.wait_for(["Lunch", "Submit"], "repair dialog", timeout=30)
        except ScreenshotError as err:
            say(f"the repair's dialog did not open ({err}); taking the list")
            browser.open(f"{url}/config/repairs")
            browser.wait_for([issue_title], "repairs")
    browser.screenshot(out / "repair.png")

    # Taller, so that the whole vertical stack of the example shows.
    browser.resize(WIDTH, DASHBOARD_HEIGHT)
    browser.open(f"{url}/{DASHBOARD}/0")
    browser.wait_for(["Kibble", "Dinner", "Feed now", "Hopper refilled"], "dashboard")
    browser.screenshot(out / "dashboard.png")
    browser.resize(WIDTH, HEIGHT)


async def run(args: argparse.Namespace, work: Path) -> None:
    """Everything between the start and the stop of scripts/develop."""
    develop = Develop(free_port(), work / "config", work / "develop.log")
    say(f"starting scripts/develop --demo on {develop.url} (its output: {develop.log})")
    develop.start()
    browser: Browser | None = None
    try:
        await asyncio.to_thread(develop.wait_ready, 900)
        say("Home Assistant and the feeders are up")
        async with aiohttp.ClientSession() as session:
            ha = HomeAssistant(session, develop.url)
            tokens = await log_in(ha)
            zone = ZoneInfo((await ha.request("GET", "/api/config"))["time_zone"])
            devices = await devices_of(ha)
            found = demo_feeders(devices)
            if len(found) < 3:
                raise ScreenshotError(f"expected 3 feeders, found {len(found)}")
            feeder, others = found[0], found[1:]
            pet_id = pet_device(devices, PETS[0]["name"])
            if pet_id is None:
                raise ScreenshotError(f"the demo has no pet {PETS[0]['name']}")
            pet = next(device for device in devices if device["id"] == pet_id)
            entity = next(e for e in feeder["entities"] if e.startswith("calendar."))
            name = entity.removeprefix("calendar.").removesuffix("_meals")
            await create_dashboard(ha, name)
            await miss_a_meal(ha, develop, feeder, zone)
            issues = await open_issues(ha)
            (translations,) = await ha.websocket(
                {
                    "type": "frontend/get_translations",
                    "language": "en",
                    "category": "issues",
                    "integration": [DOMAIN],
                }
            )
            issue = next((i for i in issues if "missed" in i["issue_id"]), issues[0])
            title = translations["resources"].get(
                f"component.{DOMAIN}.issues.{issue['translation_key']}.title", ""
            )
            for key, value in (issue.get("translation_placeholders") or {}).items():
                title = title.replace(f"{{{key}}}", str(value))
            title = title or feeder["name"]
            say(f"repair: {title!r}")
        browser = await asyncio.to_thread(Browser, work / "chromium", str(zone))
        args.out.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(
            take_screenshots,
            browser,
            develop.url,
            tokens,
            feeder,
            others,
            pet,
            title,
            args.out,
        )
    finally:
        if browser is not None:
            browser.close()
        develop.stop()


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "images", help="where the PNGs go"
    )
    args = parser.parse_args()
    args.out = args.out.resolve()

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    work = Path(tempfile.mkdtemp(prefix="petnet-screenshots-"))
    status = 1
    try:
        asyncio.run(run(args, work))
        status = 0
    except ScreenshotError as err:
        print(f"error: {err}", file=sys.stderr)
    except aiohttp.ClientError as err:
        print(f"error: Home Assistant: {err!r}", file=sys.stderr)
    except KeyboardInterrupt:
        status = 130
    if status == 0:
        shutil.rmtree(work, ignore_errors=True)
        say("done")
    else:  # kept for a look: scripts/develop's output and Home Assistant's log
        print(f"screenshots: the run's files are kept in {work}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
