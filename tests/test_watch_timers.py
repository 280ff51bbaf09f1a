"""The timers of followers' sleeps: a follower's sleep is a bare future with a timer, so a wake
or a cancel must take that timer away (nothing is left scheduled for nobody).

The real clock here, but nothing sleeps for real: every sleep is woken or cancelled at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from luma_async import PollPolicy, Task, TaskState
from luma_async._clock import VirtualClock, Wakeup, sleep
from luma_async._poll import follow
from luma_async._watch import Hub

pytestmark = pytest.mark.asyncio

SLOW = PollPolicy(interval=60.0, max_interval=60.0, jitter=0, timeout=300.0)


def live_timers() -> list[asyncio.TimerHandle]:
    loop = asyncio.get_running_loop()
    return [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]


async def test_a_wake_ends_the_sleep_and_cancels_its_timer() -> None:
    wakeup = Wakeup()
    before = len(live_timers())
    slept = sleep(100.0, wakeup)
    assert len(live_timers()) == before + 1
    wakeup.wake()
    assert await slept is True
    assert len(live_timers()) == before


async def test_a_wake_before_the_sleep_ends_it_at_once() -> None:
    wakeup = Wakeup()
    wakeup.wake()
    assert await sleep(100.0, wakeup) is True
    assert await asyncio.wait_for(sleep(0.0, wakeup), 1) is False  # the wake was used once


async def test_disarm_cancels_the_timer_of_a_cancelled_sleep() -> None:
    wakeup = Wakeup()
    before = len(live_timers())
    slept = asyncio.ensure_future(sleep(100.0, wakeup))
    await asyncio.sleep(0)
    slept.cancel()
    wakeup.disarm()
    assert len(live_timers()) == before
    wakeup.wake()  # no sleep now: kept for the next one
    assert await sleep(100.0, wakeup) is True


async def test_a_cancelled_follower_leaves_no_timer_behind() -> None:
    async def fetch_one(task_id: str) -> Task:
        return Task(task_id, TaskState.PROCESSING)

    def fetch_many(_: list[str]) -> Awaitable[list[Task] | str]:
        raise AssertionError("no batch refresh here")

    hub = Hub(fetch_one, fetch_many, batch=False, window=0.05)
    before = len(live_timers())
    subscription = hub.subscribe(["t"], SLOW)
    assert (await anext(subscription)).state == "processing"
    waiting = asyncio.ensure_future(anext(subscription))
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(live_timers()) == before + 2  # the poller's next look, the follower's deadline
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    for _ in range(5):
        await asyncio.sleep(0)
    assert hub.watched == []
    assert len(live_timers()) == before
    await hub.aclose()


async def test_a_cancelled_follow_leaves_no_timer_behind() -> None:
    async def fetch() -> Task:
        return Task("t", TaskState.PROCESSING)

    async def run() -> None:
        async for _ in follow(fetch, "t", SLOW, wakeup=Wakeup()):
            pass

    before = len(live_timers())
    following = asyncio.ensure_future(run())
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(live_timers()) == before + 1
    following.cancel()
    await asyncio.gather(following, return_exceptions=True)
    assert len(live_timers()) == before


async def test_on_virtual_time_a_woken_sleep_leaves_the_heap(vclock: VirtualClock) -> None:
    wakeup = Wakeup()
    slept = sleep(50.0, wakeup)
    wakeup.wake()
    assert await slept is True
    start = vclock.monotonic()
    assert await sleep(1.0) is False
    assert vclock.monotonic() - start == 1.0  # time jumped to the next live sleep, not to 50 s
