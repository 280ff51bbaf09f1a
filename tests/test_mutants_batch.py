"""Batches: behaviour that mutation testing of ``_batch.py`` and ``_batch_wiring.py`` showed no
test pinned (docs/mutation.md).  Each test names the mutants it kills.

Every batch runs on the emulator, on the virtual clock: times are exact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from luma_async import (
    BatchResult,
    ExtendRequest,
    InputError,
    JournalState,
    LumaSession,
    PollPolicy,
    PollTimeoutError,
    StateChange,
    SubmissionUncertainError,
    TaskFailedError,
)
from luma_async._journal import Journal, writer_of
from luma_async.testing import LumaEmulator, VirtualClock

from .helpers import finished_task

pytestmark = pytest.mark.asyncio

#: Polls 1 s apart, never slower, no jitter: every time below is exact.
EVERY_SECOND = PollPolicy(interval=1.0, max_interval=1.0, jitter=0.0, timeout=300.0)
#: Gives up after 3 s: the emulator's tasks (2 s pending, 8 s processing) are still running.
SHORT = PollPolicy(interval=1.0, max_interval=1.0, jitter=0.0, timeout=3.0)


async def parent_of(luma: LumaSession, emulator: LumaEmulator) -> str:
    """A finished task to extend; the emulator's records start empty after it."""
    parent = (await finished_task(luma, "the root clip")).id
    emulator.reset_records()
    return parent


async def run(luma: LumaSession, requests: list[object], **options: object) -> list[BatchResult]:
    batch = luma.extend_many(requests, **options)  # type: ignore[arg-type]
    return [result async for result in batch]


# -- items that are no ExtendRequest ----------------------------------------------------------


