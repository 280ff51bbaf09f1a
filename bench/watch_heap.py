"""What one followed task holds on the Python heap, deterministically (tracemalloc).

    python -m bench.watch_heap [--count N] [--client luma|raw] [--batch] [--frames K] [--top T]

Starts the bench server, makes N tasks that stay queued for minutes, follows them all at
once (``LumaSession.wait()`` GET only, or with batch refresh under ``--batch``, or the raw
aiohttp polling loop of :mod:`bench.many_watches`), waits until the server has counted N
looks and every follower is asleep until its next one (the bench's policy, slowed to one
look a minute), and compares a tracemalloc snapshot then with one taken before the follow
started: bytes and blocks per followed task, by allocation site.  Unlike peak RSS this does
not depend on the machine's load: every wait is in the same place.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tracemalloc
from typing import Any

import attrs

from bench import many_watches
from bench.client import Control
from bench.server import running_server


async def _measure(base_url: str, api_key: str, count: int, client: str, batch: bool) -> Any:
    control = Control(base_url, api_key)
    await control.reset(tasks=True)
    made = await control.create(count, pending=600.0, processing=600.0)
    await control.reset()
    ids = [m["id"] for m in made]
    finished: dict[str, float] = {}
    # one look, then a minute's sleep: no follower is between two looks at the snapshot
    many_watches.POLICY = attrs.evolve(many_watches.POLICY, interval=60.0, max_interval=60.0)
    gc.collect()
    before = tracemalloc.take_snapshot()
    if client == "raw":
        job = many_watches._follow_raw(base_url, api_key, ids, finished_at=finished)  # noqa: SLF001
    else:
        job = many_watches._follow_luma(  # noqa: SLF001
            base_url, api_key, ids, batch=batch, finished_at=finished
        )
    runner = asyncio.ensure_future(job)
    while not _looked(await control.stats(), count):  # noqa: ASYNC110 - another process counts
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the last answers read: every follower asleep
    gc.collect()
    during = tracemalloc.take_snapshot()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    return before, during


def _looked(stats: dict[str, Any], count: int) -> bool:
    """Every task looked at once, by a GET or in a batch request."""
    return int(stats["get"]) + int(stats.get("batch_ids", 0)) >= count


def main() -> None:
    parser = argparse.ArgumentParser(description="Bytes and blocks per followed task.")
    parser.add_argument("--count", type=int, default=2_000)
    parser.add_argument("--client", choices=["luma", "raw"], default="luma")
    parser.add_argument("--batch", action="store_true", help="luma with batch refresh")
    parser.add_argument("--frames", type=int, default=1, help="traceback depth to group by")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with running_server() as server:
        tracemalloc.start(args.frames)
        before, during = asyncio.run(
            _measure(server["base_url"], server["api_key"], args.count, args.client, args.batch)
        )
        tracemalloc.stop()
    n = args.count
    diff = during.compare_to(before, "traceback" if args.frames > 1 else "lineno")
    size = sum(d.size_diff for d in diff)
    blocks = sum(d.count_diff for d in diff)
    batched = args.batch and args.client == "luma"
    label = f"{args.client} (batch refresh)" if batched else args.client
    print(f"{label}: {size / n:,.0f} B and {blocks / n:.2f} blocks per followed task")
    for d in diff[: args.top]:
        where = " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in d.traceback)
        print(f"{d.size_diff / n:8,.0f} B {d.count_diff / n:6.2f} blk  {where}")


if __name__ == "__main__":
    main()
