"""(1) The cost of one request: ``LumaSession.get()`` against raw aiohttp and ``lumaai``.

Each client fetches the same completed task from the same server process, one request at a
time.  Rounds are interleaved (the clients take turns, in a rotating order) so that drift of
the machine hits all of them alike; the ratio is the median of the per-round ratios.  Both
wall time per request (what a caller waits) and client CPU time per request (what the client
itself spends; the server's share is excluded) are reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp

from bench.client import Control
from bench.server import OFFICIAL_PREFIX
from bench.stats import median, ratio
from luma_async import LumaSession

Fetch = Callable[[], Awaitable[Any]]


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

    clients: dict[str, Fetch] = {"raw aiohttp": raw_get, "luma-async": lambda: luma.get(task_id)}
    try:
        import lumaai  # noqa: PLC0415 - only installed in the bench session
    except ImportError:
        return clients
    official = lumaai.AsyncLumaAI(auth_token=api_key, base_url=base_url + OFFICIAL_PREFIX)
    stack.push_async_callback(official.close)
    clients["lumaai"] = lambda: official.generations.get(task_id)
    return clients


async def run(base_url: str, api_key: str, *, rounds: int, per_round: int) -> dict[str, Any]:
    control = Control(base_url, api_key)
    (made,) = await control.create(1)  # completed at once: the full object, with its video
    async with AsyncExitStack() as stack:
        clients = await _clients(stack, base_url, api_key, made["id"])
        names = list(clients)
        wall: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm up: connections, caches, lazy imports
            for _ in range(max(per_round // 4, 20)):
                await clients[name]()
        for index in range(rounds):
            order = names[index % len(names) :] + names[: index % len(names)]
            for name in order:
                fetch = clients[name]
                wall_start, cpu_start = time.perf_counter(), time.process_time()
                for _ in range(per_round):
                    await fetch()
                cpu[name].append((time.process_time() - cpu_start) / per_round)
                wall[name].append((time.perf_counter() - wall_start) / per_round)
    await control.reset()
    result: dict[str, Any] = {"rounds": rounds, "per_round": per_round, "clients": {}}
    for name in names:
        result["clients"][name] = {
            "wall_us": median(wall[name]) * 1e6,
            "cpu_us": median(cpu[name]) * 1e6,
            "wall_ratio": ratio(wall[name], wall["raw aiohttp"]),
            "cpu_ratio": ratio(cpu[name], cpu["raw aiohttp"]),
        }
    return result
