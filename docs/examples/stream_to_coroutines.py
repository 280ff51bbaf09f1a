"""How-to: feed the state changes of running tasks to other coroutines."""

import asyncio
import sys

from luma_async import FollowEnd, LumaSession, StateChange


async def dashboard(
    queue: asyncio.Queue[StateChange | FollowEnd], board: dict[str, str], tasks: int
) -> None:
    """A consumer: it knows nothing of Luma, it reads changes from a queue."""
    ended = 0
    while ended < tasks:
        item = await queue.get()
        if isinstance(item, FollowEnd):  # after a task's last change, however it ended
            ended += 1
            print(f"{item.task_id}: ended", "ok" if item.ok else f"with {item.error!r}")
            continue
        board[item.task_id] = str(item.state)
        print(f"{item.task_id}: {item.previous} -> {item.state}")


async def with_a_queue(prompts: list[str]) -> dict[str, str]:
    queue: asyncio.Queue[StateChange | FollowEnd] = asyncio.Queue()
    board: dict[str, str] = {}
    async with LumaSession() as luma:
        tasks = [await luma.generate(prompt) for prompt in prompts]
        listeners = [luma.subscribe(task.id, queue=queue) for task in tasks]
        await dashboard(queue, board, len(tasks))
        # Each listener ends with its finished task, or raises what following it raised.
        await asyncio.gather(*(listener.wait() for listener in listeners), return_exceptions=True)
    return board


async def with_a_callback(prompt: str) -> list[str]:
    seen: list[str] = []

    async def on_change(change: StateChange) -> None:  # awaited for every change, in order
        seen.append(str(change.state))

    async with LumaSession() as luma:
        task = await luma.generate(prompt)
        finished = await luma.subscribe(task.id, callback=on_change)  # await: the end
        print(f"{finished.id} finished: {finished.video.url}")
    return seen


async def merged(prompts: list[str]) -> list[tuple[str, str]]:
    """Many tasks as one stream, in the order things happen; failures do not stop it."""
    async with LumaSession() as luma:
        ids = [(await luma.generate(prompt)).id for prompt in prompts]
        return [(change.task_id, str(change.state)) async for change in luma.watch_many(ids)]


if __name__ == "__main__":
    print(asyncio.run(with_a_queue(sys.argv[1:])))
