"""(5) Import cost: what ``import luma_async`` adds over ``import aiohttp`` alone.

Fresh interpreters, in pairs (``python -c 'import aiohttp'`` then ``python -c 'import
luma_async'``), the order swapped every pair; the figure is the median of the per-pair
differences, so that drift of the machine cancels.  For reading, ``-X importtime`` gives the
cumulative microseconds of ``luma_async`` and its big dependencies.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from bench.stats import median

WATCHED = ("luma_async", "aiohttp", "attrs", "cattrs", "tenacity")
BASE, OURS = "import aiohttp", "import luma_async"


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
    _wall(OURS, python)  # warm the disk cache and the bytecode
    bases, ours, extra = [], [], []
    for index in range(repeats):
        if index % 2:
            mine, base = _wall(OURS, python), _wall(BASE, python)
        else:
            base, mine = _wall(BASE, python), _wall(OURS, python)
        bases.append(base)
        ours.append(mine)
        extra.append(mine - base)
    cumulative: dict[str, list[int]] = {name: [] for name in WATCHED}
    for _ in range(3):
        done = subprocess.run(
            [python, "-X", "importtime", "-c", OURS], check=True, capture_output=True, text=True
        )
        for name, micros in parse_importtime(done.stderr).items():
            cumulative[name].append(micros)
    return {
        "repeats": repeats,
        "extra_ms": median(extra) * 1000,
        "pairs_ms": [round(e * 1000, 1) for e in extra],
        "aiohttp_ms": median(bases) * 1000,
        "luma_async_ms": median(ours) * 1000,
        "cumulative_ms": {n: median(v) / 1000 for n, v in cumulative.items() if v},
    }
