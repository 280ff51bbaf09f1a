"""Many tasks at once: batches, shared watchers, merged streams, batched refresh, budgets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from luma_async import (
    BatchResult,
    ExtendRequest,
    FollowEnd,
    LumaSession,
    PollPolicy,
    PollTimeoutError,
    RequestBudget,
    StateChange,
    TaskFailedError,
)
from luma_async._errors import InputError, LumaError
from luma_async.testing import LumaEmulator, VirtualClock

from .helpers import finished_ids, ours

FAST = PollPolicy(interval=1.0, max_interval=5.0, jitter=0.5, timeout=600.0)
pytestmark = [pytest.mark.asyncio, pytest.mark.poll(FAST)]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


# -- extend_many -------------------------------------------------------------------------------


async def test_batch_of_hundreds_holds_its_concurrency_bound(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    ids = await finished_ids(luma, 5)
    emulator.reset_records()
    requests = [ExtendRequest(ids[i % 5], f"step {i}") for i in range(200)]
    batch = luma.extend_many(requests, concurrency=8)
    results = [result async for result in batch]

    assert len(results) == 200
    assert all(r.ok for r in results)
    assert {r.request for r in results} == set(requests)
    assert all(r.task is not None and r.task.video is not None for r in results)
    assert sorted(emulator.creations_by_prompt().values()) == [1] * 200  # each exactly once
    assert batch.peak_running <= 8
    assert batch.in_flight == {}
    # Independent of the batch's own counters: from the emulator's records, a task is in
    # flight from its submission until the GET that showed its video.
    created_at = {r.created_id: r.at for r in emulator.requests if r.route == "extend"}
    finished_at = {r.task.id: 0.0 for r in results if r.task is not None}
    for record in emulator.requests:
        looked_at = [record.task_id] if record.route == "get" else []
        if record.route == "tasks":
            looked_at = record.json["ids"]
        for task_id in looked_at:
            if task_id in finished_at:
                finished_at[task_id] = max(finished_at[task_id], record.at)
    spans = [(created_at[task_id], finished_at[task_id]) for task_id in finished_at]
    assert 1 < max_overlap(spans) <= 8


async def test_one_failure_is_reported_and_the_batch_goes_on(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    (parent,) = await finished_ids(luma, 1)
    requests = [
        ExtendRequest(parent, f"step {i}" + (" [fail]" if i == 3 else "")) for i in range(10)
    ]
    results = [r async for r in luma.extend_many(requests, concurrency=3)]
    failed = [r for r in results if not r.ok]
    assert len(results) == 10
    assert len(failed) == 1
    assert isinstance(failed[0].error, TaskFailedError)
    assert failed[0].task_id is not None  # the paid task is not lost track of
    assert failed[0].parent_id == parent


async def test_submission_errors_become_results(luma: LumaSession, emulator: LumaEmulator) -> None:
    (parent,) = await finished_ids(luma, 1)
    emulator.inject("extend", status=500, after_processing=True)
    requests = [
        ExtendRequest(parent, "a"),
        ExtendRequest("bad id!", "b"),
        ExtendRequest(parent, ""),
    ]
    results = [r async for r in luma.extend_many(requests, concurrency=1)]
    kinds = sorted(type(r.error).__name__ for r in results)
    assert kinds == ["InputError", "InputError", "SubmissionUncertainError"]


async def test_fail_fast_stops_submitting(luma: LumaSession, emulator: LumaEmulator) -> None:
    (parent,) = await finished_ids(luma, 1)
    emulator.reset_records()
    requests = [ExtendRequest(parent, "[fail] first")] + [
        ExtendRequest(parent, f"s{i}") for i in range(50)
    ]
    batch = luma.extend_many(requests, concurrency=2, fail_fast=True)
    seen: list[BatchResult] = []
    with pytest.raises(TaskFailedError):
        async for result in batch:
            seen.append(result)
    assert any(not r.ok for r in seen)
    assert 2 <= emulator.count("extend") < 10  # both slots were used, then submitting stopped
    await asyncio.sleep(0)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("luma-batch")]


async def test_cancelling_the_consumer_reports_what_was_submitted(
    luma: LumaSession, emulator: LumaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    (parent,) = await finished_ids(luma, 1)
    emulator.reset_records()
    before = asyncio.all_tasks()
    batch = luma.extend_many([ExtendRequest(parent, f"s{i}") for i in range(40)], concurrency=5)
    got: list[BatchResult] = []

    async def consume() -> None:
        async for result in batch:
            got.append(result)

    consumer = asyncio.ensure_future(consume())
    while len(got) < 3:
        await asyncio.sleep(0.001)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await asyncio.sleep(0)

    assert ours(asyncio.all_tasks()) <= before  # no worker, watch or poller left running
    created = set(emulator.created)
    yielded = {r.task_id for r in got}
    # Every paid task is accounted for: its result was seen, it is listed in flight, or its
    # POST was cut off by the cancellation and the request is listed as uncertain.
    known = yielded | set(batch.in_flight) | batch.ended
    unknown = created - known
    assert len(unknown) <= len(batch.uncertain)
    prompts = {emulator.tasks[task_id].prompt for task_id in unknown}
    assert prompts <= {r.user_prompt for r in batch.uncertain}
    assert batch.in_flight
    assert len(created) < 40  # submissions stopped
    assert "not seen to finish" in caplog.text
    assert all(task_id in caplog.text for task_id in batch.in_flight)


async def test_a_result_finished_but_not_yet_taken_stays_in_flight(
    luma: LumaSession, emulator: LumaEmulator, vclock: VirtualClock
) -> None:
    # Two tasks end at the same emulated moment: both results are queued before the
    # consumer takes one; it breaks out after the first.  The second task was paid for and
    # never handed over, so it must be listed in flight, not silently counted as ended.
    (parent,) = await finished_ids(luma, 1)
    emulator.reset_records()
    batch = luma.extend_many([ExtendRequest(parent, f"s{i}") for i in range(2)], concurrency=2)
    async with batch:  # takes one result, then leaves: the batch is closed
        first = await anext(batch)
    created = set(emulator.created)
    assert len(created) == 2
    assert first.task_id in created
    assert first.task_id not in batch.in_flight
    assert created == {first.task_id} | set(batch.in_flight)


async def test_breaking_out_and_closing_the_batch(luma: LumaSession) -> None:
    (parent,) = await finished_ids(luma, 1)
    before = asyncio.all_tasks()
    async with luma.extend_many(
        [ExtendRequest(parent, f"s{i}") for i in range(20)], concurrency=4
    ) as batch:
        async for _ in batch:
            break
    await asyncio.sleep(0)
    assert ours(asyncio.all_tasks()) <= before


async def test_batch_accepts_an_async_source(luma: LumaSession) -> None:
    (parent,) = await finished_ids(luma, 1)

    async def source() -> AsyncIterator[ExtendRequest]:
        for i in range(6):
            yield ExtendRequest(parent, f"s{i}")

    results = [r async for r in luma.extend_many(source(), concurrency=2)]
    assert len(results) == 6
    assert all(r.ok for r in results)


async def test_batch_checks_its_arguments(luma: LumaSession) -> None:
    with pytest.raises(InputError):
        luma.extend_many([], concurrency=0)
    with pytest.raises(InputError):
        luma.extend_many(42, concurrency=2)  # type: ignore[arg-type]
    results = [r async for r in luma.extend_many(["not a request"], concurrency=1)]  # type: ignore[list-item]
    assert isinstance(results[0].error, InputError)


# -- shared watching -----------------------------------------------------------------------------


async def test_many_listeners_share_one_poller(luma: LumaSession, emulator: LumaEmulator) -> None:
    task = await luma.generate("watched by many")
    results = await asyncio.gather(*(luma.wait(task.id) for _ in range(10)))
    assert {r.id for r in results} == {task.id}
    assert all(r.video is not None for r in results)
    alone = await luma.generate("watched by one")
    await luma.wait(alone.id)
    # Ten listeners cost what one costs: one stream of GETs per task.
    assert 1 <= emulator.gets_for(task.id) <= emulator.gets_for(alone.id) + 1


async def test_late_listener_gets_the_latest_state_at_once(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    task = await luma.generate("a fox")
    early = luma.poll(task.id)
    first = await early.__anext__()
    assert first.state == "pending"
    emulator.set_durations(task.id, pending=0)
    second = await early.__anext__()
    assert second.state == "processing"
    gets = emulator.gets_for(task.id)
    late = luma.poll(task.id)
    joined = await late.__anext__()
    assert joined.state == "processing"
    assert emulator.gets_for(task.id) == gets  # served from the shared watch, no request
    await early.aclose()  # type: ignore[attr-defined]
    await late.aclose()  # type: ignore[attr-defined]


async def test_subscribe_with_a_queue_and_a_callback(luma: LumaSession) -> None:
    task = await luma.generate("a fox")
    queue: asyncio.Queue[StateChange | FollowEnd] = asyncio.Queue()
    seen: list[str] = []
    seen_sync: list[str] = []

    async def callback(change: StateChange) -> None:
        seen.append(str(change.state))

    by_queue = luma.subscribe(task.id, queue=queue)
    by_callback = luma.subscribe(task.id, callback=callback)
    by_sync = luma.subscribe(task.id, callback=lambda change: seen_sync.append(change.state))
    done_queue, done_callback = await by_queue, await by_callback.wait()
    assert done_queue.video is not None
    assert done_callback == done_queue
    assert await by_sync == done_queue
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    *changes, end = items
    assert [str(c.state) for c in changes if isinstance(c, StateChange)] == seen
    assert seen == seen_sync == ["pending", "processing", "completed"]
    assert isinstance(end, FollowEnd)  # the queue is told that the follow ended, and how
    assert end.ok
    assert end.error is None
    assert end.task == done_queue
    assert by_queue.done()
    with pytest.raises(InputError):
        luma.subscribe(task.id)
    with pytest.raises(InputError):
        luma.subscribe(task.id, queue=[], callback=callback)  # type: ignore[arg-type]


async def test_cancelled_listener_stops_the_poller(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    task = await luma.generate("a fox")
    emulator.set_durations(task.id, pending=10_000)
    listener = luma.subscribe(task.id, queue=asyncio.Queue())
    while emulator.gets_for(task.id) < 2:
        await asyncio.sleep(0.001)
    listener.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listener
    await asyncio.sleep(0)
    assert luma._hub.watched == []


async def test_watch_many_merges_in_order(
    luma: LumaSession, emulator: LumaEmulator, vclock: VirtualClock
) -> None:
    tasks = [await luma.generate(f"clip {i}" + (" [fail]" if i == 2 else "")) for i in range(6)]
    for i, task in enumerate(tasks):
        emulator.set_durations(task.id, pending=1 + i * 3, processing=4 + i)
    changes = [c async for c in luma.watch_many([t.id for t in tasks])]
    per_task: dict[str, list[str]] = {}
    for change in changes:
        per_task.setdefault(change.task_id, []).append(str(change.state))
    assert set(per_task) == {t.id for t in tasks}
    assert per_task[tasks[2].id][-1] == "failed"
    assert all(states[-1] == "completed" for tid, states in per_task.items() if tid != tasks[2].id)
    completions = [c.task.created_at for c in changes if c.state == "completed"]
    assert len(completions) == 5
    # Order of happening: later-finishing tasks report later.
    finish_order = [c.task_id for c in changes if c.state in ("completed", "failed")]
    assert finish_order == [t.id for t in tasks]


async def test_watch_many_times_out(luma: LumaSession, emulator: LumaEmulator) -> None:
    task = await luma.generate("slow")
    emulator.set_durations(task.id, pending=5_000)
    with pytest.raises(PollTimeoutError) as caught:
        async for _ in luma.watch_many([task.id], policy=PollPolicy(timeout=20)):
            pass
    assert caught.value.task_id == task.id
    with pytest.raises(InputError):
        luma.watch_many([])
    with pytest.raises(InputError):
        luma.watch_many("abc")


async def test_closing_the_session_ends_its_followers(emulator: LumaEmulator) -> None:
    luma = LumaSession(emulator.api_key, base_url=emulator.base_url)
    task = await luma.generate("a fox")
    emulator.set_durations(task.id, pending=10_000)
    waiter = asyncio.ensure_future(luma.wait(task.id, policy=PollPolicy(timeout=None)))
    while emulator.gets_for(task.id) < 2:
        await asyncio.sleep(0.001)
    await luma.aclose()
    with pytest.raises(LumaError, match="closed"):
        await waiter
    with pytest.raises(RuntimeError):
        luma.poll(task.id)


# -- batched refresh ----------------------------------------------------------------------------


async def test_batch_status_query_refreshes_many_tasks(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=FAST) as luma,
    ):
        tasks = [await luma.generate(f"clip {i}") for i in range(30)]
        emu.reset_records()
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        assert emu.count("tasks") > 0
        # Far fewer requests than one GET per task per poll.
        assert emu.count("tasks") + emu.count("get") < 30 * 2


async def test_without_a_batch_endpoint_it_falls_back_once(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator(batch_endpoint=False) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=FAST) as luma,
    ):
        tasks = [await luma.generate(f"clip {i}") for i in range(10)]
        emu.reset_records()
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        assert emu.count("tasks") == 1  # tried once, answered 404, never again
        assert all(emu.gets_for(t.id) >= 2 for t in tasks)


async def test_batch_refresh_errors_never_cost_a_task(
    vclock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 10: the batch query is an optimisation.  A passing 503 is retried; a 401 on the
    # batch route means "not offered here" (decided once); the tasks finish by GET, and only
    # an error of a task's own GET reaches its follower.
    caplog.set_level(logging.INFO, logger="luma_async")
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=FAST) as luma,
    ):
        tasks = [await luma.generate(f"clip {i}") for i in range(5)]
        emu.inject("tasks", count=2, status=503)
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        emu.inject("tasks", status=401)
        more = [await luma.generate(f"more {i}") for i in range(3)]
        emu.reset_records()
        finished = await asyncio.gather(*(luma.wait(t.id) for t in more))
        assert all(t.video is not None for t in finished)
        assert emu.count("tasks") == 1  # asked once, answered 401, never again
        assert all(emu.gets_for(t.id) >= 1 for t in more)
        decided = [r for r in caplog.records if "no batch status query" in r.getMessage()]
        assert len(decided) == 1
        last = [await luma.generate(f"last {i}") for i in range(3)]
        emu.inject("get", status=401)  # the task's own GET: that reaches its follower
        results = await asyncio.gather(*(luma.wait(t.id) for t in last), return_exceptions=True)
        assert any(isinstance(r, LumaError) and "401" in str(r) for r in results)


# -- the request budget -------------------------------------------------------------------------


async def test_rate_budget_is_shared_by_every_poller(vclock: VirtualClock) -> None:
    budget = RequestBudget(max_rate=5, max_connections=3)
    async with (
        LumaEmulator() as emu,
        LumaSession(
            emu.api_key, base_url=emu.base_url, poll=FAST, budget=budget, batch_refresh=False
        ) as luma,
    ):
        tasks = [await luma.generate(f"clip {i}") for i in range(40)]
        await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert luma.budget.peak_in_flight <= 3
    arrivals = sorted(r.at for r in emu.requests)
    # No one-second window holds more than the rate allows (plus the one at its edge).
    for i, start in enumerate(arrivals):
        window = [t for t in arrivals[i:] if t < start + 1.0]
        assert len(window) <= 5 + 1


async def test_a_429_storm_slows_the_whole_session(vclock: VirtualClock) -> None:
    async with (
        LumaEmulator() as emu,
        LumaSession(emu.api_key, base_url=emu.base_url, poll=FAST, batch_refresh=False) as luma,
    ):
        tasks = [await luma.generate(f"clip {i}") for i in range(50)]
        emu.reset_records()
        emu.inject("get", count=20, status=429, retry_after=10)
        done = await asyncio.gather(*(luma.wait(t.id) for t in tasks))
        assert all(t.video is not None for t in done)
        assert luma.budget.throttled >= 1
    throttled = [r.at for r in emu.requests if r.status == 429]
    first = throttled[0]
    # After the first 429 everyone pauses for its Retry-After: only requests already in
    # flight at that instant may arrive inside the pause.
    inside = [r for r in emu.requests if first < r.at < first + 10]
    assert len(inside) <= 50
    assert max(r.at for r in emu.requests) >= first + 10
    assert len(emu.tasks) == 50  # nothing re-created


async def test_poll_cadence_is_slower_while_pending(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    queued = await luma.generate("queued")
    emulator.set_durations(queued.id, pending=200)
    async with LumaSession(
        emulator.api_key,
        base_url=emulator.base_url,
        poll=PollPolicy(jitter=0, timeout=None, use_estimate=False),
    ) as plain:
        await plain.wait(queued.id)
    arrivals = [r.at for r in emulator.requests if r.route == "get" and r.task_id == queued.id]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert gaps[0] == pytest.approx(2.0 * 1.5, abs=0.01)  # interval x pending_factor


# -- chains ----------------------------------------------------------------------------------------


async def test_extend_chain_grows_one_video(luma: LumaSession, emulator: LumaEmulator) -> None:
    (root,) = await finished_ids(luma, 1)
    steps = [step async for step in luma.extend_chain(root, ["walks", "runs", "leaps"])]
    assert [s.request.user_prompt for s in steps] == ["walks", "runs", "leaps"]
    lineage = [root] + [s.task_id for s in steps]
    assert [s.parent_id for s in steps] == lineage[:-1]
    for step in steps:
        assert step.task is not None and step.task.video is not None
        assert emulator.tasks[step.task.id].parent_id == step.parent_id


async def test_extend_chain_stops_at_a_failure(luma: LumaSession) -> None:
    (root,) = await finished_ids(luma, 1)
    got = []
    with pytest.raises(TaskFailedError):
        async for step in luma.extend_chain(root, ["fine", "[fail] broken", "never"]):
            got.append(step)
    assert len(got) == 1
    with pytest.raises(InputError):
        async for _ in luma.extend_chain(root, ["ok", ""]):
            pass


async def test_notify_wakes_a_watch(luma: LumaSession, emulator: LumaEmulator) -> None:
    assert luma.notify("not-watched") is False
    task = await luma.generate("a fox")
    iterator = luma.poll(
        task.id, policy=PollPolicy(interval=100, max_interval=100, jitter=0, timeout=None)
    )
    await iterator.__anext__()
    assert luma.notify(task.id) is True
    await iterator.aclose()  # type: ignore[attr-defined]


def test_logging_is_quiet_by_default() -> None:
    assert logging.getLogger("luma_async").level == logging.NOTSET
