"""The half of :class:`LumaSession` that follows tasks: ``poll``, ``wait``, ``watch_many``,
``subscribe``, ``extend_many`` and ``extend_chain``.

:class:`Following` is a base class of :class:`LumaSession` and nothing else: users see these
methods on the session (the reference documents them there).  They only turn arguments
into subscriptions of the session's :class:`~luma_async._watch.Hub` (and batches), so they
need of the session only what the ``TYPE_CHECKING`` block below declares: its hub, its
default poll policy, its closed-check and the two requests a batch makes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from luma_async import _inputs
from luma_async._errors import InputError
from luma_async._models import BatchResult, ExtendRequest, FinishedTask, StateChange, Task
from luma_async._policy import PollPolicy
from luma_async._validators import check, instance_of
from luma_async._watch import FollowEnd, Hub, Listener, Subscription

if TYPE_CHECKING:
    from luma_async._batch import Batch
    from luma_async._journal import Journal

__all__ = ["Following"]

log = logging.getLogger("luma_async")

_POLICY = instance_of(PollPolicy)


class Following:
    """:class:`LumaSession`'s methods that follow tasks to their end (see the module)."""

    if TYPE_CHECKING:  # set or defined by LumaSession; declared for the type checkers only
        poll_policy: PollPolicy
        _hub: Hub

        def _check_open(self) -> None: ...

        async def submit_extend(self, request: ExtendRequest) -> Task: ...

        async def download(self, task: Task, dest: Path, /, *, watermark: bool = ...) -> Path: ...

    def poll(
        self, task_id: str, *, policy: PollPolicy | None = None, first: Task | None = None
    ) -> Subscription:
        """Follow a task: one :class:`StateChange` per change of state, until the video exists.

        Raises :class:`TaskFailedError` after yielding the ``failed`` state, and
        :class:`PollTimeoutError` when ``policy.timeout`` passes first.  Several coroutines
        following the same task share one poller; one that joins late gets the latest state
        at once.  ``first`` is the task as ``extend``/``generate`` returned it (saves a GET).
        """
        _inputs.check_task_id(task_id)
        if first is not None and not isinstance(first, Task):
            raise InputError(
                f"first must be the Task that generate/extend returned, not {type(first).__name__}"
            )
        self._check_open()
        return self._hub.subscribe([task_id], self._policy(policy), first=first)

    async def wait(
        self,
        task_id: str,
        *,
        policy: PollPolicy | None = None,
        first: Task | None = None,
        on_change: Callable[[StateChange], object] | None = None,
    ) -> FinishedTask:
        """Follow a task to its end and return it finished: a :class:`FinishedTask`, whose
        ``video`` is never ``None``.

        ``on_change`` (a function or coroutine function) sees each change on the way.
        """
        subscription = self.poll(task_id, policy=policy, first=first)
        last: Task | None = None
        try:
            async for change in subscription:
                last = change.task
                if on_change is not None:
                    outcome = on_change(change)
                    if inspect.isawaitable(outcome):
                        await outcome
        finally:
            await subscription.aclose()
        assert last is not None  # a subscription ends only after a change with a video
        return FinishedTask.of(last)

    def watch_many(
        self, task_ids: Iterable[str], *, policy: PollPolicy | None = None
    ) -> Subscription:
        """The changes of many tasks merged into one stream, in the order they happen.

        Failed tasks are reported by their ``failed`` change and the stream goes on; it ends
        when every task has ended, or raises :class:`PollTimeoutError` at the deadline.
        """
        listed = _inputs.check_list(task_ids, "task_ids")
        ids = [_inputs.check_task_id(task_id) for task_id in listed]
        self._check_open()
        return self._hub.subscribe(ids, self._policy(policy), merged=True)

    def subscribe(
        self,
        task_id: str,
        *,
        queue: asyncio.Queue[StateChange | FollowEnd] | None = None,
        callback: Callable[[StateChange], object] | None = None,
        policy: PollPolicy | None = None,
    ) -> Listener:
        """Feed a task's changes to ``queue`` or ``callback`` in the background.

        ``callback`` is a function or a coroutine function (awaited for each change, in
        order), as ``on_change`` of :meth:`wait`.  A ``queue`` receives every change and then,
        however the follow ends, one :class:`FollowEnd` saying how (``error`` is ``None``
        when the video exists), so a consumer never waits for a change that will not come.

        Returns a :class:`Listener`: ``await`` it for the :class:`FinishedTask`, ``cancel()``
        it to stop.  It shares the task's poller with every other follower.
        """
        if (queue is None) == (callback is None):
            raise InputError("pass exactly one of queue= or callback=")
        if queue is not None and not isinstance(queue, asyncio.Queue):
            raise InputError(f"queue must be an asyncio.Queue, not {type(queue).__name__}")
        if callback is not None and not callable(callback):
            raise InputError(
                "callback must be a function or async function taking a StateChange, "
                f"not {type(callback).__name__}"
            )
        subscription = self.poll(task_id, policy=policy)
        if queue is None:
            assert callback is not None
            return self._hub.listen(subscription, callback)

        def end(item: FollowEnd) -> None:
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                log.warning("queue full: the end of following task %s was not queued", task_id)

        return self._hub.listen(subscription, queue.put, on_end=end)

    def extend_many(
        self,
        requests: Iterable[ExtendRequest] | AsyncIterable[ExtendRequest],
        *,
        concurrency: int = 8,
        fail_fast: bool = False,
        policy: PollPolicy | None = None,
        journal: Journal | str | Path | None = None,
        download_to: Path | str | None = None,
        watermark: bool = True,
        on_change: Callable[[StateChange], object] | None = None,
    ) -> Batch:
        """Submit every :class:`ExtendRequest`, follow each to its end, yield results as they end.

        At most ``concurrency`` are in flight at once.  A failed item is reported in its
        :class:`BatchResult`; ``fail_fast=True`` stops the batch after the first failure
        (raising it).  :attr:`Batch.in_flight` lists what was submitted and not seen to end.
        With ``journal`` (a path or :class:`Journal`), every step is recorded in sqlite first,
        and a batch restarted after a crash resumes without submitting anything twice.
        With ``download_to`` (a directory), each finished video is downloaded before its
        result is yielded (``result.path``); a failed download is the result's ``error``.
        ``on_change`` (a function or coroutine function) sees every state change of every
        task, to stream the batch's progress elsewhere.
        """
        self._check_open()
        from luma_async._batch_wiring import make_batch  # noqa: PLC0415 - sqlite3, on first use

        return make_batch(
            self,
            requests,
            concurrency=concurrency,
            fail_fast=fail_fast,
            policy=self._policy(policy),
            journal=journal,
            download_to=download_to,
            watermark=watermark,
            on_change=on_change,
        )

    async def extend_chain(
        self, task_id: str, prompts: Iterable[str], *, policy: PollPolicy | None = None
    ) -> AsyncIterator[BatchResult]:
        """Grow one video step by step: extend, wait, extend the result again.

        Yields each finished step; ``result.parent_id`` is the task it extended.  A failed
        step raises (the chain cannot go on without its video).
        """
        current = _inputs.check_task_id(task_id)
        steps = [_inputs.check_prompt(prompt) for prompt in _inputs.check_list(prompts, "prompts")]
        policy = self._policy(policy)  # checked before the first paid request
        for prompt in steps:
            request = ExtendRequest(current, prompt)
            submitted = await self.submit_extend(request)
            done = await self.wait(submitted.id, policy=policy, first=submitted)
            yield BatchResult(request, task=done, task_id=done.id)
            current = done.id

    def _policy(self, policy: PollPolicy | None) -> PollPolicy:
        if policy is None:
            return self.poll_policy
        return check(policy, "policy", _POLICY)
