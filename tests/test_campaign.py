"""Issue 11's campaign: every hostile behaviour at once, against one from-scratch server.

One aiohttp.web app on 127.0.0.1 (not the emulator) plays an attacker and a flaky network at
the same time: unreadable 2xx answers to paid POSTs, gzip bombs, a Retry-After of 1e8, the
key echoed back in every form, tasks that stay pending for thousands of polls, a flood of
forged callbacks, connections that never send their headers, endless and compressed
videos, and a destination with a very long name.  Everything runs concurrently in one
session on the virtual clock, bounded in time, and each item's guarantee is checked at the
end: nothing billed twice, nothing crashed or leaked, every resource bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from luma_async import (
    APIError,
    CallbackReceiver,
    DownloadError,
    ExtendRequest,
    InputError,
    LumaSession,
    PollPolicy,
    RateLimitError,
    RetryPolicy,
    SubmissionUncertainError,
    Task,
    _clock,
)
from luma_async.testing import VirtualClock
from tests.test_hostile import serve

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

KEY = "sk-campaign-0123456789abcdef"
ESCAPED_KEY = "".join(f"\\u{ord(c):04x}" for c in KEY)
PENDING_POLLS = 2_000  # past the ~1,750 polls where the interval used to overflow
CAP = 16 * 1024 * 1024


def _task(task_id: str, state: str = "pending", *, video: bool = False) -> dict[str, object]:
    return {
        "id": task_id,
        "prompt": "p",
        "state": state,
        "created_at": "2024-07-01T10:00:00Z",
        "video": {"url": f"http://127.0.0.1:1/{task_id}.mp4"} if video else None,
    }


def _gzip(payload: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(payload) + packer.flush()


class Hostile:
    """The from-scratch server's state: what it was asked, and what it answers."""

    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()  # paid POSTs per parent task / prompt
        self.gets: Counter[str] = Counter()
        self.bomb = _gzip(b'{"id": "bomb", "notes": "' + b"0" * (6 * CAP) + b'"}')
        self.base = ""

    async def extend(self, request: web.Request) -> web.StreamResponse:
        parent = request.match_info["task_id"]
        self.posts[parent] += 1
        if parent == "html-201":
            return web.Response(status=201, text="<html>Created task new-html</html>")
        if parent == "bad-date":
            return web.json_response({**_task("new-bad-date"), "created_at": "yesterday-ish"})
        return web.json_response(_task(f"new-{parent}"), status=201)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        self.posts["generate"] += 1
        return web.Response(status=200, body=self.bomb, headers={"Content-Encoding": "gzip"})

    async def get(self, request: web.Request) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        self.gets[task_id] += 1
        if task_id == "bomb":
            return web.Response(status=503, body=self.bomb, headers={"Content-Encoding": "gzip"})
        if task_id == "slow-down":
            return web.Response(status=429, headers={"Retry-After": "1e8"})
        if task_id == "echo":
            return web.Response(
                status=500,
                text=json.dumps({"detail": "bad token"})[:-1] + f', "token": "{ESCAPED_KEY}"}}',
                headers={"Location": f"https://evil.example/?k={KEY}", "X-Echo": KEY},
                content_type="application/json",
            )
        if task_id == "flooded":
            return web.json_response(_task(task_id, "pending"))
        if task_id == "long-queue":
            done = self.gets[task_id] > PENDING_POLLS
            return web.json_response(_task(task_id, "completed" if done else "pending", video=done))
        return web.json_response(_task(task_id, "completed", video=True))

    async def video(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "small.mp4":
            return web.Response(body=b"\0" * 10_000, content_type="video/mp4")
        if name == "gzipped.mp4":
            return web.Response(body=_gzip(b"\0" * 100_000), headers={"Content-Encoding": "gzip"})
        response = web.StreamResponse()  # endless, no Content-Length
        await response.prepare(request)
        chunk = b"\0" * 65_536
        for _ in range(10_000):  # bounded: at most 655 MB, far past any cap used here
            await response.write(chunk)
        return response


@pytest_asyncio.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    routes = [
        ("POST", "/luma/generations/{task_id}/extend", server.extend),
        ("POST", "/luma/generations", server.generate),
        ("GET", "/luma/generations/{task_id}", server.get),
        ("GET", "/v/{name}", server.video),
    ]
    async with serve(routes) as url:
        server.base = url
        yield server


async def _silent_connections(receiver: CallbackReceiver, count: int) -> list[bool]:
    """Open ``count`` connections that start their headers and never finish them."""
    streams = [await asyncio.open_connection(receiver.host, receiver.port) for _ in range(count)]
    for _, writer in streams:
        writer.write(b"POST /luma-hook/x HTTP/1.1\r\nHost: a\r\n")
    closed = []
    for reader, writer in streams:
        try:
            closed.append(await asyncio.wait_for(reader.read(), timeout=10) == b"")
        except (ConnectionError, TimeoutError):
            closed.append(True)
        finally:
            writer.close()
    return closed


async def test_the_whole_hostile_world_at_once(  # noqa: PLR0915 - every item at once, on purpose
    hostile: Hostile, vclock: VirtualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="luma_async")
    journal = tmp_path / "campaign.sqlite"
    requests = [ExtendRequest(p, "more") for p in ("html-201", "bad-date", "good-1", "good-2")]
    poll = PollPolicy(interval=0.5, max_interval=2.0, timeout=None)
    long_dir = tmp_path / ("d" * 250)
    long_dir.mkdir()
    # 12. credentials in the base URL: refused before anything
    with pytest.raises(InputError) as refused:
        LumaSession(KEY, base_url=hostile.base.replace("http://", "http://user:hunter2@"))
    assert "hunter2" not in str(refused.value)

    async with LumaSession(
        KEY, base_url=hostile.base, retry=RetryPolicy(attempts=3, timeout=5.0), poll=poll
    ) as luma:
        receiver = CallbackReceiver(luma, max_connections=20, header_timeout=2.0)
        await receiver.start()

        async def batch_run() -> list[object]:
            batch = luma.extend_many(requests, journal=journal)
            return [result async for result in batch]

        async def flood() -> tuple[int, float]:
            """5. 1,000 forged callbacks for a task polled once a minute: (GETs, seconds)."""
            quiet = PollPolicy(interval=60.0, max_interval=60.0, jitter=0.0, timeout=None)
            follower = asyncio.ensure_future(luma.wait("flooded", policy=quiet))
            while hostile.gets["flooded"] == 0:
                await asyncio.sleep(0.001)
            started, before = _clock.monotonic(), hostile.gets["flooded"]
            for _ in range(1_000):
                luma.notify("flooded")
                await asyncio.sleep(0.0002)
            await asyncio.sleep(0.2)  # let forced GETs that were sent arrive
            got, took = hostile.gets["flooded"] - before, _clock.monotonic() - started
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            return got, took

        outcomes = await asyncio.gather(
            batch_run(),  # 1. unreadable 2xx on paid POSTs
            luma.generate("a gzip bomb answers"),  # 1 + 8. over the cap, on a paid POST
            luma.get("bomb"),  # 8. a bomb in an error body
            luma.get("slow-down"),  # 7. Retry-After 1e8
            luma.get("echo"),  # 11. the key echoed back
            luma.wait("long-queue"),  # 4. thousands of polls
            flood(),
            luma.download(f"{hostile.base}/v/endless.mp4", tmp_path, max_bytes=1_000_000),  # 9.
            luma.download(f"{hostile.base}/v/gzipped.mp4", tmp_path),  # 9. encoded anyway
            luma.download(f"{hostile.base}/v/small.mp4", long_dir),  # 10. a very long name
            _silent_connections(receiver, 40),  # 6. slowloris
            return_exceptions=True,
        )
        await receiver.close()
    (
        results,
        bombed,
        capped,
        slowed,
        echoed,
        waited,
        flooded,
        endless,
        gzipped,
        long_name,
        silent,
    ) = outcomes

    # 1. money: unreadable 2xx answers are uncertain, and a second run sends nothing again
    assert isinstance(results, list), results
    errors = {r.request.task_id: r.error for r in results}  # type: ignore[attr-defined]
    assert isinstance(errors["html-201"], SubmissionUncertainError)
    assert isinstance(errors["bad-date"], SubmissionUncertainError)
    assert errors["bad-date"].task_id == "new-bad-date"
    assert isinstance(bombed, SubmissionUncertainError)
    async with LumaSession(KEY, base_url=hostile.base, poll=poll) as luma:
        again = [r async for r in luma.extend_many(requests, journal=journal)]
    assert {r.request.task_id for r in again} == {r.task_id for r in requests}
    assert hostile.posts == Counter(
        {"html-201": 1, "bad-date": 1, "good-1": 1, "good-2": 1, "generate": 1}
    )
    # 8. bombs stop at the cap, as errors
    assert isinstance(capped, APIError)
    assert "larger than" in str(capped)
    # 7. a huge Retry-After is raised at once, never slept
    assert isinstance(slowed, RateLimitError)
    assert slowed.retry_after is not None
    assert slowed.retry_after > 5.0
    assert hostile.gets["slow-down"] == 1
    # 11. the key appears nowhere
    assert isinstance(echoed, APIError)
    for text in (str(echoed), repr(echoed), repr(echoed.body), repr(echoed.headers), caplog.text):
        assert KEY not in text
        assert ESCAPED_KEY not in text
    # 4. polled for as long as it took, with no overflow; 5. the flood forced few polls
    assert isinstance(waited, Task), waited
    assert waited.video is not None
    assert hostile.gets["long-queue"] == PENDING_POLLS + 1
    assert isinstance(flooded, tuple)
    forced, seconds = flooded
    # the burst of 8, then 2 a second, plus the scheduled polls of a 60 s interval
    assert 1 <= forced <= 8 + 2 * seconds + seconds / 60 + 1, flooded
    # 9 + 10. downloads bounded, failures typed
    assert isinstance(endless, DownloadError)
    assert isinstance(gzipped, DownloadError)
    assert isinstance(long_name, Path), long_name
    assert long_name.read_bytes() == b"\0" * 10_000
    assert sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file()) < 50_000_000
    # 6. silent connections were closed, and the receiver held at most its cap
    assert isinstance(silent, list)
    assert all(silent)
    assert receiver.refused_connections == 40 - 20  # the cap held; the rest timed out
