"""The token buckets that bound polls forced by callbacks (issue 11.5).

The hook URL is reachable by whoever learns it: each task gets a bucket of forced polls
(:data:`TASK_FORCED_BURST`, refilled at :data:`TASK_FORCED_RATE` a second) and the session one
for all its tasks together (:data:`FORCED_BURST`, :data:`FORCED_RATE`).
"""

from __future__ import annotations

from luma_async import _clock

__all__ = ["FORCED_BURST", "FORCED_RATE", "TASK_FORCED_BURST", "TASK_FORCED_RATE", "Bucket"]

#: Polls of one task that callbacks may force at once, and per second after that.
TASK_FORCED_BURST = 8
TASK_FORCED_RATE = 2.0
#: Polls that callbacks may force at once over all tasks of a session, and per second.
FORCED_BURST = 100
FORCED_RATE = 50.0


class Bucket:
    """A token bucket on the library's clock: ``burst`` at once, ``rate`` per second after."""

    __slots__ = ("_at", "_burst", "_rate", "_tokens")

    def __init__(self, burst: int, rate: float) -> None:
        self._burst = float(burst)
        self._rate = rate
        self._tokens = float(burst)
        self._at = _clock.monotonic()

    def ready(self) -> bool:
        now = _clock.monotonic()
        # max(): a clock swapped for another (virtual time in tests) may read lower
        self._tokens = min(self._burst, self._tokens + max(now - self._at, 0.0) * self._rate)
        self._at = now
        return self._tokens >= 1 - 1e-9  # float sums of refills land just below 1

    def take(self) -> None:
        self._tokens -= 1

    def delay(self) -> float:
        """Seconds until the next token (0 when one is there)."""
        return 0.0 if self.ready() else max((1 - self._tokens) / self._rate, 1e-3)
