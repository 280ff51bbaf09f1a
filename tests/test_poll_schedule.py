"""The poll schedule when a task is already in hand (``first=``): exact times on the virtual clock.

The task that ``extend()``/``generate()`` returned is the answer of the first look: the
submission counts as the first poll.  So the waits follow :class:`PollPolicy` from there on:
``interval`` after the submission, then ``interval * backoff``, ``interval * backoff ** 2`` …
(capped; times ``pending_factor`` while queued; timed to the service's estimate when given).
Before, the first GET was counted as the first poll again and the backoff started over
(2 s, 2 s, 3 s … instead of 2 s, 3 s, 4.5 s …).
"""

from __future__ import annotations

from collections.abc import Awaitable

import attrs
import pytest

from luma_async import PollPolicy, Task, TaskState, Video
from luma_async._poll import follow
from luma_async._watch import Hub
from luma_async.testing import VirtualClock

from .test_pinned import EXACT, fetcher

pytestmark = pytest.mark.asyncio

VIDEO = Video("https://cdn/v.mp4")
PROCESSING = Task("t", TaskState.PROCESSING)
PENDING = Task("t", TaskState.PENDING)
DONE = Task("t", TaskState.COMPLETED, video=VIDEO)


async def test_after_a_task_in_hand_the_backoff_goes_on(vclock: VirtualClock) -> None:
    fetch, times = fetcher(vclock, [PROCESSING, PROCESSING, DONE])
    changes = [c async for c in follow(fetch, "t", EXACT, first=PROCESSING)]
    # waits of 2 (after the submission), 3 and 4.5 s: not 2, 2 and 3
    assert times == [2.0, 5.0, 9.5]
    assert [(c.state, c.polls, c.elapsed) for c in changes] == [
        ("processing", 0, 0.0),
        ("completed", 3, 9.5),
    ]


async def test_a_pending_task_in_hand_then_processing(vclock: VirtualClock) -> None:
    # The case first reported: 3 s (2 x pending_factor 1.5), then 3 s (2 x 1.5), not 2 s.
    fetch, times = fetcher(vclock, [PROCESSING, DONE])
    _ = [c async for c in follow(fetch, "t", EXACT, first=PENDING)]
    assert times == [3.0, 6.0]


async def test_the_backoff_after_a_task_in_hand_is_capped(vclock: VirtualClock) -> None:
    policy = attrs.evolve(EXACT, max_interval=4.0)
    answers: list[Task | Exception] = [PROCESSING, PROCESSING, PROCESSING, DONE]
    fetch, times = fetcher(vclock, answers)
    _ = [c async for c in follow(fetch, "t", policy, first=PROCESSING)]
    assert times == [2.0, 5.0, 9.0, 13.0]  # waits 2, 3, then the cap of 4


async def test_the_estimate_still_times_the_polls_after_a_task_in_hand(
    vclock: VirtualClock,
) -> None:
    policy = attrs.evolve(EXACT, use_estimate=True)
    soon = Task("t", TaskState.PROCESSING, estimate_wait_seconds=7.0)
    fetch, times = fetcher(vclock, [soon, DONE])
    _ = [c async for c in follow(fetch, "t", policy, first=soon)]
    assert times == [7.0, 14.0]


async def test_a_watch_of_the_hub_follows_the_same_schedule(vclock: VirtualClock) -> None:
    # What wait(first=...) runs: the session's hub, one GET per look (no batch refresh).
    started = vclock.monotonic()
    answers = [PROCESSING, PROCESSING, DONE]
    times: list[float] = []

    async def fetch_one(task_id: str) -> Task:
        times.append(vclock.monotonic() - started)
        return answers[len(times) - 1]

    def fetch_many(_: list[str]) -> Awaitable[list[Task] | str]:
        raise AssertionError("no batch refresh here")

    hub = Hub(fetch_one, fetch_many, batch=False, window=0.05)
    policy = PollPolicy(interval=2.0, backoff=1.5, jitter=0, use_estimate=False)
    states = [c.state async for c in hub.subscribe(["t"], policy, first=PROCESSING)]
    await hub.aclose()
    assert times == [2.0, 5.0, 9.5]
    assert states == ["processing", "completed"]
