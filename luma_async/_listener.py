"""What :meth:`LumaSession.subscribe` hands out: a :class:`Listener`, and the :class:`FollowEnd`
its queue or callback receives last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import attrs

from luma_async._models import FinishedTask, Task

__all__ = ["FollowEnd", "Listener"]


@attrs.frozen
class FollowEnd:
    """The last item a :meth:`LumaSession.subscribe` queue receives: the follow has ended.

    ``task`` is the last state seen (``None`` if none was).  ``error`` says how it ended:
    ``None`` when the video exists; else :class:`TaskFailedError`, :class:`PollTimeoutError`,
    another :class:`LumaError`, an error raised while delivering, or
    :class:`asyncio.CancelledError` when the listener was cancelled.
    """

    task_id: str
    task: Task | None
    error: BaseException | None

    @property
    def ok(self) -> bool:
        """The task finished: its video exists."""
        return self.error is None


class Listener:
    """A subscription that feeds an ``asyncio.Queue`` or a callback in the background.

    ``await listener`` (or ``await listener.wait()``) gives the :class:`FinishedTask`, or
    raises what following it raised; ``cancel()`` stops it and ``done()`` says whether it
    has ended, as on :class:`asyncio.Task`.

    Returned by :meth:`LumaSession.subscribe`; not created directly.
    """

    def __init__(self, task: asyncio.Task[FinishedTask]) -> None:
        self._task = task

    def cancel(self) -> None:
        """Stop following (a queue then receives a :class:`FollowEnd` with the cancel)."""
        self._task.cancel()

    def done(self) -> bool:
        """True once the follow has ended (finished, failed, timed out or cancelled)."""
        return self._task.done()

    async def wait(self) -> FinishedTask:
        """The finished task; raises what following it raised."""
        return await self._task

    def __await__(self) -> Generator[Any, None, FinishedTask]:
        return self._task.__await__()
