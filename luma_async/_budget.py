"""The session-wide request budget: a rate, a cap on requests in flight, and 429 back-pressure.

Every request of a session (submissions, polls, batch refreshes) takes a slot here first.
Slots are handed out by reservation: each request books the next free instant, so a burst of
pollers spreads out evenly instead of stampeding.  A 429 anywhere pauses everyone.
"""

from __future__ import annotations

import math

from luma_async import _clock
from luma_async._gate import Gate
from luma_async._policy import RequestBudget

__all__ = ["Budget"]

_MIN_FACTOR = 1 / 32


class Budget:
    def __init__(self, policy: RequestBudget | None = None) -> None:
        self.policy = policy or RequestBudget()
        self._next_free = 0.0
        #: The clock time until which a 429 pauses every request (in the past: not paused).
        self.paused_until = 0.0
        self._factor = 1.0  # share of max_rate allowed now; halved by each 429
        # The cap on requests in flight (unbounded: only counted), first come first served.
        cap = self.policy.max_connections
        self._cap = Gate(math.inf if cap is None else cap)
        self.throttled = 0  # 429s seen

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now."""
        return self._cap.held

    @property
    def peak_in_flight(self) -> int:
        """The most requests that held a slot at once."""
        return self._cap.peak

    @property
    def rate(self) -> float | None:
        """Requests per second allowed right now (``None``: unlimited)."""
        max_rate = self.policy.max_rate
        return None if max_rate is None else max_rate * self._factor

    def slow_down(self, retry_after: float | None) -> None:
        """A 429 was seen: pause every request of the session and halve the rate."""
        self.throttled += 1
        wait = self.policy.pause if retry_after is None else max(retry_after, 0.0)
        self.paused_until = max(self.paused_until, _clock.monotonic() + wait)
        self._factor = max(self._factor / 2, _MIN_FACTOR)

    async def _admit(self) -> None:
        while True:
            now = _clock.monotonic()
            rate = self.rate
            start = max(now, self.paused_until)
            if rate is not None:
                start = max(start, self._next_free)
                self._next_free = start + 1 / rate
            if start <= now:
                return
            await _clock.sleep(start - now)
            if self.paused_until <= _clock.monotonic():
                return

    def take(self) -> bool:
        """Take a slot at once when nothing may make it wait: no rate, no cap on requests in
        flight, no 429 pause (the default budget, and the common case: no await, and no clock
        read unless a 429 was ever seen).  ``False``: nothing was taken, :meth:`acquire` it.
        A slot taken either way is given back by :meth:`release`; :meth:`take_free` is the
        same for a budget whose only limit is the cap on requests in flight."""
        policy = self.policy
        if policy.max_rate is not None or policy.max_connections is not None:
            return False
        if self.paused_until and self.paused_until > _clock.monotonic():
            return False
        return self._cap.take()

    def take_free(self) -> bool:
        """Take a slot at once when the only thing to enforce is the cap on requests in flight
        and a slot is free with no one queued for it (no rate, no 429 pause): a poll already
        queued in the hub's gate, bounded alike, is not admitted twice by an await.
        ``False``: nothing was taken, :meth:`acquire` it; :meth:`release` gives it back."""
        policy = self.policy
        if policy.max_connections is None or policy.max_rate is not None:
            return False
        if self.paused_until and self.paused_until > _clock.monotonic():
            return False
        return self._cap.take()

    async def acquire(self) -> None:
        """Take a slot, waiting for the rate, the pause and the cap on requests in flight."""
        if self.policy.max_rate is not None or self.paused_until > _clock.monotonic():
            await self._admit()  # else nothing to wait for: the common case costs no await
        if not self._cap.take():
            await self._cap.wait()  # first come, first served; the slot is held on return

    def release(self) -> None:
        """Give back a slot taken by :meth:`take`, :meth:`take_free` or :meth:`acquire`: to the
        next request queued for one, else to the budget."""
        self._cap.release()

    def succeeded(self) -> None:
        if self._factor < 1.0:
            self._factor = min(1.0, self._factor * self.policy.recovery)
