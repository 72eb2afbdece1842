"""Every translation has exactly the keys of strings.json, with the English placeholders."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations
from homeassistant.setup import async_setup_component
import pytest

from custom_components.petnet_feeder.const import DOMAIN

INTEGRATION = Path(__file__).parent.parent / "custom_components" / "petnet_feeder"
STRINGS = INTEGRATION / "strings.json"
TRANSLATIONS = INTEGRATION / "translations"
LANGUAGES = ("de", "es", "fr", "nl")

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _flatten(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a translation file as (dotted path, text)."""
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, f"{path}.")
        else:
            assert isinstance(value, str), f"{path} is not a string"
            yield path, value


ENGLISH = dict(_flatten(_load(STRINGS)))


def test_english_translation_is_strings_json() -> None:
    """Custom integrations load translations/en.json: it must be strings.json, as is."""
    assert _load(TRANSLATIONS / "en.json") == _load(STRINGS)


def test_every_language_is_tested() -> None:
    assert {path.stem for path in TRANSLATIONS.glob("*.json")} == {"en", *LANGUAGES}


@pytest.mark.parametrize("language", LANGUAGES)
def test_translation_has_every_key_and_no_other(language: str) -> None:
    translated = dict(_flatten(_load(TRANSLATIONS / f"{language}.json")))
    assert sorted(ENGLISH.keys() - translated.keys()) == [], "missing"
    assert sorted(translated.keys() - ENGLISH.keys()) == [], "not in strings.json"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translation_keeps_the_placeholders(language: str) -> None:
    translated = dict(_flatten(_load(TRANSLATIONS / f"{language}.json")))
    differing = {
        path: (set(PLACEHOLDER.findall(text)), set(PLACEHOLDER.findall(english)))
        for path, english in ENGLISH.items()
        if (text := translated.get(path)) is not None
        and set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(english))
    }
    assert differing == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_translation_strings_are_not_empty(language: str) -> None:
    translated = dict(_flatten(_load(TRANSLATIONS / f"{language}.json")))
    assert [path for path, text in translated.items() if not text.strip()] == []


@pytest.mark.parametrize("language", LANGUAGES)
async def test_home_assistant_loads_the_translation(
    hass: HomeAssistant, language: str
) -> None:
    """Home Assistant reads the file for a user of that language (custom integration)."""
    assert await async_setup_component(hass, DOMAIN, {})
    loaded = await async_get_translations(hass, language, "entity", {DOMAIN})
    translated = dict(_flatten(_load(TRANSLATIONS / f"{language}.json")))
    key = "entity.sensor.hopper_level.name"
    assert loaded[f"component.{DOMAIN}.{key}"] == translated[key]
    assert translated[key] != ENGLISH[key]
