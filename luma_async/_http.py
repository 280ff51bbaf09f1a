"""The HTTP exchange: one request, its retries, and the rule that a paid POST is never re-sent.

A GET is retried (tenacity, :class:`RetryPolicy`) on transport errors, 408, 429 and 500/502/
503/504.  A POST is retried only when it provably never reached the service: the connection
could not be opened, or the service answered 429 (the request was refused, nothing created).
A POST answered 5xx, or whose connection broke after it was sent, raises
:class:`SubmissionUncertainError` with the cause chained: re-sending could bill twice.  So
does a 2xx to a paid POST whose answer cannot be read: the service said yes.

No wait ends past :attr:`RetryPolicy.timeout`; a ``Retry-After`` longer than the time left
raises at once.  Bodies are capped at 16 MiB decoded, and the API key is scrubbed from every
answer and every error in any form a server may echo it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

import aiohttp
import tenacity

from luma_async import _clock
from luma_async._budget import Budget
from luma_async._convert import decode_json
from luma_async._errors import (
    APIError,
    DecodeError,
    LumaError,
    RateLimitError,
    Redactor,
    ServerError,
    SubmissionUncertainError,
    TransportError,
    WrongTaskError,
    decode_error_body,
    error_from_response,
    header,
    parse_retry_after,
)
from luma_async._policy import RetryPolicy

__all__ = ["Transport", "backoff", "is_transient", "server_hint"]

log = logging.getLogger("luma_async")
T = TypeVar("T")

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_BODY = 16 * 1024 * 1024


def is_transient(exc: BaseException) -> bool:
    """Worth trying again later: transport trouble, 408, 429, a passing 5xx, or an answer
    for another task (a gateway bug or a cache)."""
    if isinstance(exc, (TransportError, WrongTaskError)):
        return True
    return isinstance(exc, APIError) and exc.status in _RETRY_STATUSES


def server_hint(exc: BaseException | None) -> float | None:
    """The wait the server asked for (``Retry-After``), when the error carries one."""
    if isinstance(exc, APIError):
        if exc.retry_after is not None:
            return exc.retry_after
        return parse_retry_after(header(exc.headers, "Retry-After"))
    return None


class _Deadline(tenacity.stop.stop_base):
    """Stop once ``seconds`` have passed on the library's clock (virtual time aware)."""

    def __init__(self, seconds: float, *, started: float | None = None) -> None:
        self._end = (_clock.monotonic() if started is None else started) + seconds

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return _clock.monotonic() >= self._end


class _Backoff(tenacity.wait.wait_base):
    """Exponential backoff with jitter; a server's ``Retry-After`` wins when it is longer.

    No wait ends past ``deadline``: a computed one is cut short; when the server asks for
    longer than the time left, the error is raised at once (its ``retry_after`` says how
    long the server asked for) instead of sleeping past the policy's timeout.
    """

    def __init__(self, policy: RetryPolicy, deadline: float) -> None:
        self._policy = policy
        self._deadline = deadline

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        wait = backoff(self._policy, retry_state.attempt_number, error)
        left = self._deadline - _clock.monotonic()
        if wait <= left:
            return wait
        hint = server_hint(error)
        if error is not None and hint is not None and hint > left:
            raise error
        return max(left, 0.0)


def backoff(policy: RetryPolicy, attempt: int, error: BaseException | None) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): exponential with jitter, and a
    server's ``Retry-After`` on ``error`` wins when it is longer."""
    computed = min(policy.initial * 2.0 ** max(attempt - 1, 0), policy.max_wait)
    computed += random.uniform(0, policy.jitter)  # noqa: S311 - jitter, not crypto
    hint = server_hint(error)
    return computed if hint is None else max(hint, min(computed, policy.initial))


async def _sleep(seconds: float) -> None:
    await _clock.sleep(seconds)


