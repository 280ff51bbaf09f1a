"""The one tree of errors luma-async raises.

::

    LumaError
    ├── InputError (also ValueError)      rejected before any request was sent
    ├── TransportError                    could not talk to the service (no usable answer)
    ├── APIError                          the service answered with an error status
    │   ├── BadRequestError               400, 422
    │   ├── AuthenticationError           401: the caller's key
    │   │   └── UpstreamAuthenticationError   401 "Not authenticated" from upstream: the
    │   │                                     aggregator's own Luma account (key accepted)
    │   ├── PermissionDeniedError         403 (also gateway code quota_not_enough)
    │   ├── NotFoundError                 404 (also a 400 with gateway code task_not_exist)
    │   ├── RateLimitError                429, with .retry_after
    │   └── ServerError                   5xx
    ├── DecodeError                       the answer was not the JSON we can read
    │   └── WrongTaskError                the answer was for another task (retried first)
    ├── TaskFailedError                   the task reached ``failed`` (.task)
    ├── PollTimeoutError                  the task was not done by the deadline (.task)
    ├── SubmissionUncertainError          a paid POST may or may not have been created (.request)
    ├── DownloadError                     the video could not be saved whole (.url, .path)
    └── SessionClosedError (also RuntimeError)   the session is closed: used after aclose(),
                                                 or closed while a task was followed

Every class is defined here and re-exported from ``luma_async``; a test reads this drawing
and fails when a public error is missing from it.  The pure function that maps an error
answer onto the tree is in ``_error_map``; the scrubbing of the API key in ``_redact``.

Messages name the method, the path, the status and the service's own words; the API token is
never part of any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from pathlib import Path

    from luma_async._models import Task

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "DecodeError",
    "DownloadError",
    "InputError",
    "LumaError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollTimeoutError",
    "RateLimitError",
    "ServerError",
    "SessionClosedError",
    "SubmissionUncertainError",
    "TaskFailedError",
    "TransportError",
    "UpstreamAuthenticationError",
    "WrongTaskError",
    "is_json_list",
    "is_json_object",
]


class LumaError(Exception):
    """The base of every error luma-async raises."""


class InputError(LumaError, ValueError):
    """An argument was rejected before any request was sent; the message says what to fix."""


class TransportError(LumaError):
    """The service could not be reached, or the connection broke before a full answer.

    ``sent`` is ``False`` when the request provably never left (the connection could not be
    opened), ``True`` when it may have reached the service, ``None`` when unknown.
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", sent: bool | None = None
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.sent = sent


class APIError(LumaError):
    """The service answered with an error status.

    ``detail`` is the service's own explanation, ``code`` its machine code when it gave one,
    ``body`` the decoded JSON body (or the raw text when it was not JSON), ``retry_after`` the
    wait in seconds its ``Retry-After`` asked for (capped at 300), if any.
    """

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status: int,
        detail: str,
        code: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.retry_after = retry_after
        self.detail = detail
        self.code = code
        self.body = body
        self.headers: Mapping[str, str] = dict(headers or {})
        super().__init__(self._message())

    def _message(self) -> str:
        code = f" [{self.code}]" if self.code else ""
        return f"{self.method} {self.path} answered {self.status}{code}: {self.detail}"


class BadRequestError(APIError):
    """400 or 422: the service refused the request body."""


class AuthenticationError(APIError):
    """401: the API key is missing or wrong. Check LUMA_API_KEY or the api_key argument."""


class UpstreamAuthenticationError(AuthenticationError):
    """401 passed through from upstream (``Not authenticated``): the aggregator's own Luma
    account failed.  Your key was accepted; the service is broken until the aggregator fixes
    its account.  ``code`` is ``"upstream_not_authenticated"``."""


class PermissionDeniedError(APIError):
    """403: the key may not do this (for example, the account's quota is used up)."""


class NotFoundError(APIError):
    """404 (or a gateway's ``task_not_exist``): no such task on this service."""


class RateLimitError(APIError):
    """429: too many requests. ``retry_after`` is the server's wait hint in seconds, if any."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(retry_after=retry_after, **kwargs)


class ServerError(APIError):
    """5xx: the service or its upstream failed."""


class DecodeError(LumaError):
    """The answer had a success status but not a shape luma-async can read."""

    def __init__(self, message: str, *, body: Any = None) -> None:
        super().__init__(message)
        self.body = body


class WrongTaskError(DecodeError):
    """The service answered a request for ``asked`` with another task, ``answered``.

    A gateway bug or a cache; the answer is never used.  Retried like a passing failure.
    """

    def __init__(self, asked: str, answered: str, *, what: str) -> None:
        super().__init__(
            f"{what}: the service answered with task {answered} instead of {asked}; "
            "the answer was discarded"
        )
        self.asked = asked
        self.answered = answered


class TaskFailedError(LumaError):
    """The task reached the ``failed`` state. ``task`` is the last state seen."""

    def __init__(self, task: Task) -> None:
        self.task = task
        reason = f": {task.failure_reason}" if task.failure_reason else " (no reason given)"
        super().__init__(f"task {task.id} failed{reason}")


class PollTimeoutError(LumaError):
    """The task was not finished by the poll deadline. ``task`` is the last state seen.

    The task is still running on the service; follow it again later with the same id.
    """

    def __init__(self, task_id: str, task: Task | None, waited: float) -> None:
        self.task_id = task_id
        self.task = task
        self.waited = waited
        state = task.state if task is not None else "never seen"
        super().__init__(
            f"task {task_id} not finished after {waited:.1f}s (last state: {state}); "
            "it may still finish: poll it again later, or raise PollPolicy.timeout"
        )


class SubmissionUncertainError(LumaError):
    """A paid POST was sent and may have created a task, but no answer proves it either way.

    luma-async never re-sends such a request: doing so could bill the job twice.  ``request``
    describes what was sent; ``method`` and ``path`` where.  The cause is chained.

    ``status`` and ``answer`` are the status and raw body of the answer when the service did
    answer (a 2xx whose body could not be read: the task may well exist), and ``task_id`` the
    id of the task it may have created, when one could still be found in that answer.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        request: Any,
        status: int | None = None,
        answer: bytes | None = None,
        task_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.request = request
        self.status = status
        self.answer = answer
        self.task_id = task_id


class DownloadError(LumaError):
    """The video could not be saved whole: wrong length, a changed file, a bad redirect.

    ``url`` is the link without its query string (presigned links carry credentials),
    ``path`` the destination, ``received`` the bytes received, ``expected`` the size the
    server or the caller announced (``None`` when unknown).  Nothing is left at ``path``.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        path: Path,
        received: int = 0,
        expected: int | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.path = path
        self.received = received
        self.expected = expected


class SessionClosedError(LumaError, RuntimeError):
    """The session is closed: it was used after ``aclose()`` (or its ``async with`` block),
    or it was closed while a task was being followed.  Create a new :class:`LumaSession`.

    Also a ``RuntimeError``, which is what a closed session raised before it had a class.
    """


def is_json_object(value: object) -> TypeGuard[dict[str, Any]]:
    """Whether ``value`` is a decoded JSON object (its keys are strings, its values any JSON)."""
    return isinstance(value, dict)


def is_json_list(value: object) -> TypeGuard[list[Any]]:
    """Whether ``value`` is a decoded JSON array (typed for mypy and pyright)."""
    return isinstance(value, list)
