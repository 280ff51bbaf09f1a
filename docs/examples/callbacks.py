"""How-to: let the service call you back, so a task is seen finished as soon as it is."""

import asyncio
import sys

from luma_async import LumaSession, PollPolicy, Task

#: With callbacks, polling is only the safety net for a callback that never comes.
RELAXED = PollPolicy(interval=30.0, max_interval=60.0, timeout=1800.0)


async def main(
    prompt: str, *, public_url: str | None = None, poll: PollPolicy = RELAXED
) -> tuple[Task, int]:
    async with LumaSession(poll=poll) as luma:
        # Listen on a free port of 127.0.0.1; behind a tunnel or proxy, listen on
        # host="0.0.0.0" and pass public_url, the address the service can reach.
        receiver = await luma.start_callbacks(public_url=public_url)
        task = await luma.generate(prompt)  # sent with notify_hook=receiver.hook_url
        done = await luma.wait(task.id, first=task)  # each callback triggers a poll at once
        print(f"{done.id} finished: {done.video.url} ({receiver.deliveries} callbacks)")
        return done, receiver.deliveries


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "a red fox in snow"))
