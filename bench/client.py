"""Small client-side helpers shared by the benchmarks: talking to the bench routes, RSS."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import aiohttp


class Control:
    """The bench-only routes of :mod:`bench.server`."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {api_key}"}

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as client,
            client.request(method, self.base_url + path, json=body, headers=self.headers) as r,
        ):
            r.raise_for_status()
            return await r.json()

    async def create(
        self,
        count: int,
        *,
        pending: float = 0.0,
        processing: float = 0.0,
        spread: float = 0.0,
        notify_hook: str | None = None,
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "count": count,
            "pending": pending,
            "processing": processing,
            "spread": spread,
        }
        if notify_hook is not None:
            body["notify_hook"] = notify_hook
        made: list[dict[str, Any]] = await self._call("POST", "/bench/tasks", body)
        return made

    async def stats(self) -> dict[str, int]:
        found: dict[str, int] = await self._call("GET", "/bench/stats")
        return found

    async def reset(self, *, tasks: bool = False) -> None:
        await self._call("POST", "/bench/reset", {"tasks": tasks})


def peak_rss_mb() -> float:
    """The peak resident set size of this process so far (Linux: ``VmHWM``).

    Not ``ru_maxrss`` where ``/proc`` has the figure: after fork and exec, Linux keeps the
    parent's RSS at the fork in the child's ``ru_maxrss``, so a child of a 60 MB parent
    reports a peak of at least 60 MB whatever it does.  ``VmHWM`` is the high-water mark of
    this process's own memory.
    """
    try:
        with Path("/proc/self/status").open(encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """The resident set size now (Linux ``/proc``; the peak where that is missing)."""
    try:
        with Path("/proc/self/statm").open(encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return peak_rss_mb()
    return pages * resource.getpagesize() / 1024 / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
