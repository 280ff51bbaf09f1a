"""(4) Detection latency: from the server completing a task to the consumer seeing it.

Tasks complete at known instants (``completes_at``, on the machine-wide monotonic clock) spread
over a few seconds; each is followed with ``async for change in luma.poll(id)``, and the
latency is the moment the change with the video reaches the loop body minus ``completes_at``.
Three ways: the default :class:`PollPolicy` (which times the next poll to the service's
``estimate_wait_seconds``), the same without estimates (``use_estimate=False``, as with an
aggregator that sends none), and with callbacks (``start_callbacks()``: the server POSTs the
``notify_hook`` when a task changes, and the poller looks at once).  The goal is for
callbacks (p95 < 100 ms); polling is reported against its policy's interval, since it can
only be as quick as its next look.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.client import Control
from bench.stats import median, percentile
from luma_async import LumaSession, PollPolicy

MODES: dict[str, tuple[PollPolicy, bool]] = {
    "polling (default PollPolicy)": (PollPolicy(), False),
    "polling, no estimate": (PollPolicy(use_estimate=False), False),
    "callbacks + default PollPolicy": (PollPolicy(), True),
}


async def _one_mode(
    base_url: str, api_key: str, policy: PollPolicy, *, callbacks: bool, count: int, spread: float
) -> list[float]:
    control = Control(base_url, api_key)
    async with LumaSession(api_key, base_url=base_url) as luma:
        hook = (await luma.start_callbacks()).hook_url if callbacks else None
        made = await control.create(
            count, pending=0.5, processing=1.5, spread=spread, notify_hook=hook
        )
        latencies: list[float] = []

        async def follow(task_id: str, completes_at: float) -> None:
            async for change in luma.poll(task_id, policy=policy):
                if change.task.video is not None:
                    latencies.append(time.monotonic() - completes_at)  # noqa: PERF401 - at once

        await asyncio.gather(*(follow(m["id"], m["completes_at"]) for m in made))
    await control.reset(tasks=True)
    return latencies


async def run(base_url: str, api_key: str, *, count: int, spread: float) -> dict[str, Any]:
    result: dict[str, Any] = {"count": count}
    for name, (policy, callbacks) in MODES.items():
        latencies = await _one_mode(
            base_url, api_key, policy, callbacks=callbacks, count=count, spread=spread
        )
        result[name] = {
            "p50_ms": median(latencies) * 1000,
            "p95_ms": percentile(latencies, 95) * 1000,
            "max_ms": max(latencies) * 1000,
            "interval_ms": policy.interval * 1000,
            "max_interval_ms": policy.max_interval * 1000,
            "jitter_ms": policy.jitter * 1000,
            "callbacks": callbacks,
        }
    return result
