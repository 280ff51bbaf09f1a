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

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import aiohttp

from luma_async._download_files import (
    check_dest,
    fs_error,
    fsync_directory,
    open_part,
    target_path,
)
from luma_async._download_http import (
    DEFAULT_MAX_BYTES,
    ProgressCallback,
    RefreshLink,
    Transfer,
    check_video_url,
)
from luma_async._errors import DownloadError, InputError
from luma_async._models import Task, Video
from luma_async._policy import RetryPolicy
from luma_async._validators import (
    SECONDS,
    bool_,
    callable_,
    check,
    instance_of,
    optional,
    whole,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DownloadError",
    "LinkSource",
    "ProgressCallback",
    "RefreshLink",
    "check_dest",
    "check_max_bytes",
    "download",
    "download_for",
    "video_url_of",
]


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
    check_video_url(url)
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
    check_video_url(url)
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
    target = target_path(dest, url, filename)
    if not overwrite and target.exists():
        raise InputError(f"{target} already exists; pass overwrite=True to replace it")

    try:
        part, file, validator = open_part(target, url)
    except OSError as exc:
        raise fs_error(exc, url, target) from exc
    meta = part.with_suffix(".meta")
    transfer: Transfer | None = None
    try:
        transfer = Transfer(
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
            raise fs_error(exc, url, target, received) from exc
        raise
    with contextlib.suppress(OSError):
        meta.unlink()
    fsync_directory(target.parent)
    return target


def check_max_bytes(max_bytes: object) -> None:
    check(max_bytes, "max_bytes", whole(1))


class LinkSource(Protocol):
    """Where :func:`download_for` asks for a video's link: the session's own methods."""

    async def get(self, task_id: str, /) -> Task: ...

    async def download_video_url(self, task_id: str, /) -> str: ...


async def download_for(
    source: LinkSource,
    client: Callable[[], aiohttp.ClientSession],
    task_or_video: Task | Video | str,
    dest: Path | str,
    *,
    watermark: bool,
    progress: ProgressCallback | None,
    max_bytes: int,
    retry: RetryPolicy,
) -> Path:
    """:meth:`LumaSession.download`: every argument checked before the first request.

    For a :class:`Task`, ``source`` gives the link without watermark (``watermark=False``),
    and a fresh link, once, when the first one expired (403).  ``client`` is called only
    once the link is known.
    """
    url = video_url_of(task_or_video)  # a task must be finished, before any request
    check(watermark, "watermark", bool_())
    if progress is not None and not callable(progress):
        raise InputError(f"progress must be callable, not {type(progress).__name__}")
    name = f"{task_or_video.id}.mp4" if isinstance(task_or_video, Task) else None
    check_dest(dest, url, name)  # before the link request below
    check_max_bytes(max_bytes)
    refresh: RefreshLink | None = None
    if isinstance(task_or_video, Task):
        task_id = task_or_video.id

        async def fresh_link() -> str:  # the link expired (403): ask for a fresh one, once
            if not watermark:
                return await source.download_video_url(task_id)
            return video_url_of(await source.get(task_id))

        refresh = fresh_link

    if not watermark:
        if not isinstance(task_or_video, Task):
            raise InputError("watermark=False needs the Task: that link is asked by task id")
        url = await source.download_video_url(task_or_video.id)
    return await download(
        client(),
        url,
        dest,
        progress=progress,
        retry=retry,
        filename=name,
        max_bytes=max_bytes,
        refresh=refresh,
    )