async def test_an_item_that_is_no_request_is_reported_back_as_given(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    # Kills _batch._one__mutmut_2 (the item reported as None) and _7 (the type named is
    # NoneType's).
    parent = await parent_of(luma, emulator)
    good = ExtendRequest(parent, "a good one")
    results = await run(luma, ["not a request", good], concurrency=1)
    assert [r.request for r in results] == ["not a request", good]
    bad = results[0]
    assert isinstance(bad.error, InputError)
    assert str(bad.error) == "a batch takes ExtendRequest items, not str"
    assert (bad.task, bad.task_id) == (None, None)
    assert results[1].ok
    assert emulator.count("extend") == 1


# -- what a batch says about each submitted task --------------------------------------------


async def test_tasks_not_seen_to_end_are_in_flight_with_their_requests(
    luma: LumaSession, emulator: LumaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    # The follow gives up (PollTimeoutError): the tasks are paid for and still running.
    # Kills _batch._one__mutmut_28 (submitted maps a task to None), _watch__mutmut_16 (the
    # result's request is None) and _log_unfinished__mutmut_18, _21 (the warning's text).
    parent = await parent_of(luma, emulator)
    requests = [ExtendRequest(parent, "slow one"), ExtendRequest(parent, "slow two")]
    batch = luma.extend_many(requests, concurrency=2, policy=SHORT)
    with caplog.at_level(logging.WARNING, logger="luma_async"):
        results = [r async for r in batch]
    by_request = {r.request: r for r in results}
    assert set(by_request) == set(requests)
    assert all(isinstance(r.error, PollTimeoutError) for r in results)
    expected = {by_request[r].task_id: r for r in requests}
    assert set(expected) == set(emulator.created)
    assert batch.submitted == expected
    assert batch.in_flight == expected
    assert batch.ended == set()
    assert [r.getMessage() for r in caplog.records] == [
        "batch stopped with 2 submitted task(s) not seen to finish: " + ", ".join(batch.in_flight)
    ]


async def test_a_followed_task_starts_from_the_answer_of_its_post(
    luma: LumaSession, emulator: LumaEmulator, vclock: VirtualClock
) -> None:
    # The POST's answer is the task's first state: the first GET waits one interval instead
    # of asking again at once.  Kills _batch._watch__mutmut_3 and _one__mutmut_33 (follow
    # given no first task).
    parent = await parent_of(luma, emulator)
    start = vclock.monotonic()
    (result,) = await run(luma, [ExtendRequest(parent, "one")], concurrency=1, policy=EVERY_SECOND)
    assert result.ok
    (post,) = [r for r in emulator.requests if r.route == "extend"]
    gets = [r.at - start for r in emulator.requests if r.route == "get"]
    assert post.at == start
    assert gets[0] == 1.0  # never at 0.0: the POST already said 'pending'


# -- the journal's rows, and what a rerun makes of them ----------------------------------------


def rows(path: Path) -> list[tuple[str, JournalState, str | None, str | None]]:
    """(key, state, task id, error) of every row of the journal at ``path``."""
    with Journal(path) as journal:
        return [(e.key, e.state, e.task_id, e.error) for e in journal.entries()]


async def test_an_answer_naming_a_task_is_uncertain_with_that_task_and_never_followed(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    # A 200 whose task cannot be read but names one: recorded uncertain with the error and
    # the task id; the rerun reports it again, neither re-sent nor followed.
    # Kills _batch._send__mutmut_3, _4, _5, _8, _9 (the row's key, error and task id) and
    # _resume__mutmut_23 (an uncertain row with a task id followed as if submitted).
    parent = await parent_of(luma, emulator)
    path = tmp_path / "j.sqlite"
    request = ExtendRequest(parent, "lost answer")
    emulator.inject("extend", body={"id": "made-42", "state": 7})
    (first,) = await run(luma, [request], concurrency=1, journal=path)
    assert first.request == request
    assert isinstance(first.error, SubmissionUncertainError)
    assert first.error.task_id == "made-42"
    with Journal(path) as journal:
        key = journal.key_for(request)
    assert rows(path) == [(key, JournalState.UNCERTAIN, "made-42", str(first.error))]

    emulator.reset_records()
    (again,) = await run(luma, [request], concurrency=1, journal=path)
    assert emulator.requests == []
    assert again.request == request
    assert (again.task, again.task_id) == (None, None)
    assert isinstance(again.error, SubmissionUncertainError)
    assert str(again.error) == (
        f"extend {parent}: {first.error}. It may have created a task, so it is not sent "
        f"again; check your tasks, then Journal.resolve({key!r}, task_id=...)"
    )
    assert again.error.task_id == "made-42"
    assert (again.error.method, again.error.path) == ("POST", f"/luma/generations/{parent}/extend")
    assert again.error.request == request
    assert rows(path) == [(key, JournalState.UNCERTAIN, "made-42", str(first.error))]


async def test_a_refused_request_is_recorded_with_its_error_and_sent_again(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    # Kills _batch._send__mutmut_15, _18 (the rejected row's error) and _19 (the result's
    # request is None).
    parent = await parent_of(luma, emulator)
    path = tmp_path / "j.sqlite"
    request = ExtendRequest(parent, "refused once")
    emulator.inject("extend", status=400)
    (first,) = await run(luma, [request], concurrency=1, journal=path)
    assert first.request == request
    assert first.error is not None
    assert not isinstance(first.error, SubmissionUncertainError)
    assert first.task_id is None
    ((key, state, task_id, error),) = rows(path)
    assert (state, task_id, error) == (JournalState.REJECTED, None, str(first.error))

    (again,) = await run(luma, [request], concurrency=1, journal=path)
    assert again.ok
    assert emulator.count("extend") == 2
    assert rows(path) == [(key, JournalState.FINISHED, again.task_id, None)]


async def test_a_rerun_reports_finished_and_failed_rows_with_their_requests(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    # Kills _batch._resume__mutmut_5, _6 (a finished row: submitted/result request None),
    # _15, _16 (the same for a failed row).
    parent = await parent_of(luma, emulator)
    path = tmp_path / "j.sqlite"
    good, bad = ExtendRequest(parent, "fine"), ExtendRequest(parent, "[fail] broken")
    first = {r.request: r for r in await run(luma, [good, bad], concurrency=2, journal=path)}
    emulator.reset_records()
    batch = luma.extend_many([good, bad], concurrency=2, journal=path)
    again = {r.request: r async for r in batch}
    assert emulator.requests == []
    assert set(again) == {good, bad}
    assert again[good].task == first[good].task
    assert again[good].task_id == first[good].task_id
    assert isinstance(again[bad].error, TaskFailedError)
    assert again[bad].task_id == first[bad].task_id
    assert batch.submitted == {first[good].task_id: good, first[bad].task_id: bad}
    assert batch.ended == {first[good].task_id, first[bad].task_id}
    assert batch.in_flight == {}


async def test_a_post_cut_off_by_cancellation_is_listed_uncertain_and_logged(
    luma: LumaSession, emulator: LumaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    # Kills _batch._send__mutmut_23 (the request listed as None) and the warning's mutants.
    parent = await parent_of(luma, emulator)
    request = ExtendRequest(parent, "cut off")
    emulator.inject("extend", delay=60.0)
    batch = luma.extend_many([request], concurrency=1)
    consumer = asyncio.ensure_future(anext(batch))
    while emulator.count("extend") == 0:
        await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="luma_async"):
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
    assert batch.uncertain == [request]
    assert batch.in_flight == {}
    warning = (
        f"batch stopped while submitting 1 request(s); they may have created tasks: {request!r}"
    )
    assert [r.getMessage() for r in caplog.records] == [warning]


# -- _journal.Journal.__init__ ------------------------------------------------------------------


async def test_a_journal_sqlite_cannot_create_is_named_as_given_and_nothing_is_sent(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    # A link to a folder that does not exist passes every check (nothing there, its own
    # folder writable), then sqlite3.connect fails when the batch starts.  The message names
    # the path as the user gave it, the lock is let go, nothing is sent.
    # Kills _journal.xǁJournalǁ__init____mutmut_7 (the path in the message is None).
    parent = await parent_of(luma, emulator)
    link = tmp_path / "j.sqlite"
    link.symlink_to(tmp_path / "missing" / "j.sqlite")
    given = str(link)
    batch = luma.extend_many([ExtendRequest(parent, "never sent")], journal=given)
    with pytest.raises(InputError) as caught:
        await anext(batch)
    assert str(caught.value) == (
        f"journal {given!r} cannot be opened as sqlite3: unable to open database file"
    )
    assert emulator.requests == []
    (tmp_path / "missing").mkdir()  # the link now leads somewhere: the lock was let go
    with Journal(given) as journal:
        assert list(journal.entries()) == []


# -- _batch_wiring.make_batch: arguments, follow step, download after-hook ------------------


async def test_extend_many_names_each_wrong_argument(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    # Every check runs when extend_many is called, before anything is sent.
    # Kills the message and argument mutants of _batch_wiring.make_batch and _downloader.
    parent = await parent_of(luma, emulator)
    requests = [ExtendRequest(parent, "x")]
    calls: dict[str, dict[str, object]] = {
        "fail_fast must be True or False, not 'yes'": {"fail_fast": "yes"},
        "watermark must be True or False, not 'no'": {"watermark": "no"},
        "on_change must be a function or coroutine function, not int": {"on_change": 5},
        "download_to must be a directory path, not int": {"download_to": 3},
        f"download_to {tmp_path / 'nope'} is not an existing directory": {
            "download_to": tmp_path / "nope"
        },
        f"journal {tmp_path / 'gone' / 'j.sqlite'} cannot be created: {tmp_path / 'gone'} is "
        "not a writable folder": {"journal": str(tmp_path / "gone" / "j.sqlite")},
    }
    for message, options in calls.items():
        with pytest.raises(InputError) as caught:
            luma.extend_many(requests, **options)  # type: ignore[arg-type]
        assert str(caught.value) == message
    assert emulator.requests == []
    assert list(tmp_path.iterdir()) == []


async def test_a_batch_follows_with_its_policy_and_reports_every_change(
    luma: LumaSession, emulator: LumaEmulator, vclock: VirtualClock
) -> None:
    # Kills the mutants of make_batch's follow step (policy, first, on_change not passed on).
    parent = await parent_of(luma, emulator)
    seen: list[tuple[str, str | None, str, int]] = []

    def note(change: StateChange) -> None:
        seen.append((change.task_id, change.previous, change.state, change.polls))

    start = vclock.monotonic()
    batch = luma.extend_many(
        [ExtendRequest(parent, "watched")], concurrency=1, policy=EVERY_SECOND, on_change=note
    )
    (result,) = [r async for r in batch]
    assert result.ok
    task_id = result.task_id
    assert seen == [
        (task_id, None, "pending", 0),
        (task_id, "pending", "processing", 2),
        (task_id, "processing", "completed", 10),
    ]
    gets = [r.at - start for r in emulator.requests if r.route == "get"]
    assert gets == [float(i) for i in range(1, 11)]


@pytest.mark.parametrize("watermark", [True, False])
async def test_a_batch_downloads_each_finished_video_as_asked(
    watermark: bool, luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    # Kills the mutants of _batch_wiring._downloader (folder, watermark, the result's path)
    # and of Batch._after_hook (a failed task is not downloaded).
    parent = await parent_of(luma, emulator)
    good, bad = ExtendRequest(parent, "kept"), ExtendRequest(parent, "[fail] lost")
    results = {
        r.request: r
        for r in await run(
            luma, [good, bad], concurrency=2, download_to=str(tmp_path), watermark=watermark
        )
    }
    done = results[good]
    assert done.ok
    saved = tmp_path / f"{done.task_id}.mp4"
    assert done.path == saved
    assert saved.read_bytes() == emulator.video_bytes
    assert list(tmp_path.iterdir()) == [saved]
    assert emulator.count("download_video_url") == (0 if watermark else 1)
    assert len(emulator.video_requests) == 1
    assert isinstance(results[bad].error, TaskFailedError)
    assert results[bad].path is None


# -- the batch itself ---------------------------------------------------------------------------


async def test_a_batch_of_nothing_sends_nothing_and_ran_nothing(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    # Kills _batch.xǁBatchǁ__init____mutmut_36 (peak_running starts at 1) and _14 (the type
    # named in the error is NoneType).
    batch = luma.extend_many([], concurrency=3)
    assert [r async for r in batch] == []
    assert (batch.peak_running, batch.submitted, batch.uncertain) == (0, {}, [])
    assert emulator.requests == []
    with pytest.raises(InputError) as caught:
        luma.extend_many(5, concurrency=3)  # type: ignore[arg-type]
    assert str(caught.value) == "requests must be an iterable of ExtendRequest, not int"


async def test_the_workers_are_named_for_a_debugger(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    # Kills _batch._run__mutmut_7, _9 (workers left with asyncio's default names).
    parent = await parent_of(luma, emulator)
    batch = luma.extend_many([ExtendRequest(parent, f"s{i}") for i in range(12)], concurrency=3)
    async with batch:
        await anext(batch)
        names = {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("luma-b")}
    assert names == {"luma-batch-0", "luma-batch-1", "luma-batch-2"}


async def test_a_journal_given_open_is_written_and_left_open(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    # Kills _batch.xǁBatchǁ__init____mutmut_19, _20 (an open Journal ignored), _23, _25 (an
    # open Journal taken for a path) and _21 (batch.journal set before the batch opens it).
    parent = await parent_of(luma, emulator)
    request = ExtendRequest(parent, "journaled")
    with Journal(tmp_path / "j.sqlite") as journal:
        key = journal.key_for(request)  # the batch ranks identical requests from 0 again
        batch = luma.extend_many([request], concurrency=1, journal=journal)
        assert batch.journal is journal
        (result,) = [r async for r in batch]
        assert result.ok
        assert [(e.key, e.state, e.task_id, e.error) for e in journal.entries()] == [
            (key, JournalState.FINISHED, result.task_id, None)
        ]
    by_path = luma.extend_many([request], concurrency=1, journal=tmp_path / "j.sqlite")
    assert by_path.journal is None  # opened when the batch starts


async def test_a_request_cut_off_by_a_killed_run_is_uncertain_on_the_rerun(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    # A run claimed the request and died before its POST was answered: the rerun neither
    # sends nor follows it, and says why.  Kills _batch._resume__mutmut_26 to _48 (the
    # reason, the row's error, the error's method, path, request and task id, the result's
    # request).
    parent = await parent_of(luma, emulator)
    path = tmp_path / "j.sqlite"
    request = ExtendRequest(parent, "cut off by a kill")
    with Journal(path) as journal:
        key = journal.key_for(request)
        assert writer_of(journal).claim(key, request) is None  # the killed run's last step
    (result,) = await run(luma, [request], concurrency=1, journal=path)
    why = "the process stopped while this request was being submitted"
    assert emulator.requests == []
    assert result.request == request
    assert (result.task, result.task_id) == (None, None)
    error = result.error
    assert isinstance(error, SubmissionUncertainError)
    assert str(error) == (
        f"extend {parent}: {why}. It may have created a task, so it is not sent again; check "
        f"your tasks, then Journal.resolve({key!r}, task_id=...)"
    )
    assert (error.method, error.path) == ("POST", f"/luma/generations/{parent}/extend")
    assert (error.request, error.task_id, error.status, error.answer) == (request, None, None, None)
    assert rows(path) == [(key, JournalState.UNCERTAIN, None, why)]


async def test_a_source_that_breaks_hands_its_own_error_to_the_consumer(
    luma: LumaSession, emulator: LumaEmulator
) -> None:
    # Kills _batch.xǁ_Crashǁ__init____mutmut_1 (the crash carries no error: the consumer would
    # get ``TypeError: exceptions must derive from BaseException`` instead of the cause).
    parent = await parent_of(luma, emulator)

    def requests() -> Iterator[ExtendRequest]:
        yield ExtendRequest(parent, "the one before")
        raise LookupError("the source broke")

    seen: list[BatchResult] = []
    with pytest.raises(LookupError) as caught:
        async for result in luma.extend_many(requests(), concurrency=1):
            seen.append(result)
    assert str(caught.value) == "the source broke"
    assert [r.request for r in seen] == [ExtendRequest(parent, "the one before")]
    assert emulator.count("extend") == 1
