"""Downloads: stream a finished video to a file, resume a broken transfer, never leak the key.

The video is written to a hidden temporary file beside the destination
(``.<name>.<key>.part``, the key naming the link without its query), flushed to disk and
renamed into place only once its length is checked, so ``dest`` never holds half a video.
Any failure, and cancellation, removes the temporary file.  A process killed mid-download
cannot: the next download of the same link to the same destination finds its ``.part`` and
resumes it with ``Range`` and ``If-Range`` (the validator kept beside it in a ``.meta`` file;
without one it starts over).  A ``.part`` another download holds (an advisory lock) is left
alone, and that download writes to a file of its own.  Every failure of the file system
(a name too long, a full disk, a directory in the way) is a :class:`DownloadError`.

A ``403`` to a presigned link that expired is answered once by asking the caller for a fresh
link (``refresh``: the session asks the service again) and trying that.

A transfer that breaks (dropped connection, truncated body, read timeout) is resumed with
``Range: bytes=<have>-`` (and ``If-Range`` with the first answer's validator): a ``206``
whose ``Content-Range`` starts where the file ends is appended, a ``200`` starts over, a
``416`` for a file already complete ends the download.  Retries follow the session's
:class:`RetryPolicy`, counted since the last byte that was new: a long download that keeps
moving is never cut short by ``attempts`` or ``timeout``; one that stops moving is.

A download never writes more than ``max_bytes`` (:data:`DEFAULT_MAX_BYTES`, 2 GiB: a
generated clip is tens of megabytes): an announced length beyond it is refused before the
body is read, and a body without a length is cut off when it passes it.  Bodies are asked for
and taken as they are (``Accept-Encoding: identity``, no decompression): one the server
encodes anyway (``gzip``, ``br`` ...) is refused, since a compressed "video" could inflate
without bound and would not be the file the link names.

Video links live on a CDN host and need no token: every request here carries only the
headers built in this module, redirects are followed by hand (each hop must be http(s)), and a
client session with an ``Authorization`` header or ``auth`` of its own is refused outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

import aiohttp
from yarl import URL

from luma_async import _clock
from luma_async._error_map import decode_error_body, error_from_response
from luma_async._errors import (
    APIError,
    DownloadError,
    InputError,
    TransportError,
)
from luma_async._inputs import check_http_url
from luma_async._models import Task, Video
from luma_async._policy import RetryPolicy
from luma_async._retry import Schedule, backoff, is_transient
from luma_async._validators import SECONDS, callable_, check, instance_of, optional, whole

__all__ = ["DEFAULT_MAX_BYTES", "DownloadError", "ProgressCallback", "download", "video_url_of"]

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
_MAX_NAME = 255  # bytes in one file name on common file systems (NAME_MAX)
#: The most a download writes unless told otherwise: far above any generated clip.
DEFAULT_MAX_BYTES = 2 * 1024**3


class _IncompleteError(DownloadError):
    """The body ended cleanly but short of the announced size: worth resuming."""


def video_url_of(task_or_video: Task | Video | str) -> str:
    """The link to fetch for a finished task, a video or a URL (``download_url`` preferred)."""
    if isinstance(task_or_video, Task):
        task = task_or_video
        if task.video is None:
            if task.is_failed:
                why = f": {task.failure_reason}" if task.failure_reason else ""
                raise InputError(f"task {task.id} failed{why}; it has no video to download")
            raise InputError(
                f"task {task.id} has no video yet (state {task.state}); "
                f"wait for it with `await luma.wait({task.id!r})` and download the result"
            )
        task_or_video = task.video
    if isinstance(task_or_video, Video):
        url = task_or_video.best_url
    elif isinstance(task_or_video, str):
        url = task_or_video
    else:
        raise InputError(
            f"expected a Task, a Video or a video URL, not {type(task_or_video).__name__}"
        )
    _check_url(url)
    return url


async def download(
    client: aiohttp.ClientSession,
    url: str,
    dest: Path | str,
    *,
    expected_size: int | None = None,
    progress: ProgressCallback | None = None,
    retry: RetryPolicy,
    chunk_size: int = 64 * 1024,
    overwrite: bool = True,
    filename: str | None = None,
    read_timeout: float = 60.0,
    max_redirects: int = 10,
    max_bytes: int = DEFAULT_MAX_BYTES,
    refresh: RefreshLink | None = None,
) -> Path:
    """Stream the video at ``url`` to ``dest`` and return the path of the finished file.

    ``dest`` is a file path, or an existing directory: the file is then named ``filename``,
    else after the last segment of the URL path.  ``expected_size`` (bytes) is checked
    against the server's length and the received one.  ``read_timeout`` bounds the wait for
    each piece of the body; ``max_redirects`` the hops followed; ``max_bytes`` the size of the
    file (a longer or encoded body is a :class:`DownloadError`).  ``refresh`` gives a fresh
    link when this one answers 403 (an expired presigned link); it is asked once.  With
    ``overwrite=False`` an existing file is an :class:`InputError` (and a file that appears
    meanwhile a :class:`DownloadError`).  Raises :class:`DownloadError` for a wrong length
    or a failure of the file system, :class:`TransportError` or :class:`APIError` when
    retries are exhausted or not allowed.
    """
    _check_url(url)
    check(client, "client", instance_of(aiohttp.ClientSession, "an aiohttp.ClientSession"))
    if "Authorization" in client.headers or client.auth is not None:
        raise InputError(
            "the aiohttp session sends credentials (an Authorization header or auth) with "
            "every request; video links must never get them: use a session without them"
        )
    check(retry, "retry", instance_of(RetryPolicy))
    check(expected_size, "expected_size", optional(whole(0)))
    check(chunk_size, "chunk_size", whole(1))
    check(max_redirects, "max_redirects", whole(0))
    check(max_bytes, "max_bytes", whole(1))
    check(read_timeout, "read_timeout", SECONDS)
    check(progress, "progress", optional(callable_()))
    if expected_size is not None and expected_size > max_bytes:
        raise InputError(f"expected_size {expected_size} is above max_bytes {max_bytes}")
    target = _target(dest, url, filename)
    if not overwrite and target.exists():
        raise InputError(f"{target} already exists; pass overwrite=True to replace it")

    try:
        part, file, validator = _open_part(target, url)
    except OSError as exc:
        raise _fs_error(exc, url, target) from exc
    meta = part.with_suffix(".meta")
    transfer: _Transfer | None = None
    try:
        transfer = _Transfer(
            client,
            url,
            target,
            file,
            expected_size=expected_size,
            progress=progress,
            retry=retry,
            chunk_size=chunk_size,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=min(read_timeout, 30.0), sock_read=read_timeout
            ),
            max_redirects=max_redirects,
            max_bytes=max_bytes,
            refresh=refresh,
            meta=meta,
            validator=validator,
        )
        await transfer.run()
        transfer.install(part, overwrite=overwrite)
    except BaseException as exc:
        file.close()
        for leftover in (part, meta):
            with contextlib.suppress(OSError):
                leftover.unlink()
        if isinstance(exc, OSError):
            received = 0 if transfer is None else transfer.have
            raise _fs_error(exc, url, target, received) from exc
        raise
    with contextlib.suppress(OSError):
        meta.unlink()
    _fsync_directory(target.parent)
    return target


class _Transfer:
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
        self.shown = _display(url)
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
        _check_url(url)
        log.info("download %s: the link was refused (403); trying a fresh one", self.shown)
        self.url, self.shown = url, _display(url)

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
                f"the body ended after {self.have} of {limit} bytes", cls=_IncompleteError
            )


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, DownloadError):
        return isinstance(exc, _IncompleteError)
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


def _check_url(url: object) -> None:
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


def _display(url: str | URL) -> str:
    """A checked URL for messages and logs: no credentials, query or fragment (presigned)."""
    return str(URL(url).with_user(None).with_query(None).with_fragment(None))


def _target(dest: Path | str, url: str, filename: str | None) -> Path:
    if not isinstance(dest, (str, os.PathLike)):
        raise InputError(f"dest must be a path, not {type(dest).__name__}")
    path = Path(dest)
    try:
        return _name_target(path, url, filename)
    except OSError as exc:  # e.g. a name too long for the file system
        raise _fs_error(exc, url, path) from exc


def _name_target(path: Path, url: str, filename: str | None) -> Path:
    if path.is_dir():
        name = URL(url).name if filename is None else filename
        if not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in "/\\\0"):
            raise InputError(
                f"cannot name a file after {_display(url)!r}; pass a file path as dest"
            )
        path /= name
    if not path.parent.is_dir():
        raise InputError(f"the directory {path.parent} does not exist")
    return path


def _open_part(target: Path, url: str) -> tuple[Path, IO[bytes], str | None]:
    """The ``.part`` file to write, opened at its end, and the validator of what it holds.

    Named after the destination and the link without its query (presigned queries change
    between links to the same video), so a later download finds what a killed one left. A
    ``.part`` that another download holds is left alone: this one gets a file of its own.
    """
    key = hashlib.sha256(_display(url).encode()).hexdigest()[:12]
    part = target.with_name(_part_name(target.name, key))
    fd = os.open(part, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    if not _lock(fd):
        os.close(fd)
        part = target.with_name(_part_name(target.name, f"{key}-{secrets.token_hex(4)}"))
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    file = os.fdopen(fd, "r+b")
    validator = None
    if os.fstat(fd).st_size:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            validator = part.with_suffix(".meta").read_text(encoding="utf-8").strip() or None
        if validator is None:  # nothing to check the bytes against: start over
            file.truncate()
    return part, file, validator


def _part_name(name: str, key: str) -> str:
    """``.<name>.<key>.part``, the name shortened to fit one file-name length."""
    room = _MAX_NAME - len(f"..{key}.part".encode())
    short = name.encode()[:room].decode("utf-8", "ignore")
    return f".{short}.{key}.part"


def _lock(fd: int) -> bool:
    """An advisory lock on an open file, held until it is closed (False where unsupported)."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only

    except ImportError:  # pragma: no cover - Windows: no resume across processes
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _fs_error(exc: OSError, url: str, path: Path, received: int = 0) -> DownloadError:
    """A file-system failure as a :class:`DownloadError`, its paths shown as paths."""
    why = exc.strerror or type(exc).__name__
    if exc.filename is not None and os.fsdecode(exc.filename) != str(path):
        why = f"{why} ({os.fsdecode(exc.filename)})"
    return DownloadError(
        f"GET {_display(url)}: cannot save to {path}: {why}",
        url=_display(url),
        path=path,
        received=received,
    )


def check_max_bytes(max_bytes: object) -> None:
    check(max_bytes, "max_bytes", whole(1))


def check_dest(dest: object, url: str, filename: str | None) -> None:
    """Refuse a ``dest`` that :func:`download` would refuse, before any request is sent."""
    try:
        _target(dest, url, filename)  # type: ignore[arg-type]
    except InputError as exc:
        raise InputError(f"dest: {exc}") from None


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows it (POSIX); harmless elsewhere."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."
