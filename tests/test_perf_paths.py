"""The request path's shortcuts (issue 14) keep every behaviour of the slow path they skip.

The budget hands a slot out without an await when it has nothing to wait for, and only then;
the decoder's constructors build exactly what the classes' own ``__init__`` builds, and a
video object is built directly only when the converter's field hooks would change nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

import attrs
import pytest

from luma_async import (
    FinishedTask,
    Frame,
    RawVideo,
    RequestBudget,
    Task,
    TaskState,
    Video,
    _protocol,
)
from luma_async._budget import Budget
from luma_async._clock import VirtualClock
from luma_async._construct import new_frame, new_task, new_video, plain_video, slot_setters
from luma_async._convert import converter
from luma_async._errors import APIError, DecodeError, SubmissionUncertainError, WrongTaskError
from luma_async._protocol import MAX_BODY

pytestmark = pytest.mark.asyncio


def test_an_unlimited_budget_gives_a_slot_at_once_and_counts_it() -> None:
    budget = Budget()
    assert budget.take()
    assert budget.take()
    assert (budget.in_flight, budget.peak_in_flight) == (2, 2)
    budget.release()
    budget.release()
    assert budget.take()
    assert (budget.in_flight, budget.peak_in_flight) == (1, 2)
    budget.release()
    assert budget.in_flight == 0


@pytest.mark.parametrize(
    "policy", [RequestBudget(max_rate=100.0), RequestBudget(max_connections=4)]
)
def test_a_limited_budget_never_gives_a_slot_without_waiting_in_acquire(
    policy: RequestBudget,
) -> None:
    budget = Budget(policy)
    assert not budget.take()
    assert (budget.in_flight, budget.peak_in_flight) == (0, 0)


def test_a_paused_budget_gives_no_slot_until_the_pause_is_over(vclock: VirtualClock) -> None:
    budget = Budget()
    budget.slow_down(2.0)
    assert not budget.take()
    vclock.advance(1.9)
    assert not budget.take()
    assert budget.in_flight == 0
    vclock.advance(0.2)
    assert budget.take()
    assert budget.in_flight == 1


async def test_acquire_after_a_refused_take_waits_out_the_pause(vclock: VirtualClock) -> None:
    budget = Budget()
    start = vclock.monotonic()
    budget.slow_down(3.0)
    assert not budget.take()
    await budget.acquire()
    assert vclock.monotonic() == pytest.approx(start + 3.0)
    assert budget.in_flight == 1
    budget.release()
    assert budget.in_flight == 0


# --- the decoder's constructors: the same values as the classes' own __init__ ---------------

_WHEN = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def test_new_frame_and_new_video_build_what_their_classes_build() -> None:
    assert_same(new_frame("https://f", 1, 2), Frame("https://f", width=1, height=2))
    assert_same(new_frame("https://f", None, None), Frame("https://f"))
    raw = RawVideo("https://r", duration=5.0)
    built = new_video("https://v", 1360, 752, "https://t", "https://d", raw)
    assert_same(
        built,
        Video(
            "https://v",
            width=1360,
            height=752,
            thumbnail="https://t",
            download_url="https://d",
            raw=raw,
        ),
    )
    assert built.best_url == "https://d"


def test_new_task_builds_what_task_builds_and_wraps_its_extra_read_only() -> None:
    extra: dict[str, Any] = {"thumbnail": {"url": "https://t"}, "n": 1}
    video = Video("https://v", width=1, height=2)
    frame = Frame("https://f")
    built = new_task(
        "t-1", TaskState.COMPLETED, "p", "why", _WHEN, video, True, 1.5, extra, frame, "x"
    )
    assert_same(
        built,
        Task(
            id="t-1",
            state=TaskState.COMPLETED,
            prompt="p",
            failure_reason="why",
            created_at=_WHEN,
            video=video,
            liked=True,
            estimate_wait_seconds=1.5,
            extra=extra,
            last_frame=frame,
            sent_state="x",
        ),
    )
    assert isinstance(built.extra, MappingProxyType)
    assert dict(built.extra) == extra
    with pytest.raises(TypeError):
        built.extra["n"] = 2  # type: ignore[index]
    assert FinishedTask.of(built) == built


def assert_same(built: attrs.AttrsInstance, expected: attrs.AttrsInstance) -> None:
    assert type(built) is type(expected)
    assert built == expected
    assert hash(built) == hash(expected)
    assert repr(built) == repr(expected)
    for field in attrs.fields(type(expected)):
        assert getattr(built, field.name) == getattr(expected, field.name), field.name
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(built, field.name, None)


def test_a_field_the_constructors_do_not_set_fails_at_import() -> None:
    with pytest.raises(AssertionError, match="Frame"):
        slot_setters(Frame, "url", "width")


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "https://v"},
        {"url": "https://v", "width": 1, "height": 2, "thumbnail": "https://t"},
        {"url": "https://v", "width": None, "thumbnail": "", "download_url": "https://d"},
        {"url": "https://v", "thumbnail": None, "download_url": ""},
    ],
)
def test_a_plain_video_object_is_built_as_the_converter_reads_it(fields: dict[str, Any]) -> None:
    built = plain_video(fields, fields["url"])
    assert built is not None
    assert_same(built, converter.structure(fields, Video))


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "https://v", "width": 1.0},  # the size hook makes it an int
        {"url": "https://v", "width": True},  # the size hook refuses it
        {"url": "https://v", "height": "752"},
        {"url": "https://v", "thumbnail": {"url": "https://t"}},  # the link hook reads it
        {"url": "https://v", "download_url": 3},
        {"url": "https://v", "raw": "https://r"},  # the raw hook reads it
        {"url": "https://v", "duration": 5},  # a key the strict converter refuses
    ],
)
def test_a_video_object_the_field_hooks_must_read_is_not_built_directly(
    fields: dict[str, Any],
) -> None:
    assert plain_video(fields, "https://v") is None


def test_only_a_dict_is_a_plain_video_object() -> None:
    assert plain_video(MappingProxyType({"url": "https://v"}), "https://v") is None


# --- deciphering an answer and the request of a poll -----------------------------------------

_HUGE = b" " * (MAX_BODY + 1)


def test_a_2xx_too_large_to_read_is_uncertain_for_a_paid_request_and_an_error_otherwise() -> None:
    paid = _protocol.generate({"user_prompt": "x"}, None)
    with pytest.raises(SubmissionUncertainError) as uncertain:
        paid.decipher(201, {}, _HUGE)
    assert isinstance(uncertain.value.__cause__, DecodeError)
    assert "larger than 16777216 bytes" in str(uncertain.value.__cause__)
    with pytest.raises(APIError, match="larger than 16777216 bytes") as failed:
        paid.decipher(502, {}, _HUGE)
    assert failed.value.status == 502
    with pytest.raises(APIError, match="larger than 16777216 bytes") as refused:
        _protocol.get("t-1").decipher(200, {}, _HUGE)
    assert refused.value.status == 200


@pytest.mark.parametrize("poll", [False, True])
def test_the_request_of_a_get_is_what_its_fields_say(poll: bool) -> None:
    request = _protocol.get("t-1", poll=poll)
    what = f"{'poll' if poll else 'get'} t-1"
    fields = (request.method, request.path, request.what, request.body, request.paid)
    assert fields == ("GET", "/luma/generations/t-1", what, None, False)
    assert (request.retry, request.request) == (not poll, None)
    assert request.content() == (None, None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.path = "/elsewhere"  # type: ignore[misc]
    body = b'{"id": "t-1", "state": "pending"}'
    assert request.decipher(200, {}, body) == Task(id="t-1", state=TaskState.PENDING)
    with pytest.raises(WrongTaskError, match=what):
        request.decipher(200, {}, body.replace(b"t-1", b"t-2"))
