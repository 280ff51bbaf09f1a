"""Retry decisions, and the one driver that runs them (no I/O, no aiohttp).

The decisions are pure functions of an error: :func:`is_transient` (worth trying again),
:func:`server_hint` (the wait the server asked for), :func:`backoff` (the computed wait),
:func:`may_resend` and :func:`may_have_landed` (the two questions a paid POST asks).

A :class:`Schedule` says how one kind of call is retried: which errors call for another
attempt, how long to wait after attempt *n*, when to give up.  :meth:`Schedule.from_policy`
builds the schedule of an API request from a :class:`RetryPolicy`; downloads and the poll
loop build theirs from the same fields.  :meth:`Schedule.tenacity` is the only place
tenacity objects are built (stamina's ``from_params``).

There is one driver, in two steps: :func:`after_failure` judges the failure of an attempt
made outside tenacity (raise it, or say how long to pause) and :func:`retry_after` pauses,
then runs tenacity's loop for the attempts that follow.  Most calls succeed at the first
try, and building and driving a retry loop cost about a fifth of a loopback GET, so the
first attempt is always made by the caller itself, awaited directly, and only a failure
worth retrying builds the loop (tenacity's attempt 1 is the call's attempt 2: the
schedule's functions always see the call's own numbers).  :func:`call` does this for
requests and downloads; the API client's first attempt and a poll's look
(:meth:`~luma_async._poll.Poller.poll`) are their own coroutines, which call the two steps
themselves, one coroutine less per request or look.  A poll that answers goes through no
tenacity object, so thousands of watches keep no retry loop alive between polls; a poll
that fails enters tenacity until one answers.  Nothing is replayed into tenacity and no call
state is built by hand.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import attrs
import tenacity

from luma_async import _clock
from luma_async._error_map import header, parse_retry_after
from luma_async._errors import (
    APIError,
    RateLimitError,
    ServerError,
    TransportError,
    WrongTaskError,
)
from luma_async._policy import RetryPolicy
from luma_async._redact import Redactor

__all__ = [
    "Schedule",
    "after_failure",
    "backoff",
    "call",
    "is_transient",
    "may_have_landed",
    "may_resend",
    "retry_after",
    "server_hint",
]

log = logging.getLogger("luma_async")
T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


# -- the decisions ---------------------------------------------------------------------------


def is_transient(exc: BaseException) -> bool:
    """Worth trying again later: transport trouble, 408, 429, a passing 5xx, or an answer
    for another task (a gateway bug or a cache)."""
    if isinstance(exc, (TransportError, WrongTaskError)):
        return True
    return isinstance(exc, APIError) and exc.status in RETRY_STATUSES


def server_hint(exc: BaseException | None) -> float | None:
    """The wait the server asked for (``Retry-After``), when the error carries one."""
    if isinstance(exc, APIError):
        if exc.retry_after is not None:
            return exc.retry_after
        return parse_retry_after(header(exc.headers, "Retry-After"))
    return None


def backoff(policy: RetryPolicy, attempt: int, error: BaseException | None) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): exponential with jitter, and a
    server's ``Retry-After`` on ``error`` wins when it is longer."""
    computed = min(policy.initial * 2.0 ** max(attempt - 1, 0), policy.max_wait)
    computed += random.uniform(0, policy.jitter)  # noqa: S311 - jitter, not crypto
    hint = server_hint(error)
    return computed if hint is None else max(hint, min(computed, policy.initial))


def may_resend(exc: BaseException) -> bool:
    """A paid POST may be sent again only if this failure proves it was not received:
    the connection could not be opened, or the service refused it (429)."""
    if isinstance(exc, TransportError):
        return exc.sent is False
    return isinstance(exc, RateLimitError)


def may_have_landed(exc: BaseException) -> bool:
    """After this failure a paid POST may have created its task (its outcome is uncertain):
    the connection broke after sending, or the service answered 5xx or 408."""
    if isinstance(exc, TransportError):
        return exc.sent is not False
    return isinstance(exc, ServerError) or (isinstance(exc, APIError) and exc.status == 408)


def deadline_wait(policy: RetryPolicy, end: float) -> Callable[[int, BaseException | None], float]:
    """:func:`backoff` with no wait ending past ``end`` (on the library's clock).

    A computed wait is cut short; when the server asks for longer than the time left, the
    error is raised at once (its ``retry_after`` says how long the server asked for) instead
    of sleeping past the policy's timeout.
    """

    def wait(attempt: int, error: BaseException | None) -> float:
        seconds = backoff(policy, attempt, error)
        left = end - _clock.monotonic()
        if seconds <= left:
            return seconds
        hint = server_hint(error)
        if error is not None and hint is not None and hint > left:
            raise error
        return max(left, 0.0)

    return wait


# -- the driver ------------------------------------------------------------------------------


def _quiet(_attempt: int, _error: BaseException | None, _wait: float) -> None:
    return None


