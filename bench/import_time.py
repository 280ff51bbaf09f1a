"""(4) Import time: ``import luma_async`` in fresh interpreters, median of several.

Two readings: the wall time of ``python -c 'import luma_async'`` minus that of
``python -c 'pass'`` (what a CLI user waits for), and the cumulative microseconds
``-X importtime`` attributes to ``luma_async`` and its big dependencies.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from bench.stats import median

WATCHED = ("luma_async", "aiohttp", "attrs", "cattrs", "tenacity")


def parse_importtime(stderr: str) -> dict[str, int]:
    """Cumulative microseconds per top-level package from ``-X importtime`` output."""
    found: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()  # nested imports are indented; top-level ones are not
        if name in WATCHED and name not in found:
            found[name] = int(parts[1])
    return found


def _wall(code: str, python: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-c", code], check=True)
    return time.perf_counter() - started


def run(*, repeats: int, python: str = sys.executable) -> dict[str, Any]:
    _wall("import luma_async", python)  # warm the disk cache and the bytecode
    walls, bases = [], []
    for _ in range(repeats):
        bases.append(_wall("pass", python))
        walls.append(_wall("import luma_async", python))
    cumulative: dict[str, list[int]] = {name: [] for name in WATCHED}
    for _ in range(repeats):
        done = subprocess.run(
            [python, "-X", "importtime", "-c", "import luma_async"],
            check=True,
            capture_output=True,
            text=True,
        )
        for name, micros in parse_importtime(done.stderr).items():
            cumulative[name].append(micros)
    return {
        "repeats": repeats,
        "wall_ms": (median(walls) - median(bases)) * 1000,
        "interpreter_ms": median(bases) * 1000,
        "cumulative_ms": {n: median(v) / 1000 for n, v in cumulative.items() if v},
    }
