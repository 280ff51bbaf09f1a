"""The second round of issue 14's cuts keeps every behaviour of the path it shortens.

``FinishedTask.of`` copies a task's slots instead of running ``__init__``; a value whose
``extra`` is empty shares one read-only view.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from types import MappingProxyType

import attrs
import pytest

from luma_async import (
    Account,
    FinishedTask,
    Frame,
    PollPolicy,
    PollTimeoutError,
    RequestBudget,
    Task,
    TaskState,
    Usage,
    Video,
)
from luma_async._budget import Budget
from luma_async._clock import VirtualClock
from luma_async._construct import new_task
from luma_async._convert import task_from_json
from luma_async._errors import APIError, ServerError
from luma_async._poll import Poller

pytestmark = pytest.mark.asyncio

_WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


def _full_task(**extra: object) -> Task:
    return Task(
        "t-1",
        TaskState.COMPLETED,
        prompt="p",
        failure_reason="why",
        created_at=_WHEN,
        video=Video("https://v/1.mp4", width=1, height=2),
        liked=True,
        estimate_wait_seconds=1.5,
        extra=extra,
        last_frame=Frame("https://f/1.jpg"),
        sent_state="x",
    )


@pytest.mark.parametrize("extra", [{}, {"n": 1, "nested": {"a": [1]}}])
def test_finished_task_of_is_what_init_builds(extra: dict[str, object]) -> None:
    task = _full_task(**extra)
    finished = FinishedTask.of(task)
    expected = FinishedTask(**{f.name: getattr(task, f.name) for f in attrs.fields(Task)})
    assert type(finished) is FinishedTask
    assert finished == expected
    assert finished == task
    assert hash(finished) == hash(expected) == hash(task)
    assert repr(finished) == repr(expected)
    for field in attrs.fields(FinishedTask):
        assert getattr(finished, field.name) == getattr(expected, field.name), field.name
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(finished, field.name, None)
    with pytest.raises(TypeError):
        finished.extra["n"] = 2  # type: ignore[index]
    assert FinishedTask.of(finished) is finished


def test_finished_task_of_a_task_without_video_is_refused_as_before() -> None:
    with pytest.raises(ValueError, match=r"^task t-2 has no video yet \(state: processing\)$"):
        FinishedTask.of(Task("t-2", TaskState.PROCESSING))


def test_an_empty_extra_is_one_shared_read_only_view() -> None:
    made = [
        Task("a", "pending"),
        Task("b", "pending", extra={}),
        task_from_json({"id": "c", "state": "pending"}),
        new_task("d", "pending", "", None, None, None, None, None, {}, None, None),
        Usage(),
        Account(extra={}),
    ]
    views = {id(value.extra) for value in made}
    assert len(views) == 1
    shared = made[0].extra
    assert isinstance(shared, MappingProxyType)
    assert dict(shared) == {}
    with pytest.raises(TypeError):
        shared["k"] = 1  # type: ignore[index]


def test_a_non_empty_extra_is_still_a_copy_of_its_own() -> None:
    source: dict[str, object] = {"k": 1}
    task = Task("a", "pending", extra=source)
    source["k"] = 2
    assert dict(task.extra) == {"k": 1}
    decoded = task_from_json({"id": "b", "state": "pending", "mystery": [1]})
    assert dict(decoded.extra) == {"mystery": [1]}
    assert decoded.extra is not Task("c", "pending").extra


# -- a poll's look is made directly; only a failure goes to the retry driver -------------


async def test_a_look_that_answers_is_one_fetch_and_counts_one_poll(vclock: VirtualClock) -> None:
    task = Task("t", TaskState.PENDING)
    calls: list[int] = []

    async def fetch() -> Task:
        calls.append(1)
        return task

    poller = Poller(fetch, "t", PollPolicy())
    assert await poller.poll() is task
    assert await poller.poll() is task
    assert (len(calls), poller.polls) == (2, 2)


async def test_a_failed_look_is_retried_and_each_look_counted(vclock: VirtualClock) -> None:
    task = Task("t", TaskState.PENDING)
    failures = [ServerError(method="GET", path="/x", status=503, detail="busy")] * 2

    async def fetch() -> Task:
        if failures:
            raise failures.pop()
        return task

    poller = Poller(fetch, "t", PollPolicy(interval=1.0, jitter=0.0))
    started = vclock.monotonic()
    assert await poller.poll() is task
    assert poller.polls == 3
    assert vclock.monotonic() > started  # it waited between the looks


async def test_a_look_that_fails_for_good_raises_its_error_after_one_fetch(
    vclock: VirtualClock,
) -> None:
    error = APIError(method="GET", path="/x", status=400, detail="bad")

    async def fetch() -> Task:
        raise error

    poller = Poller(fetch, "t", PollPolicy())
    started = vclock.monotonic()
    with pytest.raises(APIError) as caught:
        await poller.poll()
    assert caught.value is error
    assert poller.polls == 1
    assert vclock.monotonic() == started


async def test_a_look_past_the_deadline_ends_in_poll_timeout(vclock: VirtualClock) -> None:
    error = ServerError(method="GET", path="/x", status=503, detail="busy")

    async def fetch() -> Task:
        raise error

    poller = Poller(fetch, "t", PollPolicy(interval=1.0, jitter=0.0, timeout=5.0))
    with pytest.raises(PollTimeoutError) as caught:
        await poller.poll()
    assert caught.value.__cause__ is error
    assert poller.polls >= 2


# -- a budget whose only limit is the cap takes a free slot without an await -------------


def test_a_capped_budget_takes_free_slots_at_once_up_to_its_cap() -> None:
    budget = Budget(RequestBudget(max_connections=2))
    assert not budget.take()  # take() still refuses any budget with a limit
    assert budget.take_free()
    assert budget.take_free()
    assert not budget.take_free()
    assert (budget.in_flight, budget.peak_in_flight) == (2, 2)
    budget.release()
    assert budget.take_free()
    budget.release()
    budget.release()
    assert budget.in_flight == 0


@pytest.mark.parametrize(
    "policy",
    [RequestBudget(), RequestBudget(max_rate=100.0), RequestBudget(max_rate=5, max_connections=3)],
)
def test_take_free_leaves_any_other_budget_to_take_or_acquire(policy: RequestBudget) -> None:
    budget = Budget(policy)
    assert not budget.take_free()
    assert (budget.in_flight, budget.peak_in_flight) == (0, 0)


def test_a_paused_capped_budget_takes_nothing_free(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_connections=2))
    budget.slow_down(2.0)
    assert not budget.take_free()
    vclock.advance(2.1)
    assert budget.take_free()


async def test_a_queued_request_is_served_before_a_free_take(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_connections=1))
    assert budget.take_free()
    order: list[str] = []

    async def waiter(name: str) -> None:
        await budget.acquire()
        order.append(name)

    first = asyncio.ensure_future(waiter("first"))
    second = asyncio.ensure_future(waiter("second"))
    await asyncio.sleep(0)
    budget.release()  # handed to "first", not given back to the budget
    assert not budget.take_free()
    await asyncio.sleep(0)
    assert order == ["first"]
    assert budget.in_flight == 1
    budget.release()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    budget.release()
    assert (budget.in_flight, budget.peak_in_flight) == (0, 1)


async def test_a_cancelled_waiter_loses_no_slot(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_connections=1))
    assert budget.take_free()
    queued = asyncio.ensure_future(budget.acquire())
    handed = asyncio.ensure_future(budget.acquire())
    await asyncio.sleep(0)
    queued.cancel()  # cancelled in the queue: skipped when reached
    await asyncio.sleep(0)
    budget.release()  # to `handed`, which is then cancelled before it runs
    handed.cancel()
    for job in (queued, handed):
        with pytest.raises(asyncio.CancelledError):
            await job
    assert budget.in_flight == 0
    assert budget.take_free()


async def test_the_cap_holds_across_take_free_and_acquire(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_connections=3))
    most = 0

    async def request() -> None:
        nonlocal most
        if not budget.take_free():
            await budget.acquire()
        most = max(most, budget.in_flight)
        await asyncio.sleep(0)
        budget.release()

    await asyncio.gather(*(request() for _ in range(20)))
    assert most == 3
    assert (budget.in_flight, budget.peak_in_flight) == (0, 3)