class Transport:
    """Sends requests to the API with the key, the budget and the retry rules applied."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        retry: RetryPolicy,
        timeout: float,
        user_agent: str,
        budget: Budget,
        client: Callable[[], Awaitable[aiohttp.ClientSession]],
    ) -> None:
        self.base_url = base_url
        self.retry = retry
        self.budget = budget
        self._client = client
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 15.0))
        self._redact = Redactor(api_key)  # servers may echo the key: scrubbed from every exit
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,  # what _read_capped inflates itself
            "User-Agent": user_agent,
        }

    async def _exchange(
        self, method: str, path: str, body: Any, deadline: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One attempt: the answer of a 2xx, or the error of any other status.

        A failure to talk raises TransportError with ``sent`` telling whether the request
        may have landed.  When the session is paused (a 429) until after ``deadline``, the
        request is not sent and a RateLimitError says how long the pause lasts.
        """
        paused = self.budget.paused_until - _clock.monotonic()
        if paused > 0 and self.budget.paused_until > deadline:
            raise RateLimitError(
                method=method,
                path=path,
                status=429,
                detail=f"not sent: the session is paused for another {paused:.1f}s because the "
                "service answered 429, past this request's RetryPolicy.timeout",
                retry_after=paused,
            )
        client = await self._client()
        url = self.base_url + path
        debug = log.isEnabledFor(logging.DEBUG)
        started = _clock.monotonic() if debug else 0.0
        async with self.budget.slot():
            try:
                async with client.request(
                    method,
                    url,
                    json=body,
                    headers=self._headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                    auto_decompress=False,
                ) as response:
                    raw = self._redact.bytes(await _read_capped(response))
                    status, headers = response.status, response.headers
            except (aiohttp.ClientConnectorError, _CONNECT_TIMEOUT) as exc:
                raise TransportError(
                    f"{method} {path}: could not connect to {self.base_url}: "
                    f"{self._redact.text(_why(exc))}",
                    method=method,
                    path=path,
                    sent=False,
                ) from exc
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                raise TransportError(
                    f"{method} {path}: the connection failed after the request was sent: "
                    f"{self._redact.text(_why(exc))}",
                    method=method,
                    path=path,
                    sent=True,
                ) from exc
        if debug:
            log.debug("%s %s -> %s in %.3fs", method, path, status, _clock.monotonic() - started)
        if status >= 300 and len(raw) > _MAX_BODY:
            raise APIError(
                method=method,
                path=path,
                status=status,
                detail=f"the answer is larger than {_MAX_BODY} bytes; refusing to read it",
                headers=dict(headers),
            )
        if status >= 300:
            error = _error(method, path, status, headers, raw)
            self._redact.error(error)  # the headers and the decoded body, before any log
            if isinstance(error, RateLimitError):  # the whole session slows down, not one caller
                hint = error.retry_after
                self.budget.slow_down(None if hint is None else min(hint, self.retry.timeout))
            raise error
        self.budget.succeeded()
        return status, headers, raw

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        what: str,
        paid: bool = False,
        request: Any = None,
        retry: bool = True,
        decode: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Send, retry as the rules allow, and return the decoded JSON of a 2xx answer
        (passed through ``decode`` when given).

        ``paid`` marks a POST that creates something: it is never re-sent once it may have
        reached the service, and a 2xx answer to it that cannot be read (not JSON, too large,
        not the expected shape) raises :class:`SubmissionUncertainError`, not
        :class:`DecodeError`: the service said yes, so the job may exist.

        Every error leaves scrubbed of the API key, whatever form the server echoed it in.
        """
        try:
            return await self._request(
                method,
                path,
                body=body,
                what=what,
                paid=paid,
                request=request,
                retry=retry,
                decode=decode,
            )
        except LumaError as exc:
            self._redact.error(exc)
            raise

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any,
        what: str,
        paid: bool,
        request: Any,
        retry: bool,
        decode: Callable[[Any], Any] | None,
    ) -> Any:
        try:
            status, headers, raw = await self._attempts(method, path, body, paid=paid, retry=retry)
        except LumaError as exc:
            if paid and _maybe_landed(exc):
                raise SubmissionUncertainError(
                    f"{what}: {exc}. The request may have created a paid task; it was NOT re-sent. "
                    "Check your task list before submitting it again.",
                    method=method,
                    path=path,
                    request=request,
                    status=exc.status if isinstance(exc, APIError) else None,
                ) from exc
            raise
        if len(raw) > _MAX_BODY and not paid:
            raise APIError(
                method=method,
                path=path,
                status=status,
                detail=f"the answer is larger than {_MAX_BODY} bytes; refusing to read it",
                headers=dict(headers),
            )
        try:
            return _decoded(raw, what=what, decode=decode)
        except DecodeError as exc:
            if not paid:
                raise
            task_id = _find_task_id(raw)
            found = f" (it names task {task_id})" if task_id else ""
            raise SubmissionUncertainError(
                f"{what}: the service accepted the request ({status}) but its answer cannot be "
                f"read{found}: {exc}. The request may have created a paid task; it was NOT "
                "re-sent. Check your task list before submitting it again.",
                method=method,
                path=path,
                request=request,
                status=status,
                answer=raw,
                task_id=task_id,
            ) from exc

    async def _attempts(
        self, method: str, path: str, body: Any, *, paid: bool, retry: bool
    ) -> tuple[int, Mapping[str, str], bytes]:
        """The exchange, retried as the rules allow; the answer of the first 2xx.

        The first attempt runs outside tenacity: most requests succeed at once, and building
        and driving a retry loop cost about a fifth of a loopback GET.  A retryable failure
        enters tenacity as its attempt 1 (replayed, not re-sent), so waits, stops and logs
        are those of a loop that ran from the start.
        """
        started = _clock.monotonic()
        end = started + self.retry.timeout
        try:
            return await self._exchange(method, path, body, end)
        except Exception as exc:
            retryable = _may_land_once if paid else is_transient
            attempts = self.retry.attempts if retry else 1
            if attempts == 1 or not retryable(exc):
                raise
            replay: list[BaseException] = [exc]
        deadline = _Deadline(self.retry.timeout, started=started)

        async def attempt() -> tuple[int, Mapping[str, str], bytes]:
            if replay:
                raise replay.pop()
            return await self._exchange(method, path, body, end)

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(retryable),
            wait=_Backoff(self.retry, end),
            stop=tenacity.stop_after_attempt(attempts) | deadline,
            sleep=_sleep,
            reraise=True,
            before_sleep=_log_retry(method, path, self._redact),
        )
        answer: tuple[int, Mapping[str, str], bytes] = await retrying(attempt)
        return answer

    async def get_json(self, path: str, *, what: str, retry: bool = True) -> Any:
        return await self.request("GET", path, what=what, retry=retry)


def _error(method: str, path: str, status: int, headers: Mapping[str, str], raw: bytes) -> APIError:
    if 300 <= status < 400:
        where = headers.get("Location", "elsewhere")
        return APIError(
            method=method,
            path=path,
            status=status,
            detail=f"unexpected redirect to {where}; check base_url (redirects are not followed "
            "so that the API key never leaves the API's host)",
            headers=dict(headers),
        )
    body = decode_error_body(raw, headers.get("Content-Type", ""))
    return error_from_response(method, path, status, dict(headers), body)


def _may_land_once(exc: BaseException) -> bool:
    """A paid POST may be re-sent only if this failure proves it was not received."""
    if isinstance(exc, TransportError):
        return exc.sent is False
    return isinstance(exc, RateLimitError)


def _maybe_landed(exc: LumaError) -> bool:
    if isinstance(exc, TransportError):
        return exc.sent is not False
    return isinstance(exc, ServerError) or (isinstance(exc, APIError) and exc.status == 408)


def _decoded(raw: bytes, *, what: str, decode: Callable[[Any], Any] | None) -> Any:
    if len(raw) > _MAX_BODY:
        raise DecodeError(f"{what}: the answer is larger than {_MAX_BODY} bytes")
    data = decode_json(raw, what=what)
    return data if decode is None else decode(data)


_ID_FIELD = re.compile(rb'"(?:task_id|id)"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"')
_ID_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def _find_task_id(raw: bytes) -> str | None:
    """The id of the task an unreadable answer names, when one can still be found in it."""
    head = raw[: 256 * 1024]
    try:
        data: Any = json.loads(head)
    except (ValueError, RecursionError):
        data = None
    while isinstance(data, dict):  # a task, or a gateway's {"code", "data": <task>}
        fields = cast("dict[str, Any]", data)
        for name in ("id", "task_id"):
            value = fields.get(name)
            if isinstance(value, str) and _ID_VALUE.fullmatch(value):
                return value
        data = fields.get("data")
    match = _ID_FIELD.search(head)
    return match.group(1).decode() if match else None


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The whole decoded body, or its first ``_MAX_BODY + 1`` bytes when it is larger.

    Requests are sent with ``auto_decompress=False``: the cap bounds the *decoded* size on
    every aiohttp release (before 3.14 aiohttp inflates each network chunk whole, so 100 KB
    of gzip became 96 MiB at once).  Only a plain body whose Content-Length is under the cap
    is read in one go.  A body in an encoding we did not offer, or corrupt, is returned as it
    came (capped): decoding it then fails like any other unreadable answer.
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        length = response.content_length
        if length is not None and length <= _MAX_BODY:
            return await response.read()
        return await _collect(response.content.iter_chunked(_CHUNK), None)
    wbits = _WBITS.get(encoding)
    return await _collect(
        response.content.iter_chunked(_CHUNK),
        None if wbits is None else zlib.decompressobj(wbits),
    )


_CHUNK = 64 * 1024
#: The encodings offered in Accept-Encoding, as zlib window settings (47: zlib or gzip header).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 32 + 15}
ACCEPT_ENCODING = "gzip, deflate"


async def _collect(chunks: AsyncIterator[bytes], inflater: Any) -> bytes:
    """Join ``chunks`` (inflated when ``inflater`` is a zlib decompressor) up to the cap + 1.

    The parts are joined once at the end: one copy of the body, not one per growth step.
    """
    parts: list[bytes] = []
    room = _MAX_BODY + 1
    async for chunk in chunks:
        if inflater is not None:
            try:
                chunk = inflater.decompress(chunk, room)  # noqa: PLW2901 - decoded in place
            except zlib.error:
                parts.append(chunk)  # corrupt: unreadable, like any other bad body
                break
        parts.append(chunk[:room])
        room -= len(parts[-1])
        if room <= 0:
            break
    else:
        if inflater is not None:
            parts.append(inflater.flush(room)[:room])
    return b"".join(parts)


#: A connect-phase timeout: the request never left (aiohttp >= 3.10 tells it apart).
_CONNECT_TIMEOUT: type[BaseException] = getattr(
    aiohttp, "ConnectionTimeoutError", aiohttp.ClientConnectorError
)


def _log_retry(
    method: str, path: str, redact: Redactor
) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        why = redact.text(str(error))
        log.info("%s %s: %s; retry %d in %.2fs", method, path, why, state.attempt_number, wait)

    return before_sleep
