"""(1) Throughput of one GET: raw aiohttp, luma-async and ``lumaai``, side by side.

Each client fetches the same completed task ``per_round`` times (3,000 in a full run) with
``concurrency`` requests in flight (32), from a server in another process.  The clients take
turns, round by round, in a rotating order, so that drift of the machine hits all of them
alike; every ratio is the median of the per-round ratios.  Two readings per round: wall time
per request (``perf_counter``) and client CPU per request (``process_time`` of this process,
which is the client only: the server is another process).

A sequential loop would hide the client's own work behind the loopback round trip; with 32
requests in flight the client's CPU is what limits the rate, so this is the figure that shows
what luma-async adds to aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp

from bench.client import Control
from bench.server import OFFICIAL_PREFIX
from bench.stats import median, ratio
from luma_async import LumaSession

Fetch = Callable[[], Awaitable[Any]]
RAW, LUMA, OFFICIAL = "raw aiohttp", "luma-async", "lumaai"


async def _clients(
    stack: AsyncExitStack, base_url: str, api_key: str, task_id: str
) -> dict[str, Fetch]:
    luma = await stack.enter_async_context(LumaSession(api_key, base_url=base_url))
    raw = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    )
    url = f"{base_url}/luma/generations/{task_id}"
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    async def raw_get() -> Any:
        async with raw.get(url, headers=headers) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"raw GET answered {response.status}")
            return json.loads(body)

    clients: dict[str, Fetch] = {RAW: raw_get, LUMA: lambda: luma.get(task_id)}
    try:
        import lumaai  # noqa: PLC0415 - only installed in the bench session
    except ImportError:
        return clients
    official = lumaai.AsyncLumaAI(auth_token=api_key, base_url=base_url + OFFICIAL_PREFIX)
    stack.push_async_callback(official.close)
    clients[OFFICIAL] = lambda: official.generations.get(task_id)
    return clients


async def burst(fetch: Fetch, count: int, concurrency: int) -> None:
    """``count`` calls of ``fetch``, ``concurrency`` of them in flight at any time."""
    todo: Iterator[int] = iter(range(count))  # shared: each worker takes the next number

    async def worker() -> None:
        for _ in todo:
            await fetch()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))


def rotations(names: list[str], rounds: int) -> list[list[str]]:
    """The order of the clients in each round: rotated by one per round."""
    return [names[i % len(names) :] + names[: i % len(names)] for i in range(rounds)]


def summarise(wall: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict[str, Any]:
    """Per client: median wall and CPU per request (µs), and median per-round ratios."""
    clients: dict[str, Any] = {}
    for name, walls in wall.items():
        clients[name] = {
            "wall_us": median(walls) * 1e6,
            "cpu_us": median(cpu[name]) * 1e6,
            "wall_ratio_raw": ratio(walls, wall[RAW]),
            "cpu_ratio_raw": ratio(cpu[name], cpu[RAW]),
        }
    if OFFICIAL in wall and LUMA in wall:
        clients[OFFICIAL]["wall_ratio_luma"] = ratio(wall[OFFICIAL], wall[LUMA])
        clients[OFFICIAL]["cpu_ratio_luma"] = ratio(cpu[OFFICIAL], cpu[LUMA])
    return clients


async def run(
    base_url: str, api_key: str, *, rounds: int, per_round: int, concurrency: int = 32
) -> dict[str, Any]:
    control = Control(base_url, api_key)
    (made,) = await control.create(1)  # completed at once: the full object, with its video
    async with AsyncExitStack() as stack:
        clients = await _clients(stack, base_url, api_key, made["id"])
        names = list(clients)
        wall: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm up: connections, caches, lazy imports
            await burst(clients[name], max(per_round // 10, 64), concurrency)
        for order in rotations(names, rounds):
            for name in order:
                wall_start, cpu_start = time.perf_counter(), time.process_time()
                await burst(clients[name], per_round, concurrency)
                cpu[name].append((time.process_time() - cpu_start) / per_round)
                wall[name].append((time.perf_counter() - wall_start) / per_round)
    await control.reset()
    return {
        "rounds": rounds,
        "per_round": per_round,
        "concurrency": concurrency,
        "clients": summarise(wall, cpu),
        "per_round_wall_us": {n: [w * 1e6 for w in v] for n, v in wall.items()},
        "per_round_cpu_us": {n: [c * 1e6 for c in v] for n, v in cpu.items()},
    }
