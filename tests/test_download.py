"""Downloads against the emulator's video host and a scripted one, on loopback, virtual time."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import inspect
import itertools
import signal
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from multidict import CIMultiDict

from luma_async import (
    APIError,
    ExtendRequest,
    InputError,
    LumaError,
    LumaSession,
    NotFoundError,
    PollPolicy,
    RetryPolicy,
    ServerError,
    StateChange,
    Task,
    TaskState,
    TransportError,
    Video,
)
from luma_async._download import DEFAULT_MAX_BYTES, DownloadError, download, video_url_of
from luma_async.testing import LumaEmulator, VirtualClock

from .helpers import finished_task, free_port

FAST = PollPolicy(interval=1.0, max_interval=5.0, jitter=0.0, timeout=300.0)
pytestmark = [pytest.mark.asyncio, pytest.mark.poll(FAST)]
RETRY = RetryPolicy(attempts=4, initial=0.5, max_wait=5.0, timeout=60.0, jitter=0.0)
DATA = bytes(range(256)) * 400  # 102_400 bytes: several chunks


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- a scripted video host: each request follows the next mode of its plan ------------------


class ScriptedHost:
    """Serves ``data`` at ``/video.bin``; ``plan`` says how each request misbehaves.

    Modes: ``honest`` (honours ``Range``), ``cut`` (announces the full answer, sends half of
    it, closes), ``ignore_range`` (always 200), ``stall`` (sends half, then waits),
    ``lie_length`` (announces 1000 bytes more than it sends), ``chunked`` (no length),
    ``chunked_half`` (no length, ends cleanly after half), ``chunked_drop_at_end`` (every
    byte, then closes before the final chunk), ``bad_range`` (a 206 from byte 0),
    ``other_total`` (a 206 announcing another size), ``garbage_range`` (a 206 without a
    readable ``Content-Range``), ``redirect_rel``, ``redirect_loop``,
    ``redirect_ftp``.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.plan: list[str] = []
        self.requests: list[CIMultiDict[str]] = []
        self.release = asyncio.Event()
        self.etag: str | None = '"v1"'
        self.last_modified: str | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/video.bin"

    async def close(self) -> None:
        self.release.set()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(CIMultiDict(request.headers))
        mode = self.plan.pop(0) if self.plan else "honest"
        if mode.startswith("redirect_"):
            location = {
                "redirect_rel": "/video.bin",
                "redirect_loop": "/loop",
                "redirect_ftp": "ftp://127.0.0.1/video.bin",
            }[mode]
            if mode == "redirect_loop":
                self.plan.insert(0, mode)
            raise web.HTTPFound(location)
        size = len(self.data)
        start = 0
        spec = request.headers.get("Range", "")
        ignores_range = mode in ("ignore_range", "ignore_range_cut", "bad_range")
        if spec.startswith("bytes=") and not ignores_range:
            start = int(spec[len("bytes=") : -1])
            if start >= size:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        response = self._head(mode, start)
        await response.prepare(request)
        await self._body(request, response, mode, self.data[start:])
        return response

    def _head(self, mode: str, start: int) -> web.StreamResponse:
        size = len(self.data)
        response = web.StreamResponse(status=206 if start or mode == "bad_range" else 200)
        if self.etag is not None:
            response.headers["ETag"] = self.etag
        if self.last_modified is not None:
            response.headers["Last-Modified"] = self.last_modified
        if response.status == 206:
            total = size + 1 if mode == "other_total" else size
            first = 0 if mode == "bad_range" else start
            response.headers["Content-Range"] = f"bytes {first}-{size - 1}/{total}"
            if mode == "garbage_range":
                response.headers["Content-Range"] = "bytes garbage"
        if not mode.startswith("chunked"):
            length = size - start + (1000 if mode == "lie_length" else 0)
            response.content_length = length
        return response

    async def _body(
        self, request: web.Request, response: web.StreamResponse, mode: str, body: bytes
    ) -> None:
        assert request.transport is not None
        if mode in ("cut", "ignore_range_cut", "stall", "chunked_half"):
            await response.write(body[: len(body) // 2])
            if mode == "stall":
                await self.release.wait()
            if mode in ("cut", "ignore_range_cut"):
                request.transport.close()  # flushes what was written, then closes
            else:
                await response.write_eof()
            return
        await response.write(body)
        if mode in ("lie_length", "chunked_drop_at_end"):
            request.transport.close()
        else:
            await response.write_eof()


@pytest_asyncio.fixture
async def host(vclock: VirtualClock) -> AsyncIterator[ScriptedHost]:
    server = ScriptedHost(DATA)
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def client(host: ScriptedHost) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- the emulator's video host --------------------------------------------------------------


async def test_full_download_equals_the_video(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    dest = tmp_path / "fox.mp4"
    got = await download(luma._aiohttp(), video_url_of(task), dest, retry=luma.retry)
    assert got == dest
    assert dest.read_bytes() == emulator.video_bytes
    assert leftovers(tmp_path) == ["fox.mp4"]
    [request] = emulator.video_requests
    assert "Authorization" not in request.headers
    assert "Range" not in request.headers
    assert request.headers["Accept-Encoding"] == "identity"


async def test_dest_directory_takes_the_name_from_the_url(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    got = await download(luma._aiohttp(), video_url_of(task), tmp_path, retry=luma.retry)
    assert got == tmp_path / f"{task.id}.mp4"
    assert got.read_bytes() == emulator.video_bytes
    named = await download(
        luma._aiohttp(), video_url_of(task), str(tmp_path), retry=luma.retry, filename="x.mp4"
    )
    assert named == tmp_path / "x.mp4"
    assert named.read_bytes() == emulator.video_bytes


async def test_overwrite_replaces_an_existing_file(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    dest = tmp_path / "fox.mp4"
    dest.write_bytes(b"old")
    await download(luma._aiohttp(), video_url_of(task), dest, retry=luma.retry)
    assert dest.read_bytes() == emulator.video_bytes


async def test_overwrite_false_refuses_an_existing_file(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    dest = tmp_path / "fox.mp4"
    dest.write_bytes(b"old")
    with pytest.raises(InputError, match="already exists"):
        await download(luma._aiohttp(), video_url_of(task), dest, retry=luma.retry, overwrite=False)
    assert dest.read_bytes() == b"old"
    assert not emulator.video_requests


async def test_overwrite_false_keeps_a_file_that_appeared_meanwhile(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    dest = tmp_path / "fox.mp4"

    def someone_else_writes(received: int, total: int | None) -> None:
        dest.write_bytes(b"theirs")

    with pytest.raises(DownloadError, match="appeared during the download"):
        await download(
            luma._aiohttp(),
            video_url_of(task),
            dest,
            retry=luma.retry,
            overwrite=False,
            progress=someone_else_writes,
        )
    assert dest.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == ["fox.mp4"]


async def test_sync_progress_sees_every_chunk(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    calls: list[tuple[int, int | None]] = []
    await download(
        luma._aiohttp(),
        video_url_of(task),
        tmp_path / "v.mp4",
        retry=luma.retry,
        chunk_size=1000,
        progress=lambda received, total: calls.append((received, total)),
    )
    size = len(emulator.video_bytes)
    assert len(calls) >= size // 1000
    assert calls[-1] == (size, size)
    assert [r for r, _ in calls] == sorted({r for r, _ in calls})
    assert {t for _, t in calls} == {size}


async def test_async_progress_is_awaited(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    seen: list[int] = []

    async def report(received: int, total: int | None) -> None:
        await asyncio.sleep(0)
        seen.append(received)

    await download(
        luma._aiohttp(),
        video_url_of(task),
        tmp_path / "v.mp4",
        retry=luma.retry,
        chunk_size=4096,
        progress=report,
    )
    assert seen[-1] == len(emulator.video_bytes)
    assert len(seen) >= 2


async def test_a_failing_progress_callback_aborts_without_leftovers(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)

    def broken(received: int, total: int | None) -> None:
        raise RuntimeError("disk quota in the UI")

    with pytest.raises(RuntimeError, match="disk quota"):
        await download(
            luma._aiohttp(),
            video_url_of(task),
            tmp_path / "v.mp4",
            retry=luma.retry,
            progress=broken,
        )
    assert leftovers(tmp_path) == []
    assert len(emulator.video_requests) == 1  # not retried


async def test_404_is_not_retried(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    url = f"{emulator.video_base_url}/videos/no-such-task.mp4?expires=99999999999&sig=secret"
    with pytest.raises(NotFoundError) as caught:
        await download(luma._aiohttp(), url, tmp_path / "v.mp4", retry=luma.retry)
    assert caught.value.status == 404
    assert "secret" not in str(caught.value)
    assert len(emulator.video_requests) == 1
    assert leftovers(tmp_path) == []


async def test_416_without_a_partial_file_is_not_retried(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    emulator.inject("video", status=416)
    with pytest.raises(APIError, match="answered 416") as caught:
        await download(luma._aiohttp(), video_url_of(task), tmp_path / "v.mp4", retry=RETRY)
    assert caught.value.status == 416
    assert len(emulator.video_requests) == 1


async def test_dropped_connection_and_503_are_retried(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    emulator.inject("video", drop=True)
    emulator.inject("video", status=503)
    dest = await download(luma._aiohttp(), video_url_of(task), tmp_path / "v.mp4", retry=RETRY)
    assert dest.read_bytes() == emulator.video_bytes
    assert len(emulator.video_requests) == 3


async def test_retry_after_of_the_video_host_is_honoured(
    luma: LumaSession, emulator: LumaEmulator, vclock: VirtualClock, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    emulator.inject("video", status=429, retry_after=7)
    before = vclock.monotonic()
    await download(luma._aiohttp(), video_url_of(task), tmp_path / "v.mp4", retry=RETRY)
    assert vclock.monotonic() - before >= 7


async def test_retries_stop_after_attempts_without_progress(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    emulator.inject("video", status=502, count=10)
    with pytest.raises(ServerError):
        await download(luma._aiohttp(), video_url_of(task), tmp_path / "v.mp4", retry=RETRY)
    assert len(emulator.video_requests) == RETRY.attempts
    assert leftovers(tmp_path) == []


async def test_endless_drops_end_in_a_transport_error(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    emulator.inject("video", drop=True, count=100)
    with pytest.raises(TransportError):
        await download(luma._aiohttp(), video_url_of(task), tmp_path / "v.mp4", retry=RETRY)
    # aiohttp itself re-sends an idempotent request once when the server disconnects.
    assert RETRY.attempts <= len(emulator.video_requests) <= 2 * RETRY.attempts
    assert leftovers(tmp_path) == []


async def test_retries_stop_at_the_deadline(
    luma: LumaSession, emulator: LumaEmulator, vclock: VirtualClock, tmp_path: Path
) -> None:
    task = await finished_task(luma)
    emulator.inject("video", status=503, count=1000)
    policy = RetryPolicy(attempts=1000, initial=1.0, max_wait=1.0, timeout=10.0, jitter=0.0)
    before = vclock.monotonic()
    with pytest.raises(ServerError):
        await download(luma._aiohttp(), video_url_of(task), tmp_path / "v.mp4", retry=policy)
    assert 10 <= vclock.monotonic() - before <= 12
    assert 9 <= len(emulator.video_requests) <= 12


async def test_redirect_never_carries_the_token(vclock: VirtualClock, tmp_path: Path) -> None:
    async with (
        LumaEmulator(video_redirect=True) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=FAST) as luma,
    ):
        task = await finished_task(luma)
        url = video_url_of(task)
        assert url.startswith(f"{emu.base_url}/cdn/")  # the API host, which redirects
        dest = await download(luma._aiohttp(), url, tmp_path / "v.mp4", retry=luma.retry)
        assert dest.read_bytes() == emu.video_bytes
        hops = [r for r in emu.requests if r.route in ("cdn", "video")]
    assert [r.route for r in hops] == ["cdn", "video"]
    assert emu.video_requests == hops[1:]
    for request in hops:
        assert "Authorization" not in request.headers
        assert emu.api_key not in str(dict(request.headers))


async def test_a_session_with_default_credentials_is_refused(tmp_path: Path) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as session:
        with pytest.raises(InputError, match="never get them"):
            await download(session, "http://127.0.0.1:9/v.mp4", tmp_path, retry=RETRY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # BasicAuth, in aiohttp >= 3.14
        session = aiohttp.ClientSession(auth=aiohttp.BasicAuth("u", "p"))
    async with session:
        with pytest.raises(InputError, match="never get them"):
            await download(session, "http://127.0.0.1:9/v.mp4", tmp_path, retry=RETRY)


# -- broken transfers (the scripted host) -----------------------------------------------------


async def test_a_cut_transfer_resumes_with_a_range_request(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["cut"]
    seen: list[int] = []
    dest = await download(
        client, host.url, tmp_path / "v.bin", retry=RETRY, progress=lambda r, t: seen.append(r)
    )
    assert dest.read_bytes() == DATA
    first, second = host.requests
    assert "Range" not in first
    half = len(DATA) // 2
    assert second["Range"] == f"bytes={half}-"
    assert second["If-Range"] == '"v1"'
    assert seen == sorted(seen)
    assert seen[-1] == len(DATA)
    assert leftovers(tmp_path) == ["v.bin"]


async def test_a_200_answer_to_a_range_request_starts_over(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["cut", "ignore_range"]
    seen: list[int] = []
    dest = await download(
        client,
        host.url,
        tmp_path / "v.bin",
        retry=RETRY,
        chunk_size=1000,
        progress=lambda r, t: seen.append(r),
    )
    assert dest.read_bytes() == DATA
    assert "Range" in host.requests[1]
    assert any(later < earlier for earlier, later in itertools.pairwise(seen))  # started over
    assert seen[-1] == len(DATA)
    assert leftovers(tmp_path) == ["v.bin"]


async def test_restarting_without_progress_counts_as_failure(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # Ignoring Range and breaking half-way every time, the host never lets the file grow past
    # half: only the first break was progress, so the retries give up after `attempts`.
    host.plan = ["ignore_range_cut"] * 10
    policy = RetryPolicy(attempts=3, initial=0.5, timeout=60.0, jitter=0.0)
    with pytest.raises(TransportError, match="broke after"):
        await download(client, host.url, tmp_path / "v.bin", retry=policy)
    assert len(host.requests) == 3
    assert leftovers(tmp_path) == []


async def test_a_read_timeout_mid_body_resumes(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["stall"]
    dest = await download(client, host.url, tmp_path / "v.bin", retry=RETRY, read_timeout=0.2)
    assert dest.read_bytes() == DATA
    assert host.requests[1]["Range"] == f"bytes={len(DATA) // 2}-"


async def test_a_body_that_ends_short_without_a_length_is_resumed(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["chunked_half"]
    dest = await download(
        client, host.url, tmp_path / "v.bin", retry=RETRY, expected_size=len(DATA)
    )
    assert dest.read_bytes() == DATA
    assert host.requests[1]["Range"] == f"bytes={len(DATA) // 2}-"


async def test_416_for_a_complete_file_counts_as_done(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["chunked_drop_at_end"]
    dest = await download(client, host.url, tmp_path / "v.bin", retry=RETRY)
    assert dest.read_bytes() == DATA
    assert host.requests[1]["Range"] == f"bytes={len(DATA)}-"


async def test_a_server_lying_about_the_length_leaves_no_file(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["lie_length"]
    with pytest.raises(DownloadError, match=f"has {len(DATA)} bytes") as caught:
        await download(client, host.url, tmp_path / "v.bin", retry=RETRY)
    assert caught.value.received == len(DATA)
    assert caught.value.expected == len(DATA) + 1000
    assert caught.value.path == tmp_path / "v.bin"
    assert leftovers(tmp_path) == []


async def test_a_longer_body_than_expected_is_an_error(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["chunked"]
    with pytest.raises(DownloadError, match="more than the 1000 bytes"):
        await download(client, host.url, tmp_path / "v.bin", retry=RETRY, expected_size=1000)
    assert leftovers(tmp_path) == []
    assert len(host.requests) == 1


async def test_an_announced_size_other_than_expected_is_an_error(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match=f"announces {len(DATA)} bytes, 5 expected"):
        await download(client, host.url, tmp_path / "v.bin", retry=RETRY, expected_size=5)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("resumed", "message"),
    [
        ("bad_range", "starting at 0"),  # a range from the wrong offset
        ("garbage_range", "starting at None"),  # an unreadable Content-Range
        ("other_total", "changed size"),  # a file that changed size between the two requests
    ],
)
async def test_a_resume_that_does_not_continue_the_file_is_an_error(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path, resumed: str, message: str
) -> None:
    host.plan = ["cut", resumed]
    with pytest.raises(DownloadError, match=message):
        await download(client, host.url, tmp_path / "v.bin", retry=RETRY)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("etag", "last_modified", "if_range"),
    [
        ('W/"weak"', None, None),
        ('W/"weak"', "Mon, 01 Jul 2024 07:35:13 GMT", "Mon, 01 Jul 2024 07:35:13 GMT"),
        (None, None, None),
    ],
)
async def test_if_range_uses_a_strong_validator_only(
    host: ScriptedHost,
    client: aiohttp.ClientSession,
    tmp_path: Path,
    *,
    etag: str | None,
    last_modified: str | None,
    if_range: str | None,
) -> None:
    host.etag, host.last_modified = etag, last_modified
    host.plan = ["cut"]
    dest = await download(client, host.url, tmp_path / "v.bin", retry=RETRY)
    assert dest.read_bytes() == DATA
    assert host.requests[1]["Range"] == f"bytes={len(DATA) // 2}-"
    assert host.requests[1].get("If-Range") == if_range


async def test_cancellation_leaves_nothing_behind(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["stall"]
    started = asyncio.Event()
    dest = tmp_path / "v.bin"
    job = asyncio.create_task(
        download(client, host.url, dest, retry=RETRY, progress=lambda r, t: started.set())
    )
    await started.wait()
    assert any(name.endswith(".part") for name in leftovers(tmp_path))
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert leftovers(tmp_path) == []


async def test_relative_redirects_are_followed(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["redirect_rel", "cut", "redirect_rel"]
    dest = await download(client, host.url.replace("video.bin", "start"), tmp_path, retry=RETRY)
    assert dest == tmp_path / "start"
    assert dest.read_bytes() == DATA
    assert host.requests[3]["Range"] == f"bytes={len(DATA) // 2}-"  # kept across the hop


async def test_redirect_loops_and_foreign_schemes_are_errors(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.plan = ["redirect_loop"]
    with pytest.raises(DownloadError, match="more than 2 redirects"):
        await download(client, host.url, tmp_path / "v.bin", retry=RETRY, max_redirects=2)
    assert len(host.requests) == 3
    host.plan = ["redirect_ftp"]
    with pytest.raises(DownloadError, match="ftp: link"):
        await download(client, host.url, tmp_path / "v.bin", retry=RETRY)
    assert leftovers(tmp_path) == []


async def test_an_unreachable_host_is_a_transport_error(
    client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v.bin"
    with pytest.raises(TransportError, match=r"127\.0\.0\.1"):
        await download(client, url, tmp_path, retry=RetryPolicy(attempts=2))
    assert leftovers(tmp_path) == []


# -- arguments are checked before any request ------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "ftp://example.com/v.mp4"}, "http\\(s\\) link"),
        ({"url": "file:///etc/passwd"}, "http\\(s\\) link"),
        ({"url": "http:///no-host"}, "http\\(s\\) link"),
        ({"url": "http://example.com:port/"}, "not a URL"),
        ({"url": b"http://example.com/"}, "must be a string"),
        ({"client": "session"}, "aiohttp.ClientSession"),
        ({"retry": 3}, "RetryPolicy"),
        ({"expected_size": True}, "expected_size"),
        ({"expected_size": -1}, "expected_size"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"max_redirects": 1.5}, "max_redirects"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"read_timeout": True}, "read_timeout"),
        ({"progress": 42}, "callable"),
        ({"dest": 42}, "dest must be a path"),
        ({"dest": "missing-dir/v.mp4"}, "does not exist"),
        ({"url": "http://127.0.0.1:9/"}, "cannot name a file"),
        ({"filename": "../x"}, "cannot name a file"),
        ({"filename": ".."}, "cannot name a file"),
    ],
)
async def test_bad_arguments_are_input_errors(
    change: dict[str, object], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with aiohttp.ClientSession() as session:
        arguments: dict[str, object] = {
            "client": session,
            "url": "http://127.0.0.1:9/v.mp4",
            "dest": tmp_path,
            "retry": RETRY,
        }
        arguments.update(change)
        call: Callable[..., object] = download
        with pytest.raises(InputError, match=message):
            await call(**arguments)  # type: ignore[misc]
    assert leftovers(tmp_path) == []


# -- which link --------------------------------------------------------------------------------


def test_video_url_of_prefers_download_url() -> None:
    video = Video("https://cdn.example/w.mp4", download_url="https://cdn.example/clean.mp4")
    assert video_url_of(video) == "https://cdn.example/clean.mp4"
    assert video_url_of(Video("https://cdn.example/w.mp4")) == "https://cdn.example/w.mp4"
    task = Task("t1", TaskState.COMPLETED, video=video)
    assert video_url_of(task) == "https://cdn.example/clean.mp4"
    assert video_url_of("http://cdn.example/v.mp4") == "http://cdn.example/v.mp4"


def test_video_url_of_a_task_without_video() -> None:
    with pytest.raises(InputError, match="t1 has no video yet \\(state processing\\)"):
        video_url_of(Task("t1", TaskState.PROCESSING))
    with pytest.raises(InputError, match="t2 failed: moderation"):
        video_url_of(Task("t2", TaskState.FAILED, failure_reason="moderation"))
    with pytest.raises(InputError, match="t3 failed; it has no video"):
        video_url_of(Task("t3", TaskState.FAILED))


def test_video_url_of_rejects_other_values() -> None:
    with pytest.raises(InputError, match="not int"):
        video_url_of(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="http\\(s\\)"):
        video_url_of("data:video/mp4;base64,AAAA")
    with pytest.raises(InputError, match="http\\(s\\)"):
        video_url_of(Video("s3://bucket/v.mp4"))


def test_download_error_is_a_luma_error() -> None:
    assert issubclass(DownloadError, LumaError)


# -- LumaSession.download and batches that download ------------------------------------------


async def test_session_download_of_a_task_a_video_and_a_url(
    emulator: LumaEmulator, tmp_path: Path
) -> None:

    policy = PollPolicy(interval=1, max_interval=5, jitter=0, timeout=300)
    async with LumaSession(emulator.api_key, base_url=emulator.base_url, poll=policy) as luma:
        task = await luma.generate("a fox")
        with pytest.raises(InputError):
            await luma.download(task, tmp_path)  # not finished: refused before any request
        done = await luma.wait(task.id)
        path = await luma.download(done, tmp_path)
        assert path == tmp_path / f"{done.id}.mp4"
        assert path.read_bytes() == emulator.video_bytes
        emulator.reset_records()
        clean = await luma.download(done, tmp_path / "clean.mp4", watermark=False)
        assert clean.read_bytes() == emulator.video_bytes
        assert emulator.count("download_video_url") == 1
        assert any(
            "watermark=0" in str(r.query) or r.query.get("watermark") == "0"
            for r in emulator.video_requests
        )
        assert done.video is not None
        seen: list[int] = []
        by_video = await luma.download(
            done.video, tmp_path / "v.mp4", progress=lambda got, total: seen.append(got)
        )
        assert by_video.read_bytes() == emulator.video_bytes
        assert seen[-1] == len(emulator.video_bytes)
        with pytest.raises(InputError):
            await luma.download(done.video, tmp_path, watermark=False)
    assert all("Authorization" not in r.headers for r in emulator.video_requests)


async def test_extend_many_downloads_each_result(emulator: LumaEmulator, tmp_path: Path) -> None:

    policy = PollPolicy(interval=1, max_interval=5, jitter=0, timeout=300)
    async with LumaSession(emulator.api_key, base_url=emulator.base_url, poll=policy) as luma:
        parent = await luma.wait((await luma.generate("root")).id)
        requests = [ExtendRequest(parent.id, f"step {i}") for i in range(4)]
        results = [r async for r in luma.extend_many(requests, download_to=tmp_path)]
        assert all(r.ok and r.path is not None for r in results)
        assert {p.name for p in tmp_path.iterdir()} == {f"{r.task_id}.mp4" for r in results}
        emulator.inject("video", count=20, status=404)
        broken = [r async for r in luma.extend_many(requests[:1], download_to=tmp_path)]
        assert broken[0].task is not None
        assert broken[0].error is not None
        with pytest.raises(InputError):
            luma.extend_many(requests, download_to=tmp_path / "missing")


# -- bounds on what a video host can make us write (issue 11.9) --------------------------------


class HostileHost:
    """A video host written from scratch: endless bodies, huge lengths, encoded bodies."""

    def __init__(self) -> None:
        self.sent = 0
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/endless.mp4", self._endless)
        app.router.add_get("/huge.mp4", self._huge)
        app.router.add_get("/gzip.mp4", self._gzip)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: chunked, never ending
        await response.prepare(request)
        chunk = b"\0" * 65_536
        with contextlib.suppress(ConnectionError):
            for _ in range(100_000):  # 6.5 GB, unless the client hangs up first
                await response.write(chunk)
                self.sent += len(chunk)
        return response

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(5 * 1024**3)})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(1_000):
                await response.write(b"\0" * 65_536)
                self.sent += 65_536
        return response

    async def _gzip(self, request: web.Request) -> web.Response:
        body = gzip.compress(b"\0" * 5_000_000)  # 5 MB inflated from about 5 kB
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})


@pytest_asyncio.fixture
async def hostile(vclock: VirtualClock) -> AsyncIterator[HostileHost]:
    server = HostileHost()
    await server.start()
    yield server
    await server.close()


async def test_an_endless_body_stops_at_max_bytes(hostile: HostileHost, tmp_path: Path) -> None:
    cap = 1_000_000
    written: list[int] = []
    async with aiohttp.ClientSession() as client:
        with pytest.raises(DownloadError, match="max_bytes") as caught:
            await download(
                client,
                f"{hostile.base}/endless.mp4",
                tmp_path / "v.mp4",
                retry=RETRY,
                max_bytes=cap,
                progress=lambda got, total: written.append(got),
            )
    assert max(written) <= cap  # never more than the cap on disk
    assert caught.value.received <= cap
    assert leftovers(tmp_path) == []  # the partial file is not kept: the download is refused
    assert hostile.sent < 50 * cap  # the connection was dropped, not read to its end


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("huge.mp4", "announces 5368709120 bytes"),  # over max_bytes: refused before the body
        # aiohttp decompresses by default: not for videos, the encoded body is not inflated
        ("gzip.mp4", "'gzip'-encoded body"),
    ],
)
async def test_a_body_refused_by_its_headers_is_never_read(
    hostile: HostileHost, tmp_path: Path, path: str, message: str
) -> None:
    async with aiohttp.ClientSession() as client:
        with pytest.raises(DownloadError, match=message) as caught:
            await download(client, f"{hostile.base}/{path}", tmp_path / "v.mp4", retry=RETRY)
    assert caught.value.received == 0
    assert leftovers(tmp_path) == []


def test_the_default_cap_suits_a_video() -> None:
    assert DEFAULT_MAX_BYTES == 2 * 1024**3
    assert inspect.signature(download).parameters["max_bytes"].default == DEFAULT_MAX_BYTES
    assert (
        inspect.signature(LumaSession.download).parameters["max_bytes"].default == DEFAULT_MAX_BYTES
    )


# -- file-system failures, expired links, leftovers of a killed process (issue 11.10) ----------


async def test_a_long_destination_name_still_downloads(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    folder = tmp_path / ("d" * 241)
    folder.mkdir()
    name = "v" * 250 + ".mp4"  # a valid name; ".<name>.<random>.part" was not
    dest = await download(client, host.url, folder / name, retry=RETRY)
    assert dest.read_bytes() == DATA
    assert leftovers(folder) == [name]


@pytest.mark.parametrize("where", ["name", "directory"])
async def test_a_name_the_file_system_refuses_is_a_download_error(
    where: str, host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / ("n" * 300) if where == "name" else tmp_path / ("d" * 300) / "v.mp4"
    with pytest.raises(DownloadError) as caught:
        await download(client, host.url, dest, retry=RETRY)
    assert "File name too long" in str(caught.value)
    assert str(tmp_path) in str(caught.value)
    assert "PosixPath" not in str(caught.value)  # a path shown as a path
    assert caught.value.path == dest
    assert leftovers(tmp_path) == []


async def test_a_directory_in_the_way_is_a_download_error(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    (tmp_path / "v.mp4").mkdir()  # where the finished file must go
    with pytest.raises(DownloadError, match="Is a directory") as caught:
        await download(client, host.url, tmp_path, filename="v.mp4", retry=RETRY)
    assert f"cannot save to {tmp_path / 'v.mp4'}: " in str(caught.value)
    assert caught.value.received == len(DATA)
    assert leftovers(tmp_path) == ["v.mp4"]


async def test_extend_many_reports_a_file_system_failure_in_the_result(
    emulator: LumaEmulator, tmp_path: Path
) -> None:
    policy = PollPolicy(interval=1, max_interval=5, jitter=0, timeout=300)
    async with LumaSession(emulator.api_key, base_url=emulator.base_url, poll=policy) as luma:
        parent = await luma.wait((await luma.generate("root")).id)

        def block(change: StateChange) -> None:  # a directory where the video must go
            (tmp_path / f"{change.task_id}.mp4").mkdir(exist_ok=True)

        requests = [ExtendRequest(parent.id, f"step {i}") for i in range(2)]
        results = [
            r async for r in luma.extend_many(requests, download_to=tmp_path, on_change=block)
        ]
    assert len(results) == 2
    for result in results:
        assert result.task is not None
        assert result.path is None
        assert isinstance(result.error, DownloadError)
        assert f"{tmp_path}/{result.task_id}.mp4" in str(result.error)
    assert all(not name.endswith((".part", ".meta")) for name in leftovers(tmp_path))


@pytest.mark.parametrize("watermark", [True, False])
async def test_an_expired_link_is_fetched_again_once(
    watermark: bool, luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    done = await finished_task(luma)
    emulator.reset_records()
    emulator.inject("video", status=403)  # the presigned link expired
    path = await luma.download(done, tmp_path / "v.mp4", watermark=watermark)
    assert path.read_bytes() == emulator.video_bytes
    assert len(emulator.video_requests) == 2
    if watermark:
        assert emulator.count("get") == 1  # the task again, for its fresh link
    else:
        assert emulator.count("download_video_url") == 2
    emulator.inject("video", count=2, status=403)  # still refused: once only, then the error
    with pytest.raises(APIError) as caught:
        await luma.download(done, tmp_path / "w.mp4", watermark=watermark)
    assert caught.value.status == 403
    assert leftovers(tmp_path) == ["v.mp4"]


async def test_a_403_without_a_way_to_refresh_is_an_error(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    done = await finished_task(luma)
    assert done.video is not None
    emulator.inject("video", status=403)
    with pytest.raises(APIError) as caught:
        await luma.download(done.video, tmp_path / "v.mp4")  # a Video: no task to ask again
    assert caught.value.status == 403


async def _killed_midway(
    host: ScriptedHost, client: aiohttp.ClientSession, dest: Path
) -> dict[str, bytes]:
    """What a process killed mid-download leaves on disk: its files as they are, kept."""
    host.plan = ["stall"]
    started = asyncio.Event()
    job = asyncio.create_task(
        download(client, host.url, dest, retry=RETRY, progress=lambda r, t: started.set())
    )
    await started.wait()
    left = {p.name: p.read_bytes() for p in dest.parent.iterdir()}
    job.cancel()  # a kill would not clean up; the files are put back below
    with pytest.raises(asyncio.CancelledError):
        await job
    for name, data in left.items():
        (dest.parent / name).write_bytes(data)
    return left


async def test_a_part_left_by_a_killed_process_is_resumed(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    left = await _killed_midway(host, client, tmp_path / "v.bin")
    part = next(data for name, data in left.items() if name.endswith(".part"))
    assert 0 < len(part) < len(DATA)
    assert part == DATA[: len(part)]
    host.requests.clear()
    dest = await download(client, host.url, tmp_path / "v.bin", retry=RETRY)
    assert dest.read_bytes() == DATA
    (again,) = host.requests
    assert again["Range"] == f"bytes={len(part)}-"
    assert again["If-Range"] == '"v1"'
    assert leftovers(tmp_path) == ["v.bin"]


async def test_a_leftover_part_is_not_trusted_without_its_validator(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    left = await _killed_midway(host, client, tmp_path / "v.bin")
    for name in left:
        if name.endswith(".meta"):
            (tmp_path / name).unlink()
        else:
            (tmp_path / name).write_bytes(b"garbage")
    host.requests.clear()
    dest = await download(client, host.url, tmp_path / "v.bin", retry=RETRY)
    assert dest.read_bytes() == DATA
    assert all("Range" not in r for r in host.requests)
    assert leftovers(tmp_path) == ["v.bin"]


async def test_two_downloads_to_one_destination_do_not_share_a_part(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    paths = await asyncio.gather(
        *(download(client, host.url, tmp_path / "v.bin", retry=RETRY) for _ in range(3))
    )
    assert all(p.read_bytes() == DATA for p in paths)
    assert leftovers(tmp_path) == ["v.bin"]


async def test_a_part_file_that_cannot_be_opened_is_a_download_error(
    host: ScriptedHost, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    key = hashlib.sha256(host.url.encode()).hexdigest()[:12]
    (tmp_path / f".v.bin.{key}.part").mkdir()  # a directory where the .part must go
    with pytest.raises(DownloadError, match="Is a directory") as caught:
        await download(client, host.url, tmp_path / "v.bin", retry=RETRY)
    assert caught.value.path == tmp_path / "v.bin"
    assert host.requests == []  # refused before any request


_WORKER = """
import asyncio, sys
import aiohttp
from luma_async import RetryPolicy
from luma_async._download import download

async def main() -> None:
    async with aiohttp.ClientSession() as client:
        await download(client, sys.argv[1], sys.argv[2], retry=RetryPolicy())

asyncio.run(main())
"""


async def test_a_download_sigkilled_midway_is_resumed_by_the_next(tmp_path: Path) -> None:
    """A real process, killed with SIGKILL while the body is half sent; then a new download."""
    requests: list[CIMultiDict[str]] = []
    release = asyncio.Event()

    async def serve(request: web.Request) -> web.StreamResponse:
        requests.append(CIMultiDict(request.headers))
        start = int(request.headers.get("Range", "bytes=0-")[6:-1] or 0)
        response = web.StreamResponse(status=206 if start else 200, headers={"ETag": '"v1"'})
        if start:
            response.headers["Content-Range"] = f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"
        response.content_length = len(DATA) - start
        await response.prepare(request)
        if start:
            await response.write(DATA[start:])
            return response
        await response.write(DATA[: len(DATA) // 2])
        await release.wait()  # the first download stalls here until it is killed
        return response

    app = web.Application()
    app.router.add_get("/video.bin", serve)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/video.bin"
    dest = tmp_path / "v.bin"
    root = Path(__file__).resolve().parent.parent
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WORKER, url, str(dest), cwd=root
        )
        deadline = time.monotonic() + 30
        part: list[Path] = []
        while not (part := [p for p in tmp_path.iterdir() if p.suffix == ".part"]) or not (
            part[0].stat().st_size
        ):
            assert proc.returncode is None and time.monotonic() < deadline
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        left = part[0].stat().st_size
        assert 0 < left < len(DATA)
        assert any(p.suffix == ".meta" for p in tmp_path.iterdir())
        async with aiohttp.ClientSession() as client:
            got = await download(client, url, dest, retry=RETRY)
        assert got.read_bytes() == DATA
        assert requests[-1]["Range"] == f"bytes={left}-"
        assert requests[-1]["If-Range"] == '"v1"'
        assert leftovers(tmp_path) == ["v.bin"]
    finally:
        release.set()
        await runner.cleanup()


async def test_a_resumed_batch_downloads_what_the_killed_run_had_not(
    emulator: LumaEmulator, tmp_path: Path
) -> None:
    """A journaled batch that finished a task but died before its download: the rerun
    fetches the video (and only that one), and sends nothing again."""
    policy = PollPolicy(interval=1, max_interval=5, jitter=0, timeout=300)
    journal = tmp_path / "run.sqlite"
    videos = tmp_path / "videos"
    videos.mkdir()
    async with LumaSession(emulator.api_key, base_url=emulator.base_url, poll=policy) as luma:
        parent = await luma.wait((await luma.generate("root")).id)
        requests = [ExtendRequest(parent.id, f"step {i}") for i in range(2)]
        first = [r async for r in luma.extend_many(requests, journal=journal, download_to=videos)]
        assert all(r.path is not None and r.path.is_file() for r in first)
        lost = first[0].path
        assert lost is not None
        lost.unlink()  # as if the process had died before this download
        emulator.reset_records()
        again = [r async for r in luma.extend_many(requests, journal=journal, download_to=videos)]
    assert emulator.count("extend") == 0
    assert emulator.count("video") == 1  # only the missing video
    assert {r.task_id: r.path for r in again} == {r.task_id: r.path for r in first}
    assert all(r.path is not None and r.path.is_file() and r.error is None for r in again)
