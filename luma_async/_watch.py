"""Shared watching: one poller per task, however many coroutines follow it.

A :class:`Hub` belongs to one session.  Following a task subscribes to its :class:`_Watch`, a
background task running the poll loop of ``_poll.follow``; every subscriber gets the same
changes, and one that joins late gets the latest state at once.  When the last subscriber
leaves (finishes, breaks out of its loop, is cancelled or garbage-collected) the watch is
cancelled, so nothing keeps running for nobody.

A callback (:meth:`Hub.notify`) cuts a watch's wait short, but the hook URL is reachable by
whoever learns it, so forced polls are bounded (issue 11.5).  Hints for a task whose forced
poll has not started yet are folded into it; each task has a token bucket of forced polls
(:data:`TASK_FORCED_BURST`, refilled at :data:`TASK_FORCED_RATE` a second) and the session one
for all tasks together (:data:`FORCED_BURST`, :data:`FORCED_RATE`).  A hint that finds a bucket
empty is kept, and polled for as soon as a token comes: never lost, only delayed.  Scheduled
polls go on as before.

Refreshes of many watched tasks are folded into one ``POST /luma/tasks`` where the deployment
offers it, by the :class:`~luma_async._refresh.Refresher`; any answer that is not a list of
tasks makes it fall back to one GET per task, decided once.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from luma_async import _clock
from luma_async._errors import SessionClosedError
from luma_async._forced import (
    FORCED_BURST,
    FORCED_RATE,
    TASK_FORCED_BURST,
    TASK_FORCED_RATE,
    Bucket,
)
from luma_async._listener import FollowEnd, Listener
from luma_async._models import FinishedTask, StateChange, Task
from luma_async._poll import Poller
from luma_async._refresh import Refresher
from luma_async._subscription import Subscription

if TYPE_CHECKING:
    from luma_async._policy import PollPolicy

__all__ = [
    "FORCED_BURST",
    "FORCED_RATE",
    "TASK_FORCED_BURST",
    "TASK_FORCED_RATE",
    "FollowEnd",
    "Hub",
    "Listener",
    "Subscription",
]

log = logging.getLogger("luma_async")


@functools.lru_cache(maxsize=64)
def _without_deadline(policy: PollPolicy) -> PollPolicy:
    return attrs.evolve(policy, timeout=None)


class _Watch:
    __slots__ = (
        "_subscribers",
        "closing",
        "forced",
        "forcer",
        "hub",
        "latest",
        "runner",
        "task_id",
        "wakeup",
        "woken",
    )

    def __init__(self, hub: Hub, task_id: str, policy: PollPolicy, first: Task | None) -> None:
        self.hub = hub
        self.task_id = task_id
        self.latest: StateChange | None = None
        self.wakeup = _clock.Wakeup()
        # Weak references: a subscription its owner dropped must be collectable (its
        # __del__ then leaves).  A plain list of refs costs far less than a WeakSet.
        self._subscribers: list[weakref.ref[Subscription]] = []
        self.closing = False
        self.woken = False  # a callback's poll is due and has not started yet
        self.forced: Bucket | None = None  # made at the first callback: most get none
        self.forcer: asyncio.Task[None] | None = None  # a hint waiting for a token
        forever = _without_deadline(policy)  # each subscriber keeps its own deadline
        self.runner = asyncio.get_running_loop().create_task(
            self._run(forever, first), name=f"luma-watch-{task_id}"
        )

    async def _run(self, policy: PollPolicy, first: Task | None) -> None:
        error: BaseException | None = None
        # The loop of _poll.follow, without its async generator: one per watch adds up.
        poller = Poller(self._fetch, self.task_id, policy, wakeup=self.wakeup, first=first)
        try:
            task = first if first is not None else await poller.poll()
            while True:
                change = poller.change(task)
                if change is not None:
                    self.latest = change
                    self._broadcast(change)
                if poller.over(task):
                    break
                await poller.pause()
                task = await poller.poll()
        except asyncio.CancelledError:
            poller.disarm()  # cancelled in a wait: the timer of that wait goes too
            if self.closing:
                error = SessionClosedError(
                    f"the LumaSession was closed while following task {self.task_id}"
                )
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every subscriber
            error = exc
        finally:
            self.hub._ended(self)  # noqa: SLF001
            self._finish_all(error)

    def _fetch(self) -> Awaitable[Task]:
        self.woken = False  # a hint from now on asks for the poll after this one
        return self.hub.fetch(self.task_id)

    def force(self) -> None:
        """Poll now for a callback, or as soon as the buckets allow; hints coalesce."""
        if self.woken or (self.forcer is not None and not self.forcer.done()):
            return  # a forced poll is due and has not started: this hint is folded into it
        if self.forced is None:
            self.forced = Bucket(TASK_FORCED_BURST, TASK_FORCED_RATE)
        if self.forced.ready() and self.hub.forced.ready():
            self._wake()
            return
        self.forcer = asyncio.get_running_loop().create_task(
            self._force_later(self.forced), name=f"luma-force-{self.task_id}"
        )

    async def _force_later(self, bucket: Bucket) -> None:
        while not (bucket.ready() and self.hub.forced.ready()):
            await _clock.sleep(max(bucket.delay(), self.hub.forced.delay()))
        self._wake()

    def _wake(self) -> None:
        assert self.forced is not None
        self.forced.take()
        self.hub.forced.take()
        self.woken = True
        self.wakeup.wake()

    def _broadcast(self, change: StateChange) -> None:
        # A method, not a loop in _run: a loop variable in the long-lived coroutine frame
        # would keep the last subscriber alive after its owner dropped it.
        for subscriber in self.subscribers:
            subscriber._push(change)  # noqa: SLF001

    def _finish_all(self, error: BaseException | None) -> None:
        for subscriber in self.subscribers:
            subscriber._finish(self.task_id, error)  # noqa: SLF001

    @property
    def subscribers(self) -> list[Subscription]:
        """The live subscribers, as strong references for the moment of use."""
        alive = [subscriber for ref in self._subscribers if (subscriber := ref()) is not None]
        if len(alive) != len(self._subscribers):
            self._subscribers = [weakref.ref(subscriber) for subscriber in alive]
        return alive

    def add(self, subscriber: Subscription) -> None:
        self._subscribers.append(weakref.ref(subscriber))
        if self.latest is not None:
            subscriber._push(self.latest)  # noqa: SLF001

    def remove(self, subscriber: Subscription) -> None:
        self._subscribers = [ref for ref in self._subscribers if ref() not in (None, subscriber)]
        if not self._subscribers and not self.runner.done():
            self.runner.cancel()
            self.hub._ended(self)  # noqa: SLF001


class Hub:
    """All watches of one session, and the batched refresh they share.

    It does no I/O of its own: ``fetch_one`` is one GET of a task (no retries: the poll loop
    does them), ``fetch_many`` the batch status query (a ``str``: the answer is no list).
    """

    def __init__(
        self,
        fetch_one: Callable[[str], Awaitable[Task]],
        fetch_many: Callable[[list[str]], Awaitable[list[Task] | str]],
        *,
        batch: bool | None,
        window: float,
        max_batch: int = 50,
        connections: int = 100,
    ) -> None:
        self._watches: dict[str, _Watch] = {}
        self._listeners: set[asyncio.Task[FinishedTask]] = set()
        self.forced = Bucket(FORCED_BURST, FORCED_RATE)  # polls forced by callbacks
        self._refresher = Refresher(
            fetch_one,
            fetch_many,
            batch=batch,
            window=window,
            watched=lambda: len(self._watches),
            max_batch=max_batch,
            connections=connections,
        )

    # -- following -------------------------------------------------------------------------

    def subscribe(
        self,
        task_ids: Iterable[str],
        policy: PollPolicy,
        *,
        merged: bool = False,
        first: Task | None = None,
    ) -> Subscription:
        subscription = Subscription(self, task_ids, policy, merged=merged)
        for task_id in subscription._task_ids:  # noqa: SLF001
            watch = self._watches.get(task_id)
            if watch is None:
                seed = first if first is not None and first.id == task_id else None
                watch = self._watches[task_id] = _Watch(self, task_id, policy, seed)
            watch.add(subscription)
        return subscription

    def listen(
        self,
        subscription: Subscription,
        deliver: Callable[[StateChange], object],
        *,
        on_end: Callable[[FollowEnd], object] | None = None,
    ) -> Listener:
        """Feed ``subscription`` to ``deliver`` (a function or coroutine function) in the
        background; ``on_end`` gets the :class:`FollowEnd` however the follow ends."""
        task_id = subscription._task_ids[0]  # noqa: SLF001

        async def forward() -> FinishedTask:
            last: Task | None = None
            error: BaseException | None = None
            try:
                async for change in subscription:
                    last = change.task
                    outcome = deliver(change)
                    if inspect.isawaitable(outcome):
                        await outcome
            except BaseException as exc:
                error = exc
                raise
            finally:
                subscription.close()
                if on_end is not None:
                    on_end(FollowEnd(task_id, last, error))
            assert last is not None  # a subscription ends only after a change with a video
            return FinishedTask.of(last)

        task = asyncio.get_running_loop().create_task(forward(), name="luma-listener")
        self._listeners.add(task)
        task.add_done_callback(self._listeners.discard)
        return Listener(task)

    def latest(self, task_id: str) -> Task | None:
        watch = self._watches.get(task_id)
        return None if watch is None or watch.latest is None else watch.latest.task

    def notify(self, task_id: str) -> bool:
        """A hint (a callback) that ``task_id`` changed: poll it now. True if it is watched."""
        watch = self._watches.get(task_id)
        if watch is None:
            return False
        watch.force()
        return True

    @property
    def watched(self) -> list[str]:
        return list(self._watches)

    def _leave(self, task_id: str, subscription: Subscription) -> None:
        watch = self._watches.get(task_id)
        if watch is not None:
            watch.remove(subscription)

    def _ended(self, watch: _Watch) -> None:
        if watch.forcer is not None:
            watch.forcer.cancel()
        if self._watches.get(watch.task_id) is watch:
            del self._watches[watch.task_id]

    async def aclose(self) -> None:
        """Cancel every watch, listener and pending refresh; wait until they are gone."""
        watches = list(self._watches.values())
        for watch in watches:
            watch.closing = True
            watch.runner.cancel()
        tasks: list[asyncio.Task[Any]] = [watch.runner for watch in watches]
        for listener in list(self._listeners):
            listener.cancel()
            tasks.append(listener)
        for refresh in self._refresher.running:
            refresh.cancel()
            tasks.append(refresh)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- refreshing (the batch coalescer lives in _refresh.py) ------------------------------

    @property
    def batch_supported(self) -> bool | None:
        return self._refresher.batch_supported

    @property
    def batch_requests(self) -> int:
        return self._refresher.batch_requests

    def fetch(self, task_id: str) -> Awaitable[Task]:
        """The task now: alone by GET, or folded into a batch refresh with other watches."""
        return self._refresher.fetch(task_id)  # awaited by the poll: no coroutine of its own
