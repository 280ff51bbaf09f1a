"""The one tree of errors luma-async raises, and the pure function that maps answers onto it.

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
and fails when a public error is missing from it.

Messages name the method, the path, the status and the service's own words; the API token is
never part of any of them.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
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
    "error_from_response",
    "header",
    "is_json_list",
    "parse_retry_after",
]

_MAX_DETAIL = 300


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


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}

_BY_CODE: dict[str, type[APIError]] = {
    "task_not_exist": NotFoundError,
    "task_origin_not_exist": NotFoundError,  # extend of an unknown parent
    "quota_not_enough": PermissionDeniedError,
    "insufficient_user_quota": PermissionDeniedError,  # one-api
    "fail_to_fetch_task": ServerError,  # the upstream failed
    "upstream_not_authenticated": UpstreamAuthenticationError,
}
#: What the Go proxy passes through when its own upstream session (cookie) expired.
_UPSTREAM_UNAUTHENTICATED = "not authenticated"

_MAX_RETRY_AFTER = 300.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped at 300."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
        seconds = (when - current).total_seconds()
    if seconds != seconds:  # NaN  # noqa: PLR0124
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


_MIN_SCRUBBED = 8  # a shorter "key" is a test stub; hunting it in every text would mangle words


class Redactor:
    """Removes one secret from whatever leaves the library, in every form a server may echo.

    The forms: the key itself, JSON-escaped (``\\u0073k-...``, any mix of escaped and plain
    characters) and URL-encoded (``%73k%2D...``), in raw bytes, decoded text, JSON values,
    headers and exceptions (message, ``detail``, ``body``, ``headers``, ``answer``, along
    the chain of causes).  Each occurrence becomes ``***``.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._raw = secret.encode()
        self._active = len(secret) >= _MIN_SCRUBBED
        pattern = "".join(_char_forms(char) for char in secret)
        self._text = re.compile(pattern)
        self._bytes = re.compile(pattern.encode())

    def bytes(self, raw: bytes) -> bytes:
        if not self._active:
            return raw.replace(self._raw, b"***") if self._raw and self._raw in raw else raw
        if b"%" in raw or b"\\" in raw:
            return self._bytes.sub(b"***", raw)
        return raw.replace(self._raw, b"***") if self._raw in raw else raw

    def text(self, text: str) -> str:
        if not self._active:
            return text
        if "%" in text or "\\" in text:
            return self._text.sub("***", text)
        return text.replace(self._secret, "***") if self._secret in text else text

    def value(self, value: Any) -> Any:
        """A decoded JSON value (or any str/bytes), with the secret removed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.bytes(value)
        if _is_dict(value):
            return {self.text(key): self.value(item) for key, item in value.items()}
        if is_json_list(value):
            return [self.value(item) for item in value]
        return value

    def error(self, exc: BaseException) -> None:
        """Scrub ``exc`` and every exception chained to it, in place."""
        if not self._active:
            return
        seen: set[int] = set()
        link: BaseException | None = exc
        while link is not None and id(link) not in seen:
            seen.add(id(link))
            with contextlib.suppress(AttributeError, TypeError):  # an odd foreign exception
                link.args = tuple(self.value(arg) for arg in link.args)
            if isinstance(link, LumaError):
                for name in ("detail", "code", "body", "answer"):
                    if hasattr(link, name):
                        setattr(link, name, self.value(getattr(link, name)))
                if isinstance(link, APIError):
                    link.headers = {self.text(k): self.text(v) for k, v in link.headers.items()}
            link = link.__cause__ or link.__context__


def _hex_digits(number: int, width: int) -> str:
    digits = f"{number:0{width}x}"
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char_forms(char: str) -> str:
    """A regex for one character of the secret: as is, JSON-escaped or percent-encoded."""
    forms = [re.escape(char), "".join("%" + _hex_digits(b, 2) for b in char.encode())]
    if ord(char) < 0x10000:
        forms.append(r"\\u" + _hex_digits(ord(char), 4))
    if char == "/":
        forms.append(r"\\/")
    return "(?:" + "|".join(forms) + ")"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def _is_dict(value: object) -> TypeGuard[dict[str, Any]]:
    """Whether ``value`` is a decoded JSON object (its keys are strings, its values any JSON)."""
    return isinstance(value, dict)


def is_json_list(value: object) -> TypeGuard[list[Any]]:
    """Whether ``value`` is a decoded JSON array (typed for mypy and pyright)."""
    return isinstance(value, list)


def _describe(body: Any) -> tuple[str | None, str | None]:
    """(detail, code) from any of the three error-body families, or (None, None)."""
    if is_json_list(body) and len(body) == 1:
        body = body[0]
    if not _is_dict(body):
        return None, None
    detail: Any = body.get("detail")
    code: Any = body.get("code")
    if _is_dict(detail):
        code = detail.get("code", code)
        detail = detail.get("reason") or detail.get("message") or detail.get("msg")
    elif is_json_list(detail):  # FastAPI-style validation errors
        detail = "; ".join(
            str(item.get("msg", item)) if _is_dict(item) else str(item) for item in detail
        )
    error: Any = body.get("error")
    if detail is None and _is_dict(error):
        detail = error.get("message")
        code = code if code is not None else error.get("code") or error.get("type")
    elif detail is None and isinstance(error, str):
        detail = error
    if detail is None:
        detail = body.get("message") or body.get("msg")
    # blank once white space is folded ("\r", "  "): no detail, so the fallback says so
    text = None if detail is None else _clip(str(detail)) or None
    code_text = None if code is None else _clip(str(code)) or None
    return text, code_text


def decode_error_body(raw: bytes, content_type: str = "") -> Any:
    """The error body as JSON when it is JSON, else as text (HTML pages, empty bodies)."""
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) or "json" in content_type:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
        except (ValueError, RecursionError):  # a deeply nested body must not escape as a crash
            return text
        try:  # the Go proxy appends its own document to the upstream's: the first is the cause
            first, _ = json.JSONDecoder().raw_decode(stripped)
        except (ValueError, RecursionError):
            return text
        return first
    return text


def error_from_response(
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: Any,
) -> APIError:
    """Map an error answer onto the tree. Pure: no I/O, no clock but ``Retry-After`` dates.

    ``body`` is what :func:`decode_error_body` made of the raw bytes.
    """
    detail, code = _describe(body)
    if (
        status == 401
        and code is None
        and detail is not None
        and detail.strip().lower() == _UPSTREAM_UNAUTHENTICATED
    ):
        code = "upstream_not_authenticated"
        detail = (
            f"{detail} (passed through from upstream): the aggregator's own Luma account "
            "failed; your API key was accepted. Tell the aggregator, or try again later"
        )
    if detail is None:
        if isinstance(body, str) and body.strip():
            kind = "an HTML page" if "<" in body[:200] else "a non-JSON body"
            detail = f"{kind}: {_clip(_strip_tags(body))}"
        else:
            detail = "no details in the answer"
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    kwargs: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "detail": detail,
        "code": code,
        "body": body,
        "headers": headers,
        "retry_after": parse_retry_after(header(headers, "Retry-After")),
    }
    return cls(**kwargs)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name (a plain dict of headers included)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def _strip_tags(html: str) -> str:
    out: list[str] = []
    inside = False
    for char in html:
        if char == "<":
            inside = True
            out.append(" ")
        elif char == ">":
            inside = False
        elif not inside:
            out.append(char)
    return "".join(out)
