"""Callbacks as a fast path: ``CallbackReceiver`` against the emulator's ``notify_hook`` calls.

The timing tests run on REAL time on purpose: under virtual time a 30-second poll interval
passes instantly, which would hide whether a callback made the difference.  Their emulator
runs 50x fast (``time_scale=0.02``: a task lasts 10 emulated seconds, 0.2 real ones) and the
poll interval is 30 seconds, so a task seen finished within a couple of real seconds can only
have been polled because a callback asked for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import luma_async
from luma_async import (
    CallbackReceiver,
    ExtendRequest,
    InputError,
    LumaSession,
    PollPolicy,
    StateChange,
    SubmissionUncertainError,
)
from luma_async import _callbacks as callbacks_module
from luma_async._watch import FORCED_BURST, FORCED_RATE, TASK_FORCED_BURST, TASK_FORCED_RATE
from luma_async.testing import LumaEmulator, VirtualClock

from .helpers import eventually, free_port, ours

pytestmark = pytest.mark.asyncio

#: Polls only every 30 s: anything faster is the callbacks' doing.
SLOW = PollPolicy(interval=30.0, max_interval=30.0, jitter=0.0, timeout=600.0, use_estimate=False)
QUICK = PollPolicy(interval=0.2, max_interval=0.2, jitter=0.0, timeout=60.0, use_estimate=False)
ORDER = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}


@contextlib.asynccontextmanager
async def live(**options: Any) -> AsyncIterator[tuple[LumaEmulator, LumaSession]]:
    """A fast emulator on real time and a session following tasks slowly."""
    options.setdefault("time_scale", 0.02)
    async with (
        LumaEmulator(**options) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=SLOW) as luma,
    ):
        yield emu, luma


async def post(url: str, body: Any = None, *, raw: bytes | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as client:
        data = raw if raw is not None else json.dumps(body).encode()
        async with client.post(url, data=data) as response:
            return response.status, await response.json(content_type=None)


def refreshed(emu: LumaEmulator, task_id: str) -> list[float]:
    """When the service was asked for ``task_id`` (a GET, or a batch query naming it)."""
    return [
        r.at
        for r in emu.requests
        if r.status == 200
        and (
            (r.route == "get" and r.task_id == task_id)
            or (r.route == "tasks" and task_id in r.json["ids"])
        )
    ]


def monotone(states: list[str]) -> bool:
    ranks = [ORDER[s] for s in states]
    return all(a < b for a, b in itertools.pairwise(ranks))


# -- the fast path -----------------------------------------------------------------------------


@pytest.mark.parametrize("envelope", ["bare", "list", "wrapped"])
async def test_a_callback_makes_the_poller_look_at_once(envelope: str) -> None:
    # 40 ms pending, then 0.8 s processing: long enough that a loaded machine's late look
    # after the 'processing' call still finds the task processing (at 160 ms it once did not).
    async with live(envelope=envelope, processing_seconds=40.0) as (emu, luma):
        receiver = await luma.start_callbacks()
        started = time.monotonic()
        task = await luma.generate("a fox in snow")
        changes: list[StateChange] = []

        async def follow() -> None:
            async for change in luma.poll(task.id, first=task):
                changes.append(change)

        await asyncio.wait_for(follow(), timeout=5.0)
        took = time.monotonic() - started

        assert took < 2.0  # the 30 s poll interval never came round: callbacks did it
        assert changes[-1].task.video is not None
        assert [c.state for c in changes] == ["pending", "processing", "completed"]
        assert emu.tasks[task.id].notify_hook == receiver.hook_url
        delivered = [c for c in emu.callbacks if c.task_id == task.id and c.status == 200]
        assert [c.state for c in delivered] == ["pending", "processing", "completed"]
        assert receiver.deliveries == len(emu.callbacks) == 3
        assert receiver.rejected == 0
        # Every change after the submission came from a GET made after the callback that
        # announced it: the callback's body was never taken for the state.
        gets = refreshed(emu, task.id)
        assert 2 <= len(gets) <= 4
        for change in changes[1:]:
            announced = next(c.at for c in delivered if c.state == change.state)
            assert any(at >= announced for at in gets)
        assert max(gets) >= next(c.at for c in delivered if c.state == "completed")


async def test_a_forged_completed_body_is_not_believed() -> None:
    async with live(pending_seconds=10_000) as (emu, luma):
        receiver = await luma.start_callbacks()
        task = await luma.generate("a long queue")
        seen: asyncio.Queue[StateChange] = asyncio.Queue()
        listener = luma.subscribe(task.id, queue=seen)
        assert (await seen.get()).state == "pending"
        await eventually(lambda: receiver.deliveries == 1)  # the emulator's own 'pending' call
        await asyncio.sleep(0.1)
        looks = emu.gets_for(task.id)

        forged = {**emu.task_json(task.id), "state": "completed", "video": {"url": "http://x/v"}}
        assert await post(receiver.hook_url, forged) == (200, {"ok": True})
        await eventually(lambda: emu.gets_for(task.id) == looks + 1)  # it made the poller look...
        await asyncio.sleep(0.1)
        assert seen.empty()  # ...and the GET said pending: no change, nothing believed
        assert luma._hub.latest(task.id).state == "pending"  # type: ignore[union-attr]
        listener.cancel()


@pytest.mark.parametrize("batch_endpoint", [True, False])
async def test_a_storm_of_duplicates_changes_nothing_and_costs_few_requests(
    batch_endpoint: bool,
) -> None:
    # A task lasts 3 s (50 emulated seconds at 0.06): long enough that submitting 20 of them
    # on a loaded machine does not outlast a state, short enough for a quick test.
    options = {"pending_seconds": 20, "processing_seconds": 30, "time_scale": 0.06}
    async with live(batch_endpoint=batch_endpoint, **options) as (emu, luma):
        emu.callback_duplicates = 20
        receiver = await luma.start_callbacks()
        tasks = await asyncio.gather(*(luma.generate(f"clip {i}") for i in range(20)))
        states: dict[str, list[str]] = {t.id: [] for t in tasks}

        async def follow() -> None:
            async for change in luma.watch_many(states):
                states[change.task_id].append(change.state)

        await asyncio.wait_for(follow(), timeout=30.0)
        await eventually(lambda: not emu._deliveries)  # let the last duplicates land

        assert all(monotone(s) and s[-1] == "completed" for s in states.values()), states
        assert all("processing" in s for s in states.values()), states  # watched throughout
        accepted = [c for c in emu.callbacks if c.status == 200]
        assert len(accepted) == len(emu.callbacks) == receiver.deliveries
        assert receiver.deliveries == 20 * 3 * 21  # three states, each delivered 21 times
        # 1260 deliveries, yet each task was looked at about twice per state change (a wake-up
        # during a poll is kept for one more), never once per delivery.
        looks = {t.id: len(refreshed(emu, t.id)) for t in tasks}
        assert max(looks.values()) <= 9, looks
        total = emu.count("get") + emu.count("tasks")
        assert total <= 20 * 9
        assert total * 7 < receiver.deliveries


async def test_late_and_out_of_order_deliveries_never_move_a_task_back() -> None:
    async with live(pending_seconds=10, processing_seconds=20) as (emu, luma):
        receiver = await luma.start_callbacks()
        task = await luma.generate("a river")
        await eventually(lambda: any(c.task_id == task.id for c in emu.callbacks))
        stale = emu.callbacks[0].body  # the 'pending' delivery
        assert stale["state"] == "pending"
        states: list[str] = []
        async for change in luma.poll(task.id, first=task):
            states.append(change.state)
            for _ in range(5):  # the old news arrives again, late, at every step
                assert (await post(receiver.hook_url, stale))[0] == 200
        assert states == ["pending", "processing", "completed"]
        assert monotone(states)

        # After the end: a stale body for the finished task is accepted and harmless.
        before = len(emu.requests)
        assert await post(receiver.hook_url, stale) == (200, {"ok": True})
        await asyncio.sleep(0.05)
        assert len(emu.requests) == before
        assert (await luma.get(task.id)).state == "completed"


# -- forged and malformed requests -------------------------------------------------------------


async def test_forged_and_malformed_requests_are_refused_and_wake_nobody() -> None:
    async with live(pending_seconds=10_000) as (emu, luma):
        receiver = await luma.start_callbacks()
        task = await luma.generate("a fox")
        listener = luma.subscribe(task.id, queue=asyncio.Queue())
        await eventually(lambda: receiver.deliveries == 1)  # the emulator's own 'pending' call
        await asyncio.sleep(0.1)
        looks = emu.gets_for(task.id)
        hook = receiver.hook_url
        good = emu.task_json(task.id)
        base, secret = hook.rsplit("/", 1)
        wrong = base + "/" + ("A" if secret[0] != "A" else "B") + secret[1:]
        origin = base.removesuffix("/luma-hook")

        async with aiohttp.ClientSession() as client:

            async def status(method: str, url: str, data: bytes | None = None) -> int:
                async with client.request(method, url, data=data) as response:
                    await response.read()
                    if response.status == 405:
                        assert response.headers["Allow"] == "POST"
                    return response.status

            body = json.dumps(good).encode()
            cases = [
                (404, "POST", wrong, body),  # wrong secret
                (404, "POST", base, body),  # no secret
                (404, "POST", base + "/", body),
                (404, "POST", hook + "/", body),
                (404, "POST", hook[:-1], body),  # a prefix of the secret
                (404, "POST", origin + "/elsewhere", body),  # unknown path
                (404, "GET", wrong, None),  # a prober cannot tell the secret path exists
                (405, "GET", hook, None),
                (405, "PUT", hook, body),
                (400, "POST", hook, b"not json {"),
                (400, "POST", hook, b"\xff\xfe"),
                (400, "POST", hook, b""),
                (400, "POST", hook, b'"a string"'),
                (400, "POST", hook, b"42"),
                (400, "POST", hook, json.dumps([good, good]).encode()),  # a list of 2
                (400, "POST", hook, b"[]"),
                (400, "POST", hook, json.dumps({**good, "id": None}).encode()),
                (400, "POST", hook, json.dumps({"state": "completed"}).encode()),  # no id
                (400, "POST", hook, json.dumps({**good, "id": "../../etc"}).encode()),
                (400, "POST", hook, json.dumps({**good, "id": "x" * 200}).encode()),
                (400, "POST", hook, json.dumps({"code": "success", "data": None}).encode()),
                (400, "POST", hook, b"[" * 100_000 + b"]" * 100_000),  # too deep to read
            ]
            got = [(await status(m, u, d), m, u, d) for _, m, u, d in cases]
            assert [g[0] for g in got] == [c[0] for c in cases]
        await asyncio.sleep(0.05)
        assert receiver.rejected == len(cases)
        assert receiver.deliveries == 1
        assert emu.gets_for(task.id) == looks  # none of them made the poller look

        assert await post(hook, good) == (200, {"ok": True})  # and a real one does
        await eventually(lambda: emu.gets_for(task.id) == looks + 1)
        assert receiver.deliveries == 2
        listener.cancel()


async def test_oversized_bodies_are_refused_whether_declared_or_streamed() -> None:
    async with live() as (_, luma):
        receiver = await luma.start_callbacks()
        big = b'{"id": "' + b"a" * (receiver.max_body_bytes + 10) + b'"}'

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked encoding
            for start in range(0, len(big), 65_536):
                yield big[start : start + 65_536]

        async with aiohttp.ClientSession() as client:
            async with client.post(receiver.hook_url, data=io.BytesIO(big)) as response:
                assert response.status == 413
            async with client.post(receiver.hook_url, data=chunks()) as response:
                assert response.status == 413
            edge = json.dumps({"id": "abc"}).encode().ljust(receiver.max_body_bytes)
            async with client.post(receiver.hook_url, data=io.BytesIO(edge)) as response:
                assert response.status == 200  # exactly the limit is fine
        assert receiver.rejected == 2
        assert receiver.deliveries == 1


async def test_a_callback_for_an_unwatched_task_is_accepted_and_harmless(
    emulator: LumaEmulator, luma: LumaSession, vclock: VirtualClock
) -> None:
    receiver = await luma.start_callbacks()
    for body in (
        {"id": "not-a-task-we-follow", "state": "completed"},
        [{"id": "another-one"}],
        {"code": "success", "message": "", "data": {"id": "third"}},
    ):
        assert await post(receiver.hook_url, body) == (200, {"ok": True})
    started = vclock.monotonic()
    await vclock.sleep(600)  # ten minutes of virtual time: whatever a callback set going ran
    assert vclock.monotonic() - started == 600
    assert receiver.deliveries == 3
    assert receiver.rejected == 0
    assert emulator.requests == []  # nothing was fetched for it
    assert luma._hub.watched == []


# -- lost callbacks ----------------------------------------------------------------------------


async def test_lost_callbacks_only_cost_time() -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there: every delivery fails
    async with live(callback_attempts=2, callback_retry_seconds=1.0) as (emu, luma):
        receiver = await luma.start_callbacks(public_url=dead)
        assert receiver.hook_url.startswith(dead + "/luma-hook/")
        task = await luma.generate("a fox")
        assert emu.tasks[task.id].notify_hook == receiver.hook_url
        done = await asyncio.wait_for(luma.wait(task.id, policy=QUICK, first=task), 5.0)
        assert done.video is not None
        await eventually(lambda: len(emu.callbacks) >= 2)
        assert all(c.status is None for c in emu.callbacks)
        assert receiver.deliveries == 0


async def test_a_hook_answering_errors_loses_deliveries_and_polling_still_finishes() -> None:
    async with live(callback_attempts=3, callback_retry_seconds=0.5) as (emu, luma):
        receiver = await luma.start_callbacks()
        task = await luma.generate("a fox")
        emu.tasks[task.id].request["notify_hook"] = receiver.hook_url + "x"  # now refused
        done = await asyncio.wait_for(luma.wait(task.id, policy=QUICK, first=task), 5.0)
        assert done.video is not None
        await eventually(lambda: any(c.status == 404 for c in emu.callbacks))
        assert receiver.rejected >= 1


# -- session integration -----------------------------------------------------------------------


async def test_the_hook_is_added_to_every_submission_unless_given() -> None:
    mine = f"http://127.0.0.1:{free_port()}/my-own-hook"
    async with live() as (emu, luma):
        receiver = await luma.start_callbacks()
        hook = receiver.hook_url
        first = await luma.generate("a fox")
        own = await luma.generate("a cat", notify_hook=mine)
        parent = await luma.wait(first.id, policy=QUICK, first=first)
        extended = await luma.extend(parent.id, "the camera pulls back")
        request = ExtendRequest(parent.id, "again")
        submitted = await luma.submit_extend(request)
        own_extend = await luma.submit_extend(ExtendRequest(parent.id, "mine", notify_hook=mine))
        hooks = {t: emu.tasks[t].notify_hook for t in emu.created}
        assert hooks == {
            first.id: receiver.hook_url,
            own.id: mine,
            extended.id: receiver.hook_url,
            submitted.id: receiver.hook_url,
            own_extend.id: mine,
        }
        assert request.notify_hook is None  # the caller's request is left alone

        await receiver.close()
        after = await luma.generate("no hook now")
        assert emu.tasks[after.id].notify_hook is None

        again = await luma.start_callbacks()  # a closed receiver can be replaced
        assert again.hook_url != hook
        with pytest.raises(RuntimeError, match="already"):
            await luma.start_callbacks()


async def test_the_secret_never_shows_in_errors_logs_or_reprs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="luma_async")
    async with live() as (emu, luma):
        receiver = await luma.start_callbacks()
        secret = receiver.hook_url.rsplit("/", 1)[1]
        assert len(secret) >= 43  # 256 random bits
        emu.inject("generate", drop=True, after_processing=True)
        with pytest.raises(SubmissionUncertainError) as caught:
            await luma.generate("a fox")
        assert emu.tasks[emu.created[-1]].notify_hook == receiver.hook_url  # it was sent
        await post(receiver.hook_url, {"id": "abc"})
        await post(receiver.hook_url + "nope", {"id": "abc"})
        shown = [
            str(caught.value),
            repr(caught.value.request),
            repr(receiver),
            repr(luma),
            caplog.text,
        ]
        assert all(secret not in text for text in shown)
        assert "***" in repr(receiver)
        assert f"{receiver.deliveries} deliveries, 1 rejected" in repr(receiver)


async def test_the_receiver_closes_with_the_session_and_leaves_nothing_behind() -> None:
    async with LumaEmulator(time_scale=0.02) as emu:
        async with LumaSession(emu.api_key, base_url=emu.base_url, poll=SLOW) as luma:
            receiver = await luma.start_callbacks()
            task = await luma.generate("a fox")
            await asyncio.wait_for(luma.wait(task.id, first=task), 5.0)
            port, was_running = receiver.port, receiver.running
        assert was_running
        assert luma.closed
        assert receiver.closed
        assert not receiver.running
        with pytest.raises(RuntimeError, match="not running"):
            _ = receiver.hook_url
        with pytest.raises(aiohttp.ClientConnectionError):  # nothing listens any more
            async with aiohttp.ClientSession() as client:
                await client.post(f"http://127.0.0.1:{port}/luma-hook/x")
        await luma.aclose()  # idempotent, and closing again is too
        await receiver.close()
        with pytest.raises(RuntimeError, match="closed"):
            await receiver.start()
        with pytest.raises(RuntimeError, match="closed"):
            await luma.start_callbacks()
    await asyncio.sleep(0)
    assert ours(asyncio.all_tasks()) == {asyncio.current_task()}


# -- the receiver on its own -------------------------------------------------------------------


async def test_a_receiver_on_its_own_as_a_context_manager() -> None:
    async with (
        LumaEmulator(time_scale=0.02) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=SLOW) as luma,
    ):
        receiver = CallbackReceiver(
            luma, public_url="https://myapp.example.com/", path_prefix="/hooks/luma/"
        )
        assert "not started" in repr(receiver)
        assert "https://myapp.example.com/hooks/luma/***" in repr(receiver)
        with pytest.raises(RuntimeError, match="not running"):
            _ = receiver.hook_url
        async with receiver:
            await receiver.start()  # a no-op when running
            assert receiver.hook_url.startswith("https://myapp.example.com/hooks/luma/")
            assert "running" in repr(receiver)
            local = f"http://127.0.0.1:{receiver.port}{receiver.hook_url[25:]}"
            assert await post(local, {"id": "abc"}) == (200, {"ok": True})
            task = await luma.generate("a fox")  # only start_callbacks() adds its hook
            assert emu.tasks[task.id].notify_hook is None
        assert "closed" in repr(receiver)
        assert receiver.deliveries == 1


async def test_a_receiver_that_cannot_listen_raises_and_holds_nothing() -> None:
    async with LumaEmulator() as emu, LumaSession(emu.api_key, base_url=emu.base_url) as luma:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            receiver = CallbackReceiver(luma, port=taken.getsockname()[1])
            with pytest.raises(OSError):
                await receiver.start()
        assert not receiver.running


async def test_a_receiver_on_ipv6_loopback() -> None:
    async with LumaEmulator() as emu, LumaSession(emu.api_key, base_url=emu.base_url) as luma:
        receiver = CallbackReceiver(luma, host="::1")
        try:
            await receiver.start()
        except OSError:  # pragma: no cover - a host without IPv6
            pytest.skip("no IPv6 loopback here")
        async with receiver:
            assert receiver.hook_url.startswith(f"http://[::1]:{receiver.port}/luma-hook/")
            assert await post(receiver.hook_url, {"id": "abc"}) == (200, {"ok": True})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"host": ""}, "host"),
        ({"host": "127.0.0.1 "}, "host"),
        ({"port": -1}, "port"),
        ({"port": 70_000}, "port"),
        ({"port": True}, "port"),
        ({"port": "80"}, "port"),
        ({"public_url": "ftp://example.com"}, "public_url"),
        ({"public_url": "example.com"}, "public_url"),
        ({"path_prefix": "hooks"}, "path_prefix"),
        ({"path_prefix": "/a b"}, "path_prefix"),
        ({"path_prefix": "/a?b"}, "path_prefix"),
        ({"path_prefix": None}, "path_prefix"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"max_body_bytes": 1.5}, "max_body_bytes"),
        ({"max_body_bytes": True}, "max_body_bytes"),
    ],
)
async def test_bad_options_are_refused_before_listening(
    options: dict[str, Any], message: str
) -> None:
    async with LumaSession("k", base_url="http://127.0.0.1:9") as luma:
        with pytest.raises(InputError, match=message):
            CallbackReceiver(luma, **options)


def test_a_receiver_needs_a_session() -> None:
    with pytest.raises(InputError, match="LumaSession"):
        CallbackReceiver(object())  # type: ignore[arg-type]


def test_the_receiver_is_public() -> None:
    assert "CallbackReceiver" in luma_async.__all__
    assert luma_async.CallbackReceiver is CallbackReceiver


# -- callbacks cannot be turned into a request flood (issue 11.5) ------------------------------


async def test_a_flood_of_hints_for_one_task_forces_few_polls(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator(pending_seconds=10_000) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=SLOW, batch_refresh=False) as luma,
    ):
        task = await luma.generate("a long queue")
        seen: asyncio.Queue[StateChange] = asyncio.Queue()
        listener = luma.subscribe(task.id, queue=seen)
        assert (await seen.get()).state == "pending"
        before, started = emu.gets_for(task.id), vclock.monotonic()
        try:
            for _ in range(1_750):  # 1,750 deliveries in no time at all
                assert luma.notify(task.id)
                await asyncio.sleep(0)
            flooded, flood_gets = vclock.monotonic(), emu.gets_for(task.id)
            # The hints of the flood are folded and rate-bound; the last one is not lost:
            # it is polled for within a token's time, long before the schedule (30 s away).
            while emu.gets_for(task.id) == flood_gets and vclock.monotonic() - flooded < 5:
                await vclock.sleep(0.01)
            assert vclock.monotonic() - flooded <= 1 / TASK_FORCED_RATE + 0.05
            for _ in range(int(5 / 0.01)):
                await vclock.sleep(0.01)
            forced = emu.gets_for(task.id) - before
            elapsed = vclock.monotonic() - started
            assert forced <= TASK_FORCED_BURST + elapsed * TASK_FORCED_RATE + 1, forced
            assert forced <= 25  # not 1,750
        finally:
            listener.cancel()


async def test_hints_for_many_tasks_are_bounded_by_a_session_rate(vclock: VirtualClock) -> None:
    count = 3 * FORCED_BURST
    async with (
        LumaEmulator(pending_seconds=10_000) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=SLOW, batch_refresh=False) as luma,
    ):
        tasks = [await luma.generate(f"clip {i}") for i in range(count)]
        subscriptions = [luma.poll(t.id, first=t) for t in tasks]
        for subscription in subscriptions:
            assert (await anext(subscription)).state == "pending"
        before, started = emu.count("get"), vclock.monotonic()
        for task in tasks:
            luma.notify(task.id)
        await asyncio.sleep(0)
        at_once = emu.count("get") - before
        assert at_once <= FORCED_BURST
        # the rest follow at FORCED_RATE, none is lost, and none comes from the 30 s schedule
        while emu.count("get") - before < count and vclock.monotonic() - started < 20:
            await vclock.sleep(0.01)
            elapsed = vclock.monotonic() - started
            assert emu.count("get") - before <= FORCED_BURST + elapsed * FORCED_RATE + 1
        took = vclock.monotonic() - started
        assert emu.count("get") - before == count
        assert took >= (count - FORCED_BURST) / FORCED_RATE - 0.1
        assert took < SLOW.interval
        for subscription in subscriptions:
            subscription.close()


# -- the receiver cannot be starved (issue 11.6) -----------------------------------------------


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        return await reader.read() == b""  # EOF: the server closed the connection
    except ConnectionError:  # an abort (RST) closes too
        return True


async def test_connections_that_never_finish_their_headers_are_closed_and_capped() -> None:
    cap, timeout = 20, 0.3
    async with live() as (_emu, luma):
        receiver = CallbackReceiver(luma, max_connections=cap, header_timeout=timeout)
        async with receiver:
            server = receiver._runner.server  # type: ignore[union-attr]
            assert server is not None
            most = 0

            def count() -> None:
                nonlocal most
                most = max(most, len(server.connections))

            started = time.monotonic()
            streams = []
            for _ in range(3 * cap):  # a slowloris: headers begun, never finished
                reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
                writer.write(b"POST /luma-hook/x HTTP/1.1\r\nHost: a\r\nContent-Le")
                streams.append((reader, writer))
                await asyncio.sleep(0)
                count()
            closed = await asyncio.wait_for(
                asyncio.gather(*(_closed_by_server(r) for r, _ in streams)), timeout=5.0
            )
            took = time.monotonic() - started
            count()
            assert all(closed)
            assert took < timeout + 2.0  # held for the header timeout, not forever
            assert most <= cap
            assert receiver.refused_connections >= 2 * cap
            for _, writer in streams:
                writer.close()
            await eventually(lambda: not server.connections)
            # the receiver still serves a real delivery
            task = await luma.generate("a fox")
            assert await post(receiver.hook_url, {"id": task.id}) == (200, {"ok": True})


async def test_a_body_that_never_arrives_is_answered_408_and_closed() -> None:
    async with live() as (_emu, luma):
        receiver = CallbackReceiver(luma, body_timeout=0.3)
        async with receiver:
            path = receiver.hook_url.split(str(receiver.port), 1)[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{{".encode()
            )
            started = time.monotonic()
            answer = await asyncio.wait_for(reader.read(), timeout=5.0)
            assert time.monotonic() - started < 2.0
            assert answer.startswith(b"HTTP/1.1 408")
            assert receiver.rejected == 1
            assert receiver.deliveries == 0
            writer.close()


def test_the_receiver_is_bounded_by_default() -> None:
    assert 0 < callbacks_module.DEFAULT_HEADER_TIMEOUT <= 30
    assert 0 < callbacks_module.DEFAULT_BODY_TIMEOUT <= 30
    assert 0 < callbacks_module.DEFAULT_MAX_CONNECTIONS <= 1_000  # far below a process's fds


@pytest.mark.parametrize(
    "options",
    [
        {"max_connections": 0},
        {"max_connections": True},
        {"header_timeout": 0},
        {"header_timeout": float("nan")},
        {"body_timeout": -1},
        {"body_timeout": "5"},
    ],
)
def test_bad_bounds_are_refused(options: dict[str, Any]) -> None:
    luma = LumaSession("k" * 20, base_url="http://127.0.0.1:9")
    with pytest.raises(InputError):
        CallbackReceiver(luma, **options)


async def test_start_callbacks_takes_the_receivers_bounds(emulator: LumaEmulator) -> None:
    async with LumaSession(emulator.api_key, base_url=emulator.base_url) as luma:
        with pytest.raises(InputError, match="header_timeout"):
            await luma.start_callbacks(header_timeout=0)
        receiver = await luma.start_callbacks(
            max_connections=3, header_timeout=0.25, body_timeout=1.5
        )
        assert (receiver.max_connections, receiver.header_timeout, receiver.body_timeout) == (
            3,
            0.25,
            1.5,
        )
        await receiver.close()
        defaults = await luma.start_callbacks()
        assert (defaults.max_connections, defaults.header_timeout, defaults.body_timeout) == (
            128,
            10.0,
            10.0,
        )
