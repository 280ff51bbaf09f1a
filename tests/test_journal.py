"""The durable batch journal: resume after a crash, never submit twice."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from luma_async import (
    ExtendRequest,
    InputError,
    JournalState,
    LumaSession,
    PollPolicy,
    SubmissionUncertainError,
    TaskFailedError,
)
from luma_async._journal import Journal, request_fingerprint, writer_of
from luma_async.testing import LumaEmulator

from .helpers import complete_parent, finished_task

ROOT = Path(__file__).resolve().parent.parent
FAST = PollPolicy(interval=1.0, max_interval=5.0, jitter=0.5, timeout=600.0)
pytestmark = [pytest.mark.asyncio, pytest.mark.poll(FAST)]


async def test_a_finished_batch_is_not_run_again(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    parent = (await finished_task(luma, "the root clip")).id
    journal = tmp_path / "batch.sqlite"
    requests = [ExtendRequest(parent, f"step {i}") for i in range(12)] + [
        ExtendRequest(parent, "[fail] x")
    ]
    first = [r async for r in luma.extend_many(requests, concurrency=4, journal=journal)]
    assert sum(r.ok for r in first) == 12
    emulator.reset_records()

    again = [r async for r in luma.extend_many(requests, concurrency=4, journal=journal)]

    assert emulator.requests == []  # everything came from the journal
    assert {r.task_id for r in again} == {r.task_id for r in first}
    failed = [r for r in again if not r.ok]
    assert len(failed) == 1
    assert isinstance(failed[0].error, TaskFailedError)


async def test_identical_requests_are_distinct_rows(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    parent = (await finished_task(luma, "the root clip")).id
    same = [ExtendRequest(parent, "again")] * 3
    results = [r async for r in luma.extend_many(same, journal=tmp_path / "j.sqlite")]
    assert len({r.task_id for r in results}) == 3
    assert emulator.creations_by_prompt()["again"] == 3
    emulator.reset_records()
    [r async for r in luma.extend_many(same, journal=tmp_path / "j.sqlite")]
    assert emulator.count("extend") == 0


async def test_a_request_cut_off_mid_post_is_flagged_not_resent(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    parent = (await finished_task(luma, "the root clip")).id
    request = ExtendRequest(parent, "maybe")
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:  # what a process killed mid-POST leaves behind
        key = journal.key_for(request)
        writer_of(journal).claim(key, request)
    emulator.reset_records()

    results = [r async for r in luma.extend_many([request], journal=path)]

    assert isinstance(results[0].error, SubmissionUncertainError)
    assert "resolve" in str(results[0].error)
    assert emulator.count("extend") == 0
    with Journal(path) as journal:
        (entry,) = journal.uncertain()
        assert entry.key == key
        journal.resolve(key, task_id=None)  # the user checked: nothing was created
        with pytest.raises(InputError):
            journal.resolve(key, task_id=None)
    results = [r async for r in luma.extend_many([request], journal=path)]
    assert results[0].ok
    assert emulator.count("extend") == 1


async def test_resolving_with_a_task_follows_it(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    parent = (await finished_task(luma, "the root clip")).id
    request = ExtendRequest(parent, "landed")
    existing = await luma.extend(parent, "landed")  # the POST that landed before the crash
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        key = journal.key_for(request)
        writer_of(journal).claim(key, request)
        writer_of(journal).uncertain(key, "killed")
        journal.resolve(key, task_id=existing.id)
    emulator.reset_records()
    results = [r async for r in luma.extend_many([request], journal=path)]
    assert results[0].task_id == existing.id
    assert results[0].ok
    assert emulator.count("extend") == 0


async def test_a_rejected_request_is_sent_again(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    parent = (await finished_task(luma, "the root clip")).id
    path = tmp_path / "j.sqlite"
    emulator.inject("extend", status=400, body={"detail": "busy"})
    first = [r async for r in luma.extend_many([ExtendRequest(parent, "x")], journal=path)]
    assert first[0].error is not None
    second = [r async for r in luma.extend_many([ExtendRequest(parent, "x")], journal=path)]
    assert second[0].ok


async def test_an_uncertain_answer_is_journaled(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    parent = (await finished_task(luma, "the root clip")).id
    path = tmp_path / "j.sqlite"
    emulator.inject("extend", status=502, after_processing=True)
    first = [r async for r in luma.extend_many([ExtendRequest(parent, "x")], journal=path)]
    assert isinstance(first[0].error, SubmissionUncertainError)
    emulator.reset_records()
    again = [r async for r in luma.extend_many([ExtendRequest(parent, "x")], journal=path)]
    assert isinstance(again[0].error, SubmissionUncertainError)
    assert emulator.count("extend") == 0
    assert sum(task.prompt == "x" for task in emulator.tasks.values()) == 1


def test_journal_rows_and_bad_paths(tmp_path: Path) -> None:
    request = ExtendRequest("parent-1", "p", image_url=b"\x89PNG\r\n\x1a\n")
    assert request_fingerprint(request) == request_fingerprint(
        ExtendRequest("parent-1", "p", image_url=b"\x89PNG\r\n\x1a\n")
    )
    assert request_fingerprint(request) != request_fingerprint(ExtendRequest("parent-1", "q"))
    with Journal(tmp_path / "j.sqlite") as journal:
        key = journal.key_for(request)
        writer_of(journal).claim(key, request)
        (entry,) = journal.entries()
        assert entry.state == "submitting"
        assert entry.request["image_url"].startswith("sha256:")
        assert journal.get("nope") is None
    with contextlib.closing(sqlite3.connect(tmp_path / "j.sqlite")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(InputError):
        Journal("")
    with pytest.raises(InputError):
        Journal(tmp_path)  # a directory


def test_journal_states_are_an_enum_equal_to_the_stored_strings(tmp_path: Path) -> None:
    request = ExtendRequest("parent-1", "p")
    with Journal(tmp_path / "j.sqlite") as journal:
        key = journal.key_for(request)
        writer_of(journal).claim(key, request)
        writer_of(journal).uncertain(key, "cut off")
        (entry,) = journal.entries()
        assert entry.state is JournalState.UNCERTAIN
        assert entry.state == "uncertain"
        assert {entry.state} == {"uncertain"}
        assert f"{entry.state:<10}|" == "uncertain |"  # as the CLI prints it
        assert json.dumps({"state": entry.state}) == '{"state": "uncertain"}'
        assert list(journal.entries(JournalState.UNCERTAIN)) == [entry]
        assert list(journal.entries("uncertain")) == [entry]  # old callers pass strings
        assert list(journal.entries(JournalState.FINISHED)) == []
        with pytest.raises(InputError, match="submitting, submitted, finished"):
            list(journal.entries("done"))
    with contextlib.closing(sqlite3.connect(tmp_path / "j.sqlite")) as db:
        assert db.execute("SELECT state FROM requests").fetchall() == [("uncertain",)]


def test_the_write_protocol_is_not_the_journals_public_api() -> None:
    public = {name for name in vars(Journal) if not name.startswith("_")}
    assert public == {"close", "entries", "get", "key_for", "resolve", "uncertain"}


async def test_a_journal_file_is_created_only_when_the_batch_runs(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    parent = (await finished_task(luma, "the root clip")).id
    path = tmp_path / "later.sqlite"
    batch = luma.extend_many([ExtendRequest(parent, "later")], journal=path)
    async with batch:  # entered and left without iterating
        pass
    luma.extend_many([ExtendRequest(parent, "later")], journal=path)  # never iterated
    assert sorted(tmp_path.iterdir()) == []
    assert emulator.count("extend") == 0

    batch = luma.extend_many([ExtendRequest(parent, "later")], journal=path)
    results = [r async for r in batch]
    assert results[0].ok
    assert path.exists()
    with Journal(path) as journal:
        assert [entry.state for entry in journal.entries()] == [JournalState.FINISHED]


async def test_an_unusable_journal_path_is_refused_at_the_call_creating_nothing(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    request = ExtendRequest("parent-1", "p")
    with pytest.raises(InputError, match="not a writable folder"):
        luma.extend_many([request], journal=tmp_path / "missing" / "j.sqlite")
    with pytest.raises(InputError, match="directory"):
        luma.extend_many([request], journal=tmp_path)
    with pytest.raises(InputError, match="file path"):
        luma.extend_many([request], journal="")
    assert sorted(tmp_path.iterdir()) == []
    path = tmp_path / "j.sqlite"
    with Journal(path), pytest.raises(InputError, match="in use by another batch"):
        luma.extend_many([request], journal=path)  # held by this very process
    (tmp_path / "text.txt").write_text("not sqlite\n" * 100)
    with pytest.raises(InputError, match="cannot be opened as sqlite3"):
        luma.extend_many([request], journal=tmp_path / "text.txt")
    assert emulator.count("extend") == 0


# -- a real process, killed at random points ------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkilled_batch_ends_with_exactly_one_task_per_request(tmp_path: Path) -> None:
    count = 60
    journal = tmp_path / "batch.sqlite"
    rng = random.Random(20261125)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = kills = 0
    with LumaEmulator.in_thread(time_scale=0.004) as emu:
        parent = complete_parent(emu)
        argv = [
            sys.executable,
            "-m",
            "tests.batch_worker",
            emu.base_url,
            emu.api_key,
            str(journal),
            parent,
            str(count),
        ]
        for round_ in range(40):
            runs += 1
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            # Kill at random points for the first rounds; then let runs finish, so that a
            # slow machine cannot starve the test of a complete run.
            patience = rng.uniform(0.3, 1.2) if round_ < 8 else 120.0
            try:
                out, err = proc.communicate(timeout=patience)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                kills += 1
                continue
            assert proc.returncode == 0, err.decode()
            lines = [json.loads(line) for line in out.decode().splitlines()]
            assert len(lines) == count
            # What a user does with flagged requests: look at the service, then resolve.
            with Journal(journal) as book:
                unsure = book.uncertain()
                for entry in unsure:
                    prompt = entry.request["user_prompt"]
                    made = [t.id for t in emu.tasks.values() if t.prompt == prompt]
                    assert len(made) <= 1
                    book.resolve(entry.key, task_id=made[0] if made else None)
            if not unsure and all(line["error"] is None for line in lines):
                break
        else:
            pytest.fail(f"the batch never completed in {runs} runs")
        print(f"{runs} runs, {kills} killed")
        per_prompt = emu.creations_by_prompt()
    assert kills >= 3, "the test must really kill the batch a few times"
    assert {f"step {i}": 1 for i in range(count)} == {
        p: n for p, n in per_prompt.items() if p != "root"
    }
    with Journal(journal) as book:
        states = {entry.state for entry in book.entries()}
    assert states == {"finished"}
