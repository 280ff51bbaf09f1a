"""The one place where luma-async waits.

Every pause of the library (retry backoff, poll intervals, budget throttling) and every
reading of elapsed time goes through the active clock of this module.  In production that is
:class:`RealClock`.  Tests and users' own test suites install a :class:`VirtualClock` with
:func:`luma_async.testing.virtual_time`, which makes every wait return at once while time
still appears to pass: the emulator reads the same clock, so a task that "takes 30 seconds"
finishes after 30 virtual seconds of polling and no real ones.

A wait can be cut short by a :class:`Wakeup` (a callback arriving, a listener asking for a
refresh); ``sleep`` then returns ``True``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol

__all__ = [
    "Clock",
    "RealClock",
    "VirtualClock",
    "Wakeup",
    "get_clock",
    "monotonic",
    "set_clock",
    "sleep",
]


class Wakeup:
    """Cuts one pending sleep short.

    ``wake()`` ends the sleep that is waiting on it now, or, when none is waiting, the next one
    at once (a wake-up is never lost between two sleeps).
    """

    __slots__ = ("_future", "_pending", "_timer")

    def __init__(self) -> None:
        self._future: asyncio.Future[bool] | None = None
        self._pending = False
        self._timer: asyncio.TimerHandle | None = None  # of a sleep by :func:`sleep`

    def wake(self) -> None:
        future = self._future
        if future is not None and not future.done():
            future.set_result(True)
            self.disarm()
        else:
            self._pending = True

    def disarm(self) -> None:
        """Cancel the timer of the sleep :func:`sleep` started on this wakeup, if any: for
        one whose waiter was cancelled (the timer would otherwise stay until it is due)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _take_pending(self) -> bool:
        pending, self._pending = self._pending, False
        return pending

    def _attach(self, future: asyncio.Future[bool]) -> None:
        self._future = future

    def _detach(self) -> None:
        self._future = None


