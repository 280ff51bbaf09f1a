"""A gate of slots served first come, first served, each slot handed straight to the next in line.

Used by the session's budget (its cap on requests in flight) and by the hub's refresher (its
connections).  ``asyncio.Semaphore`` walks its waiters on every release, and with thousands of
polls queued that was a tenth of their own CPU; here a release gives its slot to the next live
waiter in O(1) (a cancelled waiter's future stays queued and is skipped when reached), and a
free slot is taken with no await at all.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Gate"]


class Gate:
    """``limit`` slots (``math.inf``: unbounded, only counted); ``held`` are taken now,
    ``peak`` the most ever held at once."""

    __slots__ = ("_queue", "held", "limit", "peak")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0
        self._queue: deque[asyncio.Future[None]] = deque()

    def take(self) -> bool:
        """Take a slot at once if one is free and nobody is queued for it; ``False``: nothing
        was taken, :meth:`wait` for one."""
        if self.held >= self.limit or self._queue:
            return False
        self.held += 1
        self.peak = max(self.peak, self.held)
        return True

    async def wait(self) -> None:
        """Queue for a slot; it is held on return (a release handed it on, counted)."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed the slot, then cancelled
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back: to the next live waiter in line, else to the gate."""
        queue = self._queue
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot goes to the next in line
                return
        self.held -= 1
