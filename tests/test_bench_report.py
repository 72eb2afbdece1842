"""scripts/bench's report helpers: the key check CI relies on, sizes, profile summary.

The benchmark itself runs in CI as a separate smoke run (.ci/run), not here.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
from pathlib import Path
import sys
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).parent.parent / "scripts" / "bench.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("petnet_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("petnet_bench", module)
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def full_report(feeders: int = 5) -> dict[str, Any]:
    """A report with every figure, as run() builds it."""
    cuts = {"p50": 1.0, "p95": 2.0, "p99": 3.0}
    return {
        "feeders": feeders,
        "heartbeat_latency_ms": {"idle": dict(cuts), "storm": dict(cuts)},
        "resync_ms": {"p50": 1200.0, "p99": 1300.0},
        "push_ms": dict(cuts),
        "api_ack_ms": dict(cuts),
        "schedules_restored": {"restored": feeders, "total": feeders},
        "throughput_msgs_per_s": {
            "integration": 100.0,
            "bare_broker": 200.0,
            "ratio": 0.5,
        },
        "disk_writes_per_1000_heartbeats": 0.0,
        "rss_mb_per_feeder": 0.5,
        "setup_s": 0.1,
        "meta": {},
    }


def test_a_full_report_has_every_key() -> None:
    assert bench.missing_keys(full_report()) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("push_ms", "p95"), None),
        (("api_ack_ms",), None),
        (("throughput_msgs_per_s", "ratio"), None),
        (("heartbeat_latency_ms", "storm", "p99"), "slow"),
        (("setup_s",), True),
    ],
)
def test_a_missing_or_null_figure_is_named(path: tuple[str, ...], value: Any) -> None:
    report = copy.deepcopy(full_report())
    parent = report
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    missing = bench.missing_keys(report)
    assert missing
    assert all(key.startswith(".".join(path)) for key in missing)


def test_the_report_keys_are_the_documented_ones() -> None:
    keys = set(bench.REPORT_KEYS)
    assert {"push_ms.p50", "push_ms.p95", "push_ms.p99"} <= keys
    assert {"api_ack_ms.p50", "api_ack_ms.p95", "api_ack_ms.p99"} <= keys
    assert {"resync_ms.p50", "resync_ms.p99", "setup_s", "feeders"} <= keys
    assert len(keys) == len(bench.REPORT_KEYS) == 23


def test_feeder_counts() -> None:
    assert bench.feeder_counts("50") == [50]
    assert bench.feeder_counts("50,200,1000") == [50, 200, 1000]
    for bad in ("", "0", "50,x", "-5"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.feeder_counts(bad)


def test_top_frames_ranks_the_main_thread_only() -> None:
    loop = "thread (1): MainThread;<module> (bench.py:1);Handle._run (asyncio/events.py:87)"
    collapsed = (
        f"{loop};a (x.py:1);b (x.py:5) 30\n"
        f"{loop};a (x.py:1) 10\n"
        "thread (2): asyncio_0;_worker (concurrent/futures/thread.py:69) 500\n"
    )
    summary = bench.top_frames(collapsed, limit=2)
    assert summary.startswith("40 samples of the event loop's thread (and 500 of other")
    self_part, total_part = summary.split("by total time:")
    assert "75.0%  b (x.py:5)" in self_part
    assert "25.0%  a (x.py:1)" in self_part
    assert "_worker" not in summary
    # Frames on every stack of the loop are not ranked by total time.
    assert "100.0%  a (x.py:1)" in total_part
    assert "<module>" not in total_part
    assert "Handle._run" not in total_part


def test_growth_table_has_a_row_per_figure_and_a_slope() -> None:
    small, large = full_report(50), full_report(250)
    large["setup_s"] = 2.1
    table = bench.growth_table([small, large]).splitlines()
    assert table[0] == "| figure | 50 feeders | 250 feeders | per 100 feeders more |"
    assert len(table) == 2 + len(bench.REPORT_KEYS) - 1
    assert "| setup_s | 0.1 | 2.1 | +1 |" in table
