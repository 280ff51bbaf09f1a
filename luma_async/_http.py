"""The HTTP exchange: one request, its retries, and the rule that a paid POST is never re-sent.

A GET is retried (tenacity, :class:`RetryPolicy`) on transport errors, 408, 429 and 500/502/
503/504.  A POST is retried only when it provably never reached the service: the connection
could not be opened, or the service answered 429 (the request was refused, nothing created).
A POST answered 5xx, or whose connection broke after it was sent, raises
:class:`SubmissionUncertainError` with the cause chained: re-sending could bill twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
import tenacity

from luma_async import _clock
from luma_async._budget import Budget
from luma_async._convert import decode_json
from luma_async._errors import (
    APIError,
    LumaError,
    RateLimitError,
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
    if isinstance(exc, RateLimitError):
        return exc.retry_after
    if isinstance(exc, APIError):
        return parse_retry_after(header(exc.headers, "Retry-After"))
    return None


class _Deadline(tenacity.stop.stop_base):
    """Stop once ``seconds`` have passed on the library's clock (virtual time aware)."""

    def __init__(self, seconds: float, *, started: float | None = None) -> None:
        self._end = (_clock.monotonic() if started is None else started) + seconds

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return _clock.monotonic() >= self._end


class _Backoff(tenacity.wait.wait_base):
    """Exponential backoff with jitter; a server's ``Retry-After`` wins when it is longer."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        return backoff(self._policy, retry_state.attempt_number, error)


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
        self._secret = api_key.encode()  # redacted from every answer: servers may echo it
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": user_agent,
        }

    async def _exchange(
        self, method: str, path: str, body: Any
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One attempt: the answer of a 2xx, or the error of any other status.

        A failure to talk raises TransportError with ``sent`` telling whether the request
        may have landed.
        """
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
                ) as response:
                    raw = await _read_capped(response)
                    if self._secret in raw:
                        raw = raw.replace(self._secret, b"***")
                    status, headers = response.status, response.headers
            except (aiohttp.ClientConnectorError, _CONNECT_TIMEOUT) as exc:
                raise TransportError(
                    f"{method} {path}: could not connect to {self.base_url}: {_why(exc)}",
                    method=method,
                    path=path,
                    sent=False,
                ) from exc
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                raise TransportError(
                    f"{method} {path}: the connection failed after the request was sent: "
                    f"{_why(exc)}",
                    method=method,
                    path=path,
                    sent=True,
                ) from exc
        if debug:
            log.debug("%s %s -> %s in %.3fs", method, path, status, _clock.monotonic() - started)
        if len(raw) > _MAX_BODY:
            raise APIError(
                method=method,
                path=path,
                status=status,
                detail=f"the answer is larger than {_MAX_BODY} bytes; refusing to read it",
                headers=dict(headers),
            )
        if status >= 300:
            error = _error(method, path, status, headers, raw)
            if isinstance(error, RateLimitError):  # the whole session slows down, not one caller
                self.budget.slow_down(error.retry_after)
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
    ) -> Any:
        """Send, retry as the rules allow, and return the decoded JSON of a 2xx answer.

        ``paid`` marks a POST that creates something: it is never re-sent once it may have
        reached the service.
        """
        try:
            answer = await self._attempts(method, path, body, paid=paid, retry=retry)
        except LumaError as exc:
            if paid and _maybe_landed(exc):
                raise SubmissionUncertainError(
                    f"{what}: {exc}. The request may have created a paid task; it was NOT re-sent. "
                    "Check your task list before submitting it again.",
                    method=method,
                    path=path,
                    request=request,
                ) from exc
            raise
        return decode_json(answer[2], what=what)

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
        try:
            return await self._exchange(method, path, body)
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
            return await self._exchange(method, path, body)

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(retryable),
            wait=_Backoff(self.retry),
            stop=tenacity.stop_after_attempt(attempts) | deadline,
            sleep=_sleep,
            reraise=True,
            before_sleep=_log_retry(method, path),
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


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, or its first ``_MAX_BODY + 1`` bytes when it is larger than that.

    ``content.read(n)`` alone would return whatever part has arrived so far.
    """
    length = response.content_length
    if length is not None and length <= _MAX_BODY:
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_BODY:
            break
    return b"".join(chunks)


#: A connect-phase timeout: the request never left (aiohttp >= 3.10 tells it apart).
_CONNECT_TIMEOUT: type[BaseException] = getattr(
    aiohttp, "ConnectionTimeoutError", aiohttp.ClientConnectorError
)


def _log_retry(method: str, path: str) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        wait = state.upcoming_sleep
        log.info("%s %s: %s; retry %d in %.2fs", method, path, error, state.attempt_number, wait)

    return before_sleep
