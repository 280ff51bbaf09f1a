"""Typed results and listeners: wait() gives a FinishedTask, a queue learns how the follow
ended, callbacks may be plain or async functions."""

from __future__ import annotations

import asyncio

import pytest

from luma_async import (
    FinishedTask,
    FollowEnd,
    LumaSession,
    PollPolicy,
    PollTimeoutError,
    StateChange,
    Task,
    TaskFailedError,
    TaskState,
    Video,
)
from luma_async.testing import LumaEmulator

FAST = PollPolicy(interval=1, max_interval=2, jitter=0)
pytestmark = [pytest.mark.asyncio, pytest.mark.poll(FAST)]


def test_finished_task_is_a_task_with_a_video() -> None:
    task = Task("t-1", TaskState.COMPLETED, video=Video("https://x/v.mp4"), extra={"a": 1})
    finished = FinishedTask.of(task)
    assert isinstance(finished, Task)
    assert finished.video.url == "https://x/v.mp4"
    assert finished == task
    assert task == finished
    assert hash(finished) == hash(task)
    assert finished.extra == {"a": 1}
    assert FinishedTask.of(finished) is finished
    with pytest.raises(ValueError, match="no video yet"):
        FinishedTask.of(Task("t-2", TaskState.COMPLETED))


async def test_wait_and_the_finished_change_give_a_finished_task(luma: LumaSession) -> None:
    task = await luma.generate("a fox")
    finished_changes: list[FinishedTask] = []
    async for change in luma.poll(task.id, first=task):
        if change.finished is not None:
            finished_changes.append(change.finished)
        else:
            assert change.task.video is None
    assert len(finished_changes) == 1
    done = await luma.wait(task.id)
    assert type(done) is FinishedTask
    assert done == finished_changes[0]
    assert done.video.url


async def test_a_queue_learns_that_a_failed_follow_ended(luma: LumaSession) -> None:
    task = await luma.generate("[fail] doomed")
    queue: asyncio.Queue[StateChange | FollowEnd] = asyncio.Queue()
    listener = luma.subscribe(task.id, queue=queue)
    items: list[StateChange | FollowEnd] = []
    while not items or not isinstance(items[-1], FollowEnd):
        items.append(await asyncio.wait_for(queue.get(), 60))  # ends: no hanging consumer
    *changes, end = items
    assert isinstance(end, FollowEnd)
    assert isinstance(changes[-1], StateChange)
    assert changes[-1].state == "failed"  # the last change, then the end
    assert not end.ok
    assert isinstance(end.error, TaskFailedError)
    assert end.task is not None
    assert end.task.is_failed
    assert listener.done()
    with pytest.raises(TaskFailedError):
        await listener


async def test_a_queue_learns_of_a_timeout_and_of_a_cancel(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    task = await luma.generate("slow")
    emulator.set_durations(task.id, pending=10_000)
    queue: asyncio.Queue[StateChange | FollowEnd] = asyncio.Queue()
    listener = luma.subscribe(task.id, queue=queue, policy=PollPolicy(interval=1, timeout=30))
    first = await queue.get()
    assert isinstance(first, StateChange)
    end = await asyncio.wait_for(queue.get(), 600)
    assert isinstance(end, FollowEnd)
    assert isinstance(end.error, PollTimeoutError)
    assert end.task_id == task.id
    with pytest.raises(PollTimeoutError):
        await listener.wait()

    cancelled = luma.subscribe(task.id, queue=queue)
    assert isinstance(await queue.get(), StateChange)
    cancelled.cancel()
    end = await queue.get()
    assert isinstance(end, FollowEnd)
    assert isinstance(end.error, asyncio.CancelledError)
    assert cancelled.done()


async def test_subscribe_takes_plain_and_async_callbacks(luma: LumaSession) -> None:
    task = await luma.generate("a fox")
    plain: list[str] = []
    awaited: list[str] = []

    async def on_change(change: StateChange) -> None:
        awaited.append(str(change.state))

    first = luma.subscribe(task.id, callback=lambda change: plain.append(str(change.state)))
    second = luma.subscribe(task.id, callback=on_change)
    done = await first
    assert await second == done
    assert plain == awaited
    assert plain[-1] == "completed"
