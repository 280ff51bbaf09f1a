"""(2) Many watches: N concurrent ``wait()``s in one process, on tasks that take seconds.

Run as its own process (``python -m bench.many_watches BASE_URL API_KEY --count N``) so that
its peak RSS is the watches' and nothing else's; it prints one JSON object.  The server
creates the tasks directly (``POST /bench/tasks``), then every task gets its own
``LumaSession.wait()`` at once.  Counted on the server: GETs, batch refreshes
(``POST /luma/tasks``, up to 50 tasks each) and the task looks they carried.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bench.client import Control, cpu_seconds, peak_rss_mb, rss_mb
from bench.stats import ideal_looks, percentile
from luma_async import LumaSession, PollPolicy, RequestBudget, Task

#: Tasks take seconds, so poll every second at first, and never wait more than 5 s.
POLICY = PollPolicy(interval=1.0, max_interval=5.0, backoff=1.5, jitter=0.5, timeout=180.0)
PENDING, PROCESSING, SPREAD = 1.0, 3.0, 2.0


async def run(
    base_url: str, api_key: str, *, count: int, batch: bool, connections: int = 100
) -> dict[str, Any]:
    control = Control(base_url, api_key)
    await control.reset(tasks=True)
    made = await control.create(count, pending=PENDING, processing=PROCESSING, spread=SPREAD)
    await control.reset()
    ids = [m["id"] for m in made]
    last_done = max(m["completes_at"] for m in made)
    budget = RequestBudget(max_connections=connections)  # queue here, not in aiohttp's timeout
    rss_before = rss_mb()
    async with LumaSession(api_key, base_url=base_url, budget=budget, batch_refresh=batch) as luma:
        finished_at: dict[str, float] = {}

        async def watch(task_id: str) -> Task:
            task = await luma.wait(task_id, policy=POLICY)
            finished_at[task_id] = time.monotonic()
            return task

        cpu_start, wall_start = cpu_seconds(), time.monotonic()
        results = await asyncio.gather(*(watch(i) for i in ids), return_exceptions=True)
        wall = time.monotonic() - wall_start
        cpu = cpu_seconds() - cpu_start
        batch_used = luma._hub.batch_requests  # noqa: SLF001 - a bench reads the counter
    stats = await control.stats()
    await control.reset(tasks=True)
    done = sum(isinstance(r, Task) and r.video is not None for r in results)
    errors = sorted({type(r).__name__ for r in results if isinstance(r, BaseException)})
    completes = {m["id"]: m["completes_at"] for m in made}
    lags = [end - completes[task_id] for task_id, end in finished_at.items()] or [float("nan")]
    looks = stats["get"] + stats["batch_ids"]
    return {
        "count": count,
        "batch": batch,
        "finished": done,
        "errors": errors,
        "wall_s": wall,
        "drain_s": max(finished_at.values(), default=wall_start) - last_done,
        "lag_p50_s": percentile(lags, 50),
        "lag_p95_s": percentile(lags, 95),
        "cpu_ms_per_task": cpu * 1000 / count,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "gets_per_task": stats["get"] / count,
        "batch_posts_per_task": stats["tasks"] / count,
        "requests_per_task": (stats["get"] + stats["tasks"]) / count,
        "looks_per_task": looks / count,
        "ideal_looks_per_task": ideal_looks(POLICY, PENDING, PROCESSING + SPREAD / 2),
        "batch_requests_client": batch_used,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("base_url")
    parser.add_argument("api_key")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--no-batch", dest="batch", action="store_false")
    args = parser.parse_args()
    result = asyncio.run(run(args.base_url, args.api_key, count=args.count, batch=args.batch))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
