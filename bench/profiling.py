"""Profiles of the hot paths with pyinstrument (``python -m bench --profile DIR``).

Two text reports: ``get.txt`` (sequential ``LumaSession.get()``) and ``watches.txt`` (many
concurrent ``wait()``s), with the call tree of the client process only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import many_watches
from bench.client import Control
from luma_async import LumaSession


async def _gets(base_url: str, api_key: str, count: int) -> None:
    (made,) = await Control(base_url, api_key).create(1)
    async with LumaSession(api_key, base_url=base_url) as luma:
        for _ in range(count):
            await luma.get(made["id"])


def run(base_url: str, api_key: str, folder: Path, *, gets: int, watches: int) -> list[Path]:
    from pyinstrument import Profiler  # noqa: PLC0415 - only installed in the bench session

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    jobs = {
        "get.txt": lambda: _gets(base_url, api_key, gets),
        "watches.txt": lambda: many_watches.run(base_url, api_key, count=watches, batch=True),
    }
    for name, job in jobs.items():
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        asyncio.run(job())
        profiler.stop()
        path = folder / name
        path.write_text(profiler.output_text(unicode=False, color=False), encoding="utf-8")
        written.append(path)
    return written
