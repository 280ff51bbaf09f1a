"""Policy objects: how hard to retry one request, and how to poll a task to its end."""

from __future__ import annotations

import attrs

from luma_async._errors import InputError
from luma_async._validators import bool_, non_negative, optional, positive, whole

__all__ = ["PollPolicy", "RequestBudget", "RetryPolicy"]


_SECONDS = positive("a positive number of seconds")
_OPTIONAL_SECONDS = optional(_SECONDS)
_COUNT = whole(1)
_OPTIONAL_COUNT = optional(_COUNT, what="a whole number of at least 1 or None")
_NOT_NEGATIVE = non_negative()
_BOOL = bool_()


@attrs.frozen
class PollPolicy:
    """How a task is followed to its end.

    The first wait is ``interval`` seconds; each later one is ``backoff`` times longer, up to
    ``max_interval``, plus up to ``jitter`` random seconds so that many pollers spread out.
    When the service gives ``estimate_wait_seconds`` (and ``use_estimate`` is on), the next
    poll is timed for just after the estimate instead, within the same bounds.  While the task
    is still ``pending`` (queued), waits are ``pending_factor`` times longer.  After ``timeout``
    seconds (``None``: never) :class:`PollTimeoutError` is raised.
    """

    interval: float = attrs.field(default=2.0, validator=_SECONDS)
    max_interval: float = attrs.field(default=15.0, validator=_SECONDS)
    backoff: float = attrs.field(default=1.5, validator=_SECONDS)
    jitter: float = attrs.field(default=0.5, validator=_NOT_NEGATIVE)
    timeout: float | None = attrs.field(default=900.0, validator=_OPTIONAL_SECONDS)
    use_estimate: bool = attrs.field(default=True, kw_only=True, validator=_BOOL)
    pending_factor: float = attrs.field(default=1.5, kw_only=True, validator=_SECONDS)

    def __attrs_post_init__(self) -> None:
        if self.max_interval < self.interval:
            raise InputError(
                f"max_interval ({self.max_interval}) must not be below interval ({self.interval})"
            )
        if self.backoff < 1:
            raise InputError(f"backoff must be 1 or more (waits never shrink), not {self.backoff}")


@attrs.frozen
class RetryPolicy:
    """How one request is retried on transient failures.

    Safe requests (GET) are retried on transport errors, 408, 429, 500, 502, 503 and 504: at
    most ``attempts`` tries within ``timeout`` seconds, waiting ``initial`` seconds and then
    exponentially longer (capped at ``max_wait``) plus up to ``jitter`` random seconds.  A
    ``Retry-After`` from the server beats the computed wait.  Paid POSTs are only retried when
    they provably did not reach the service (see :class:`SubmissionUncertainError`).
    """

    attempts: int = attrs.field(default=5, validator=_COUNT)
    initial: float = attrs.field(default=0.5, validator=_SECONDS)
    max_wait: float = attrs.field(default=20.0, validator=_SECONDS)
    timeout: float = attrs.field(default=60.0, validator=_SECONDS)
    jitter: float = attrs.field(default=1.0, kw_only=True, validator=_NOT_NEGATIVE)


@attrs.frozen
class RequestBudget:
    """A session-wide limit shared by every poller and submission.

    At most ``max_rate`` requests per second (``None``: no limit) and ``max_connections``
    requests in flight at once.  A 429 pauses the whole session for the server's
    ``Retry-After`` (else ``pause`` seconds) and halves the rate, which then recovers by
    ``recovery`` per successful request.
    """

    max_rate: float | None = attrs.field(default=None, validator=_OPTIONAL_SECONDS)
    max_connections: int | None = attrs.field(default=None, validator=_OPTIONAL_COUNT)
    pause: float = attrs.field(default=1.0, kw_only=True, validator=_SECONDS)
    recovery: float = attrs.field(default=1.05, kw_only=True, validator=_SECONDS)
