"""The I/O seam: a :class:`Transport` sends bytes, a :class:`Client` above it speaks the API.

A :class:`Transport` is one method, ``send(method, url, headers, body) -> (status, headers,
body)``, plus ``aclose``.  It follows no redirect and reads every body whole but bounded
(16 MiB decoded); a failure to talk is a :class:`SendError` saying whether the request may
have left.  :class:`AiohttpTransport` is the real one; the tests have an in-memory one.

The :class:`Client` sends the pure requests of :mod:`~luma_async._protocol` through it: the
key and the session's :class:`Budget` applied, the retries of :mod:`~luma_async._retry` (a
GET on transport errors, 408, 429 and 500/502/503/504; a paid POST only when it provably
never reached the service: the connection could not be opened, or the service answered
429).  A paid POST answered 5xx, or whose connection broke after it was sent, raises
:class:`SubmissionUncertainError` with the cause chained: re-sending could bill twice.
No wait ends past :attr:`RetryPolicy.timeout`; a ``Retry-After`` longer than the time left
raises at once.  The API key is scrubbed from every answer and every error in any form a
server may echo it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NoReturn, Protocol, TypeVar

import aiohttp

from luma_async import _clock
from luma_async._budget import Budget
from luma_async._errors import (
    APIError,
    LumaError,
    RateLimitError,
    TransportError,
)
from luma_async._policy import RetryPolicy
from luma_async._protocol import MAX_BODY, Request
from luma_async._redact import Redactor
from luma_async._retry import (
    Schedule,
    after_failure,
    is_transient,
    may_have_landed,
    may_resend,
    retry_after,
)

__all__ = ["AiohttpTransport", "Client", "SendError", "Transport"]

log = logging.getLogger("luma_async")
T = TypeVar("T")
Answer = tuple[int, Mapping[str, str], bytes]


class SendError(Exception):
    """The transport could not complete an exchange (the cause is chained).

    ``sent`` is ``False`` when the request provably never left (the connection could not be
    opened), ``True`` when it may have reached the service.
    """

    def __init__(self, why: str, *, sent: bool) -> None:
        super().__init__(why)
        self.sent = sent


class Transport(Protocol):
    """The only I/O of the API client."""

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        """One exchange, redirects not followed, the body read whole up to the cap + 1
        byte; raises :class:`SendError` when it cannot be completed."""
        ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """:class:`Transport` over an ``aiohttp.ClientSession`` (the session's own or the user's;
    closing it is the session's business, so :meth:`aclose` does nothing).

    ``client()`` returns it, or raises once the session is closed: a plain function (no
    coroutine per request), asked on every request.
    """

    def __init__(self, client: Callable[[], aiohttp.ClientSession], *, timeout: float) -> None:
        self._client = client
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 15.0))

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        client = self._client()  # a plain call: raises when the session is closed
        try:
            async with client.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                auto_decompress=False,  # _read_capped inflates, bounded
            ) as response:
                length = response.content_length
                if (
                    length is not None
                    and length <= MAX_BODY
                    and "Content-Encoding" not in response.headers
                ):
                    raw = await response.read()  # a plain body under the cap: one read
                else:
                    raw = await _read_capped(response)
                return response.status, response.headers, raw
        except (aiohttp.ClientConnectorError, _CONNECT_TIMEOUT) as exc:
            raise SendError(_why(exc), sent=False) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise SendError(_why(exc), sent=True) from exc

    async def aclose(self) -> None:
        return None


class Client:
    """Sends :class:`~luma_async._protocol.Request` s with the key, the budget and the retry
    rules applied, and returns their deciphered answers."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        retry: RetryPolicy,
        user_agent: str,
        budget: Budget,
        transport: Transport,
    ) -> None:
        self.base_url = base_url
        self.retry = retry
        self.budget = budget
        self.transport = transport
        self._redact = Redactor(api_key)  # servers may echo the key: scrubbed from every exit
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,  # what _read_capped inflates itself
            "User-Agent": user_agent,
        }

    def __repr__(self) -> str:
        return f"<Client {self.base_url} api_key=***>"

    async def send(self, request: Request[T]) -> T:
        """The value of ``request``'s answer, retried as the rules allow.

        A paid request is never re-sent once it may have reached the service, and a 2xx
        answer to it that cannot be read raises :class:`SubmissionUncertainError`.  Every
        error leaves scrubbed of the API key.

        The first attempt is awaited here directly (most requests succeed at once): the
        retry driver, its schedule and tenacity come in only after a failure worth retrying.
        """
        end = _clock.monotonic() + self.retry.timeout  # no wait of any attempt ends later
        headers = self._headers
        body = None
        if request.body is not None:
            body, content_type = request.content()
            if content_type is not None:
                headers = {**headers, "Content-Type": content_type}
        try:
            try:
                return await self._attempt(request, headers, body, end)
            except Exception as exc:  # noqa: BLE001 - after_failure re-raises it unless retried
                schedule, pause = after_failure(
                    exc, functools.partial(self._schedule, request, end), 1
                )
            return await retry_after(
                functools.partial(self._attempt, request, headers, body, end), schedule, pause, 1
            )
        except LumaError as exc:
            self._failed(request, exc)

    def _schedule(self, request: Request[Any], end: float) -> Schedule:
        """How ``request`` is retried (made only when its first attempt failed)."""
        return Schedule.from_policy(
            self.retry,
            retry_on=may_resend if request.paid else is_transient,
            attempts=None if request.retry else 1,
            end=end,
            label=f"{request.method} {request.path}",
            redact=self._redact,
        )

    def _failed(self, request: Request[Any], exc: LumaError) -> NoReturn:
        """Raise the error ``request`` ends with, scrubbed of the key: a paid request that
        may have landed ends uncertain (``exc`` chained), any other with ``exc`` itself."""
        if request.paid and may_have_landed(exc):
            uncertain = request.uncertain_failure(exc)
            uncertain.__cause__ = exc  # scrubbed along the chain, as raised below
            self._redact.error(uncertain)
            raise uncertain from exc
        self._redact.error(exc)
        raise exc

    async def _attempt(
        self, request: Request[T], headers: Mapping[str, str], body: bytes | None, end: float
    ) -> T:
        """One exchange and its answer deciphered.

        A failure to talk raises TransportError with ``sent`` telling whether the request
        may have landed.  When the session is paused (a 429) until after ``end``, the
        request is not sent and a RateLimitError says how long the pause lasts.
        """
        method, path = request.method, request.path
        budget = self.budget
        if budget.paused_until > end:
            self._check_pause(method, path)
        debug = log.isEnabledFor(logging.DEBUG)
        started = _clock.monotonic() if debug else 0.0
        # A slot at once, unless the budget has something to wait for.
        if not budget.take() and not budget.take_free():
            await budget.acquire()
        try:
            status, answer_headers, raw = await self.transport.send(
                method, self.base_url + path, headers, body
            )
        except SendError as exc:
            where = (
                f"could not connect to {self.base_url}"
                if exc.sent is False
                else "the connection failed after the request was sent"
            )
            raise TransportError(
                f"{method} {path}: {where}: {self._redact.text(str(exc))}",
                method=method,
                path=path,
                sent=exc.sent,
            ) from exc.__cause__
        finally:
            budget.release()
        raw = self._redact.bytes(raw)
        if debug:
            log.debug("%s %s -> %s in %.3fs", method, path, status, _clock.monotonic() - started)
        if status < 300 and budget.throttled:  # only a 429 ever seen slowed the rate
            budget.succeeded()
        try:
            return request.decipher(status, answer_headers, raw)
        except APIError as error:
            self._redact.error(error)  # the headers and the decoded body, before any log
            if isinstance(error, RateLimitError):  # the whole session slows down, not one caller
                hint = error.retry_after
                budget.slow_down(None if hint is None else min(hint, self.retry.timeout))
            raise

    def _check_pause(self, method: str, path: str) -> None:
        """Raise when the session is paused (a 429) past this request's deadline."""
        paused = self.budget.paused_until - _clock.monotonic()
        if paused > 0:
            raise RateLimitError(
                method=method,
                path=path,
                status=429,
                detail=f"not sent: the session is paused for another {paused:.1f}s because the "
                "service answered 429, past this request's RetryPolicy.timeout",
                retry_after=paused,
            )


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The whole decoded body, or its first ``MAX_BODY + 1`` bytes when it is larger.

    Requests are sent with ``auto_decompress=False``: the cap bounds the *decoded* size on
    every aiohttp release (before 3.14 aiohttp inflates each network chunk whole, so 100 KB
    of gzip became 96 MiB at once).  Only a plain body whose Content-Length is under the cap
    is read in one go.  A body in an encoding we did not offer, or corrupt, is returned as it
    came (capped): decoding it then fails like any other unreadable answer.
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        length = response.content_length
        if length is not None and length <= MAX_BODY:
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
    room = MAX_BODY + 1
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
