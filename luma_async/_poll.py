"""Following one task to its end: a loop on the retry driver that yields each change.

The :class:`~luma_async._retry.Schedule` of a follow (tenacity, built in ``_retry``) decides
every step; the loop re-fetches the task with growing, jittered waits (:class:`PollPolicy`),
waits for ``estimate_wait_seconds`` when the service gives it, rides through transient errors
(honouring ``Retry-After``), and stops when the video exists, the task failed, or the
deadline passed.
A :class:`~luma_async._clock.Wakeup` (a callback, a new listener) cuts a wait short.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn

from luma_async import _clock
from luma_async._errors import PollTimeoutError, TaskFailedError
from luma_async._models import StateChange, Task, TaskState
from luma_async._policy import PollPolicy
from luma_async._retry import Schedule, after_failure, is_transient, retry_after, server_hint

__all__ = ["Poller", "follow", "next_wait"]

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


class Poller:
    """The state of one follow, and its steps: thousands of followed tasks each hold one.

    One slotted object instead of a loop's closures, a retry schedule and its generator:
    the retry :class:`~luma_async._retry.Schedule` is built only when a poll fails.  Its
    driver is this loop, in :func:`follow` and the hub's watches::

        task = first if first is not None else await poller.poll()
        while True:
            change = poller.change(task)  # None when nothing changed
            ...                           # hand the change on
            if poller.over(task):         # raises when it failed or the deadline passed
                break
            await poller.pause()          # if cancelled here: poller.disarm()
            task = await poller.poll()

    Between two looks a follower holds no frame of this class: ``pause()`` is a bare future.
    """

    __slots__ = (
        "_in_hand",
        "_pause",
        "end",
        "fetch",
        "last",
        "policy",
        "polls",
        "started",
        "task_id",
        "wakeup",
    )

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Task]],
        task_id: str,
        policy: PollPolicy,
        *,
        wakeup: _clock.Wakeup | None = None,
        first: Task | None = None,
    ) -> None:
        self.fetch = fetch
        self.task_id = task_id
        self.policy = policy
        self.wakeup = wakeup
        self.started = _clock.monotonic()
        self.end = None if policy.timeout is None else self.started + policy.timeout
        self.last: Task | None = None
        self.polls = 0  # requests made (a StateChange's ``polls``)
        # The submission's answer counts as the first poll: the waits after the GETs go on
        # from there (interval, then x backoff ...), they do not start over.
        self._in_hand = 0 if first is None else 1
        self._pause = 0.0  # the wait before the next poll, set by over()

    async def poll(self) -> Task:
        """One look at the task, retried as a poll is (transient errors, ``Retry-After``).

        The look is made here, awaited directly: only a failure goes to the retry driver
        (:func:`~luma_async._retry.after_failure`, then tenacity for the looks after it).
        """
        self.polls += 1
        try:
            return await self.fetch()
        except Exception as exc:  # noqa: BLE001 - after_failure re-raises it unless retried
            schedule, pause = after_failure(exc, self._schedule, 1)
        return await retry_after(self._counted, schedule, pause, 1)

    def pause(self) -> Awaitable[bool]:
        """The wait before the next poll, as :meth:`over` set it (a wakeup cuts it short)."""
        return _clock.sleep(self._pause, self.wakeup)

    def disarm(self) -> None:
        """For a follow cancelled in :meth:`pause`: its timer goes with it."""
        if self.wakeup is not None:
            self.wakeup.disarm()

    def change(self, task: Task) -> StateChange | None:
        """The change ``task`` brings since the last one seen (``None``: nothing new)."""
        previous, self.last = self.last, task
        if (
            previous is not None
            and previous.state == task.state
            and not (task.is_finished and not previous.is_finished)
        ):
            return None
        return StateChange(
            task_id=self.task_id,
            previous=None if previous is None else previous.state,
            state=task.state,
            task=task,
            elapsed=_clock.monotonic() - self.started,
            polls=self.polls,
        )

    def over(self, task: Task) -> bool:
        """True when following ends with ``task``; raises when it failed or time is up.
        Otherwise the next :meth:`next` waits as the policy says."""
        if task.is_failed:
            raise TaskFailedError(task)
        if task.is_finished:
            return True
        if self.polls == 0:  # the task in hand: its wait is the first one, no deadline yet
            self._pause = self._wait(0, None)
            return False
        if self._give_up(self.polls):
            self._exhausted(None, task)
        self._pause = self._wait(self.polls, None)
        return False

    # -- the retry schedule of a poll, built only when one fails ------------------------

    async def _counted(self) -> Task:  # the looks after a failure (tenacity awaits coroutines)
        self.polls += 1
        return await self.fetch()

    def _schedule(self) -> Schedule:
        return Schedule(
            retry_on=is_transient,
            wait=self._wait,
            give_up=self._give_up,
            exhausted=self._exhausted,
            on_retry=self._failed,
            sleep=self._sleep,
        )

    # The schedule numbers the attempts of one call; the poll loop's own count is wanted.
    def _wait(self, _attempt: int, error: BaseException | None) -> float:
        looks = self.polls + self._in_hand
        seconds = next_wait(self.policy, looks, self.last, server_hint(error))
        return min(seconds, _remaining(self.end))  # the last poll happens at the deadline

    def _give_up(self, _attempt: int) -> bool:
        return self.end is not None and _clock.monotonic() >= self.end

    def _exhausted(self, error: BaseException | None, _: object) -> NoReturn:
        elapsed = _clock.monotonic() - self.started
        raise PollTimeoutError(self.task_id, self.last, elapsed) from error

    def _failed(self, _attempt: int, error: BaseException | None, _: float) -> None:
        log.debug("task %s: poll %d failed: %s", self.task_id, self.polls, error)

    def _sleep(self, seconds: float) -> Awaitable[bool]:
        return _clock.sleep(seconds, self.wakeup)


async def follow(
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
    poller = Poller(fetch, task_id, policy, wakeup=wakeup, first=first)
    task = first if first is not None else await poller.poll()
    while True:
        change = poller.change(task)
        if change is not None:
            yield change
        if poller.over(task):
            return
        try:
            await poller.pause()
        except asyncio.CancelledError:
            poller.disarm()
            raise
        task = await poller.poll()


def _remaining(end: float | None) -> float:
    return float("inf") if end is None else max(end - _clock.monotonic(), 0.0)
