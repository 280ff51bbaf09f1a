"""The goals of issue 14, read from a run's results: each value beside its limit, met or not.

Pure: :func:`goals` takes the results dictionary ``python -m bench`` builds (or reads back
with ``--json``) and returns one :class:`Goal` per checked figure.  A goal whose benchmark
did not run at the size the goal names (``--quick`` follows 500 tasks and skips the
100,000-task run; ``--big 20000`` is too small for goal 3) has no value and counts as not
met: ``--check`` passes only when every goal was measured and met.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any

from bench.many_watches import RAW_NAME

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
}
_SIGNS = {"<=": "≤", "<": "<", ">=": "≥"}
#: The sizes the goals name: concurrent waits (goal 2) and tasks followed at once (goal 3).
WAIT_COUNTS, BIG_COUNT = (5_000, 10_000), 100_000


@dataclasses.dataclass(frozen=True)
class Goal:
    number: str
    measure: str
    value: float | None
    op: str
    limit: float
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value is not None and _OPS[self.op](self.value, self.limit)

    @property
    def mark(self) -> str:
        if self.value is None:
            return "not run"
        return "pass" if self.met else "MISS"

    def _show(self, number: float) -> str:
        if self.unit == "x":
            return f"{number:.2f}x"
        return f"{number:,.1f} {self.unit}"

    @property
    def shown(self) -> str:
        return "-" if self.value is None else self._show(self.value)

    @property
    def target(self) -> str:
        return f"{_SIGNS[self.op]} {self._show(self.limit)}"


def _throughput(results: dict[str, Any]) -> list[Goal]:
    clients = results.get("throughput", {}).get("clients", {})
    luma, official = clients.get("luma-async", {}), clients.get("lumaai", {})
    return [
        Goal("1", "throughput, wall: luma-async / raw", luma.get("wall_ratio_raw"), "<=", 1.10),
        Goal(
            "1", "throughput, client CPU: luma-async / raw", luma.get("cpu_ratio_raw"), "<=", 1.10
        ),
        Goal(
            "1", "throughput, wall: lumaai / luma-async", official.get("wall_ratio_luma"), ">=", 10
        ),
    ]


def _followers(results: dict[str, Any]) -> list[Goal]:
    found: list[Goal] = []
    for group in results.get("followers", []):
        label = f"{group['count']:,} waits, {group['mode']}"
        if group["mode"] == RAW_NAME:
            continue
        found += [
            Goal("2", f"{label}: RSS growth per task", group["rss_kb_per_task"], "<=", 6.5, "KB"),
            Goal("2", f"{label}: CPU per task / raw loop", group["cpu_ratio_raw"], "<=", 1.3),
        ]
    measured = {group["count"] for group in results.get("followers", [])}
    found += [
        Goal("2", f"{count:,} waits: RSS growth per task", None, "<=", 6.5, "KB")
        for count in WAIT_COUNTS
        if count not in measured
    ]
    return found


def _big(results: dict[str, Any]) -> list[Goal]:
    big = results.get("big")
    if not big or big["count"] < BIG_COUNT:  # a smaller run is reported in the details only
        return [Goal("3", f"{BIG_COUNT:,} waits, batch refresh: peak RSS", None, "<=", 1024, "MB")]
    label = f"{big['count']:,} waits, batch refresh"
    failures = big["count"] - big["finished"] + big["error_count"]
    return [
        Goal("3", f"{label}: peak RSS", big["peak_rss_mb"], "<=", 1024, "MB"),
        Goal("3", f"{label}: unfinished + errors", failures, "<=", 0, "tasks"),
    ]


def _latency(results: dict[str, Any]) -> list[Goal]:
    found = [
        Goal("4", f"detection, {mode}: p95", numbers["p95_ms"], "<", 100, "ms")
        for mode, numbers in results.get("latency", {}).items()
        if isinstance(numbers, dict) and numbers.get("callbacks")
    ]
    return found or [Goal("4", "detection with callbacks: p95", None, "<", 100, "ms")]


def _imports(results: dict[str, Any]) -> list[Goal]:
    extra = results.get("import_time", {}).get("extra_ms")
    return [Goal("5", "import luma_async minus import aiohttp", extra, "<=", 150, "ms")]


def goals(results: dict[str, Any]) -> list[Goal]:
    """Every goal of issue 14 with the value this run measured (``None``: not run)."""
    return [
        *_throughput(results),
        *_followers(results),
        *_big(results),
        *_latency(results),
        *_imports(results),
    ]


def check_status(found: list[Goal]) -> int:
    """What ``python -m bench --check`` exits with: 1 when a goal is missed or not run."""
    return 0 if found and all(goal.met for goal in found) else 1


def table_rows(found: list[Goal]) -> list[list[str]]:
    return [[g.number, g.measure, g.shown, g.target, g.mark] for g in found]
