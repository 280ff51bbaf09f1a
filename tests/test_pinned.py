"""Known values that mutation testing showed no other test pinned.

Each test here kills mutants that survived the suite (issue 13): the poll loop's deadline and
its honouring of ``Retry-After``, the exact ``polls`` and ``elapsed`` of each change, the
journal's ``submitted`` record and its fingerprint's canonical form, the data-URI size limit
and a ``Retry-After`` date without a time zone.  Times are exact: the virtual clock.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path

import attrs
import pytest

from luma_async import (
    ExtendRequest,
    InputError,
    LumaSession,
    PollPolicy,
    PollTimeoutError,
    RateLimitError,
    RequestBudget,
    RetryPolicy,
    ServerError,
    StateChange,
    Task,
    TaskState,
    Video,
)
from luma_async._error_map import parse_retry_after
from luma_async._inputs import MAX_IMAGE_BYTES, check_data_uri, image_value
from luma_async._journal import Journal, request_fingerprint, writer_of
from luma_async._poll import follow
from luma_async.testing import LumaEmulator, VirtualClock

from .helpers import finished_task

pytestmark = pytest.mark.asyncio

#: Waits of 2, 3, 4.5, 6.75 ... s (capped at 15), no jitter, no estimate: every time is exact.
EXACT = PollPolicy(interval=2.0, max_interval=15.0, backoff=1.5, jitter=0, use_estimate=False)


def fetcher(
    clock: VirtualClock, answers: list[Task | Exception]
) -> tuple[Callable[[], Awaitable[Task]], list[float]]:
    """A fetch that gives ``answers`` in turn (the last one for ever) and notes when it ran."""
    started = clock.monotonic()
    times: list[float] = []

    async def fetch() -> Task:
        times.append(clock.monotonic() - started)
        answer = answers[min(len(times), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return fetch, times


def task(state: str) -> Task:
    video = Video("https://cdn/v.mp4") if state == TaskState.COMPLETED else None
    return Task("t", state, video=video)


# -- the poll loop: deadline, Retry-After, polls and elapsed -----------------------------------


async def test_follow_stops_exactly_at_its_deadline(vclock: VirtualClock) -> None:
    # Done only at the 11th poll (past 100 s): before that, only the deadline ends the loop.
    fetch, times = fetcher(vclock, [task("processing")] * 10 + [task("completed")])
    policy = attrs.evolve(EXACT, timeout=10.0)
    started = vclock.monotonic()
    changes: list[StateChange] = []
    with pytest.raises(PollTimeoutError) as caught:
        async for change in follow(fetch, "t", policy):
            changes.append(change)
    # Polls at 0, 2, 5 and 9.5 s; the next wait (6.75 s) is cut to the deadline: a last poll
    # at 10 s exactly, then the error, at 10 s exactly.
    assert times == [0.0, 2.0, 5.0, 9.5, 10.0]
    assert vclock.monotonic() - started == 10.0
    assert caught.value.waited == 10.0
    assert caught.value.task_id == "t"
    assert caught.value.task == task("processing")
    assert [(c.state, c.polls, c.elapsed) for c in changes] == [("processing", 1, 0.0)]


async def test_follow_from_a_task_in_hand_keeps_the_deadline(vclock: VirtualClock) -> None:
    fetch, times = fetcher(vclock, [task("processing")] * 3 + [task("completed")])
    policy = PollPolicy(interval=2.0, jitter=0, use_estimate=False, timeout=0.5)
    with pytest.raises(PollTimeoutError) as caught:
        async for _ in follow(fetch, "t", policy, first=task("pending")):
            pass
    assert times == [0.5]  # the first wait (3 s for a pending task) is cut to the deadline
    assert caught.value.waited == 0.5
    assert caught.value.task == task("processing")


async def test_follow_without_deadline_polls_past_any_timeout(vclock: VirtualClock) -> None:
    answers: list[Task | Exception] = [task("processing")] * 30 + [task("completed")]
    fetch, times = fetcher(vclock, answers)
    policy = PollPolicy(interval=2.0, max_interval=15.0, jitter=0, use_estimate=False, timeout=None)
    changes = [c async for c in follow(fetch, "t", policy)]
    assert len(times) == 31
    assert times[-1] > 300.0  # far past the default timeout: nothing stopped it
    assert [c.state for c in changes] == ["processing", "completed"]


async def test_session_wait_raises_exactly_at_the_deadline(
    luma: LumaSession, emulator: LumaEmulator, vclock: VirtualClock
) -> None:
    submitted = await luma.generate("a slow fox")
    emulator.set_durations(submitted.id, pending=1_000)
    policy = PollPolicy(interval=2.0, jitter=0, use_estimate=False, timeout=7.0)
    started = vclock.monotonic()
    with pytest.raises(PollTimeoutError) as caught:
        await luma.wait(submitted.id, policy=policy)
    assert vclock.monotonic() - started == 7.0
    assert caught.value.waited == 7.0
    assert caught.value.task is not None
    assert caught.value.task.state == "pending"


@pytest.mark.parametrize(
    ("error", "next_poll"),
    [
        (RateLimitError(method="GET", path="/t", status=429, detail="slow", retry_after=7.0), 7.0),
        # the hint from the header alone, when the error carries no parsed value
        (
            ServerError(
                method="GET", path="/t", status=503, detail="busy", headers={"Retry-After": "9"}
            ),
            9.0,
        ),
        # a hint shorter than the policy's wait does not hasten the poll
        (RateLimitError(method="GET", path="/t", status=429, detail="slow", retry_after=0.5), 2.0),
        # no hint: the policy's own wait
        (ServerError(method="GET", path="/t", status=502, detail="bad gateway"), 2.0),
    ],
)
async def test_the_poll_loop_honours_retry_after(
    vclock: VirtualClock, error: Exception, next_poll: float
) -> None:
    fetch, times = fetcher(vclock, [error, task("completed")])
    changes = [c async for c in follow(fetch, "t", EXACT)]
    assert times == [0.0, next_poll]
    assert [(c.state, c.polls, c.elapsed) for c in changes] == [("completed", 2, next_poll)]


async def test_state_changes_carry_exact_polls_and_elapsed(vclock: VirtualClock) -> None:
    answers: list[Task | Exception] = [
        task("processing"),
        task("processing"),
        task("processing"),
        task("completed"),
    ]
    fetch, times = fetcher(vclock, answers)
    changes = [c async for c in follow(fetch, "t", EXACT)]
    assert times == [0.0, 2.0, 5.0, 9.5]
    assert [(c.previous, c.state, c.polls, c.elapsed) for c in changes] == [
        (None, "processing", 1, 0.0),
        ("processing", "completed", 4, 9.5),
    ]


async def test_state_changes_count_the_task_in_hand_as_no_poll(vclock: VirtualClock) -> None:
    fetch, times = fetcher(vclock, [task("completed")])
    changes = [c async for c in follow(fetch, "t", EXACT, first=task("pending"))]
    assert times == [3.0]  # pending: the first wait is 2 s x pending_factor 1.5
    assert [(c.state, c.polls, c.elapsed) for c in changes] == [
        ("pending", 0, 0.0),
        ("completed", 1, 3.0),
    ]


# -- the journal: 'submitted' on disk, and a fingerprint that never changes ---------------------


async def test_the_journal_records_submitted_and_a_resume_follows_it(
    luma: LumaSession, emulator: LumaEmulator, tmp_path: Path
) -> None:
    parent = (await finished_task(luma, "the root clip")).id
    request = ExtendRequest(parent, "one more step")
    path = tmp_path / "batch.sqlite"
    # The batch stops following at once: the request is submitted, the task not yet ended.
    hasty = PollPolicy(interval=1.0, jitter=0, timeout=0.5)
    (cut,) = [r async for r in luma.extend_many([request], policy=hasty, journal=path)]
    assert isinstance(cut.error, PollTimeoutError)
    assert cut.task_id is not None
    with Journal(path) as journal:
        entry = journal.get(f"{request_fingerprint(request)}:0")
    assert entry is not None
    assert entry.state == "submitted"
    assert entry.task_id == cut.task_id
    assert entry.task is not None
    assert entry.task.id == cut.task_id
    assert entry.error is None
    assert emulator.count("extend") == 1

    # Resumed: the submitted task is followed, not submitted again, and ends 'finished'.
    (done,) = [r async for r in luma.extend_many([request], journal=path)]
    assert done.ok
    assert done.task_id == cut.task_id
    assert emulator.count("extend") == 1
    with Journal(path) as journal:
        again = journal.get(f"{request_fingerprint(request)}:0")
    assert again is not None
    assert again.state == "finished"
    assert again.task_id == cut.task_id


def test_journal_submitted_reads_back(tmp_path: Path) -> None:
    request = ExtendRequest("t-1", "a fox")
    made = Task("t-2", TaskState.PENDING, prompt="a fox")
    with Journal(tmp_path / "j.sqlite") as journal:
        key = journal.key_for(request)
        writer = writer_of(journal)  # the batch's private write protocol
        assert writer.claim(key, request) is None
        assert journal.get(key).state == "submitting"  # type: ignore[union-attr]
        writer.submitted(key, made)
        entry = journal.get(key)
    assert entry is not None
    assert (entry.key, entry.state, entry.task_id, entry.error) == (key, "submitted", "t-2", None)
    assert entry.task == made
    assert entry.request["user_prompt"] == "a fox"


#: A full request and the canonical JSON its fingerprint hashes: changing either silently
#: would make every journal written before unable to resume (issue 13).
FULL = ExtendRequest(
    "0b7d5a1c-2f3e-4d5a-9b8c-7e6f5a4b3c2d",
    "the fox leaps a frozen stream",
    expand_prompt=True,
    image_url=b"\x89PNG fake",
    image_end_url=Path("/img/end.png"),
    notify_hook="https://example.com/hook",
)
FULL_CANONICAL = (
    '{"expand_prompt":true,"image_end_url":"path:/img/end.png",'
    '"image_url":"sha256:075f8e3f22fcb592f1c27b086375ceeaacc767bd43a4583cffd38685d3a1d9bb",'
    '"notify_hook":"https://example.com/hook","task_id":"0b7d5a1c-2f3e-4d5a-9b8c-7e6f5a4b3c2d",'
    '"user_prompt":"the fox leaps a frozen stream"}'
)
BARE = ExtendRequest("t-1", "le renard saute l\u2019\u00eele \U0001f98a")
BARE_CANONICAL = (
    '{"expand_prompt":null,"image_end_url":null,"image_url":null,"notify_hook":null,'
    '"task_id":"t-1","user_prompt":"le renard saute l\\u2019\\u00eele \\ud83e\\udd8a"}'
)


@pytest.mark.parametrize(
    ("request_", "canonical", "digest"),
    [
        (FULL, FULL_CANONICAL, "6ee71ae4744b5e9e62fa0bbd4fb0af7e"),
        (BARE, BARE_CANONICAL, "b98f4254c6603d40b47dcf3b5330d63b"),
    ],
)
def test_the_journal_fingerprint_is_pinned(
    request_: ExtendRequest, canonical: str, digest: str
) -> None:
    assert hashlib.sha256(canonical.encode()).hexdigest()[:32] == digest
    assert request_fingerprint(request_) == digest
    assert request_fingerprint(ExtendRequest("t-1", "a fox")) == "9dfcb8ab7fe02af8ddf1c005046a98d9"


def test_an_image_of_another_bytes_type_is_fingerprinted_by_its_repr() -> None:
    # json.dumps(default=repr) writes it as "bytearray(b'\\x89PNG')" in the canonical form
    request = ExtendRequest("t-1", "a fox", image_url=bytearray(b"\x89PNG"))
    assert request_fingerprint(request) == "f6bf58b412b40b3a0c850a335008288d"


def test_journal_keys_rank_identical_requests(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        keys = [journal.key_for(FULL) for _ in range(3)] + [journal.key_for(BARE)]
        writer_of(journal).begin()  # a new batch ranks from 0 again
        assert journal.key_for(FULL) == "6ee71ae4744b5e9e62fa0bbd4fb0af7e:0"
    assert keys == [
        "6ee71ae4744b5e9e62fa0bbd4fb0af7e:0",
        "6ee71ae4744b5e9e62fa0bbd4fb0af7e:1",
        "6ee71ae4744b5e9e62fa0bbd4fb0af7e:2",
        "b98f4254c6603d40b47dcf3b5330d63b:0",
    ]


# -- inputs and headers --------------------------------------------------------------------------


def data_uri(size: int) -> str:
    return "data:image/png;base64," + base64.b64encode(b"\0" * size).decode()


def test_the_image_limit_is_ten_mebibytes() -> None:
    assert MAX_IMAGE_BYTES == 10 * 1024 * 1024


@pytest.mark.parametrize("size", [MAX_IMAGE_BYTES - 2, MAX_IMAGE_BYTES - 1, MAX_IMAGE_BYTES])
def test_a_data_uri_at_the_limit_is_accepted(size: int) -> None:
    uri = data_uri(size)
    assert check_data_uri(uri, "image_url") == uri
    assert image_value(uri, "image_url") == uri


@pytest.mark.parametrize("size", [MAX_IMAGE_BYTES + 1, MAX_IMAGE_BYTES + 2, MAX_IMAGE_BYTES + 3])
def test_a_data_uri_one_byte_over_the_limit_is_refused(size: int) -> None:
    with pytest.raises(InputError, match=f"has {size} bytes; the limit is {MAX_IMAGE_BYTES}"):
        check_data_uri(data_uri(size), "image_url")


def test_a_payload_of_a_wrong_length_at_the_limit_is_invalid_not_too_big() -> None:
    # 13_981_014 characters: 3/4 of it is 10_485_760.5 bytes, but no base64 has that length
    uri = "data:image/png;base64," + "A" * 13_981_014
    with pytest.raises(InputError, match="base64 payload is invalid"):
        check_data_uri(uri, "image_url")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "data:image/png;base64,AAA!AAAA",
            "image_url is a data: URI whose base64 payload is invalid",
        ),
        (
            "data:image/png;base64,AAAA AAAA",
            "image_url is a data: URI whose base64 payload is invalid",
        ),
        (
            "data:text/plain;base64,AAAA",
            (
                "image_url is a data: URI but not 'data:image/<type>;base64,<data>'; "
                "pass a pathlib.Path or bytes to have luma-async encode the image"
            ),
        ),
    ],
)
def test_a_malformed_data_uri_is_refused(uri: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        check_data_uri(uri, "image_url")
    assert str(caught.value).startswith(message)


def test_a_retry_after_date_without_a_time_zone_is_utc() -> None:
    now = datetime(2015, 10, 21, 7, 27, 50, tzinfo=timezone.utc).timestamp()
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00", now=now) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=now) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 09:28:00 +0200", now=now) == 10.0
    assert parse_retry_after("  7  ") == 7.0
    assert parse_retry_after("300.5") == 300.0  # capped
    assert parse_retry_after("-3") == 0.0


# -- policies: each refusal names the field and the value ----------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PollPolicy(use_estimate="yes"), "use_estimate must be True or False, not 'yes'"),
        (lambda: PollPolicy(jitter=-1), "jitter must be zero or a positive number, not -1"),
        (lambda: PollPolicy(jitter="1"), "jitter must be zero or a positive number, not '1'"),
        (lambda: RetryPolicy(jitter=[1]), r"jitter must be zero or a positive number, not \[1\]"),
        (
            lambda: PollPolicy(backoff=0.5),
            r"backoff must be 1 or more \(waits never shrink\), not 0.5",
        ),
        (
            lambda: RequestBudget(max_connections=0),
            "max_connections must be a whole number of at least 1 or None, not 0",
        ),
    ],
)
def test_policy_refusals_are_exact(make: Callable[[], object], message: str) -> None:
    with pytest.raises(InputError, match=f"^{message}$"):
        make()
