"""Pure helpers of the benchmarks: statistics, the ideal poll count, formatting."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

from luma_async import PollPolicy, Task, TaskState
from luma_async._poll import next_wait

__all__ = [
    "format_table",
    "ideal_looks",
    "machine",
    "median",
    "percentile",
    "ratio",
]


def median(values: Iterable[float]) -> float:
    data = list(values)
    if not data:
        raise ValueError("median of no values")
    return statistics.median(data)


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    data = sorted(values)
    if not data:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, not {q}")
    position = (len(data) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return data[low] + (data[high] - data[low]) * (position - low)


def ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the per-round ratios (rounds are paired: same index, same conditions)."""
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError("ratio needs two equally long, non-empty series")
    return median(n / d for n, d in zip(numerators, denominators, strict=True))


def ideal_looks(policy: PollPolicy, pending: float, processing: float) -> int:
    """How often one task must be looked at by ``policy`` with zero latency and no jitter.

    The task is ``pending`` then ``processing`` for the given seconds and reports the seconds
    left as ``estimate_wait_seconds`` (as the emulator does).  The first look is at once.
    """
    exact = PollPolicy(
        policy.interval,
        policy.max_interval,
        policy.backoff,
        0.0,
        None,
        use_estimate=policy.use_estimate,
        pending_factor=policy.pending_factor,
    )
    total = pending + processing
    now, looks = 0.0, 0
    while True:
        looks += 1
        if now >= total - 1e-9:
            return looks
        state = TaskState.PENDING if now < pending else TaskState.PROCESSING
        task = Task("ideal", state, estimate_wait_seconds=total - now)
        now += next_wait(exact, looks, task, None)


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A Markdown table with columns padded to their widest cell."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    for row in cells:
        if len(row) != len(header):
            raise ValueError(f"row {row} has {len(row)} cells, the header {len(header)}")
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def fmt(value: float, digits: int = 2) -> str:
    """A number for a table: fixed digits, thousands separated."""
    return f"{value:,.{digits}f}"


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    model = platform.processor() or platform.machine()
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
    }
