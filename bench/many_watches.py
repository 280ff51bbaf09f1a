"""(2, 3) Many followed tasks: N concurrent waits in one process, on tasks that take seconds.

Run as its own process so that its RSS is the waits' and nothing else's::

    python -m bench.many_watches BASE_URL API_KEY --count N --client luma|raw [--no-batch]

It prints one JSON object.  The server creates the tasks directly (``POST /bench/tasks``);
then every task is followed at once, either by ``LumaSession.wait()`` (``--client luma``,
with or without batch refresh) or by a plain aiohttp polling loop (``--client raw``: GET,
``json.loads``, sleep), the floor.  Both follow the same :data:`POLICY`: the raw loop computes
its waits with :func:`raw_wait`, the same formula as the library's, so both poll at the same
cadence, through the same 100 connections, and both queue their polls before aiohttp (the
raw loop at a semaphore, luma-async in its :class:`RequestBudget`).

*RSS growth per task* is the peak RSS during the waits minus the RSS just before them (the
interpreter, the imports and the list of ids are already there), divided by N.  Counted on
the server: GETs, batch refreshes (``POST /luma/tasks``, up to 50 tasks each) and the task
looks they carried.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
from typing import Any

import aiohttp

from bench.client import Control, cpu_seconds, peak_rss_mb, rss_mb
from bench.stats import ideal_looks, median, percentile
from luma_async import LumaSession, PollPolicy, RequestBudget, Task

#: Tasks take seconds, so poll every second at first, and never wait more than 5 s.
POLICY = PollPolicy(interval=1.0, max_interval=5.0, backoff=1.5, jitter=0.5, timeout=300.0)
PENDING, PROCESSING, SPREAD = 1.0, 3.0, 2.0
CONNECTIONS = 100
RAW_NAME, GET_NAME, BATCH_NAME = "raw aiohttp loop", "GET only", "batch refresh"
_DONE = frozenset({"completed", "failed"})


def raw_wait(
    policy: PollPolicy, attempt: int, state: str, estimate: float | None, jitter: float
) -> float:
    """The raw loop's wait after ``attempt`` polls: the formula of ``luma_async``'s policy.

    ``jitter`` is the random part, drawn by the caller from ``0..policy.jitter``.
    """
    wait = min(policy.interval * policy.backoff ** max(attempt - 1, 0), policy.max_interval)
    if policy.use_estimate and estimate is not None and estimate > 0:
        wait = min(max(estimate, policy.interval), policy.max_interval)
    elif state == "pending":
        wait = min(wait * policy.pending_factor, policy.max_interval)
    return wait + jitter


async def _follow_luma(
    base_url: str, api_key: str, ids: list[str], *, batch: bool, finished_at: dict[str, float]
) -> list[Any]:
    budget = RequestBudget(max_connections=CONNECTIONS)  # queue here, not in aiohttp's timeout
    async with LumaSession(api_key, base_url=base_url, budget=budget, batch_refresh=batch) as luma:

        async def watch(task_id: str) -> bool:
            task = await luma.wait(task_id, policy=POLICY)
            finished_at[task_id] = time.monotonic()
            return isinstance(task, Task) and task.video is not None

        return await asyncio.gather(*(watch(i) for i in ids), return_exceptions=True)


async def _follow_raw(
    base_url: str, api_key: str, ids: list[str], *, finished_at: dict[str, float]
) -> list[Any]:
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    gate = asyncio.Semaphore(CONNECTIONS)  # queue before aiohttp, as luma-async's budget does
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as client:

        async def watch(task_id: str) -> bool:
            url = f"{base_url}/luma/generations/{task_id}"
            attempt = 0
            while True:
                async with gate, client.get(url, headers=headers) as response:
                    body = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"GET {task_id} answered {response.status}")
                task = json.loads(body)
                attempt += 1
                if task["state"] in _DONE:
                    finished_at[task_id] = time.monotonic()
                    return task["video"] is not None
                jitter = random.uniform(0, POLICY.jitter)
                estimate = task.get("estimate_wait_seconds")
                await asyncio.sleep(raw_wait(POLICY, attempt, task["state"], estimate, jitter))

        return await asyncio.gather(*(watch(i) for i in ids), return_exceptions=True)


async def run(
    base_url: str,
    api_key: str,
    *,
    count: int,
    client: str = "luma",
    batch: bool = True,
    pending: float = PENDING,
    processing: float = PROCESSING,
) -> dict[str, Any]:
    control = Control(base_url, api_key)
    await control.reset(tasks=True)
    made = await control.create(count, pending=pending, processing=processing, spread=SPREAD)
    await control.reset()
    ids = [m["id"] for m in made]
    last_done = max(m["completes_at"] for m in made)
    finished_at: dict[str, float] = {}
    rss_before = rss_mb()
    cpu_start, wall_start = cpu_seconds(), time.monotonic()
    if client == "raw":
        results = await _follow_raw(base_url, api_key, ids, finished_at=finished_at)
    else:
        results = await _follow_luma(base_url, api_key, ids, batch=batch, finished_at=finished_at)
    wall = time.monotonic() - wall_start
    cpu = cpu_seconds() - cpu_start
    peak = peak_rss_mb()
    stats = await control.stats()
    await control.reset(tasks=True)
    done = sum(r is True for r in results)
    errors = sorted({type(r).__name__ for r in results if isinstance(r, BaseException)})
    completes = {m["id"]: m["completes_at"] for m in made}
    lags = [end - completes[task_id] for task_id, end in finished_at.items()] or [float("nan")]
    looks = stats["get"] + stats["batch_ids"]
    return {
        "count": count,
        "client": client,
        "batch": batch and client == "luma",
        "finished": done,
        "errors": errors,
        "error_count": sum(isinstance(r, BaseException) for r in results),
        "wall_s": wall,
        "drain_s": max(finished_at.values(), default=wall_start) - last_done,
        "lag_p50_s": percentile(lags, 50),
        "lag_p95_s": percentile(lags, 95),
        "cpu_ms_per_task": cpu * 1000 / count,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "rss_growth_kb_per_task": (peak - rss_before) * 1024 / count,
        "gets_per_task": stats["get"] / count,
        "batch_posts_per_task": stats["tasks"] / count,
        "requests_per_task": (stats["get"] + stats["tasks"]) / count,
        "looks_per_task": looks / count,
        "cpu_ms_per_look": cpu * 1000 / looks if looks else float("nan"),
        "ideal_looks_per_task": ideal_looks(POLICY, pending, processing + SPREAD / 2),
        "task_seconds": pending + processing + SPREAD / 2,
    }


def mode(run: dict[str, Any]) -> str:
    """The name of the way a run followed its tasks."""
    if run["client"] == "raw":
        return RAW_NAME
    return BATCH_NAME if run["batch"] else GET_NAME


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (count, way): medians over its rounds, CPU as a median per-round ratio.

    Runs carry their ``round``; a luma-async run is paired with the raw loop's run of the same
    count and round.
    """
    raw_cpu = {(r["count"], r["round"]): r["cpu_ms_per_task"] for r in runs if mode(r) == RAW_NAME}
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for one in runs:
        groups.setdefault((one["count"], mode(one)), []).append(one)
    found = []
    for (count, way), group in sorted(groups.items()):
        paired = [
            r["cpu_ms_per_task"] / raw_cpu[count, r["round"]]
            for r in group
            if (count, r["round"]) in raw_cpu
        ]
        found.append(
            {
                "count": count,
                "mode": way,
                "rounds": len(group),
                "rss_kb_per_task": median(r["rss_growth_kb_per_task"] for r in group),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in group),
                "cpu_ms_per_task": median(r["cpu_ms_per_task"] for r in group),
                "cpu_ms_per_look": median(r.get("cpu_ms_per_look", math.nan) for r in group),
                "cpu_ratio_raw": median(paired) if paired and way != RAW_NAME else None,
                "finished": min(r["finished"] for r in group),
                "error_count": max(r["error_count"] for r in group),
                "gets_per_task": median(r["gets_per_task"] for r in group),
                "batch_posts_per_task": median(r["batch_posts_per_task"] for r in group),
                "looks_per_task": median(r["looks_per_task"] for r in group),
                "lag_p50_s": median(r["lag_p50_s"] for r in group),
                "lag_p95_s": median(r["lag_p95_s"] for r in group),
            }
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("base_url")
    parser.add_argument("api_key")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--client", choices=["luma", "raw"], default="luma")
    parser.add_argument("--no-batch", dest="batch", action="store_false")
    parser.add_argument("--pending", type=float, default=PENDING, help="seconds queued")
    parser.add_argument("--processing", type=float, default=PROCESSING, help="seconds (+0-2)")
    args = parser.parse_args()
    result = asyncio.run(
        run(
            args.base_url,
            args.api_key,
            count=args.count,
            client=args.client,
            batch=args.batch,
            pending=args.pending,
            processing=args.processing,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
