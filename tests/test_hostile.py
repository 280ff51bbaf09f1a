"""Issue 11: servers written from scratch that answer as an attacker or a flaky network would.

Each test here failed on the code before its fix.  None uses the emulator's fault injection:
the servers are plain ``aiohttp.web`` apps (or raw asyncio servers) on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from luma_async import (
    APIError,
    DecodeError,
    ExtendRequest,
    InputError,
    Journal,
    LumaSession,
    RetryPolicy,
    SubmissionUncertainError,
)
from luma_async.testing import LumaEmulator, VirtualClock

from .helpers import complete_parent

pytestmark = pytest.mark.asyncio

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TASK = {
    "id": "new-task-1",
    "prompt": "more",
    "state": "pending",
    "created_at": "2024-07-01T10:00:00Z",
}


@asynccontextmanager
async def serve(routes: list[tuple[str, str, Handler]]) -> AsyncIterator[str]:
    """A from-scratch server on loopback; yields its base URL."""
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, shutdown_timeout=0.01)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# -- 1. a 2xx to a paid POST that cannot be read ---------------------------------------------

_UNREADABLE = {
    "html": (201, "text/html", b"<html><body>Created! <b>task new-task-1</b></body></html>"),
    "bad-created-at": (
        200,
        "application/json",
        json.dumps({**TASK, "created_at": "yesterday-ish"}).encode(),
    ),
    "oversized": (
        201,
        "application/json",
        json.dumps({**TASK, "notes": "x" * (17 * 1024 * 1024)}).encode(),
    ),
}


@pytest.mark.parametrize("kind", sorted(_UNREADABLE))
async def test_unreadable_2xx_to_a_paid_post_is_uncertain_not_a_decode_error(
    kind: str, vclock: VirtualClock, tmp_path: Path
) -> None:
    status, content_type, body = _UNREADABLE[kind]
    posts: list[str] = []

    async def extend(request: web.Request) -> web.Response:
        posts.append((await request.json())["user_prompt"])
        return web.Response(status=status, body=body, content_type=content_type)

    requests = [ExtendRequest("parent-1", f"more {i}") for i in range(3)]
    journal = tmp_path / "batch.sqlite"
    async with (
        serve([("POST", "/luma/generations/{task_id}/extend", extend)]) as url,
        LumaSession("sk-test-key", base_url=url) as luma,
    ):
        with pytest.raises(SubmissionUncertainError) as caught:
            await luma.extend("parent-1", "alone")
        for _run in range(2):  # the second run resumes from the journal
            results = [r async for r in luma.extend_many(requests, journal=journal)]
            assert all(isinstance(r.error, SubmissionUncertainError) for r in results)
    error = caught.value
    assert error.status == status
    assert error.answer is not None
    assert error.answer[:100] == body[:100]
    if kind != "html":  # the id is still in there: the user can look the task up
        assert error.task_id == "new-task-1"
    assert len(posts) == 1 + 3, posts  # never sent twice: 3 requests stay 3 paid tasks
    with Journal(journal) as records:
        assert {e.state for e in records.entries()} == {"uncertain"}
        if kind != "html":
            assert {e.task_id for e in records.entries()} == {"new-task-1"}


# -- 2. two processes on one journal ---------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")
def test_two_processes_on_one_journal_never_post_a_request_twice(tmp_path: Path) -> None:
    count = 12
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LUMA_TEST_SLOW_JOURNAL": "1"}
    outcomes: list[tuple[int, bytes]] = []
    with LumaEmulator.in_thread(time_scale=0.01) as emu:
        parent = complete_parent(emu)
        for round_ in range(2):
            journal = tmp_path / f"batch-{round_}.sqlite"
            start_at = time.time() + 1.5  # both start their batch at once, imports done
            argv = [sys.executable, "-m", "tests.batch_worker", emu.base_url, emu.api_key]
            argv += [str(journal), parent, str(count), str(count), str(start_at)]
            procs = [
                subprocess.Popen(
                    argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
                for _ in range(2)
            ]
            for proc in procs:
                _, err = proc.communicate(timeout=120)
                outcomes.append((proc.returncode, err))
        per_prompt = emu.creations_by_prompt()
    # Two rounds, each with its own journal: each request was POSTed once per round.
    assert {f"step {i}": 2 for i in range(count)} == {
        p: n for p, n in per_prompt.items() if p != "root"
    }
    for returncode, err in outcomes:
        # Either it ran (alone, or after the other finished), or it was told clearly why not.
        assert returncode == 0 or b"is in use by another" in err, err.decode()
    assert sum(code == 0 for code, _ in outcomes) >= 2


def test_a_journal_in_use_is_refused_until_it_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    in_use = f"in use by another batch \\(process {os.getpid()}\\)"
    with Journal(path), pytest.raises(InputError, match=in_use):
        Journal(path)
    Journal(path).close()  # free again once closed


# -- 3. a journal that cannot be written -----------------------------------------------------


async def test_a_locked_journal_is_an_input_error_before_anything_is_sent(
    emulator: LumaEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    other = sqlite3.connect(path, isolation_level=None)  # say, a DB browser mid-edit
    other.execute("BEGIN EXCLUSIVE")
    try:
        async with LumaSession(emulator.api_key, base_url=emulator.base_url) as luma:
            with pytest.raises(InputError, match="locked by another program"):
                luma.extend_many([ExtendRequest("parent-1", "more")], journal=path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert emulator.count("extend") == 0


async def test_a_read_only_journal_is_an_input_error_before_anything_is_sent(
    emulator: LumaEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    path.chmod(0o444)
    if os.geteuid() == 0:  # root writes anything; open it as sqlite does a file it may not write
        connect = sqlite3.connect

        def read_only(database: object, **kwargs: Any) -> sqlite3.Connection:
            return connect(f"file:{database}?mode=ro", uri=True, **kwargs)

        monkeypatch.setattr(sqlite3, "connect", read_only)
    async with LumaSession(emulator.api_key, base_url=emulator.base_url) as luma:
        with pytest.raises(InputError, match="cannot be written"):
            luma.extend_many([ExtendRequest("parent-1", "more")], journal=path)
    assert emulator.count("extend") == 0


# -- 8. compressed bodies are capped by their decoded size -----------------------------------

_INFLATED = 96 * 1024 * 1024  # six times the cap, from about 100 KB on the wire


def _gzip_bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    zeros = b"0" * (1024 * 1024)
    parts = [packer.compress(b'{"id": "t-1", "notes": "')]
    parts += [packer.compress(zeros) for _ in range(_INFLATED // len(zeros))]
    return b"".join([*parts, packer.compress(b'"}'), packer.flush()])


@pytest.mark.parametrize("status", [200, 503])
async def test_a_gzip_bomb_is_capped_while_it_inflates(status: int, vclock: VirtualClock) -> None:
    bomb = _gzip_bomb()
    assert len(bomb) < 1024 * 1024

    async def get(request: web.Request) -> web.Response:
        return web.Response(
            status=status,
            body=bomb,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    async with (
        serve([("GET", "/luma/generations/{task_id}", get)]) as url,
        LumaSession("sk-test-key", base_url=url, retry=RetryPolicy(attempts=1)) as luma,
    ):
        tracemalloc.start()
        try:
            with pytest.raises(APIError, match="larger than 16777216 bytes") as caught:
                await luma.get("t-1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert caught.value.status == status
    # Inflating all of it would hold 96 MiB at once; stopping at the cap holds about 16 MiB.
    assert peak < 40 * 1024 * 1024, peak


def _packed(payload: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return packer.compress(payload) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "wbits"), [("gzip", 16 + zlib.MAX_WBITS), ("deflate", zlib.MAX_WBITS)]
)
@pytest.mark.parametrize("own_session", [False, True])
async def test_compressed_answers_are_inflated_by_the_library_itself(
    encoding: str, wbits: int, own_session: bool, vclock: VirtualClock
) -> None:
    """Both offered encodings are read, also through a user's auto-decompressing session,
    and the request offers exactly the encodings the library inflates itself."""
    offered: list[str] = []

    async def get(request: web.Request) -> web.Response:
        offered.append(request.headers.get("Accept-Encoding", ""))
        body = _packed(json.dumps({**TASK, "id": "t-1", "state": "completed"}).encode(), wbits)
        return web.Response(
            body=body, headers={"Content-Encoding": encoding, "Content-Type": "application/json"}
        )

    async with serve([("GET", "/luma/generations/{task_id}", get)]) as url:
        if own_session:
            async with (
                aiohttp.ClientSession(auto_decompress=True) as client,
                LumaSession("sk-test-key", base_url=url, session=client) as luma,
            ):
                task = await luma.get("t-1")
        else:
            async with LumaSession("sk-test-key", base_url=url) as luma:
                task = await luma.get("t-1")
    assert (task.id, task.state) == ("t-1", "completed")
    assert offered == ["gzip, deflate"]


async def test_a_deflate_bomb_is_capped_too(vclock: VirtualClock) -> None:
    bomb = _packed(b'{"id": "t-1", "notes": "' + b"0" * _INFLATED + b'"}', zlib.MAX_WBITS)

    async def get(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "deflate"})

    async with (
        serve([("GET", "/luma/generations/{task_id}", get)]) as url,
        LumaSession("sk-test-key", base_url=url, retry=RetryPolicy(attempts=1)) as luma,
    ):
        with pytest.raises(APIError, match="larger than 16777216 bytes"):
            await luma.get("t-1")


@pytest.mark.parametrize("encoding", ["br", "gzip"])
async def test_an_answer_we_cannot_inflate_is_unreadable_not_a_crash(
    encoding: str, vclock: VirtualClock
) -> None:
    """An encoding never offered (br), or a corrupt gzip stream: a DecodeError, and on a paid
    POST a SubmissionUncertainError (the service said yes)."""
    garbage = b"\x1f\x8b\x08\x00not really compressed"

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=201, body=garbage, headers={"Content-Encoding": encoding})

    async with (
        serve(
            [
                ("GET", "/luma/generations/{task_id}", answer),
                ("POST", "/luma/generations", answer),
            ]
        ) as url,
        LumaSession("sk-test-key", base_url=url, retry=RetryPolicy(attempts=1)) as luma,
    ):
        with pytest.raises(DecodeError):
            await luma.get("t-1")
        with pytest.raises(SubmissionUncertainError):
            await luma.generate("a fox")


# -- 7. RetryPolicy.timeout is a bound -------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
async def test_a_huge_retry_after_is_not_slept_past_the_timeout(
    status: int, vclock: VirtualClock
) -> None:
    hits: list[str] = []

    async def get(request: web.Request) -> web.Response:
        hits.append(request.match_info["task_id"])
        if request.match_info["task_id"] == "busy":
            return web.json_response(
                {"detail": "slow down"}, status=status, headers={"Retry-After": "1e8"}
            )
        return web.json_response(TASK)

    retry = RetryPolicy(attempts=5, timeout=5.0)
    async with (
        serve([("GET", "/luma/generations/{task_id}", get)]) as url,
        LumaSession("sk-test-key", base_url=url, retry=retry) as luma,
    ):
        started = vclock.monotonic()
        with pytest.raises(APIError) as caught:
            await luma.get("busy")
        assert vclock.monotonic() - started < 1.0  # raised at once: waiting could not help
        assert caught.value.status == status
        assert caught.value.retry_after == 300.0  # what the server asked for (capped)
        assert hits == ["busy"]
        # A 429 pauses the whole session, but never past a request's own deadline.
        started = vclock.monotonic()
        task = await luma.get("new-task-1")
        assert vclock.monotonic() - started <= retry.timeout + 1.0
        assert task.id == "new-task-1"


async def test_a_backoff_never_sleeps_past_the_deadline(vclock: VirtualClock) -> None:
    hits: list[float] = []

    async def get(request: web.Request) -> web.Response:
        hits.append(vclock.monotonic())
        return web.json_response({"detail": "down"}, status=503)

    retry = RetryPolicy(attempts=10, initial=4.0, max_wait=60.0, timeout=10.0)
    async with (
        serve([("GET", "/luma/generations/{task_id}", get)]) as url,
        LumaSession("sk-test-key", base_url=url, retry=retry) as luma,
    ):
        started = vclock.monotonic()
        with pytest.raises(APIError):
            await luma.get("t-1")
        assert vclock.monotonic() - started <= retry.timeout + 0.5
    assert len(hits) >= 2


# -- 11. the key never leaks, whatever form the server echoes it in --------------------------

KEY = "sk-live-0123456789abcdefXYZ"
_ESCAPED = "".join(f"\\u{ord(c):04x}" if i % 2 else c for i, c in enumerate(KEY))  # JSON
_ENCODED = "".join(f"%{ord(c):02X}" if i % 3 == 0 else c for i, c in enumerate(KEY))  # URL


def _echoing_routes() -> list[tuple[str, str, Handler]]:
    async def get(request: web.Request) -> web.Response:
        how = request.match_info["task_id"]
        if how == "redirect":  # the key in a Location header, raw and URL-encoded
            return web.Response(
                status=302, headers={"Location": f"https://evil.test/?k={_ENCODED}&raw={KEY}"}
            )
        if how == "escaped":  # JSON-escaped in a body, and echoed in a header kept on the error
            text = f'{{"detail": "bad token Bearer {_ESCAPED}", "echo": ["{_ESCAPED}"]}}'
            return web.Response(
                status=401,
                text=text,
                content_type="application/json",
                headers={"X-Echo": f"Bearer {KEY}"},
            )
        if how == "busy":  # a 503 whose detail echoes it: logged at INFO before the retry
            text = f'{{"detail": "upstream refused key {_ESCAPED}"}}'
            return web.Response(status=503, text=text, content_type="application/json")
        text = json.dumps({**TASK, "id": "t-1", "state": "failed"})[:-1]
        text += f', "failure_reason": "key {_ESCAPED} is not allowed"}}'
        return web.Response(text=text, content_type="application/json")

    async def extend(request: web.Request) -> web.Response:  # a 201 that cannot be read
        return web.Response(
            status=201, text=f"<p>created for {_ESCAPED}</p>", content_type="text/html"
        )

    return [
        ("GET", "/luma/generations/{task_id}", get),
        ("POST", "/luma/generations/{task_id}/extend", extend),
    ]


async def test_the_key_never_leaks_in_any_form(
    vclock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="luma_async")
    errors: list[BaseException] = []
    shown: list[str] = []
    retry = RetryPolicy(attempts=2, initial=0.1, timeout=30.0)
    async with (
        serve(_echoing_routes()) as url,
        LumaSession(KEY, base_url=url, retry=retry) as luma,
    ):
        for how in ("redirect", "escaped", "busy"):
            with pytest.raises(APIError) as caught:
                await luma.get(how)
            errors.append(caught.value)
        task = await luma.get("t-1")
        shown += [repr(task), str(task.failure_reason)]
        with pytest.raises(SubmissionUncertainError) as uncertain:
            await luma.extend("parent-1", "more")
        errors.append(uncertain.value)
    assert any("retry 1" in r.getMessage() for r in caplog.records)  # the 503 was logged
    for error in errors:
        link: BaseException | None = error
        while link is not None:
            shown += [str(link), repr(link)]
            shown += [repr(getattr(link, name, None)) for name in ("detail", "body", "answer")]
            shown.append(repr(dict(getattr(link, "headers", {}))))
            link = link.__cause__ or link.__context__
    shown += [r.getMessage() for r in caplog.records] + [caplog.text]
    forms = [KEY, _ESCAPED, _ENCODED, KEY.encode().hex(), json.dumps(KEY)[1:-1]]
    leaks = [text for text in shown for form in forms if form in text]
    assert leaks == []
    assert "***" in str(errors[0]) and "***" in repr(errors[1].body)  # scrubbed, still useful


# -- 12. credentials in base_url ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2-secret@api.example.com",
        "http://user:hunter2-secret@127.0.0.1:8400/v1",
        "https://hunter2-secret@api.example.com",
        "https://user:hunter2-secret@api.example.com:notaport",
    ],
)
def test_a_base_url_with_credentials_is_refused_without_showing_them(url: str) -> None:
    with pytest.raises(InputError, match="must not carry credentials") as caught:
        LumaSession("sk-test-key", base_url=url)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value)
