"""Small helpers shared by the tests: finished tasks to extend, a free port, waiting on a condition."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from luma_async import LumaSession, PollPolicy, Task
from luma_async.testing import LumaEmulator


def ours(tasks: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """The tasks of the library: not the emulator's server side, not the virtual clock."""
    return {
        t
        for t in tasks
        if "RequestHandler" not in getattr(t.get_coro(), "__qualname__", "")
        and t.get_name() != "luma-virtual-clock"
    }


async def finished_task(luma: LumaSession, prompt: str = "a fox in snow") -> Task:
    """A completed task (to extend or download): submitted, then followed to the end."""
    task = await luma.generate(prompt)
    return await luma.wait(task.id, first=task)


async def finished_ids(luma: LumaSession, count: int, prompt: str = "clip {}") -> list[str]:
    """The ids of ``count`` completed tasks, followed together (``prompt`` gets the index)."""
    submitted = [await luma.generate(prompt.format(i)) for i in range(count)]
    done = await asyncio.gather(*(luma.wait(t.id, first=t) for t in submitted))
    return [t.id for t in done]


def free_port() -> int:
    """A loopback port nobody listens on (the OS just handed it out and took it back)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait (real time, for servers on real time) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def complete_parent(emu: LumaEmulator) -> str:
    """From sync code (a test driving real processes): the id of a finished task on ``emu``."""

    async def make() -> str:
        policy = PollPolicy(interval=0.01, max_interval=0.05, jitter=0.0, timeout=30)
        async with LumaSession(emu.api_key, base_url=emu.base_url, poll=policy) as luma:
            task = await luma.generate("root")
            return (await luma.wait(task.id)).id

    return asyncio.run(make())