@attrs.frozen
class Schedule:
    """How one kind of call is retried; every function sees the call's own attempt numbers.

    ``retry_on`` judges a failure; ``wait(n, error)`` is the pause after attempt ``n``;
    ``give_up(n)`` is true when no attempt may follow attempt ``n``; ``exhausted(error,
    result)`` is called instead of re-raising when ``give_up`` stopped a call that still
    wanted another attempt (it raises; ``result`` is ``None`` here, a poll loop passes the
    task it gave up on); ``on_retry(n, error, wait)`` logs.
    """

    retry_on: Callable[[BaseException], bool]
    wait: Callable[[int, BaseException | None], float]
    give_up: Callable[[int], bool]
    exhausted: Callable[[BaseException | None, Any], NoReturn] | None = None
    on_retry: Callable[[int, BaseException | None, float], None] = _quiet
    sleep: Callable[[float], Awaitable[Any]] = _clock.sleep

    @classmethod
    def from_policy(
        cls,
        policy: RetryPolicy,
        *,
        retry_on: Callable[[BaseException], bool],
        attempts: int | None = None,
        end: float,
        label: str = "",
        redact: Redactor | None = None,
    ) -> Schedule:
        """The schedule of one API request under ``policy``: at most ``attempts`` (the
        policy's by default), no wait ending past ``end`` (its start + ``policy.timeout``)."""
        limit = policy.attempts if attempts is None else attempts

        def give_up(attempt: int) -> bool:
            return attempt >= limit or _clock.monotonic() >= end

        def on_retry(attempt: int, error: BaseException | None, wait: float) -> None:
            why = str(error) if redact is None else redact.text(str(error))
            log.info("%s: %s; retry %d in %.2fs", label, why, attempt, wait)

        return cls(
            retry_on=retry_on,
            wait=deadline_wait(policy, end),
            give_up=give_up,
            on_retry=on_retry,
        )

    def tenacity(self, *, first: int = 1) -> tenacity.AsyncRetrying:
        """The tenacity loop of this schedule's failures, whose attempt 1 is the call's
        attempt ``first``; it returns the first result.

        The only place luma-async builds tenacity objects.
        """
        offset = first - 1
        exhausted = self.exhausted

        def stop(state: tenacity.RetryCallState) -> bool:
            return self.give_up(state.attempt_number + offset)

        def wait(state: tenacity.RetryCallState) -> float:
            return self.wait(state.attempt_number + offset, _error(state))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            action = state.next_action
            self.on_retry(
                state.attempt_number + offset,
                _error(state),
                action.sleep if action is not None else 0.0,
            )

        def give_up_with(state: tenacity.RetryCallState) -> NoReturn:
            assert exhausted is not None
            exhausted(_error(state), None)

        return tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(self.retry_on),
            stop=stop,
            wait=wait,
            sleep=self.sleep,
            reraise=True,
            before_sleep=before_sleep,
            retry_error_callback=None if exhausted is None else give_up_with,
        )

    def call(self, fn: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """``fn()``, retried as this schedule says (see :func:`call`)."""
        return call(fn, self)


async def call(fn: Callable[[], Awaitable[T]], schedule: Schedule | Callable[[], Schedule]) -> T:
    """``fn()``, retried as ``schedule`` says; its first attempt runs outside tenacity.

    ``schedule`` may be a function making it: it is then made only when the first attempt
    failed (most requests succeed at once, and a schedule costs a few closures).
    """
    try:
        return await fn()
    except Exception as exc:  # noqa: BLE001 - after_failure re-raises what it does not retry
        judged, pause = after_failure(exc, schedule, 1)
    return await retry_after(fn, judged, pause, 1)


def after_failure(
    exc: Exception, schedule: Schedule | Callable[[], Schedule], attempt: int
) -> tuple[Schedule, float]:
    """Judge ``exc``, the failure of attempt ``attempt`` made outside tenacity: raise it
    (or what the schedule's ``exhausted`` raises) when no attempt may follow, else return the
    schedule and the pause before the next attempt (:func:`retry_after` makes it).

    Called from the ``except`` clause that caught ``exc`` (``schedule`` may be a function
    making it, called only now); :func:`call`, the API client's first attempt and a poll's
    look use it.
    """
    if not isinstance(schedule, Schedule):
        schedule = schedule()
    if not schedule.retry_on(exc):
        raise exc
    if schedule.give_up(attempt):
        if schedule.exhausted is not None:
            schedule.exhausted(exc, None)
        raise exc
    pause = schedule.wait(attempt, exc)  # may raise: a Retry-After past the deadline
    schedule.on_retry(attempt, exc, pause)
    return schedule, pause


async def retry_after(
    fn: Callable[[], Awaitable[T]], schedule: Schedule, pause: float, attempt: int
) -> T:
    """The attempts after failed attempt ``attempt``: ``pause``, then tenacity's loop (its
    attempt 1 is the call's ``attempt + 1``) up to the first result."""
    await schedule.sleep(pause)
    answer: T = await schedule.tenacity(first=attempt + 1)(fn)
    return answer


def _error(state: tenacity.RetryCallState) -> BaseException | None:
    outcome = state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None
