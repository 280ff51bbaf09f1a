"""LumaSession end to end against the emulator on loopback, on virtual time."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from importlib.metadata import version
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_socket import SocketConnectBlockedError

import luma_async
from luma_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    ExtendRequest,
    InputError,
    LumaSession,
    NotFoundError,
    PollPolicy,
    PollTimeoutError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskState,
    TransportError,
)
from luma_async.testing import LumaEmulator, VirtualClock

from .helpers import finished_task, free_port

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
FAST = PollPolicy(interval=1.0, max_interval=5.0, jitter=0.0, timeout=300.0)
pytestmark = [pytest.mark.asyncio, pytest.mark.poll(FAST)]


# -- the happy path -----------------------------------------------------------------------


async def test_extend_and_follow_to_the_end(luma: LumaSession, emulator: LumaEmulator) -> None:
    parent = (await finished_task(luma)).id
    extension = await luma.extend(parent, "the fox leaps a frozen stream", expand_prompt=True)
    assert extension.id != parent
    assert extension.state == TaskState.PENDING
    assert emulator.tasks[extension.id].parent_id == parent

    changes = [change async for change in luma.poll(extension.id)]

    assert [c.state for c in changes] == ["pending", "processing", "completed"]
    assert [c.previous for c in changes] == [None, "pending", "processing"]
    assert changes[-1].task.video is not None
    assert changes[-1].task.video.url.startswith(emulator.video_base_url)
    assert [c.polls for c in changes] == sorted(c.polls for c in changes)
    assert changes[-1].elapsed >= 10.0  # the emulator's 2 s pending + 8 s processing
    assert all(c.task_id == extension.id for c in changes)


async def test_unset_fields_are_left_out_and_set_ones_sent(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    image = tmp_path / "first.png"
    image.write_bytes(PNG)
    await luma.generate("a fox", aspect_ratio="9:16", image_url=image, notify_hook=None)
    body = next(r.json for r in emulator.requests if r.route == "generate")
    assert set(body) == {"user_prompt", "aspect_ratio", "image_url"}
    assert body["image_url"].startswith("data:image/png;base64,")


async def test_requests_carry_key_and_user_agent(luma: LumaSession, emulator: LumaEmulator) -> None:
    await luma.generate("a fox")
    headers = emulator.requests[-1].headers
    assert headers["Authorization"] == f"Bearer {emulator.api_key}"
    assert re.match(
        rf"luma-async/{re.escape(luma_async.__version__)} aiohttp/", headers["User-Agent"]
    )


async def test_wait_returns_the_finished_task(luma: LumaSession) -> None:
    task = await luma.generate("a fox")
    done = await luma.wait(task.id)
    assert done.is_finished
    assert done.video is not None
    assert done.state == TaskState.COMPLETED


async def test_estimate_keeps_polls_few(luma: LumaSession, emulator: LumaEmulator) -> None:
    task = await luma.generate("a fox")
    await luma.wait(
        task.id, policy=PollPolicy(interval=0.5, max_interval=30, jitter=0, timeout=None)
    )
    # The emulator's estimate says "10 s left": the poller sleeps that long instead of
    # polling every half second.
    assert emulator.gets_for(task.id) == 2  # the first look, then one more when it is done


async def test_completed_without_link_keeps_polling(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator(link_delay_polls=2) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=FAST) as luma,
    ):
        task = await luma.generate("a fox")
        changes = [c async for c in luma.poll(task.id)]
    completed = [c for c in changes if c.state == "completed"]
    # One change when the state says completed, one more when the link appears.
    assert len(completed) == 2
    assert completed[0].task.video is None
    assert completed[1].task.video is not None


@pytest.mark.parametrize(
    ("options"),
    [
        {"envelope": "list"},
        {"envelope": "wrapped"},
        {"task_shape": "artifact"},
        {"dialect": "gateway", "envelope": "wrapped", "task_shape": "artifact"},
    ],
)
async def test_every_aggregator_variant(vclock: VirtualClock, options: dict[str, str]) -> None:
    async with (
        LumaEmulator(**options) as emu,  # type: ignore[arg-type]
        LumaSession(emu.api_key, base_url=emu.base_url, poll=FAST) as luma,
    ):
        first = await luma.generate("a fox")
        assert first.prompt == "a fox"
        done = await luma.wait(first.id)
        extension = await luma.extend(done.id, "more fox")
        finished = await luma.wait(extension.id)
        assert finished.video is not None
        assert finished.prompt == "more fox"
        with pytest.raises(NotFoundError):
            await luma.get("00000000-0000-0000-0000-000000000000")


# -- failures of the task ------------------------------------------------------------------


async def test_failed_task_is_reported_then_raised(luma: LumaSession) -> None:
    task = await luma.generate("a fox [fail]")
    seen: list[str] = []
    with pytest.raises(TaskFailedError) as caught:
        async for change in luma.poll(task.id):
            seen.append(str(change.state))
    assert seen[-1] == "failed"
    assert caught.value.task.id == task.id
    assert caught.value.task.failure_reason
    assert task.id in str(caught.value)


async def test_timeout_names_the_last_state(
    luma: LumaSession, emulator: LumaEmulator, vclock: VirtualClock
) -> None:
    started = vclock.monotonic()
    task = await luma.generate("a slow fox")
    emulator.set_durations(task.id, pending=1_000)
    policy = PollPolicy(interval=1, max_interval=5, jitter=0, timeout=30)
    with pytest.raises(PollTimeoutError) as caught:
        await luma.wait(task.id, policy=policy)
    assert caught.value.task is not None
    assert caught.value.task.state == "pending"
    assert caught.value.waited == 30.0  # exactly the timeout, on the virtual clock
    # The estimate (about 1000 s left) stretches every wait to max_interval; the deadline ends
    # the polling: no request at or after it.
    gets = [r.at - started for r in emulator.requests if r.route == "get"]
    assert gets == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert emulator.gets_for(task.id) == 6


async def test_unknown_state_is_kept_and_polling_goes_on(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    task = await luma.generate("a fox")
    weird = {**emulator.task_json(task.id), "state": "queued_for_review"}
    emulator.inject("get", status=200, body=weird)
    changes = [c async for c in luma.poll(task.id)]
    assert changes[0].state == "queued_for_review"
    assert changes[-1].task.is_finished


# -- transient errors ------------------------------------------------------------------------


async def test_poll_rides_through_transient_errors(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    task = await luma.generate("a fox")
    emulator.inject("get", count=2, status=503)
    emulator.inject("get", status=502, html=True)
    emulator.inject("get", drop=True)
    emulator.inject("get", status=429, retry_after=7)
    done = await luma.wait(task.id)
    assert done.is_finished


async def test_poll_honours_retry_after(
    luma: LumaSession, emulator: LumaEmulator, vclock: VirtualClock
) -> None:
    task = await luma.generate("a fox")
    emulator.inject("get", status=429, retry_after=60)
    started = vclock.monotonic()
    await luma.wait(task.id)
    arrivals = [r.at for r in emulator.requests if r.route == "get"]
    assert arrivals[1] - arrivals[0] >= 60
    assert vclock.monotonic() - started >= 60


async def test_poll_raises_what_retrying_cannot_fix(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    task = await luma.generate("a fox")
    emulator.inject("get", status=401)
    with pytest.raises(AuthenticationError):
        await luma.wait(task.id)
    assert emulator.gets_for(task.id) == 1


async def test_get_retries_then_succeeds(luma: LumaSession, emulator: LumaEmulator) -> None:
    task = await luma.generate("a fox")
    emulator.inject("get", count=3, status=500)
    assert (await luma.get(task.id)).id == task.id
    assert emulator.gets_for(task.id) == 4


async def test_get_gives_up_after_the_attempts(emulator: LumaEmulator) -> None:
    retry = RetryPolicy(attempts=3, initial=0.1, max_wait=1.0)
    async with LumaSession(emulator.api_key, base_url=emulator.base_url, retry=retry) as luma:
        task = await luma.generate("a fox")
        emulator.inject("get", count=10, status=503)
        with pytest.raises(ServerError) as caught:
            await luma.get(task.id)
    assert caught.value.status == 503
    assert emulator.gets_for(task.id) == 3


async def test_get_gives_up_at_the_retry_deadline(
    emulator: LumaEmulator, vclock: VirtualClock
) -> None:
    retry = RetryPolicy(attempts=100, initial=1.0, max_wait=10.0, timeout=30.0)
    async with LumaSession(emulator.api_key, base_url=emulator.base_url, retry=retry) as luma:
        task = await luma.generate("a fox")
        emulator.inject("get", count=100, status=500)
        started = vclock.monotonic()
        with pytest.raises(ServerError):
            await luma.get(task.id)
    assert vclock.monotonic() - started < 30 + 11
    assert 5 <= emulator.gets_for(task.id) < 100  # retried, then stopped by the deadline


async def test_get_retries_429_after_its_retry_after(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    task = await luma.generate("a fox")
    emulator.inject("get", status=429, retry_after=12)
    await luma.get(task.id)
    arrivals = [r.at for r in emulator.requests if r.route == "get"]
    assert arrivals[1] - arrivals[0] >= 12


@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequestError), (401, AuthenticationError), (404, NotFoundError)]
)
async def test_client_errors_are_not_retried(
    luma: LumaSession, emulator: LumaEmulator, status: int, error: type[APIError]
) -> None:
    task = await luma.generate("a fox")
    emulator.inject("get", status=status)
    with pytest.raises(error) as caught:
        await luma.get(task.id)
    assert emulator.gets_for(task.id) == 1
    assert f"GET /luma/generations/{task.id} answered {status}" in str(caught.value)


async def test_wrong_key_is_an_authentication_error(emulator: LumaEmulator) -> None:
    async with LumaSession("not-the-key", base_url=emulator.base_url) as luma:
        with pytest.raises(AuthenticationError) as caught:
            await luma.generate("a fox")
    assert "not-the-key" not in str(caught.value)
    assert emulator.created == []


async def test_gateway_task_not_exist_is_not_found(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator(dialect="gateway") as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        with pytest.raises(NotFoundError) as caught:
            await luma.get("no-such-task")
    assert caught.value.status == 400
    assert caught.value.code == "task_not_exist"


async def test_redirects_are_not_followed(luma: LumaSession, emulator: LumaEmulator) -> None:
    task = await luma.generate("a fox")
    emulator.inject("get", status=302, headers={"Location": "http://localhost:1/elsewhere"})
    with pytest.raises(APIError, match="redirect"):
        await luma.get(task.id)
    assert not emulator.video_requests


async def test_garbage_success_answer_is_a_decode_error(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    task = await luma.generate("a fox")
    emulator.inject("get", body="{truncated")
    with pytest.raises(DecodeError):
        await luma.get(task.id)
    emulator.inject("get", body={"state": "pending"})
    with pytest.raises(DecodeError, match="id"):
        await luma.get(task.id)


# -- paid POSTs are never sent twice ---------------------------------------------------------


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 502, "html": True}, {"drop": True}])
async def test_post_that_may_have_landed_is_not_resent(
    luma: LumaSession, emulator: LumaEmulator, fault: dict[str, object]
) -> None:
    parent = (await finished_task(luma)).id
    emulator.reset_records()
    emulator.inject("extend", after_processing=True, **fault)  # type: ignore[arg-type]
    request = ExtendRequest(parent, "more fox")
    with pytest.raises(SubmissionUncertainError) as caught:
        await luma.submit_extend(request)
    assert caught.value.request == request
    assert isinstance(caught.value.__cause__, (ServerError, TransportError))
    assert "NOT re-sent" in str(caught.value)
    assert emulator.count("extend") == 1
    assert len(emulator.created) == 1  # it did land: exactly one task, never two


async def test_post_refused_with_429_is_sent_again(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    emulator.inject("generate", count=2, status=429, retry_after=3)
    task = await luma.generate("a fox")
    assert emulator.count("generate") == 3
    assert emulator.created == [task.id]


async def test_post_429_until_attempts_run_out_is_a_rate_limit(emulator: LumaEmulator) -> None:
    retry = RetryPolicy(attempts=2, initial=0.1)
    async with LumaSession(emulator.api_key, base_url=emulator.base_url, retry=retry) as luma:
        emulator.inject("generate", count=5, status=429, retry_after=1)
        with pytest.raises(RateLimitError) as caught:
            await luma.generate("a fox")
    assert caught.value.retry_after == 1
    assert emulator.created == []


async def test_post_to_a_closed_port_is_retried_then_a_transport_error(
    vclock: VirtualClock,
) -> None:
    retry = RetryPolicy(attempts=3, initial=0.1)
    async with LumaSession("key", base_url=f"http://127.0.0.1:{free_port()}", retry=retry) as luma:
        with pytest.raises(TransportError) as caught:
            await luma.generate("a fox")
    assert caught.value.sent is False
    assert "could not connect" in str(caught.value)


async def test_post_4xx_is_raised_as_is(luma: LumaSession, emulator: LumaEmulator) -> None:
    emulator.inject("generate", status=400, body={"detail": "prompt rejected"})
    with pytest.raises(BadRequestError, match="prompt rejected"):
        await luma.generate("a fox")
    assert emulator.count("generate") == 1


async def test_extending_an_unfinished_task_is_refused(luma: LumaSession) -> None:
    task = await luma.generate("a fox")
    with pytest.raises(BadRequestError):
        await luma.extend(task.id, "more")


# -- input is checked before any request -------------------------------------------------------


@pytest.mark.parametrize(
    ("call"),
    [
        lambda luma: luma.generate(""),
        lambda luma: luma.generate("   "),
        lambda luma: luma.generate(42),
        lambda luma: luma.generate("fox", aspect_ratio="5:3"),
        lambda luma: luma.generate("fox", notify_hook="ftp://example.com/hook"),
        lambda luma: luma.generate("fox", image_url=Path("/no/such/image.png")),
        lambda luma: luma.generate("fox", image_url=b"not an image"),
        lambda luma: luma.generate("fox", expand_prompt="yes"),
        lambda luma: luma.extend("../../admin", "fox"),
        lambda luma: luma.extend("", "fox"),
        lambda luma: luma.extend("a b", "fox"),
        lambda luma: luma.get("x/y"),
        lambda luma: luma.download_video_url("x?y"),
        lambda luma: luma.upload(b""),
        lambda luma: luma.submit_extend("not a request"),
    ],
)
async def test_bad_input_is_refused_before_any_request(
    luma: LumaSession, emulator: LumaEmulator, call
) -> None:
    with pytest.raises(InputError):
        await call(luma)
    assert emulator.requests == []


async def test_poll_checks_its_arguments_at_once(luma: LumaSession) -> None:
    with pytest.raises(InputError):
        luma.poll("bad id")
    with pytest.raises(InputError):
        luma.poll("good-id", policy="fast")  # type: ignore[arg-type]


def test_oversized_image_is_refused(tmp_path: Path) -> None:
    luma = LumaSession("key", max_image_bytes=100)
    image = tmp_path / "big.png"
    image.write_bytes(PNG + b"\x00" * 200)
    with pytest.raises(InputError, match="limit"):
        asyncio.run(luma.generate("fox", image_url=image))


def test_missing_key_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUMA_API_KEY", raising=False)
    with pytest.raises(InputError, match="LUMA_API_KEY"):
        LumaSession()


def test_key_and_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMA_API_KEY", "env-key-123")
    monkeypatch.setenv("LUMA_BASE_URL", "https://luma.example.com/")
    luma = LumaSession()
    assert luma.base_url == "https://luma.example.com"
    assert "env-key-123" not in repr(luma)
    monkeypatch.delenv("LUMA_BASE_URL")
    assert LumaSession().base_url == "https://api.gpt.ge"


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {"base_url": "http://api.example.com"},
        {"base_url": "ftp://api.example.com"},
        {"timeout": 0},
        {"retry": "lots"},
        {"session": "mine"},
    ],
)
def test_bad_session_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        LumaSession("key", **kwargs)  # type: ignore[arg-type]


def test_plain_http_elsewhere_only_when_allowed() -> None:
    luma = LumaSession("key", base_url="http://api.example.com", allow_insecure_http=True)
    assert luma.base_url == "http://api.example.com"


# -- other endpoints ---------------------------------------------------------------------------


async def test_download_video_url(luma: LumaSession, emulator: LumaEmulator) -> None:
    task = await luma.generate("a fox")
    with pytest.raises(BadRequestError):
        await luma.download_video_url(task.id)
    await luma.wait(task.id)
    url = await luma.download_video_url(task.id)
    assert url.startswith(emulator.video_base_url)


async def test_upload_bytes_and_url(luma: LumaSession, emulator: LumaEmulator) -> None:
    uploaded = await luma.upload(PNG)
    assert uploaded.public_url.startswith("http")
    body = next(r.json for r in emulator.requests if r.route == "file_upload")
    assert body["url"].startswith("data:image/png;base64,")
    remote = await luma.upload("https://example.com/frame.png")
    assert remote.public_url
    task = await luma.generate("a fox", image_url=uploaded.public_url)
    assert task.state == "pending"


# -- lifecycle and resources -------------------------------------------------------------------


async def test_owned_session_is_closed_and_borrowed_one_is_not(emulator: LumaEmulator) -> None:
    async with aiohttp.ClientSession() as mine:
        async with LumaSession(emulator.api_key, base_url=emulator.base_url, session=mine) as luma:
            await luma.generate("a fox")
        assert not mine.closed
        assert "borrowed" in repr(luma)
    own = LumaSession(emulator.api_key, base_url=emulator.base_url)
    async with own:
        client = own._aiohttp()
    assert client.closed
    assert own.closed


async def test_lifecycle_is_explicit(emulator: LumaEmulator) -> None:
    luma = LumaSession(emulator.api_key, base_url=emulator.base_url)
    async with luma:
        with pytest.raises(RuntimeError, match="already"):
            await luma.__aenter__()
    await luma.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await luma.generate("a fox")
    with pytest.raises(RuntimeError, match="closed"):
        async with luma:
            pass


async def test_session_works_without_async_with(emulator: LumaEmulator) -> None:
    luma = LumaSession(emulator.api_key, base_url=emulator.base_url)
    try:
        assert (await luma.generate("a fox")).state == "pending"
    finally:
        await luma.aclose()


async def test_breaking_out_of_poll_leaves_nothing_running(luma: LumaSession) -> None:
    task = await luma.generate("a fox")
    before = asyncio.all_tasks()
    iterator = luma.poll(task.id)
    async for change in iterator:
        assert change.state == "pending"
        break
    await iterator.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    assert asyncio.all_tasks() <= before


async def test_cancelling_wait_leaves_nothing_running(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    task = await luma.generate("a fox")
    emulator.set_durations(task.id, pending=10_000)
    before = asyncio.all_tasks()
    waiter = asyncio.ensure_future(luma.wait(task.id, policy=PollPolicy(timeout=None)))
    while emulator.gets_for(task.id) < 3:
        await asyncio.sleep(0.001)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)
    assert asyncio.all_tasks() <= before


async def test_the_token_never_reaches_logs_or_errors(
    luma: LumaSession, emulator: LumaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    task = await luma.generate("a fox")
    emulator.inject("get", count=2, status=500)
    await luma.wait(task.id)
    emulator.inject("generate", status=500)
    with pytest.raises(SubmissionUncertainError) as caught:
        await luma.generate("a fox")
    assert caplog.records
    assert emulator.api_key not in caplog.text
    assert emulator.api_key not in str(caught.value)
    assert emulator.api_key not in repr(caught.value.__cause__)
    assert emulator.api_key not in repr(luma)


def test_version_comes_from_the_installed_metadata() -> None:
    assert luma_async.__version__ == version("luma-async")
    assert luma_async.__version__.count(".") >= 2


async def test_breaking_out_without_closing_stops_the_poller(luma: LumaSession) -> None:
    task = await luma.generate("a fox")
    async for change in luma.poll(task.id):
        assert change.state == "pending"
        break
    for _ in range(3):
        await asyncio.sleep(0)
    # The dropped iterator unsubscribed itself: no watch is left polling for nobody.
    assert luma._hub.watched == []
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("luma-watch")]


@pytest.mark.parametrize("with_length", [True, False])
async def test_an_answer_arriving_in_pieces_is_read_whole(with_length: bool) -> None:
    padding = "x" * 300_000
    body = json.dumps({"id": "t-1", "state": "pending", "notes": padding}).encode()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if with_length:
            response.content_length = len(body)
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 20_000):
            await response.write(body[start : start + 20_000])
            await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/luma/generations/{task_id}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with LumaSession("key", base_url=f"http://127.0.0.1:{port}") as luma:
            task = await luma.get("t-1")
    finally:
        await runner.cleanup()
    assert task.extra["notes"] == padding


def test_the_suite_cannot_reach_past_loopback() -> None:
    with (
        socket.socket() as sock,
        pytest.warns(UserWarning, match="192.0.2.1"),
        pytest.raises(SocketConnectBlockedError),
    ):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routable, and blocked anyway
