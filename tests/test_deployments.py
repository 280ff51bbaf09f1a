"""Issue 10: answers real deployments send, read correctly by default.

Recorded answers live in ``tests/samples/`` (from luma-api.md, "Real answers that broke earlier
assumptions").  Session-level tests run against the emulator's deployment profiles, or a tiny
aiohttp server on loopback when a test needs one exact answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from luma_async import (
    Account,
    AuthenticationError,
    DecodeError,
    ExtendRequest,
    Frame,
    InputError,
    LumaSession,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RawVideo,
    RetryPolicy,
    ServerError,
    TaskFailedError,
    TaskState,
    UpstreamAuthenticationError,
    Usage,
    WrongTaskError,
    _clock,
)
from luma_async._convert import batch_from_json, task_from_json, task_to_json
from luma_async._error_map import decode_error_body, error_from_response
from luma_async.testing import LumaEmulator, VirtualClock

pytestmark = pytest.mark.asyncio

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def raw_sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


# -- 1. the nested gateway batch answer ---------------------------------------------------------


def test_nested_gateway_rows_are_read_as_their_luma_tasks() -> None:
    tasks = batch_from_json(sample("gateway_batch_nested.json"))
    assert tasks is not None
    by_id = {task.id: task for task in tasks}
    # The outer integer id (13917...) is a row number, never the task id.
    assert set(by_id) == {
        "9d4b7516-77e5-481a-b015-48313946f33b",
        "5b0e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
        "1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
    }
    running = by_id["9d4b7516-77e5-481a-b015-48313946f33b"]
    assert running.state is TaskState.PROCESSING  # the task's own state, not the row's
    done = by_id["5b0e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"]
    assert done.video is not None
    assert done.video.thumbnail == "https://storage.cdn-luma.com/5b0e1f2a/thumb.jpg"
    # The row's status and fail_reason fill in only what the task lacks.
    failed = by_id["7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"]
    assert failed.state is TaskState.FAILED
    assert failed.failure_reason == "upstream refused the prompt"
    not_started = by_id["1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b"]
    assert not_started.state is TaskState.PENDING


def test_a_gateway_row_answering_a_get_is_read_too() -> None:
    row = sample("gateway_batch_nested.json")["data"][1]
    got = task_from_json({"code": "success", "message": "", "data": row})
    assert got.id == row["task_id"]
    assert got.is_finished


def test_the_row_status_never_overrides_the_task() -> None:
    row = {
        "id": 1,
        "task_id": "t-1",
        "status": "SUCCESS",
        "fail_reason": "the row's words",
        "data": {"id": "t-1", "state": "failed", "failure_reason": "the task's words"},
    }
    got = task_from_json(row)
    assert got.state is TaskState.FAILED
    assert got.failure_reason == "the task's words"


@pytest.mark.parametrize(
    "answer",
    [None, {"data": None}, {"code": "success", "data": None}, {"data": {}}, "text", 3],
)
def test_answers_that_are_no_list_of_tasks(answer: Any) -> None:
    assert batch_from_json(answer) is None


async def test_watch_many_over_the_nested_batch_answer(vclock: VirtualClock) -> None:
    # Before: DecodeError "the task has no 'id'" for every follower.
    async with (
        LumaEmulator(dialect="gateway", envelope="wrapped", batch_route="nested") as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        tasks = [await luma.generate(f"clip {i}") for i in range(20)]
        emu.reset_records()
        last = {}
        async for change in luma.watch_many([t.id for t in tasks]):
            last[change.task_id] = change.task
        assert len(last) == 20
        assert all(task.video is not None for task in last.values())
        assert emu.count("tasks") > 0
        assert emu.count("get") < 20  # the batch did the work


async def test_extend_many_over_the_nested_batch_answer_pays_once_and_succeeds(
    vclock: VirtualClock, tmp_path: Path
) -> None:
    # Before: every extension was paid, then reported as failed.
    async with (
        LumaEmulator(dialect="gateway", envelope="wrapped", batch_route="nested") as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        parents = [await luma.generate(f"parent {i}") for i in range(4)]
        parents = [await luma.wait(p.id) for p in parents]
        requests = [ExtendRequest(p.id, f"more {i}") for i, p in enumerate(parents)]
        results = [r async for r in luma.extend_many(requests, journal=tmp_path / "j.sqlite")]
        assert all(r.ok for r in results), [r.error for r in results]
        assert max(emu.creations_by_prompt().values()) == 1


NOT_OFFERED = [
    pytest.param({"batch_route": "html"}, id="html-200"),
    pytest.param({"batch_route": "missing", "unrouted": "html"}, id="unrouted-html-200"),
    pytest.param({"batch_route": "400"}, id="400"),
    pytest.param({"batch_route": "403"}, id="403"),
    pytest.param({"batch_route": "403", "dialect": "gateway"}, id="403-gateway"),
    pytest.param({"batch_route": "null"}, id="data-null"),
    pytest.param({"batch_route": "missing"}, id="404"),
]


@pytest.mark.parametrize("options", NOT_OFFERED)
async def test_a_batch_route_not_offered_costs_no_task(
    vclock: VirtualClock, caplog: pytest.LogCaptureFixture, options: dict[str, Any]
) -> None:
    caplog.set_level(logging.INFO, logger="luma_async")
    async with (
        LumaEmulator(**options) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        tasks = [await luma.generate(f"clip {i}") for i in range(8)]
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        more = [await luma.generate(f"more {i}") for i in range(3)]
        done = await asyncio.gather(*(luma.wait(t.id) for t in more))
        assert all(t.video is not None for t in done)
        assert emu.count("tasks") == 1  # decided once per session
    decided = [r for r in caplog.records if "no batch status query" in r.getMessage()]
    assert len(decided) == 1  # logged once


async def test_a_batch_route_failing_with_5xx_after_retries_is_not_offered(
    vclock: VirtualClock,
) -> None:
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        emu.inject("tasks", count=100, status=502)
        tasks = [await luma.generate(f"clip {i}") for i in range(5)]
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        assert emu.count("tasks") == luma.retry.attempts  # retried, then never again


async def test_a_dropped_batch_connection_only_sends_that_round_by_get(
    vclock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="luma_async")
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, retry=RetryPolicy(attempts=1)) as luma,
    ):
        emu.inject("tasks", count=1, drop=True)
        tasks = [await luma.generate(f"clip {i}") for i in range(5)]
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        assert emu.count("tasks") > 1  # the route was asked again: the drop decided nothing
    assert not [r for r in caplog.records if "no batch status query" in r.getMessage()]


@pytest_asyncio.fixture
async def tiny_server() -> AsyncIterator[Callable[[web.Application], Any]]:
    """Start an aiohttp app on loopback; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.05)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def _scripted_deployment(
    batch: Callable[[list[str], Callable[[str], dict[str, Any]]], Any],
) -> tuple[web.Application, list[str]]:
    """Tasks that complete 10 clock seconds after start; GET log; ``batch`` makes the
    ``POST /luma/tasks`` answer from the asked ids and a renderer."""
    started = _clock.monotonic()
    gets: list[str] = []

    def render(task_id: str) -> dict[str, Any]:
        done = _clock.monotonic() - started >= 10
        return {
            "id": task_id,
            "state": "completed" if done else "processing",
            "created_at": "2024-07-01T07:35:13.498660Z",
            "video": {"url": f"https://cdn.invalid/{task_id}.mp4"} if done else None,
        }

    async def get(request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        gets.append(task_id)
        return web.json_response(render(task_id))

    async def tasks(request: web.Request) -> web.Response:
        ids = (await request.json())["ids"]
        return web.json_response(batch(ids, render))

    app = web.Application()
    app.router.add_get("/luma/generations/{task_id}", get)
    app.router.add_post("/luma/tasks", tasks)
    return app, gets


async def test_one_unreadable_item_costs_only_that_item_a_get(
    vclock: VirtualClock, tiny_server: Callable[[web.Application], Any]
) -> None:
    def batch(ids: list[str], render: Callable[[str], dict[str, Any]]) -> Any:
        items: list[Any] = [render(i) for i in ids if i != "t-bad"]
        if "t-bad" in ids:
            items.append({"id": 42, "state": None})  # cannot be read
        return items

    rounds: list[list[str]] = []

    def recording(ids: list[str], render: Callable[[str], dict[str, Any]]) -> Any:
        rounds.append(ids)
        return batch(ids, render)

    app, gets = _scripted_deployment(recording)
    base_url = await tiny_server(app)
    async with LumaSession("k", base_url=base_url) as luma:
        ids = ["t-1", "t-bad", "t-2"]
        done = await asyncio.gather(*(luma.wait(t) for t in ids))
    assert [t.id for t in done] == ids
    assert all(t.video is not None for t in done)
    with_bad = [r for r in rounds if "t-bad" in r]
    assert len(with_bad) >= 2
    # Each round costs the unreadable item one GET; the others ride the batch (a task
    # polled while it is the only one followed is fetched alone, at most at start and end).
    assert gets.count("t-bad") >= len(with_bad)
    for good in ("t-1", "t-2"):
        assert sum(good in r for r in rounds) >= 2
        assert gets.count(good) <= 2


async def test_a_batch_item_for_another_task_is_never_the_asked_one(
    vclock: VirtualClock, tiny_server: Callable[[web.Application], Any]
) -> None:
    def batch(ids: list[str], render: Callable[[str], dict[str, Any]]) -> Any:
        # new-api rows, one of which carries someone else's finished task
        rows = []
        for number, task_id in enumerate(ids):
            inner = render(task_id)
            if task_id == "t-1":
                inner = {**render("t-other"), "state": "completed"}
                inner["video"] = {"url": "https://cdn.invalid/NOT-YOURS.mp4"}
            rows.append({"id": number, "task_id": task_id, "status": "IN_PROGRESS", "data": inner})
        return {"code": "success", "message": "", "data": rows}

    app, gets = _scripted_deployment(batch)
    base_url = await tiny_server(app)
    async with LumaSession("k", base_url=base_url) as luma:
        done = await asyncio.gather(*(luma.wait(t) for t in ("t-1", "t-2")))
    assert done[0].id == "t-1"
    assert done[0].video is not None
    assert "NOT-YOURS" not in done[0].video.url
    assert "t-1" in gets


# -- 2. the official shape ----------------------------------------------------------------------


def test_official_shape_while_dreaming() -> None:
    got = task_from_json(sample("official_task_dreaming.json"))
    assert got.state is TaskState.PROCESSING
    assert got.sent_state == "dreaming"
    assert got.prompt == "a teddy bear in sunglasses"
    assert got.video is None
    assert not got.is_terminal


def test_official_shape_completed() -> None:
    got = task_from_json(sample("official_task_completed.json"))
    assert got.state is TaskState.COMPLETED
    assert got.sent_state is None
    assert got.video is not None
    assert got.video.url == "https://storage.cdn-luma.com/dream_machine/d1f0c2a4/video.mp4"
    # nothing better than assets.image: it is the thumbnail
    assert got.video.thumbnail == "https://storage.cdn-luma.com/dream_machine/d1f0c2a4/image.jpg"
    assert task_from_json(task_to_json(got)) == got


def test_official_shape_failed() -> None:
    got = task_from_json(sample("official_task_failed.json"))
    assert got.is_failed
    assert got.failure_reason == "Prompt not allowed because of moderation"


async def test_an_official_task_is_followed_to_its_end(vclock: VirtualClock) -> None:
    # Before: queued/dreaming were unknown states and assets.video was never read, so the
    # poll ran until its deadline.
    async with (
        LumaEmulator(task_shape="official") as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        first = await luma.generate("a teddy bear")
        assert first.state is TaskState.PENDING
        assert first.sent_state == "queued"
        seen = []
        done = await luma.wait(first.id, on_change=lambda c: seen.append(str(c.state)))
        assert done.video is not None
        assert seen[-1] == "completed"
        failing = await luma.generate("a teddy bear [fail]")
        with pytest.raises(TaskFailedError, match="fail marker"):
            await luma.wait(failing.id)


# -- 3. media fields --------------------------------------------------------------------------


def test_stills_and_raw_video_at_the_top_level() -> None:
    got = task_from_json(sample("task_thumbnail_top_level.json"))
    assert got.video is not None
    assert got.video.thumbnail == "https://storage.cdn-luma.com/9d4b7516/thumb.jpg"
    assert got.last_frame == Frame(
        "https://storage.cdn-luma.com/9d4b7516/last_frame.jpg", width=1360, height=752
    )
    assert got.video_raw == RawVideo(
        "https://storage.cdn-luma.com/9d4b7516/video_raw.mp4",
        width=1360,
        height=752,
        duration=pytest.approx(5.041667),
    )
    # no download_url: the raw render (without watermark) is preferred to the watermarked one
    assert got.video.best_url == "https://storage.cdn-luma.com/9d4b7516/video_raw.mp4"
    assert task_from_json(task_to_json(got)) == got


def test_stills_and_raw_video_under_artifact() -> None:
    got = task_from_json(sample("task_media_in_artifact.json"))
    assert got.video is not None
    assert got.video.thumbnail == "https://storage.cdn-luma.com/2c3f9a6e/thumb.jpg"
    assert got.last_frame == Frame(
        "https://storage.cdn-luma.com/2c3f9a6e/last.jpg", width=1360, height=752
    )
    assert got.video_raw is not None
    assert got.video_raw.url.endswith("/video_raw.mp4")
    assert got.video_raw.duration == pytest.approx(5.041667)


@pytest.mark.parametrize(
    "thumbnail", ["https://cdn.invalid/t.jpg", {"url": "https://cdn.invalid/t.jpg", "width": 1}]
)
@pytest.mark.parametrize("place", ["video", "top", "artifact"])
def test_thumbnail_from_any_place_in_any_form(place: str, thumbnail: Any) -> None:
    task: dict[str, Any] = {
        "id": "t",
        "state": "completed",
        "video": {"url": "https://cdn.invalid/v.mp4"},
    }
    if place == "video":
        task["video"]["thumbnail"] = thumbnail
    elif place == "top":
        task["thumbnail"] = thumbnail
    else:
        task["artifact"] = {"thumbnail": thumbnail}
    got = task_from_json(task)
    assert got.video is not None
    assert got.video.thumbnail == "https://cdn.invalid/t.jpg"


def test_download_url_still_beats_the_raw_render() -> None:
    got = task_from_json(
        {
            "id": "t",
            "state": "completed",
            "video": {"url": "https://cdn/wm.mp4", "download_url": "https://cdn/clean.mp4"},
            "video_raw": {"url": "https://cdn/raw.mp4"},
        }
    )
    assert got.video is not None
    assert got.video.best_url == "https://cdn/clean.mp4"


@pytest.mark.parametrize("bad", [{"url": None}, "", 7, {"width": 3}, None])
def test_media_without_a_link_is_none_not_an_error(bad: Any) -> None:
    got = task_from_json(
        {
            "id": "t",
            "state": "completed",
            "video": {"url": "https://cdn/v.mp4"},
            "last_frame": bad,
            "video_raw": bad,
        }
    )
    assert got.last_frame is None
    assert got.video_raw is None


# -- 4. errors read as meant --------------------------------------------------------------------


def test_two_json_documents_in_one_body_the_first_is_the_detail() -> None:
    body = decode_error_body(raw_sample("proxy_401_two_documents.txt"), "application/json")
    assert body == {"detail": "Not authenticated"}
    error = error_from_response("GET", "/luma/generations/x", 401, {}, body)
    assert "non-JSON" not in str(error)
    assert isinstance(error, UpstreamAuthenticationError)


@pytest.mark.parametrize(
    ("name", "status", "cls", "upstream"),
    [
        ("error_upstream_not_authenticated.json", 401, UpstreamAuthenticationError, True),
        ("error_unauthorized_secret_token.json", 401, AuthenticationError, False),
        ("error_new_api_token.json", 401, AuthenticationError, False),
        ("error_fail_to_fetch_task.json", 500, ServerError, False),
        ("error_insufficient_user_quota.json", 403, PermissionDeniedError, False),
        ("error_insufficient_user_quota.json", 400, PermissionDeniedError, False),
        ("error_task_origin_not_exist.json", 400, NotFoundError, False),
    ],
)
def test_gateway_and_proxy_errors_map_to_their_classes(
    name: str, status: int, cls: type[Exception], upstream: bool
) -> None:
    body = decode_error_body(raw_sample(name), "application/json")
    error = error_from_response("GET", "/luma/x", status, {}, body)
    assert type(error) is cls
    assert isinstance(error, UpstreamAuthenticationError) is upstream


def test_429_with_an_empty_body_and_no_retry_after() -> None:
    error = error_from_response("GET", "/luma/x", 429, {}, decode_error_body(b""))
    assert isinstance(error, RateLimitError)
    assert error.retry_after is None


@pytest.mark.parametrize("dialect", ["proxy", "gateway"])
async def test_an_expired_upstream_account_is_not_a_wrong_key(
    vclock: VirtualClock, dialect: str
) -> None:
    async with (
        LumaEmulator(upstream_expired=True, dialect=dialect) as emu,  # type: ignore[arg-type]
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        with pytest.raises(UpstreamAuthenticationError) as caught:
            await luma.get("9d4b7516-77e5-481a-b015-48313946f33b")
        assert isinstance(caught.value, AuthenticationError)
        assert caught.value.code == "upstream_not_authenticated"
        assert "your API key was accepted" in str(caught.value)
        assert "non-JSON" not in str(caught.value)
        with pytest.raises(UpstreamAuthenticationError):
            await luma.generate("a fox")  # refused: nothing was created
        assert emu.created == []
    async with (
        LumaEmulator() as emu,
        LumaSession("wrong-key", base_url=emu.base_url) as luma,
    ):
        with pytest.raises(AuthenticationError) as wrong:
            await luma.get("9d4b7516-77e5-481a-b015-48313946f33b")
        assert not isinstance(wrong.value, UpstreamAuthenticationError)


# -- 5. an answer for another task --------------------------------------------------------------


async def test_get_answered_with_another_task_is_retried(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        mine = await luma.generate("mine")
        await luma.generate("theirs")
        emu.inject("get", count=2, other_task=True)
        got = await luma.get(mine.id)
        assert got.id == mine.id
        assert got.prompt == "mine"
        assert emu.gets_for(mine.id) == 3


async def test_get_answered_with_another_task_every_time_is_a_decode_error(
    vclock: VirtualClock,
) -> None:
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        mine = await luma.generate("mine")
        theirs = await luma.generate("theirs")
        emu.inject("get", count=100, other_task=True)
        with pytest.raises(WrongTaskError) as caught:
            await luma.get(mine.id)
        assert isinstance(caught.value, DecodeError)
        assert caught.value.asked == mine.id
        assert caught.value.answered == theirs.id
        assert emu.gets_for(mine.id) == luma.retry.attempts


async def test_polling_never_hands_over_another_tasks_video(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator(wrong_task_answers=6) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        other = await luma.generate("someone else")
        emu.set_durations(other.id, pending=0, processing=0)  # finished at once
        mine = await luma.generate("mine")
        done = await luma.wait(mine.id)
        assert done.id == mine.id
        assert done.video is not None
        assert mine.id in done.video.url
        assert not emu.pending_faults  # the wrong answers were all served, and ignored


# -- 6. create options and the account endpoints ------------------------------------------------


@pytest.mark.parametrize(("given", "sent"), [(5, "5s"), ("5s", "5s"), ("10", "10s"), (9.0, "9s")])
async def test_generate_options_as_users_send_them(
    vclock: VirtualClock, given: Any, sent: str
) -> None:
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        await luma.generate(
            "a fox", duration=given, model_name="ray-v2", resolution="1080p", loop=True
        )
        body = next(r.json for r in emu.requests if r.route == "generate")
        assert body == {
            "user_prompt": "a fox",
            "duration": sent,
            "model_name": "ray-v2",
            "resolution": "1080p",
            "loop": True,
        }


@pytest.mark.parametrize("bad", [0, -5, "five", "5m", True, 2.5, [5]])
async def test_a_bad_duration_is_refused_before_any_request(vclock: VirtualClock, bad: Any) -> None:
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        with pytest.raises(InputError, match="duration"):
            await luma.generate("a fox", duration=bad)
        assert emu.count("*") == 0


@pytest.mark.parametrize("envelope", ["bare", "wrapped"])
async def test_usage_and_account(vclock: VirtualClock, envelope: str) -> None:
    async with (
        LumaEmulator(envelope=envelope, credit_limit=50) as emu,  # type: ignore[arg-type]
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        await luma.generate("a fox")
        usage = await luma.usage()
        assert isinstance(usage, Usage)
        assert (usage.available, usage.used, usage.total) == (49.0, 1.0, 50.0)
        assert usage.extra["period_end"] == "2099-01-01T00:00:00Z"  # unknown fields kept
        account = await luma.account()
        assert isinstance(account, Account)
        assert account.id == "emulated-account"
        assert account.email == "luma@emulator.invalid"
        assert account.plan == "emulated"
        assert account.extra["created_at"] == "2024-06-12T00:00:00Z"


async def test_account_endpoints_missing_on_a_new_api_deployment(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator(account_routes=False, unrouted="html") as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        with pytest.raises(DecodeError, match="not JSON"):
            await luma.usage()


def test_usage_of_an_unknown_shape_keeps_everything() -> None:
    from luma_async._convert import account_from_json, usage_from_json  # noqa: PLC0415

    usage = usage_from_json({"remaining": "12.5", "limit": 100, "x": [1]}, what="usage")
    assert (usage.available, usage.used, usage.total) == (12.5, None, 100.0)
    assert usage.extra == {"remaining": "12.5", "limit": 100, "x": [1]}
    account = account_from_json({"user_id": 7, "subscription": {"name": "plus"}}, what="me")
    assert (account.id, account.plan, account.email) == ("7", "plus", None)
    with pytest.raises(DecodeError):
        usage_from_json([1, 2], what="usage")


async def test_followers_that_give_up_cancel_their_batch_refresh(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        tasks = [await luma.generate(f"clip {i}") for i in range(3)]
        emu.inject("tasks", count=5, delay=30)  # the batch answer is slow
        waits = [asyncio.create_task(luma.wait(t.id)) for t in tasks]
        await _clock.sleep(10)  # the batch refresh is in flight now
        assert luma._hub._refresher.running
        for wait in waits:
            wait.cancel()
        results = await asyncio.gather(*waits, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        await _clock.sleep(0.1)
        assert luma._hub._refresher.running == []  # nobody waits: the refresh was cancelled


# -- reading details ----------------------------------------------------------------------------


def test_media_as_bare_links_and_float_sizes() -> None:
    got = task_from_json(
        {
            "id": "t",
            "state": "completed",
            "video": {"url": "https://cdn/v.mp4"},
            "last_frame": "https://cdn/last.jpg",
            "video_raw": {"url": "https://cdn/raw.mp4", "width": 1360.0, "duration": "5"},
        }
    )
    assert got.last_frame == Frame("https://cdn/last.jpg")
    assert got.video_raw == RawVideo("https://cdn/raw.mp4", width=1360)
    bare = task_from_json(
        {"id": "t", "state": "completed", "video": {"url": "https://cdn/v.mp4"}, "video_raw": "x"}
    )
    assert bare.video_raw == RawVideo("x")


def test_a_constructed_task_writes_its_media() -> None:
    task = task_from_json(
        task_to_json(
            task_from_json({"id": "t", "state": "completed", "video": {"url": "https://cdn/v"}})
        )
    )
    assert task.last_frame is None
    from luma_async import Task, Video  # noqa: PLC0415

    made = Task(
        "t",
        TaskState.COMPLETED,
        video=Video("https://cdn/v", raw=RawVideo("https://cdn/raw", duration=5.0)),
        last_frame=Frame("https://cdn/last.jpg", width=2, height=1),
    )
    wire = task_to_json(made)
    assert wire["last_frame"] == {"url": "https://cdn/last.jpg", "width": 2, "height": 1}
    again = task_from_json(json.loads(json.dumps(wire)))
    assert again.last_frame == made.last_frame
    assert again.video_raw == made.video_raw
    assert again.video is not None
    assert again.video.best_url == "https://cdn/raw"


def test_unreadable_batch_items_are_left_out() -> None:
    tasks = batch_from_json(
        [
            {"id": "a", "state": "pending"},
            "not a task",
            {"id": "b"},
            {"id": "c", "state": "pending", "created_at": "yesterday-ish"},
        ]
    )
    assert tasks is not None
    assert [t.id for t in tasks] == ["a"]


def test_a_raw_video_without_link_at_the_top_yields_to_the_artifact_one() -> None:
    got = task_from_json(
        {
            "id": "t",
            "state": "completed",
            "video": {"url": "https://cdn/v.mp4"},
            "video_raw": {"url": None},
            "artifact": {"video_raw": {"url": "https://cdn/raw.mp4", "duration": 5}},
        }
    )
    assert got.video_raw == RawVideo("https://cdn/raw.mp4", duration=5.0)


# -- 7. the emulator's wire answers -------------------------------------------------------------


async def test_the_emulator_speaks_each_variation_on_the_wire(vclock: VirtualClock) -> None:
    import aiohttp  # noqa: PLC0415

    async with (
        LumaEmulator(task_shape="official", batch_route="nested", unrouted="html") as emu,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {emu.api_key}"}) as client,
    ):
        async with client.post(
            f"{emu.base_url}/luma/generations", json={"user_prompt": "a fox", "duration": 5}
        ) as response:
            first = await response.json()
        assert first["state"] == "queued"
        assert first["assets"]["video"] is None
        vclock.advance(60)
        async with client.get(f"{emu.base_url}/luma/generations/{first['id']}") as response:
            done = await response.json()
        assert done["state"] == "completed"
        assert isinstance(done["assets"]["video"], str)
        async with client.post(
            f"{emu.base_url}/luma/tasks", json={"ids": [first["id"]]}
        ) as response:
            rows = (await response.json())["data"]
        assert isinstance(rows[0]["id"], int)
        assert rows[0]["task_id"] == first["id"]
        assert rows[0]["status"] == "SUCCESS"
        assert rows[0]["data"]["id"] == first["id"]
        async with client.get(f"{emu.base_url}/api/status") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
        emu.inject("get", other_task=True)
        second = emu.tasks[first["id"]]
        async with client.post(
            f"{emu.base_url}/luma/generations", json={"user_prompt": "another"}
        ) as response:
            other = await response.json()
        async with client.get(f"{emu.base_url}/luma/generations/{second.id}") as response:
            assert (await response.json())["id"] == other["id"]
    async with (
        LumaEmulator(upstream_expired=True) as emu,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {emu.api_key}"}) as client,
        client.get(f"{emu.base_url}/luma/users/me") as response,
    ):
        assert response.status == 401
        assert await response.read() == raw_sample("proxy_401_two_documents.txt")


@pytest.mark.parametrize("media", ["video", "top", "artifact"])
async def test_the_emulator_puts_media_in_one_place(vclock: VirtualClock, media: str) -> None:
    async with LumaEmulator(task_shape="artifact", media=media) as emu:  # type: ignore[arg-type]
        task = emu._create({"user_prompt": "a fox"}, kind="generate", parent=None)
        vclock.advance(60)
        body = emu.task_json(task.id)
    places = {
        "video.thumbnail": bool(body["video"]["thumbnail"]),
        "top": any(body.get(k) for k in ("thumbnail", "last_frame", "video_raw"))
        and media != "video",
        "artifact": any(
            (body.get("artifact") or {}).get(k) for k in ("thumbnail", "last_frame", "video_raw")
        ),
    }
    expected = {"video": "video.thumbnail", "top": "top", "artifact": "artifact"}[media]
    assert [place for place, there in places.items() if there] == [expected]


async def test_a_429_on_the_batch_route_decides_nothing(
    vclock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="luma_async")
    async with (
        LumaEmulator(pending_seconds=60) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        emu.inject("tasks", count=luma.retry.attempts, status=429)
        tasks = [await luma.generate(f"clip {i}") for i in range(4)]
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        assert luma._hub.batch_supported is True  # refused once, used afterwards
    assert not [r for r in caplog.records if "no batch status query" in r.getMessage()]


async def test_a_json_string_from_the_batch_route_means_not_offered(
    vclock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="luma_async")
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        emu.inject("tasks", body='"ok"')
        tasks = [await luma.generate(f"clip {i}") for i in range(3)]
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        assert luma._hub.batch_supported is False
    decided = [r.getMessage() for r in caplog.records if "no batch status query" in r.getMessage()]
    assert len(decided) == 1
    assert "str" in decided[0]


async def test_a_follower_fails_only_for_what_its_own_get_says(
    vclock: VirtualClock, tiny_server: Callable[[web.Application], Any]
) -> None:
    def batch(ids: list[str], render: Callable[[str], dict[str, Any]]) -> Any:
        return [render(i) for i in ids if i != "t-gone"]  # the batch lacks it

    app, gets = _scripted_deployment(batch)

    async def gone(request: web.Request) -> web.Response:
        gets.append("t-gone")
        return web.json_response({"detail": "Not found"}, status=404)

    app.router.add_get("/luma/generations/t-gone", gone)
    base_url = await tiny_server(app)
    async with LumaSession("k", base_url=base_url) as luma:
        results = await asyncio.gather(
            *(luma.wait(t) for t in ("t-1", "t-gone", "t-2")), return_exceptions=True
        )
    assert isinstance(results[1], NotFoundError)  # what its GET said
    assert all(not isinstance(r, BaseException) and r.video is not None for r in results[::2])


async def test_the_recorded_new_api_page_on_the_batch_route_means_not_offered(
    vclock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="luma_async")
    page = (SAMPLES / "new_api_dashboard.html").read_text(encoding="utf-8")
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        emu.inject("tasks", body=page, headers={"Content-Type": "text/html"})
        tasks = [await luma.generate(f"clip {i}") for i in range(3)]
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        assert emu.count("tasks") == 1
    decided = [r.getMessage() for r in caplog.records if "no batch status query" in r.getMessage()]
    expected = (
        "this deployment offers no batch status query (POST /luma/tasks: its answer is not "
        "JSON); following each task by its own GET from now on"
    )
    assert decided == [expected]
