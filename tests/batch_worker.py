"""A batch process for the crash tests: run with a journal until done (or SIGKILLed)."""

from __future__ import annotations

import asyncio
import json
import sys

from luma_async import ExtendRequest, LumaSession, PollPolicy


async def main(base_url: str, api_key: str, journal: str, parent: str, count: int) -> None:
    policy = PollPolicy(interval=0.02, max_interval=0.05, jitter=0.01, timeout=60)
    requests = [ExtendRequest(parent, f"step {i}") for i in range(count)]
    async with LumaSession(api_key, base_url=base_url, poll=policy) as luma:
        async for result in luma.extend_many(requests, concurrency=4, journal=journal):
            error = type(result.error).__name__ if result.error is not None else None
            line = {"prompt": result.request.user_prompt, "task_id": result.task_id, "error": error}
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    base_url, api_key, journal, parent, count = sys.argv[1:6]
    asyncio.run(main(base_url, api_key, journal, parent, int(count)))
