"""Every ``§N.M`` the code cites names a heading of docs/protocol.md.

Plain pytest: reads files only, needs no Home Assistant.
"""

from __future__ import annotations

from pathlib import Path
import re

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_DOC = ROOT / "docs" / "protocol.md"
# Where citations live: the code, the simulator, the tests, the scripts, and the other docs.
CITING_DIRS = ("custom_components", "feeder_sim", "scripts", "tests", "docs")
SKIPPED_PARTS = {"__pycache__", ".venv", "node_modules"}

CITATION = re.compile(r"§\s*([0-9]+(?:\.[0-9]+)*)")
HEADING = re.compile(r"^#+\s*([0-9]+(?:\.[0-9]+)*)\.?(?:\s|$)", re.MULTILINE)


def _citing_files() -> list[Path]:
    return [
        path
        for name in CITING_DIRS
        for path in sorted((ROOT / name).rglob("*"))
        if path.is_file()
        and path != PROTOCOL_DOC
        and not SKIPPED_PARTS.intersection(path.parts)
    ]


def _citations() -> dict[str, set[str]]:
    """Map each cited section number to the files that cite it."""
    cited: dict[str, set[str]] = {}
    for path in _citing_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary files (images, compiled files) cite nothing
        for number in CITATION.findall(text):
            cited.setdefault(number, set()).add(str(path.relative_to(ROOT)))
    return cited


def _headings() -> set[str]:
    return set(HEADING.findall(PROTOCOL_DOC.read_text(encoding="utf-8")))


def test_citations_are_found() -> None:
    # The code cites the protocol in dozens of places; none found means the scan is broken.
    cited = _citations()
    assert cited, "no § references found: the scan of the source tree is broken"
    assert "5.7" in cited


def test_every_citation_names_a_heading() -> None:
    headings = _headings()
    unresolved = {
        number: sorted(files)
        for number, files in _citations().items()
        if number not in headings
    }
    assert not unresolved, (
        "§ references with no heading in docs/protocol.md:\n"
        + "\n".join(
            f"  §{number}: {', '.join(files)}"
            for number, files in sorted(
                unresolved.items(),
                key=lambda item: [int(part) for part in item[0].split(".")],
            )
        )
    )


def test_headings_are_unique() -> None:
    numbers = HEADING.findall(PROTOCOL_DOC.read_text(encoding="utf-8"))
    duplicates = sorted({number for number in numbers if numbers.count(number) > 1})
    assert not duplicates, (
        f"section numbers used by more than one heading: {duplicates}"
    )
