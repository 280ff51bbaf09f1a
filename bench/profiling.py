"""Profiles of the hot paths (``python -m bench --profile DIR`` or ``python -m bench.profiling``).

Writes, for the luma-async side only:

``throughput.cprofile.txt`` / ``throughput.pyinstrument.txt``
    3,000 ``LumaSession.get()`` at concurrency 32 (the throughput benchmark's luma-async round);
``waits.cprofile.txt`` / ``waits.pyinstrument.txt``
    N concurrent ``wait()``s without batch refresh (GET only, as the raw polling loop does);
``waits.luma.tracemalloc.txt`` / ``waits.raw.tracemalloc.txt``
    what the same waits (and the raw aiohttp polling loop's) hold in memory 2.5 s in, when
    every wait is between two looks: the allocation sites by size, and bytes per wait.

cProfile counts CPU time (``time.process_time``), so that a loaded machine's preemptions do
not land in whatever function was running; its own overhead inflates small functions.
pyinstrument samples wall time and does not inflate them: read the two together.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench import many_watches, throughput
from bench.client import Control
from bench.server import running_server
from luma_async import LumaSession

Job = Callable[[], Coroutine[Any, Any, Any]]


async def _gets(base_url: str, api_key: str, count: int) -> None:
    (made,) = await Control(base_url, api_key).create(1)
    async with LumaSession(api_key, base_url=base_url) as luma:
        await throughput.burst(lambda: luma.get(made["id"]), 200, 32)  # warm up
        await throughput.burst(lambda: luma.get(made["id"]), count, 32)


#: Where a function's own time is counted, by the first match in its file name.
BUCKETS = (
    ("<attrs generated", "cattrs/attrs (generated code and library)"),
    ("<cattrs generated", "cattrs/attrs (generated code and library)"),
    ("cattrs/", "cattrs/attrs (generated code and library)"),
    ("attr/", "cattrs/attrs (generated code and library)"),
    ("luma_async", "luma-async"),
    ("tenacity", "tenacity"),
    ("aiohttp", "aiohttp"),
    ("multidict", "aiohttp"),
    ("yarl", "aiohttp"),
    ("json", "json"),
    ("asyncio", "asyncio"),
    ("~", "builtins (sockets, isinstance ...)"),
)


def bucket(filename: str) -> str:
    """The group a profiled function's own time is counted in."""
    for needle, name in BUCKETS:
        if needle in filename:
            return name
    return "other"


def shares(entries: dict[tuple[str, int, str], tuple[Any, ...]]) -> dict[str, float]:
    """Own (``tottime``) seconds per :func:`bucket`, from ``pstats.Stats.stats``."""
    found: dict[str, float] = {}
    for (filename, _, _), (_, _, own, *_) in entries.items():
        found[bucket(filename)] = found.get(bucket(filename), 0.0) + own
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def _cprofile(job: Job, path: Path) -> None:
    profiler = cProfile.Profile(time.process_time)  # CPU: a loaded machine's waits drop out
    profiler.enable()
    asyncio.run(job())
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    grouped = shares(stats.stats)  # type: ignore[attr-defined]
    total = sum(grouped.values())
    out.write(f"client CPU time profiled: {total:.3f} s; own time by group:\n")
    for name, seconds in grouped.items():
        out.write(f"  {name:40} {seconds:7.3f} s {100 * seconds / total:5.1f} %\n")
    out.write("\n")
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(r"luma_async|aiohttp/client|tenacity|cattrs", 50)
    path.write_text(out.getvalue(), encoding="utf-8")


def _pyinstrument(job: Job, path: Path) -> None:
    from pyinstrument import Profiler  # noqa: PLC0415 - only installed in the bench session

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    asyncio.run(job())
    profiler.stop()
    path.write_text(profiler.output_text(unicode=False, color=False), encoding="utf-8")


def _tracemalloc(base_url: str, api_key: str, count: int, path: Path, client: str) -> None:
    snapshots: list[tracemalloc.Snapshot] = []

    async def job() -> None:
        async def snap() -> None:
            await asyncio.sleep(2.5)
            snapshots.append(tracemalloc.take_snapshot())

        snapper = asyncio.ensure_future(snap())
        await many_watches.run(base_url, api_key, count=count, client=client, batch=False)
        await snapper

    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    asyncio.run(job())
    tracemalloc.stop()
    (during,) = snapshots
    lines = [f"{count} waits ({client}), 2.5 s in, against the start; B/wait = size / {count}\n"]
    diff = during.compare_to(before, "lineno")
    total = sum(d.size_diff for d in diff)
    lines.append(f"total growth {total / 1024:,.0f} KiB = {total / count:,.0f} B per wait\n")
    lines += [
        f"{d.size_diff / count:8,.0f} B/wait {d.count_diff / count:6.2f} blocks/wait  {d.traceback}"
        for d in diff[:40]
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(base_url: str, api_key: str, folder: Path, *, gets: int, watches: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    jobs: dict[str, Job] = {
        "throughput": lambda: _gets(base_url, api_key, gets),
        "waits": lambda: many_watches.run(
            base_url, api_key, count=watches, client="luma", batch=False
        ),
    }
    written = []
    for name, job in jobs.items():
        for kind, profile in (("cprofile", _cprofile), ("pyinstrument", _pyinstrument)):
            path = folder / f"{name}.{kind}.txt"
            profile(job, path)
            written.append(path)
    for client in ("luma", "raw"):
        path = folder / f"waits.{client}.tracemalloc.txt"
        _tracemalloc(base_url, api_key, watches, path, client)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--gets", type=int, default=3_000)
    parser.add_argument("--watches", type=int, default=5_000)
    args = parser.parse_args()
    with running_server() as server:
        for path in run(
            server["base_url"], server["api_key"], args.folder, gets=args.gets, watches=args.watches
        ):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
