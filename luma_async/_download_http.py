"""The HTTP side of one download: redirects, ranges, resumes and retries of the transfer.

:class:`Transfer` holds the bytes so far, what the server announced and the retry
bookkeeping; :func:`luma_async._download.download` opens the files and drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

import aiohttp
from yarl import URL

from luma_async import _clock
from luma_async._download_files import display_url
from luma_async._error_map import decode_error_body, error_from_response
from luma_async._errors import APIError, DownloadError, InputError, TransportError
from luma_async._inputs import check_http_url
from luma_async._options import DEFAULT_MAX_BYTES
from luma_async._policy import RetryPolicy
from luma_async._retry import Schedule, backoff, is_transient

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IncompleteError",
    "ProgressCallback",
    "RefreshLink",
    "Transfer",
    "check_video_url",
]

log = logging.getLogger("luma_async")

#: ``refresh()`` gives a fresh link to the same video (presigned links expire).
RefreshLink = Callable[[], Awaitable[str]]

#: ``progress(received_bytes, total_bytes_or_None)``, called after every chunk; it may be a
#: coroutine function.  ``received_bytes`` is what the file holds now (it drops back to the
#: first chunk's size if the server makes the download start over).
ProgressCallback = Callable[[int, int | None], Awaitable[None] | None]

_NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")
_MAX_ERROR_BODY = 64 * 1024


class IncompleteError(DownloadError):
    """The body ended cleanly but short of the announced size: worth resuming."""


def check_video_url(url: object) -> None:
    if not isinstance(url, str):
        raise InputError(f"a video URL must be a string, not {type(url).__name__}")
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a URL: {url[:80]!r} ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        kind = f"{parsed.scheme}: link" if parsed.scheme else "relative link"
        raise InputError(f"a video URL must be an http(s) link with a host, not a {kind}")
    check_http_url(url, "the video URL")  # no whitespace, a valid port: as for every URL


class Transfer:
    """One download: the bytes so far, what the server announced, and the retry bookkeeping."""

    def __init__(
        self,
        client: aiohttp.ClientSession,
        url: str,
        target: Path,
        file: IO[bytes],
        *,
        expected_size: int | None,
        progress: ProgressCallback | None,
        retry: RetryPolicy,
        chunk_size: int,
        timeout: aiohttp.ClientTimeout,
        max_redirects: int,
        max_bytes: int = DEFAULT_MAX_BYTES,
        refresh: RefreshLink | None = None,
        meta: Path | None = None,
        validator: str | None = None,
    ) -> None:
        self.client = client
        self.url = url
        self.shown = display_url(url)
        self.target = target
        self.file = file
        self.expected_size = expected_size
        self.progress = progress
        self.policy = retry
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.max_bytes = max_bytes
        self.refresh = refresh  # asked once, on a 403; then None
        self.meta = meta  # where the validator is kept for a later process to resume
        self.have = file.seek(0, os.SEEK_END)  # a .part left by a killed process: resumed
        self.total: int | None = None  # the size the server announced
        self.validator = validator  # for If-Range: a strong ETag or Last-Modified
        self.high_water = self.have  # the most bytes ever held: progress means passing it
        self.stalls = 0  # failed attempts since the last new byte
        self.last_progress = _clock.monotonic()

    @property
    def limit(self) -> int | None:
        return self.total if self.total is not None else self.expected_size

    def error(self, message: str, cls: type[DownloadError] = DownloadError) -> DownloadError:
        return cls(
            f"GET {self.shown}: {message}",
            url=self.shown,
            path=self.target,
            received=self.have,
            expected=self.limit,
        )

    async def run(self) -> None:
        schedule = Schedule(
            retry_on=_retryable,
            wait=self._wait,
            give_up=self._give_up,
            on_retry=self._on_retry,
        )
        await schedule.call(self._attempt)

    def install(self, part: Path, *, overwrite: bool) -> None:
        """Flush the finished file to disk and rename it to the destination (atomic)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        if not overwrite and self.target.exists():
            raise self.error(f"{self.target} appeared during the download; it was not replaced")
        part.replace(self.target)  # os.replace: all or nothing, also over an existing file

    # -- the retry schedule: attempts and deadline count from the last new byte, not from
    # the call's attempt numbers (a transfer that moves is never cut short) ---------------

    def _give_up(self, attempt: int) -> bool:
        return (
            self.stalls >= self.policy.attempts
            or _clock.monotonic() - self.last_progress >= self.policy.timeout
        )

    def _wait(self, attempt: int, error: BaseException | None) -> float:
        return backoff(self.policy, self.stalls, error)

    def _on_retry(self, attempt: int, error: BaseException | None, wait: float) -> None:
        log.info(
            "download %s: %s; resuming at byte %d in %.2fs", self.shown, error, self.have, wait
        )

    # -- one attempt -----------------------------------------------------------------------

    async def _attempt(self) -> None:
        try:
            headers = {"Accept-Encoding": "identity"}
            if self.have:
                headers["Range"] = f"bytes={self.have}-"
                if self.validator:
                    headers["If-Range"] = self.validator
            response = await self._open(headers)
            if response.status == 403 and self.refresh is not None:
                response.release()
                await self._refresh()
                response = await self._open(headers)
            async with response:
                if await self._accept(response):
                    await self._receive(response)
        except Exception:
            self.stalls += 1
            raise

    async def _refresh(self) -> None:
        """Swap an expired presigned link for a fresh one (once per download)."""
        assert self.refresh is not None
        refresh, self.refresh = self.refresh, None
        url = await refresh()
        check_video_url(url)
        log.info("download %s: the link was refused (403); trying a fresh one", self.shown)
        self.url, self.shown = url, display_url(url)

    async def _open(self, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """GET the link, following redirects by hand with the same token-free headers."""
        url: str | URL = self.url
        for _ in range(self.max_redirects + 1):
            try:
                response = await self.client.get(
                    url,
                    headers=headers,
                    allow_redirects=False,
                    raise_for_status=False,
                    auto_decompress=False,  # the bytes as sent: counted, never inflated
                    timeout=self.timeout,
                )
            except _NETWORK_ERRORS as exc:
                raise TransportError(
                    f"GET {self.shown}: {_why(exc)}", method="GET", path=self.shown
                ) from exc
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or location is None:
                return response
            response.release()
            url = response.url.join(URL(location))
            if url.scheme not in ("http", "https"):
                raise self.error(f"redirected to a {url.scheme or 'relative'}: link, not http(s)")
        raise self.error(f"more than {self.max_redirects} redirects")

    async def _accept(self, response: aiohttp.ClientResponse) -> bool:
        """Check the answer's status and size; ``False`` when the file is already complete."""
        status, headers = response.status, response.headers
        if status == 416 and self.have:
            total = _content_range(headers.get("Content-Range", ""))[2]
            if total == self.have and self.limit in (None, total):
                return False
            raise self.error(
                f"the server says the file has {total} bytes, "
                f"but {self.have} were received of {self.limit}"
            )
        if status == 206:
            start, _, total = _content_range(headers.get("Content-Range", ""))
            if start != self.have:
                raise self.error(
                    f"asked for the bytes from {self.have}, the server sent a range "
                    f"starting at {start} ({headers.get('Content-Range')!r})"
                )
            if total is not None and self.total is not None and total != self.total:
                raise self.error(
                    f"the file changed size between requests ({self.total}, now {total} bytes)"
                )
            total = self.total if total is None else total
        elif status == 200:
            if self.have:
                log.info("download %s: the server ignored the range; starting over", self.shown)
                self.file.seek(0)
                self.file.truncate()
                self.have = 0
            total = response.content_length
            etag = headers.get("ETag", "")
            self.validator = etag if etag and not etag.startswith("W/") else None
            self.validator = self.validator or headers.get("Last-Modified")
            self._keep_validator()
        else:
            raw = b""
            with contextlib.suppress(*_NETWORK_ERRORS):
                raw = await response.content.read(_MAX_ERROR_BODY)
            body = decode_error_body(raw, headers.get("Content-Type", ""))
            raise error_from_response("GET", self.shown, status, dict(headers), body)
        encoding = headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise self.error(
                f"the server sent a {encoding!r}-encoded body though none was asked for; "
                "refused: it would not be the video file, and could inflate without bound"
            )
        if total is not None and total > self.max_bytes:
            raise self.error(
                f"the server announces {total} bytes, more than max_bytes ({self.max_bytes}); "
                "pass a larger max_bytes to download it"
            )
        self.total = total
        if total is not None and self.expected_size is not None and total != self.expected_size:
            raise self.error(f"the server announces {total} bytes, {self.expected_size} expected")
        return True

    def _keep_validator(self) -> None:
        """Write the validator beside the ``.part``, for a process resuming after a kill."""
        if self.meta is None:
            return
        if self.validator is None:
            with contextlib.suppress(FileNotFoundError):
                self.meta.unlink()
            return
        self.meta.write_text(self.validator + "\n", encoding="utf-8")

    async def _receive(self, response: aiohttp.ClientResponse) -> None:
        while True:
            try:
                chunk = await response.content.read(self.chunk_size)
            except _NETWORK_ERRORS as exc:
                raise TransportError(
                    f"GET {self.shown}: the transfer broke after {self.have} bytes: {_why(exc)}",
                    method="GET",
                    path=self.shown,
                    sent=True,
                ) from exc
            if not chunk:
                break
            if self.have + len(chunk) > self.max_bytes:
                raise self.error(
                    f"the body passed max_bytes ({self.max_bytes}) without an end; "
                    "pass a larger max_bytes to download it"
                )
            self.file.write(chunk)
            self.have += len(chunk)
            limit = self.limit
            if limit is not None and self.have > limit:
                raise self.error(f"received more than the {limit} bytes announced")
            if self.have > self.high_water:
                self.high_water = self.have
                self.stalls = 0
                self.last_progress = _clock.monotonic()
            if self.progress is not None:
                result = self.progress(self.have, limit)
                if inspect.isawaitable(result):
                    await result
        limit = self.limit
        if limit is not None and self.have < limit:
            raise self.error(
                f"the body ended after {self.have} of {limit} bytes", cls=IncompleteError
            )


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, DownloadError):
        return isinstance(exc, IncompleteError)
    return isinstance(exc, (TransportError, APIError)) and is_transient(exc)


def _content_range(value: str) -> tuple[int | None, int | None, int | None]:
    """``(start, end, total)`` of a ``Content-Range``; ``None`` for each part not given."""
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        return None, None, None
    start, end, total = match.groups()
    return (
        None if start is None else int(start),
        None if end is None else int(end),
        None if total == "*" else int(total),
    )


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."
