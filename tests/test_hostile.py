"""Issue 11: servers written from scratch that answer as an attacker or a flaky network would.

Each test here failed on the code before its fix.  None uses the emulator's fault injection:
the servers are plain ``aiohttp.web`` apps (or raw asyncio servers) on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from luma_async import (
    ExtendRequest,
    Journal,
    LumaSession,
    SubmissionUncertainError,
)
from luma_async.testing import VirtualClock

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


@pytest.mark.asyncio
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
