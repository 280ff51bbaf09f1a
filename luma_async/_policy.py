"""Policy objects: how hard to retry one request, and how to poll a task to its end."""

from __future__ import annotations

import math

import attrs

from luma_async._errors import InputError

__all__ = ["PollPolicy", "RequestBudget", "RetryPolicy"]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InputError(f"{attribute.name} must be a positive number of seconds, not {value!r}")


def _at_least_one(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{attribute.name} must be a whole number of at least 1, not {value!r}")


def _not_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InputError(f"{attribute.name} must be zero or a positive number, not {value!r}")


def _bool(_: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise InputError(f"{attribute.name} must be True or False, not {value!r}")


def _optional_positive(
    instance: object, attribute: attrs.Attribute[float], value: float | None
) -> None:
    if value is not None:
        _positive(instance, attribute, value)


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

    interval: float = attrs.field(default=2.0, validator=_positive)
    max_interval: float = attrs.field(default=15.0, validator=_positive)
    backoff: float = attrs.field(default=1.5, validator=_positive)
    jitter: float = attrs.field(default=0.5, validator=_not_negative)
    timeout: float | None = attrs.field(default=900.0, validator=_optional_positive)
    use_estimate: bool = attrs.field(default=True, kw_only=True, validator=_bool)
    pending_factor: float = attrs.field(default=1.5, kw_only=True, validator=_positive)

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

    attempts: int = attrs.field(default=5, validator=_at_least_one)
    initial: float = attrs.field(default=0.5, validator=_positive)
    max_wait: float = attrs.field(default=20.0, validator=_positive)
    timeout: float = attrs.field(default=60.0, validator=_positive)
    jitter: float = attrs.field(default=1.0, kw_only=True, validator=_not_negative)


def _optional_count(_: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError(
            f"{attribute.name} must be a whole number of at least 1 or None, not {value!r}"
        )


@attrs.frozen
class RequestBudget:
    """A session-wide limit shared by every poller and submission.

    At most ``max_rate`` requests per second (``None``: no limit) and ``max_connections``
    requests in flight at once.  A 429 pauses the whole session for the server's
    ``Retry-After`` (else ``pause`` seconds) and halves the rate, which then recovers by
    ``recovery`` per successful request.
    """

    max_rate: float | None = attrs.field(default=None, validator=_optional_positive)
    max_connections: int | None = attrs.field(default=None, validator=_optional_count)
    pause: float = attrs.field(default=1.0, kw_only=True, validator=_positive)
    recovery: float = attrs.field(default=1.05, kw_only=True, validator=_positive)
