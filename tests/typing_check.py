"""Checked by mypy --strict and pyright, never run: the public API types as users see them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typing_extensions import assert_type

from luma_async import (
    APIError,
    BatchResult,
    ExtendRequest,
    FinishedTask,
    FollowEnd,
    LumaError,
    LumaSession,
    PollPolicy,
    RateLimitError,
    RequestBudget,
    RetryPolicy,
    StateChange,
    Task,
    TaskState,
    Video,
)
from luma_async.testing import LumaEmulator, virtual_time


async def extend_and_follow(task_id: str) -> str:
    async with LumaSession(
        "key",
        base_url="https://api.gpt.ge",
        retry=RetryPolicy(attempts=3),
        poll=PollPolicy(interval=1.0, timeout=None),
        budget=RequestBudget(max_rate=10.0, max_connections=4),
    ) as luma:
        extension = await luma.extend(task_id, "more", image_url=Path("frame.png"))
        assert_type(extension, Task)
        async for change in luma.poll(extension.id):
            assert_type(change, StateChange)
            assert_type(change.elapsed, float)
            if (finished := change.finished) is not None:
                assert_type(finished.video, Video)  # a finished change: the video is there
        assert_type(extension.video, Video | None)  # a plain Task: not yet
        done = await luma.wait(extension.id)
        assert_type(done, FinishedTask)
        assert_type(done.video, Video)  # wait() guarantees it, and says so
        if done.state == TaskState.FAILED:
            return done.failure_reason or ""
        return done.video.best_url


async def batch(ids: list[str]) -> list[Task]:
    finished: list[Task] = []
    async with LumaSession("key") as luma:
        async for result in luma.extend_many(
            [ExtendRequest(i, "more") for i in ids], concurrency=4
        ):
            assert_type(result, BatchResult)
            if result.task is not None:
                finished.append(result.task)
            elif isinstance(result.error, RateLimitError):
                assert_type(result.error.retry_after, float | None)
        queue: asyncio.Queue[StateChange | FollowEnd] = asyncio.Queue()
        listener = luma.subscribe(ids[0], queue=queue)
        assert_type(await listener.wait(), FinishedTask)
        assert_type(await listener, FinishedTask)
        assert_type(listener.done(), bool)
        item = await queue.get()
        if isinstance(item, FollowEnd):
            assert_type(item.error, BaseException | None)

        def sync_callback(change: StateChange) -> None: ...

        async def async_callback(change: StateChange) -> None: ...

        luma.subscribe(ids[0], callback=sync_callback)
        luma.subscribe(ids[0], callback=async_callback)
    return finished


async def emulated() -> int:
    with virtual_time():
        async with LumaEmulator(time_scale=0.1) as emu:
            base: str = emu.base_url
            async with LumaSession(emu.api_key, base_url=base) as luma:
                try:
                    await luma.get("x")
                except APIError as exc:
                    status: int = exc.status
                    return status
                except LumaError:
                    return -1
    return 0


async def deployments() -> float | None:
    """Issue 10: the media values, the account endpoints and create options, typed."""
    from luma_async import (  # noqa: PLC0415
        Account,
        Frame,
        RawVideo,
        UpstreamAuthenticationError,
        Usage,
        WrongTaskError,
    )

    async with LumaSession("key") as luma:
        task = await luma.generate("a fox", duration=5, model_name="ray-v2", loop=True)
        assert_type(task.last_frame, Frame | None)
        assert_type(task.video_raw, RawVideo | None)
        assert_type(task.sent_state, str | None)
        await luma.generate("a fox", duration="5s", resolution="1080p")
        assert_type(await luma.account(), Account)
        usage = await luma.usage()
        assert_type(usage, Usage)
        try:
            await luma.get(task.id)
        except WrongTaskError as exc:
            assert_type(exc.answered, str)
        except UpstreamAuthenticationError as exc:
            assert_type(exc.code, str | None)
        return usage.available
