"""Run the soak (tests/test_soak.py) with its parameters, print its table on stderr.

The soak is a test module, so that it runs a real Home Assistant exactly as the suite does
(the same fixtures: bundled broker, simulated feeders, frozen clock). This runs that one test
with the parameters in the environment, reads the report it wrote and prints it as a table.
Exit status: 0 for a clean run, 1 when HA's account disagrees with the truth, 2 when the run
itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KEYS = (
    ("sim_days", "simulated days"),
    ("feeders", "feeders"),
    ("occurrences", "occurrences"),
    ("dispensed_once", "dispensed once"),
    ("dispensed_twice", "dispensed twice"),
    ("missed_reported", "missed, reported"),
    ("missed_unreported", "missed, unreported"),
    ("missed_unexplained", "missed, unexplained"),
    ("wrong_credit", "wrong credit"),
    ("unconfirmed", "unconfirmed"),
    ("failed", "failed (truth)"),
    ("skipped", "skipped"),
    ("paused", "paused"),
    ("stray_dispenses", "stray dispenses"),
)


def table(report: dict[str, Any]) -> str:
    """The report as a two-column table, then one line per mismatch."""
    rows: list[tuple[str, Any]] = [(label, report[key]) for key, label in KEYS]
    rows.append(("mismatches", len(report["mismatches"])))
    rows.append(("wall time (s)", report["wall_s"]))
    rows += [(f"fault: {kind}", count) for kind, count in report["faults"].items()]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    lines += [
        "mismatch: " + json.dumps(mismatch, sort_keys=True)
        for mismatch in report["mismatches"]
    ]
    lines += [
        "missed: " + json.dumps(missed, sort_keys=True)
        for missed in report.get("missed", [])
    ]
    return "\n".join(lines)


def main() -> int:
    """Parse the arguments, run the soak, print the table."""
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__)
    parser.add_argument("--days", type=float, default=1.0, help="simulated days (1)")
    parser.add_argument("--feeders", type=int, default=5, help="fleet size (5)")
    parser.add_argument("--seed", type=int, default=1, help="fault script seed (1)")
    parser.add_argument("--json", metavar="FILE", help="write the report here too")
    parser.add_argument(
        "--timeout", type=int, default=900, help="give up after this many seconds"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.json) if args.json else Path(scratch) / "soak.json"
        out.unlink(missing_ok=True)
        env = {
            **os.environ,
            "SOAK_DAYS": str(args.days),
            "SOAK_FEEDERS": str(args.feeders),
            "SOAK_SEED": str(args.seed),
            "SOAK_JSON": str(out.resolve()),
            "SOAK_STRICT": "0",
            "SOAK_TIMEOUT": str(args.timeout),
        }
        started = time.monotonic()
        run = subprocess.run(  # noqa: S603 - our own interpreter and test
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/test_soak.py",
                "-p",
                "no:cacheprovider",
                "-q",
            ],
            cwd=ROOT,
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0 or not out.exists():
            sys.stderr.write(run.stdout[-20000:] + run.stderr[-5000:])
            print(f"soak run failed (pytest exit {run.returncode})", file=sys.stderr)
            return 2
        report = json.loads(out.read_text(encoding="utf-8"))
        print(table(report), file=sys.stderr)
        print(
            f"process wall time (s)  {time.monotonic() - started:.1f}", file=sys.stderr
        )
    return 1 if report["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