class Clock(Protocol):
    """What the library needs of time: a monotonic reading and an interruptible sleep."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float, wakeup: Wakeup | None = None) -> bool:
        """Wait ``seconds``; return ``True`` if ``wakeup`` ended the wait early."""
        ...


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


class RealClock:
    """Wall-clock waiting on the running event loop."""

    def monotonic(self) -> float:
        return time.monotonic()

    def arm(
        self, loop: asyncio.AbstractEventLoop, seconds: float, future: asyncio.Future[bool]
    ) -> asyncio.TimerHandle | None:
        """Resolve ``future`` with ``False`` in ``seconds`` (unless it is done by then)."""
        return loop.call_later(seconds, _resolve, future, False)  # noqa: FBT003

    async def sleep(self, seconds: float, wakeup: Wakeup | None = None) -> bool:
        if wakeup is not None and wakeup._take_pending():  # noqa: SLF001
            return True
        if wakeup is None:
            await asyncio.sleep(max(seconds, 0.0))
            return False
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        handle = loop.call_later(max(seconds, 0.0), _resolve, future, False)  # noqa: FBT003
        wakeup._attach(future)  # noqa: SLF001
        try:
            return await future
        finally:
            handle.cancel()
            wakeup._detach()  # noqa: SLF001


class VirtualClock:
    """Simulated time: sleeps end as soon as the event loop has nothing else to do.

    Like trio's ``MockClock`` with ``autojump_threshold=0``: when every coroutine is blocked,
    the clock jumps to the earliest pending wake-up time.  Work in flight on loopback sockets
    keeps the loop busy, so an emulator answering in the same process is never overtaken.
    ``advance()`` moves time by hand.
    """

    def __init__(self, start: float = 1_000.0, *, settle_rounds: int = 3) -> None:
        self._now = start
        self._settle_rounds = settle_rounds
        self._heap: list[tuple[float, int, asyncio.Future[bool]]] = []
        self._counter = itertools.count()
        self._drivers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by hand and end the sleeps that are due."""
        self._now += max(seconds, 0.0)
        self._fire_due()

    def arm(
        self, loop: asyncio.AbstractEventLoop, seconds: float, future: asyncio.Future[bool]
    ) -> asyncio.TimerHandle | None:
        """Resolve ``future`` with ``False`` when virtual time reaches ``seconds`` from now."""
        heapq.heappush(self._heap, (self._now + seconds, next(self._counter), future))
        self._ensure_driver(loop)
        return None  # a future done otherwise is dropped from the heap when reached

    async def sleep(self, seconds: float, wakeup: Wakeup | None = None) -> bool:
        if wakeup is not None and wakeup._take_pending():  # noqa: SLF001
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        heapq.heappush(self._heap, (self._now + max(seconds, 0.0), next(self._counter), future))
        self._ensure_driver(loop)
        if wakeup is not None:
            wakeup._attach(future)  # noqa: SLF001
        try:
            return await future
        finally:
            if not future.done():
                future.cancel()
            if wakeup is not None:
                wakeup._detach()  # noqa: SLF001

    def _fire_due(self) -> None:
        heap = self._heap
        while heap and (heap[0][2].done() or heap[0][0] <= self._now):
            _resolve(heapq.heappop(heap)[2], False)  # noqa: FBT003

    def _ensure_driver(self, loop: asyncio.AbstractEventLoop) -> None:
        driver = self._drivers.get(loop)
        if driver is None or driver.done():
            self._drivers[loop] = loop.create_task(self._drive(loop), name="luma-virtual-clock")

    async def _drive(self, loop: asyncio.AbstractEventLoop) -> None:
        ready = getattr(loop, "_ready", None)  # the loop's run queue, when it exposes one
        idle = 0
        try:
            while True:
                heap = self._heap
                while heap and heap[0][2].done():
                    heapq.heappop(heap)
                if not heap:
                    return
                if ready is None:  # pragma: no cover - only on loops without a run queue
                    await asyncio.sleep(0.0005)
                    idle = self._settle_rounds
                else:
                    await asyncio.sleep(0)
                    idle = idle + 1 if len(ready) == 0 else 0
                if idle >= self._settle_rounds:
                    idle = 0
                    self._now = max(self._now, heap[0][0])
                    self._fire_due()
        finally:
            self._drivers.pop(loop, None)


_clock: Clock = RealClock()


async def wait(wakeup: Wakeup) -> None:
    """Wait for ``wakeup`` with no time limit (no timer, so virtual time never jumps for it)."""
    if wakeup._take_pending():  # noqa: SLF001
        return
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    wakeup._attach(future)  # noqa: SLF001
    try:
        await future
    finally:
        wakeup._detach()  # noqa: SLF001


def get_clock() -> Clock:
    return _clock


def set_clock(clock: Clock) -> Clock:
    """Install ``clock`` for every later wait; returns the one it replaces."""
    global _clock
    previous, _clock = _clock, clock
    return previous


def monotonic() -> float:
    return _clock.monotonic()


def sleep(seconds: float, wakeup: Wakeup | None = None) -> Awaitable[bool]:
    """Wait ``seconds`` on the active clock; ``True`` if ``wakeup`` ended the wait early.

    With a ``wakeup``, on the package's own clocks, the wait is a bare future with a timer
    (no coroutine: thousands of followed tasks sleep at once, and a frame each adds up): a
    ``wake()`` resolves it and cancels the timer; a waiter that is cancelled instead calls
    ``wakeup.disarm()``.
    """
    clock = _clock
    if wakeup is None or not isinstance(clock, (RealClock, VirtualClock)):
        return clock.sleep(seconds, wakeup)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()
    if wakeup._take_pending():  # noqa: SLF001
        future.set_result(True)
        return future
    wakeup.disarm()
    wakeup._future = future  # noqa: SLF001
    wakeup._timer = clock.arm(loop, max(seconds, 0.0), future)  # noqa: SLF001
    return future
