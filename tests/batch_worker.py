"""A batch process for the crash tests: run with a journal until done (or SIGKILLed)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time

from luma_async import ExtendRequest, LumaSession, PollPolicy, _journal
from luma_async._journal import JournalEntry


async def main(
    base_url: str, api_key: str, journal: str, parent: str, count: int, concurrency: int = 4
) -> None:
    policy = PollPolicy(interval=0.02, max_interval=0.05, jitter=0.01, timeout=60)
    requests = [ExtendRequest(parent, f"step {i}") for i in range(count)]
    async with LumaSession(api_key, base_url=base_url, poll=policy) as luma:
        async for result in luma.extend_many(requests, concurrency=concurrency, journal=journal):
            error = type(result.error).__name__ if result.error is not None else None
            line = {"prompt": result.request.user_prompt, "task_id": result.task_id, "error": error}
            print(json.dumps(line), flush=True)


def _slow_disk() -> None:
    """Make each journal read take as long as on a slow disk (the window two processes race in).

    The read patched is the one a batch's claim makes between taking the write lock and
    marking the row ``submitting``.
    """
    read = _journal._get

    def get(db: sqlite3.Connection, key: str) -> JournalEntry | None:
        entry = read(db, key)
        time.sleep(0.02)
        return entry

    _journal._get = get


if __name__ == "__main__":
    if os.environ.get("LUMA_TEST_SLOW_JOURNAL"):
        _slow_disk()
    base_url, api_key, journal, parent, count = sys.argv[1:6]
    concurrency = int(sys.argv[6]) if len(sys.argv) > 6 else 4
    if len(sys.argv) > 7:  # a start time shared with other workers: they race on one journal
        time.sleep(max(0.0, float(sys.argv[7]) - time.time()))
    asyncio.run(main(base_url, api_key, journal, parent, int(count), concurrency))
