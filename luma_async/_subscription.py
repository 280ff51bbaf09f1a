"""What following hands the follower: a :class:`Subscription`, an async iterator of changes.

The hub's watch of a task pushes each change to its subscriptions (``_push``) and tells them
when it ended (``_finish``); a subscription keeps its own deadline and leaves the hub when it
closes (see :mod:`luma_async._watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from luma_async import _clock
from luma_async._errors import PollTimeoutError, TaskFailedError

if TYPE_CHECKING:
    from luma_async._models import StateChange
    from luma_async._policy import PollPolicy
    from luma_async._watch import Hub

__all__ = ["Subscription"]


class Subscription:
    """An async iterator over the changes of one task (or, merged, of several).

    Cancelling a pending ``__anext__`` ends the subscription. Single-task subscriptions end
    after the change that brings the video, raise :class:`TaskFailedError` after yielding
    ``failed``, and raise :class:`PollTimeoutError` at their own deadline. Merged ones
    (``watch_many``) yield failures and go on, and end when every task has ended.

    Returned by :meth:`LumaSession.poll` and :meth:`LumaSession.watch_many`; not created
    directly.
    """

    # one per follower: slots, not a dict (a weakref slot: the watch refers to it weakly)
    __slots__ = (
        "__weakref__",
        "_closed",
        "_end",
        "_error",
        "_hub",
        "_items",
        "_merged",
        "_open",
        "_started",
        "_task_ids",
        "_wakeup",
    )

    def __init__(
        self, hub: Hub, task_ids: Iterable[str], policy: PollPolicy, *, merged: bool
    ) -> None:
        self._hub = hub
        self._task_ids = list(dict.fromkeys(task_ids))
        # a set for many tasks; one task's list is a third of an empty set's size
        self._open: set[str] | list[str] = (
            set(self._task_ids) if len(self._task_ids) > 1 else list(self._task_ids)
        )
        self._merged = merged
        self._items: list[StateChange] = []  # a few at most; lighter than a deque
        self._error: BaseException | None = None
        self._wakeup = _clock.Wakeup()
        self._closed = False
        self._started = _clock.monotonic()
        self._end = None if policy.timeout is None else self._started + policy.timeout

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StateChange:
        while True:
            if self._items:
                return self._items.pop(0)
            if self._error is not None:
                error, self._error = self._error, None
                self.close()
                raise error
            if self._closed or not self._open:
                self.close()
                raise StopAsyncIteration
            try:
                if self._end is None:
                    await _clock.wait(self._wakeup)
                    continue
                remaining = self._end - _clock.monotonic()
                if remaining <= 0:
                    task_id = next(t for t in self._task_ids if t in self._open)
                    last = self._hub.latest(task_id)
                    self.close()
                    raise PollTimeoutError(task_id, last, _clock.monotonic() - self._started)
                await _clock.sleep(remaining, self._wakeup)
            except asyncio.CancelledError:
                self._wakeup.disarm()  # the deadline's timer
                self.close()  # a cancelled follower follows no more
                raise

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop following; a watch nobody follows any more is cancelled."""
        if self._closed:
            return
        self._closed = True
        for task_id in self._task_ids:
            self._hub._leave(task_id, self)  # noqa: SLF001

    def __del__(self) -> None:
        if not self._closed:
            with contextlib.suppress(RuntimeError):  # the loop may be gone already
                self.close()

    # called by the watch
    def _push(self, change: StateChange) -> None:
        self._items.append(change)
        self._wakeup.wake()

    def _finish(self, task_id: str, error: BaseException | None) -> None:
        if task_id in self._open:
            self._open.remove(task_id)
        if error is not None and not (self._merged and isinstance(error, TaskFailedError)):
            self._error = self._error or error
        self._wakeup.wake()
