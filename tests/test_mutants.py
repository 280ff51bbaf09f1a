"""Behaviour that mutation testing (``nox -s mutate``, docs/mutation.md) showed no test pinned.

Each test names the mutants it kills.  Times are exact: the virtual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from luma_async import (
    DecodeError,
    ExtendRequest,
    InputError,
    ServerError,
    StateChange,
    Task,
    TaskFailedError,
    TaskState,
    Video,
)
from luma_async._clock import Wakeup
from luma_async._inputs import (
    check_bool,
    check_duration,
    check_http_url,
    check_prompt,
    check_task_id,
    image_value,
)
from luma_async._journal import Journal, JournalState, writer_of
from luma_async._poll import follow
from luma_async.testing import VirtualClock

from .test_pinned import EXACT, fetcher

VIDEO = Video("https://cdn/v.mp4")

pytestmark = pytest.mark.asyncio

#: Waits of 2, 3, 4.5 ... s, no jitter, no estimate: every time is exact.
# -- _poll.follow -------------------------------------------------------------------------------


async def test_a_video_arriving_in_the_same_state_is_a_change(vclock: VirtualClock) -> None:
    # 'completed' without a link, then with one: the second is yielded (the video is ready).
    # Kills _poll.x_follow__mutmut_17 (the 'newly finished' test inverted) and _18 (task_id).
    answers: list[Task | Exception] = [
        Task("t-7", TaskState.COMPLETED),
        Task("t-7", TaskState.COMPLETED, video=VIDEO),
    ]
    fetch, times = fetcher(vclock, answers)
    changes = [c async for c in follow(fetch, "t-7", EXACT)]
    assert times == [0.0, 2.0]
    assert [(c.task_id, c.previous, c.state, c.polls) for c in changes] == [
        ("t-7", None, "completed", 1),
        ("t-7", "completed", "completed", 2),
    ]
    assert changes[-1].task.video == VIDEO


async def test_a_failed_poll_raises_with_the_failed_task(vclock: VirtualClock) -> None:
    # Kills _poll.x_follow__mutmut_120 (the error built without the task).
    failed = Task("t", TaskState.FAILED, failure_reason="no credits")
    fetch, _ = fetcher(vclock, [Task("t", TaskState.PROCESSING), failed])
    changes: list[StateChange] = []
    with pytest.raises(TaskFailedError) as caught:
        async for change in follow(fetch, "t", EXACT):
            changes.append(change)
    assert caught.value.task is failed
    assert str(caught.value) == "task t failed: no credits"
    assert [c.state for c in changes] == ["processing", "failed"]


async def test_a_failed_task_in_hand_raises_without_a_poll(vclock: VirtualClock) -> None:
    # Kills _poll.x_follow__mutmut_38 (the error built without the task in hand).
    failed = Task("t", TaskState.FAILED, failure_reason="moderated")
    fetch, times = fetcher(vclock, [Task("t", TaskState.PROCESSING)])
    changes: list[StateChange] = []
    with pytest.raises(TaskFailedError) as caught:
        async for change in follow(fetch, "t", EXACT, first=failed):
            changes.append(change)
    assert caught.value.task is failed
    assert times == []
    assert [(c.state, c.polls) for c in changes] == [("failed", 0)]


async def test_a_pending_task_is_polled_more_slowly(vclock: VirtualClock) -> None:
    # The wait after a poll depends on the task it returned: pending waits x 1.5.
    # Kills _poll.x_follow__mutmut_42 (the wait computed without the last task).
    pending = Task("t", TaskState.PENDING)
    fetch, times = fetcher(vclock, [pending, pending, Task("t", TaskState.COMPLETED, video=VIDEO)])
    changes = [c async for c in follow(fetch, "t", EXACT)]
    assert times == [0.0, 3.0, 7.5]  # 2 x 1.5, then 3 x 1.5
    assert [c.state for c in changes] == ["pending", "completed"]


async def test_a_failed_poll_is_logged_with_task_attempt_and_error(
    vclock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Kills _poll.x_follow__mutmut_64 to _73 (the debug line's format and arguments) and _87
    # (no on_retry: nothing logged).
    error = ServerError(method="GET", path="/t", status=502, detail="bad gateway")
    fetch, _ = fetcher(vclock, [error, Task("t", TaskState.COMPLETED, video=VIDEO)])
    with caplog.at_level(logging.DEBUG, logger="luma_async"):
        _ = [c async for c in follow(fetch, "t", EXACT)]
    lines = [r.getMessage() for r in caplog.records if r.name == "luma_async"]
    assert lines == [f"task t: poll 1 failed: {error}"]


async def _wake_after(clock: VirtualClock, seconds: float, wakeup: Wakeup) -> None:
    await clock.sleep(seconds)
    wakeup.wake()


async def test_a_wakeup_cuts_the_wait_between_polls_short(vclock: VirtualClock) -> None:
    # Kills _poll.x_follow__mutmut_88, _94 and _96 (the waits deaf to the wakeup).
    wakeup = Wakeup()
    fetch, times = fetcher(
        vclock, [Task("t", TaskState.PROCESSING), Task("t", TaskState.COMPLETED, video=VIDEO)]
    )

    async def run() -> list[StateChange]:
        return [c async for c in follow(fetch, "t", EXACT, wakeup=wakeup)]

    changes, _ = await asyncio.gather(run(), _wake_after(vclock, 0.5, wakeup))
    assert times == [0.0, 0.5]  # not 2.0
    assert [c.state for c in changes] == ["processing", "completed"]


async def test_a_wakeup_cuts_the_wait_after_a_failed_poll_short(vclock: VirtualClock) -> None:
    # Kills _poll.xǁPollerǁ_schedule__mutmut_12 (the retry schedule without the poller's
    # sleep) and _sleep__mutmut_2, _4 (that sleep deaf to the wakeup), measured on the
    # slotted Poller: a callback arriving while a failed poll waits to be retried makes the
    # retry happen at once, as it does between two successful polls.
    wakeup = Wakeup()
    error = ServerError(method="GET", path="/t", status=502, detail="bad gateway")
    fetch, times = fetcher(vclock, [error, Task("t", TaskState.COMPLETED, video=VIDEO)])

    async def run() -> list[StateChange]:
        return [c async for c in follow(fetch, "t", EXACT, wakeup=wakeup)]

    changes, _ = await asyncio.gather(run(), _wake_after(vclock, 0.5, wakeup))
    assert times == [0.0, 0.5]  # not 2.0, the retry's own wait
    assert [(c.state, c.polls) for c in changes] == [("completed", 2)]


async def test_a_wakeup_cuts_the_first_wait_after_a_task_in_hand_short(
    vclock: VirtualClock,
) -> None:
    # Kills _poll.x_follow__mutmut_99 and _101 (the first wait deaf to the wakeup).
    wakeup = Wakeup()
    fetch, times = fetcher(vclock, [Task("t", TaskState.COMPLETED, video=VIDEO)])
    first = Task("t", TaskState.PENDING)

    async def run() -> list[StateChange]:
        return [c async for c in follow(fetch, "t", EXACT, wakeup=wakeup, first=first)]

    changes, _ = await asyncio.gather(run(), _wake_after(vclock, 0.5, wakeup))
    assert times == [0.5]  # not 3.0
    assert [c.state for c in changes] == ["pending", "completed"]


# -- _journal: every step's exact row ----------------------------------------------------------

REQUEST = ExtendRequest("parent-1", "one more step")
REQUEST_JSON = {
    "task_id": "parent-1",
    "user_prompt": "one more step",
    "expand_prompt": REQUEST.expand_prompt,
    "image_url": None,
    "image_end_url": None,
    "notify_hook": None,
}


def row(journal: Journal, key: str) -> tuple[object, ...]:
    entry = journal.get(key)
    assert entry is not None
    assert entry.request == REQUEST_JSON
    return (entry.state, entry.task_id, entry.task, entry.error)


def test_each_step_of_the_write_protocol_writes_its_exact_row(tmp_path: Path) -> None:
    # Kills _journal.xǁ_SqliteWriterǁfinished__mutmut_7/_8, failed_3/_7/_8 (task and id
    # kept), uncertain_1 and _4 to _15 (the error and the named task id), rejected_3/_6 and
    # _entry_9 (the error read back).
    done = Task("done-1", TaskState.COMPLETED, video=VIDEO)
    broken = Task("bad-1", TaskState.FAILED, failure_reason="moderated")
    with Journal(tmp_path / "j.sqlite") as journal:
        writer = writer_of(journal)
        keys = [writer.key_for(REQUEST) for _ in range(5)]
        assert keys[1].endswith(":1")
        for key in keys:
            assert writer.claim(key, REQUEST) is None
            assert row(journal, key) == (JournalState.SUBMITTING, None, None, None)
        writer.finished(keys[0], done)
        writer.failed(keys[1], broken)
        writer.uncertain(keys[2], "connection lost", task_id="maybe-1")
        writer.uncertain(keys[3], "timed out")
        writer.rejected(keys[4], "400: bad prompt")
        assert [row(journal, key) for key in keys] == [
            (JournalState.FINISHED, "done-1", done, None),
            (JournalState.FAILED, "bad-1", broken, None),
            (JournalState.UNCERTAIN, "maybe-1", None, "connection lost"),
            (JournalState.UNCERTAIN, None, None, "timed out"),
            (JournalState.REJECTED, None, None, "400: bad prompt"),
        ]


def test_a_rejected_request_claimed_again_starts_from_a_clean_row(tmp_path: Path) -> None:
    # The resent request must not carry the old task, id or error.
    # Kills _journal.xǁ_SqliteWriterǁclaim__mutmut_30 and _34 to _36.
    task = Task("old-1", TaskState.PROCESSING)
    with Journal(tmp_path / "j.sqlite") as journal:
        writer = writer_of(journal)
        key = writer.key_for(REQUEST)
        assert writer.claim(key, REQUEST) is None
        writer.submitted(key, task)
        writer.rejected(key, "refused")
        assert row(journal, key) == (JournalState.REJECTED, "old-1", task, "refused")
        assert writer.claim(key, REQUEST) is None
        assert row(journal, key) == (JournalState.SUBMITTING, None, None, None)


def test_resolving_records_the_answer_and_clears_the_error(tmp_path: Path) -> None:
    # Kills _journal.xǁJournalǁresolve__mutmut_6 (the message), _10 and _13 to _15 (the
    # 'resolved' note) and _22 (the old error kept).
    with Journal(tmp_path / "j.sqlite") as journal:
        writer = writer_of(journal)
        created, nothing = writer.key_for(REQUEST), writer.key_for(REQUEST)
        for key in (created, nothing):
            writer.claim(key, REQUEST)
            writer.uncertain(key, "connection lost")
        journal.resolve(created, task_id="t-9")
        journal.resolve(nothing, task_id=None)
        assert row(journal, created) == (JournalState.SUBMITTED, "t-9", None, None)
        assert row(journal, nothing) == (
            JournalState.REJECTED,
            None,
            None,
            "resolved: no task was created",
        )
        with pytest.raises(InputError) as caught:
            journal.resolve(created, task_id=None)
        assert str(caught.value) == f"journal has no uncertain request {created!r}"


def test_a_row_in_an_unknown_state_is_refused_and_the_claim_rolled_back(tmp_path: Path) -> None:
    # Kills _journal.x__entry__mutmut_3 (the message) and xǁ_SqliteWriterǁclaim__mutmut_41
    # and _42 (no rollback: the journal would be stuck in its transaction).
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        writer = writer_of(journal)
        key, other = writer.key_for(REQUEST), writer.key_for(REQUEST)
        writer.claim(key, REQUEST)
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("UPDATE requests SET state = 'weird' WHERE key = ?", (key,))
        with pytest.raises(InputError) as caught:
            writer.claim(key, REQUEST)
        assert str(caught.value) == f"journal row {key} is in an unknown state 'weird'"
        assert writer.claim(other, REQUEST) is None  # the journal works on
        assert row(journal, other) == (JournalState.SUBMITTING, None, None, None)


def test_an_unreadable_task_in_a_row_says_it_came_from_the_journal(tmp_path: Path) -> None:
    # Kills _journal.x__entry__mutmut_21, _23, _25 and _26 (what= of the decode error).
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        writer = writer_of(journal)
        key = writer.key_for(REQUEST)
        writer.claim(key, REQUEST)
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("UPDATE requests SET task = '[1, 2]' WHERE key = ?", (key,))
        with pytest.raises(DecodeError, match=r"^journal: cannot read the answer as a task: "):
            journal.get(key)


# -- _inputs: the exact messages and the edges of each check -----------------------------------


def message(check: Callable[[], object]) -> str:
    with pytest.raises(InputError) as caught:
        check()
    return str(caught.value)


ID_RULE = (
    "is not a task id: use the 'id' of a task the service returned "
    "(letters, digits, '-', '_', '.', ':'; at most 128 characters)"
)


def test_task_id_messages_show_the_id_up_to_60_characters() -> None:
    # Kills _inputs.x_check_task_id__mutmut_5, _9, _11, _12, _14, _15, _17 and _18.
    sixty, sixty_one = "x" * 59 + " ", "x" * 60 + " "
    assert message(lambda: check_task_id(7)) == "task_id must be a string (the task's id), not int"
    assert message(lambda: check_task_id(sixty)) == f"task_id {sixty!r} {ID_RULE}"
    shown = "x" * 57 + "..."
    assert message(lambda: check_task_id(sixty_one)) == f"task_id {shown!r} {ID_RULE}"


def test_prompt_messages() -> None:
    # Kills _inputs.x_check_prompt__mutmut_3, _6, _13 and _15.
    assert message(lambda: check_prompt(3)) == "user_prompt must be a string, not int"
    assert message(lambda: check_prompt(" \n")) == (
        "user_prompt is empty: describe what the video should show"
    )
    assert message(lambda: check_prompt("a\x00b")) == (
        "user_prompt contains a NUL character; remove it"
    )


def test_bool_and_url_messages_name_the_argument() -> None:
    # Kills _inputs.x_check_bool__mutmut_2 and x_check_http_url__mutmut_4, _22, _34, _35 and
    # _38 to _42 (the kinds named, the value cut at 80 characters).
    assert message(lambda: check_bool("yes", "loop")) == "loop must be True or False, not 'yes'"
    assert message(lambda: check_http_url(5, "notify_hook")) == (
        "notify_hook must be a URL string, not int"
    )
    far = "ftp://" + "a" * 100
    assert message(lambda: check_http_url(far, "notify_hook")) == (
        f"notify_hook must be an http(s) URL with a host name; got {far[:80]!r}"
    )
    assert message(lambda: check_http_url("ftp://x", "image_url", allow_data=True)) == (
        "image_url must be an http(s) URL or a data: URI with a host name; got 'ftp://x'"
    )
    bad = "http://[" + "a" * 100
    assert message(lambda: check_http_url(bad, "notify_hook")) == (
        f"notify_hook {bad[:80]!r} is not a valid URL: Invalid IPv6 URL"
    )


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def test_image_value_messages_and_limits(tmp_path: Path) -> None:
    # Kills _inputs.x_image_value__mutmut_9 and x_check_http_url__mutmut_16 (the limit of a
    # data: URI), _14/_15, _18, _19, _28 to _30 and _32 (the messages), x__sniff__mutmut_2.
    uri = image_value(PNG, "image_url")
    assert uri is not None
    assert image_value(uri, "image_url", max_bytes=len(PNG)) == uri
    assert "the limit is 10" in message(lambda: image_value(uri, "image_url", max_bytes=10))
    assert message(lambda: image_value(b"", "image_url")) == "image_url bytes is empty"
    assert message(lambda: image_value(7, "image_url")) == (
        "image_url must be an http(s) URL, a data: URI, a pathlib.Path or bytes, not int"
    )
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 16
    assert message(lambda: image_value(wav, "image_url")) == (
        "image_url bytes is not a PNG, JPEG, GIF, WebP or BMP image"
    )
    empty, big, missing = tmp_path / "empty.png", tmp_path / "big.png", tmp_path / "none.png"
    empty.write_bytes(b"")
    big.write_bytes(PNG)
    assert message(lambda: image_value(empty, "image_url")) == f"image_url file {empty} is empty"
    assert message(lambda: image_value(big, "image_url", max_bytes=10)) == (
        f"image_url file {big} has {len(PNG)} bytes; the limit is 10: shrink the image"
    )
    assert message(lambda: image_value(missing, "image_url")) == (
        f"image_url file {missing} cannot be read: No such file or directory"
    )


@pytest.mark.parametrize(
    ("value", "wire"), [(1, "1s"), (3600, "3600s"), (5.0, "5s"), ("5s", "5s"), ("7", "7s")]
)
def test_durations_at_the_edges_are_accepted(value: object, wire: str) -> None:
    # Kills _inputs.x_check_duration__mutmut_4, _6, _7, _17, _18 and _19.
    assert check_duration(value) == wire


@pytest.mark.parametrize("value", [0, 3601, True, 2.5, [5], "five", -1])
def test_durations_outside_are_refused_with_the_rule(value: object) -> None:
    # Kills _inputs.x_check_duration__mutmut_2, _3 and _14.
    assert message(lambda: check_duration(value)) == (
        "duration must be a whole number of seconds from 1 to 3600 (5) or a string like '5s', "
        f"not {value!r}"
    )
