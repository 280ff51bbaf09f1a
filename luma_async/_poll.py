"""Following one task to its end: a loop on the retry driver that yields each change.

The :class:`~luma_async._retry.Schedule` of a follow (tenacity, built in ``_retry``) decides
every step; the loop re-fetches the task with growing, jittered waits (:class:`PollPolicy`),
waits for ``estimate_wait_seconds`` when the service gives it, rides through transient errors
(honouring ``Retry-After``), and stops when the video exists, the task failed, or the
deadline passed.
A :class:`~luma_async._clock.Wakeup` (a callback, a new listener) cuts a wait short.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn

from luma_async import _clock
from luma_async._errors import PollTimeoutError, TaskFailedError
from luma_async._models import StateChange, Task, TaskState
from luma_async._policy import PollPolicy
from luma_async._retry import Schedule, is_transient, server_hint

__all__ = ["follow", "next_wait"]

log = logging.getLogger("luma_async")


def next_wait(policy: PollPolicy, attempt: int, task: Task | None, hint: float | None) -> float:
    """Seconds until the next poll after ``attempt`` polls (pure but for the jitter).

    Exponential from ``interval`` to ``max_interval``; longer while the task is queued
    (``pending``); timed to the service's estimate when it gives one; never shorter than a
    server's ``Retry-After``.
    """
    wait = _backed_off(policy, max(attempt - 1, 0))
    if task is not None:
        estimate = task.estimate_wait_seconds
        if policy.use_estimate and estimate is not None and estimate > 0:
            wait = min(max(estimate, policy.interval), policy.max_interval)
        elif task.state == TaskState.PENDING:
            wait = min(wait * policy.pending_factor, policy.max_interval)
    wait += random.uniform(0, policy.jitter)  # noqa: S311 - spreading pollers, not crypto
    return wait if hint is None else max(wait, hint)


def _backed_off(policy: PollPolicy, steps: int) -> float:
    """``interval * backoff ** steps`` capped at ``max_interval``, for any number of steps.

    The power is never computed past the step that reaches the cap: ``1.5 ** 1750`` is beyond
    a float, and a task followed without deadline is polled that often (issue 11.4).
    """
    if policy.backoff == 1:
        return policy.interval
    # the first step at or past the cap (one more when the logarithm rounds up)
    span = math.log(policy.max_interval) - math.log(policy.interval)
    steps = min(steps, math.ceil(span / math.log(policy.backoff)))
    try:
        return min(policy.interval * policy.backoff**steps, policy.max_interval)
    except OverflowError:  # a backoff near the largest float: one step passes any cap
        return policy.max_interval


def _unfinished(task: Task | None) -> bool:
    return task is None or not task.is_terminal


async def follow(  # noqa: C901 - one loop: poll, compare, hint, wait; split, its state would be shared
    fetch: Callable[[], Awaitable[Task]],
    task_id: str,
    policy: PollPolicy,
    *,
    wakeup: _clock.Wakeup | None = None,
    first: Task | None = None,
) -> AsyncIterator[StateChange]:
    """Yield a :class:`StateChange` per change of state until the video exists.

    The failed state is yielded too, then :class:`TaskFailedError` is raised; at the deadline
    :class:`PollTimeoutError` is.  ``first`` is a task already in hand (from the submission),
    reported as the first state without a request.
    """
    started = _clock.monotonic()
    end = None if policy.timeout is None else started + policy.timeout
    last: Task | None = None
    polls = 0

    def change(task: Task) -> StateChange | None:
        nonlocal last
        previous, last = last, task
        if (
            previous is not None
            and previous.state == task.state
            and not (task.is_finished and not previous.is_finished)
        ):
            return None
        return StateChange(
            task_id=task_id,
            previous=None if previous is None else previous.state,
            state=task.state,
            task=task,
            elapsed=_clock.monotonic() - started,
            polls=polls,
        )

    if first is not None:
        item = change(first)
        if item is not None:
            yield item
        if first.is_failed:
            raise TaskFailedError(first)
        if first.is_finished:
            return

    def wait(attempt: int, error: BaseException | None) -> float:
        seconds = next_wait(policy, attempt, last, server_hint(error))
        return min(seconds, _remaining(end))  # the last poll happens at the deadline

    def exhausted(error: BaseException | None, _: object) -> NoReturn:
        raise PollTimeoutError(task_id, last, _clock.monotonic() - started) from error

    def fetched() -> Awaitable[Task]:
        nonlocal polls
        polls += 1
        return fetch()

    def failed(attempt: int, error: BaseException | None, _: float) -> None:
        log.debug("task %s: poll %d failed: %s", task_id, attempt, error)

    # The driver of _retry decides every step: poll on after a transient error or an
    # unfinished task, wait as next_wait says (a wakeup cuts it short), give up at the
    # deadline.  Each answer is yielded here between polls.
    schedule = Schedule(
        retry_on=is_transient,
        retry_result=_unfinished,
        wait=wait,
        give_up=lambda _: end is not None and _clock.monotonic() >= end,
        exhausted=exhausted,
        on_retry=failed,
        sleep=functools.partial(_clock.sleep, wakeup=wakeup),
    )
    if first is not None:  # the submission's answer counts as the first poll
        await _clock.sleep(min(next_wait(policy, 1, first, None), _remaining(end)), wakeup)
    async with contextlib.aclosing(schedule.results(fetched)) as tasks:
        async for task in tasks:
            item = change(task)
            if item is not None:
                yield item
            if task.is_failed:
                raise TaskFailedError(task)


def _remaining(end: float | None) -> float:
    return float("inf") if end is None else max(end - _clock.monotonic(), 0.0)
