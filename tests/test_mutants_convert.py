"""Decoding: behaviour that mutation testing of ``_convert.py`` and ``_shapes.py`` showed no
test pinned (docs/mutation.md).  Each test names the mutants it kills.

Every test checks decoded values (or the exact error) of a body a deployment sends, never how
the decoder is built, so the tests hold through a rewrite of the decoding code.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import cattrs
import pytest

from luma_async import (
    Account,
    DecodeError,
    Frame,
    RawVideo,
    StateChange,
    Task,
    TaskState,
    UploadedFile,
    Usage,
    Video,
    WrongTaskError,
)
from luma_async._convert import (
    account_from_json,
    batch_from_json,
    check_answer_for,
    decode_json,
    make_luma_converter,
    task_from_json,
    task_to_json,
    tasks_from_json,
    uploaded_from_json,
    url_from_json,
    usage_from_json,
)

UTC = timezone.utc
#: The optional scalars of the models, as cattrs is asked for them.
OPTIONAL_INT: Any = int | None
OPTIONAL_STR: Any = str | None
TASK_ID = "9d4b7516-77e5-481a-b015-48313946f33b"
CREATED = "2024-07-01T07:35:13.498660Z"
WHEN = datetime(2024, 7, 1, 7, 35, 13, 498660, tzinfo=UTC)


# -- a converter made with make_luma_converter ---------------------------------------------------
# The module's converter is built once, at import; mutation testing changes only what a test
# builds itself.  These kill most mutants of make_luma_converter (docs/mutation.md lists the rest).


def test_a_new_converter_reads_a_video_in_every_form_deployments_send() -> None:
    conv = make_luma_converter()
    video = conv.structure(
        {
            "url": "https://cdn/v.mp4",
            "width": 1280.0,
            "height": "720",
            "thumbnail": {"url": "https://cdn/t.jpg", "width": 10},
            "download_url": "https://cdn/d.mp4",
            "raw": "https://cdn/raw.mp4",
        },
        Video,
    )
    assert video == Video(
        "https://cdn/v.mp4",
        width=1280,
        height=720,
        thumbnail="https://cdn/t.jpg",
        download_url="https://cdn/d.mp4",
        raw=RawVideo("https://cdn/raw.mp4"),
    )
    assert conv.structure(
        {
            "url": "u",
            "download_url": {"url": "https://cdn/d.mp4"},
            "raw": {"url": "r", "duration": 5},
        },
        Video,
    ) == Video("u", download_url="https://cdn/d.mp4", raw=RawVideo("r", duration=5.0))
    with pytest.raises(TypeError, match=r"^video must be an object, not list$"):
        conv.structure(["u"], Video)


def test_a_new_converter_reads_raw_renders_times_and_optional_scalars() -> None:
    # Kills _convert._optional_str__mutmut_3 (a string refused) among others.
    conv = make_luma_converter()
    assert conv.structure({"url": "r", "width": 4, "height": 3}, RawVideo) == RawVideo(
        "r", width=4, height=3
    )
    with pytest.raises(TypeError, match=r"^video_raw has no 'url'$"):
        conv.structure({"width": 4}, RawVideo)
    assert conv.structure(CREATED, datetime) == WHEN
    assert conv.structure(1719819313, datetime) == datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)
    assert conv.structure(5.0, OPTIONAL_INT) == 5
    assert conv.structure("7", OPTIONAL_INT) == 7
    assert conv.structure(None, OPTIONAL_INT) is None
    for wrong in (True, [1]):
        with pytest.raises(
            TypeError, match=f"^expected a whole number, not {type(wrong).__name__}$"
        ):
            conv.structure(wrong, OPTIONAL_INT)
    assert conv.structure("x", OPTIONAL_STR) == "x"
    assert conv.structure(5, OPTIONAL_STR) == "5"
    assert conv.structure(2.5, OPTIONAL_STR) == "2.5"
    assert conv.structure(None, OPTIONAL_STR) is None
    with pytest.raises(TypeError, match=r"^expected a string, not list$"):
        conv.structure([], OPTIONAL_STR)


def test_a_strict_converter_refuses_unknown_keys_and_a_lenient_one_ignores_them() -> None:
    body = {"url": "u", "colour": "red"}
    assert make_luma_converter().structure(body, Video) == Video("u")
    assert make_luma_converter(strict=False).structure(body, Video) == Video("u")
    with pytest.raises(cattrs.ClassValidationError) as caught:
        make_luma_converter(strict=True).structure(body, Video)
    assert "colour" in "; ".join(cattrs.transform_error(caught.value))


def test_a_new_converter_reads_a_task_in_every_envelope() -> None:
    conv = make_luma_converter()
    body = {"id": TASK_ID, "state": "completed", "video": {"url": "https://cdn/v.mp4"}}
    expected = Task(TASK_ID, TaskState.COMPLETED, video=Video("https://cdn/v.mp4"))
    assert conv.structure(body, Task) == expected
    assert conv.structure([body], Task) == expected
    assert conv.structure({"code": "success", "message": "", "data": body}, Task) == expected


def test_a_new_converter_writes_tasks_changes_states_and_times_as_wire_json() -> None:
    conv = make_luma_converter()
    task = Task(
        TASK_ID,
        TaskState.COMPLETED,
        prompt="cat dance",
        created_at=datetime(2024, 7, 1, 9, 35, 13, tzinfo=timezone(timedelta(hours=2))),
        video=Video("https://cdn/v.mp4", width=4, raw=RawVideo("r", duration=5.0)),
        estimate_wait_seconds=3.0,
        extra={"queue_state": "x"},
    )
    wire = {
        "queue_state": "x",
        "id": TASK_ID,
        "prompt": "cat dance",
        "state": "completed",
        "created_at": "2024-07-01T07:35:13Z",
        "video": {
            "url": "https://cdn/v.mp4",
            "width": 4,
            "height": None,
            "thumbnail": None,
            "download_url": None,
            "raw": {"url": "r", "width": None, "height": None, "duration": 5.0},
        },
        "liked": None,
        "estimate_wait_seconds": 3.0,
    }
    assert conv.unstructure(task) == wire
    assert task_to_json(task) == wire
    assert conv.unstructure(TaskState.PROCESSING) == "processing"
    assert conv.unstructure(WHEN) == CREATED
    change = StateChange(
        task_id=TASK_ID,
        previous=TaskState.PENDING,
        state=TaskState.COMPLETED,
        task=task,
        elapsed=12.34567,
        polls=4,
    )
    assert conv.unstructure(change) == {
        "task_id": TASK_ID,
        "previous": "pending",
        "state": "completed",
        "elapsed": 12.346,
        "polls": 4,
        "task": wire,
    }
    first = StateChange(
        task_id=TASK_ID, previous=None, state="dreaming", task=task, elapsed=0.0, polls=0
    )
    assert conv.unstructure(first)["previous"] is None
    assert conv.unstructure(first)["state"] == "dreaming"


# -- task_to_json: what a journal stores and reads back ----------------------------------------


def test_a_task_is_written_with_its_video_failure_and_last_frame_and_read_back_equal() -> None:
    # Kills _convert._task_to_json__mutmut_20 (a missing video written as an object),
    # _34 to _38 (the last frame dropped, renamed, or written over the one the extras hold),
    # _format_datetime__mutmut_7, _9 (a time not written with 'Z').  _2 is killed below.
    frame = Frame("https://cdn/last.jpg", width=8, height=6)
    task = Task(
        TASK_ID,
        TaskState.FAILED,
        failure_reason="moderated",
        created_at=datetime(2024, 7, 1, 3, 35, 13, tzinfo=timezone(timedelta(hours=-4))),
        last_frame=frame,
    )
    wire = task_to_json(task)
    assert wire["video"] is None
    assert wire["created_at"] == "2024-07-01T07:35:13Z"
    assert wire["failure_reason"] == "moderated"
    assert wire["last_frame"] == {"url": "https://cdn/last.jpg", "width": 8, "height": 6}
    # a task read from the wire is written back as it was sent (its last frame with it)
    sent = {
        "id": TASK_ID,
        "state": "failed",
        "last_frame": {"url": "https://cdn/l.jpg", "palette": [1]},
    }
    read = task_from_json(sent)
    assert read.last_frame == Frame("https://cdn/l.jpg")
    assert task_to_json(read)["last_frame"] == {"url": "https://cdn/l.jpg", "palette": [1]}
    assert task_from_json(task_to_json(read)) == read


# -- the other answers ------------------------------------------------------------------------


def test_an_answer_that_is_not_json_says_so_with_its_first_80_bytes() -> None:
    # Kills _convert.decode_json__mutmut_7 (81 bytes shown).  _5 and _9 (the codec named
    # otherwise) are equivalent: utf-8 is the default and codec names ignore case.
    raw = b"<" + b"x" * 100 + "é".encode()
    with pytest.raises(DecodeError) as caught:
        decode_json(raw, what="extend")
    assert str(caught.value).startswith("extend: the answer is not JSON (")
    assert str(caught.value).endswith(f"; it began {'<' + 'x' * 79!r}")


def test_an_answer_for_another_task_names_both() -> None:
    # Kills _convert.check_answer_for__mutmut_2 to _7.
    task = Task("task-b", TaskState.PENDING)
    assert check_answer_for(task, "task-b", what="poll") is task
    with pytest.raises(WrongTaskError) as caught:
        check_answer_for(task, "task-a", what="poll")
    assert (caught.value.asked, caught.value.answered) == ("task-a", "task-b")
    assert str(caught.value) == str(WrongTaskError("task-a", "task-b", what="poll"))
    assert "poll" in str(caught.value)


def test_a_batch_answer_keeps_every_readable_task_after_an_unreadable_one() -> None:
    # Kills _convert.batch_from_json__mutmut_11 (stops at the first item that is no object)
    # and _14 (items read as no type).
    good = {"id": "a", "state": "pending"}
    other = {"id": "b", "state": "completed", "video": {"url": "https://cdn/b.mp4"}}
    got = batch_from_json([1, good, {"state": "pending"}, other])
    assert got == [
        Task("a", TaskState.PENDING),
        Task("b", TaskState.COMPLETED, video=Video("https://cdn/b.mp4")),
    ]


def test_a_task_list_reads_each_task_or_names_what_it_got() -> None:
    # Kills _convert.tasks_from_json__mutmut_8 to _16 (message, body, 'what' of each task).
    assert tasks_from_json({"code": "success", "data": [{"id": "a", "state": "x"}]}, what="l") == [
        Task("a", "x")
    ]
    with pytest.raises(DecodeError) as caught:
        tasks_from_json({"data": None}, what="tasks")
    assert str(caught.value) == "tasks: expected a list of tasks, got dict"
    assert caught.value.body == {"data": None}
    with pytest.raises(DecodeError) as caught:
        tasks_from_json([{"id": "a"}], what="refresh")
    assert str(caught.value) == "refresh: cannot read the answer as a task: task a has no 'state'"
    assert caught.value.body == {"id": "a"}


def test_an_upload_answer_is_read_bare_wrapped_or_with_url_only() -> None:
    # Kills _convert.uploaded_from_json__mutmut_3 to _35 (the envelope, 'url' as the public
    # link, the errors' messages and bodies), _51 and _54 (the id of an answer without one).
    bare = {"id": 7, "public_url": "https://cdn/p.png", "presigned_url": "https://s3/p"}
    assert uploaded_from_json(bare, what="upload") == UploadedFile(
        "7", "https://cdn/p.png", presigned_url="https://s3/p"
    )
    wrapped = {"code": "success", "message": "", "data": {"id": "f1", "url": "https://cdn/u.png"}}
    got = uploaded_from_json(wrapped, what="upload")
    assert (got.id, got.public_url, got.presigned_url) == ("f1", "https://cdn/u.png", None)
    # an answer with its link at the top is not unwrapped, whatever its 'data' holds
    top = {"public_url": "https://cdn/top.png", "data": {"public_url": "https://cdn/in.png"}}
    assert uploaded_from_json(top, what="upload") == UploadedFile("", "https://cdn/top.png")
    for body, message in [
        ([1], "upload: expected an object, got list"),
        ({"data": "x"}, "upload: the answer has no 'public_url'"),
        ({"public_url": ""}, "upload: the answer has no 'public_url'"),
        ({"public_url": 5}, "upload: the answer has no 'public_url'"),
    ]:
        with pytest.raises(DecodeError) as caught:
            uploaded_from_json(body, what="upload")
        assert str(caught.value) == message
        assert caught.value.body == body


def test_a_link_answer_is_read_bare_or_wrapped() -> None:
    # Kills _convert.url_from_json's survivors (the envelope and the error).
    assert url_from_json({"url": "https://cdn/a.mp4"}, what="link") == "https://cdn/a.mp4"
    assert url_from_json({"code": 0, "data": {"url": "https://cdn/b.mp4"}}, what="link") == (
        "https://cdn/b.mp4"
    )
    for body, read in [
        ({"url": ""}, {"url": ""}),
        ({"data": {"link": "x"}}, {"link": "x"}),
        (["https://cdn/c.mp4"], ["https://cdn/c.mp4"]),
        ({"url": 3}, {"url": 3}),
    ]:
        with pytest.raises(DecodeError) as caught:
            url_from_json(body, what="link")
        assert str(caught.value) == "link: the answer has no 'url'"
        assert caught.value.body == read


# -- the account answers ------------------------------------------------------------------------


def test_credits_are_read_under_each_name_deployments_use() -> None:
    # Kills the mutants of _convert.usage_from_json, _number and _account_object.
    assert usage_from_json({"available": 12, "used": 3.5, "total": "15.5"}, what="u") == Usage(
        available=12.0, used=3.5, total=15.5, extra={"available": 12, "used": 3.5, "total": "15.5"}
    )
    body = {"remaining": "7", "consumed": 1, "limit": 8}
    assert usage_from_json({"code": "success", "data": body}, what="u") == Usage(
        available=7.0, used=1.0, total=8.0, extra=body
    )
    later = {"balance": True, "credits": 4, "quota": float("inf"), "total": "n/a", "used": "nan"}
    got = usage_from_json(later, what="u")
    assert (got.available, got.used, got.total) == (4.0, None, None)
    assert usage_from_json({"available": None, "remaining": 2.0}, what="u").available == 2.0
    # a wrapper without 'code' is the answer itself
    assert usage_from_json({"data": {"available": 1}}, what="u").available is None
    with pytest.raises(DecodeError) as caught:
        usage_from_json([{"available": 1}], what="credits")
    assert str(caught.value) == "credits: expected an object, got list"
    assert caught.value.body == [{"available": 1}]


def test_the_account_is_read_under_each_name_deployments_use() -> None:
    # Kills the mutants of _convert.account_from_json and _text.
    body = {"id": "u-1", "email": "a@b.c", "name": "Ann", "plan": "pro"}
    assert account_from_json(body, what="a") == Account(
        id="u-1", email="a@b.c", name="Ann", plan="pro", extra=body
    )
    other = {"user_id": 42, "username": "ann", "subscription": {"name": "plus"}}
    got = account_from_json({"code": 0, "data": other}, what="a")
    assert (got.id, got.email, got.name, got.plan) == ("42", None, "ann", "plus")
    assert got.extra == other
    third = {"uuid": "x-9", "id": True, "display_name": "A", "email": "", "plan": {"type": "free"}}
    got = account_from_json(third, what="a")
    assert (got.id, got.email, got.name, got.plan) == ("x-9", None, "A", "free")
    assert account_from_json({"plan": {"plan": "team"}}, what="a").plan == "team"
    assert account_from_json({"plan": {"name": 3}}, what="a").plan is None
    assert account_from_json({"plan": ""}, what="a").plan is None
    assert account_from_json({"name": "", "username": "u"}, what="a").name == "u"
    with pytest.raises(DecodeError) as caught:
        account_from_json("me", what="account")
    assert str(caught.value) == "account: expected an object, got str"
    assert caught.value.body == "me"


def test_the_last_names_of_credits_and_links_are_read_too() -> None:
    # Kills _convert.usage_from_json__mutmut_17, _22, _28, _29 ('balance'), _45, _49, _54, _55
    # ('quota'), _number__mutmut_9 (an unreadable number ends the search), url_from_json
    # __mutmut_4, _5 (a link at the top unwrapped anyway) and uploaded_from_json__mutmut_56.
    got = usage_from_json({"available": "n/a", "balance": 3, "quota": 9}, what="u")
    assert (got.available, got.used, got.total) == (3.0, None, 9.0)
    assert (
        url_from_json({"url": "https://a", "data": {"url": "https://b"}}, what="l") == "https://a"
    )
    odd = {"public_url": "https://cdn/p.png", "presigned_url": 5}
    assert uploaded_from_json(odd, what="upload").presigned_url is None


def test_an_unreadable_video_names_every_field_and_says_task_by_default() -> None:
    # Kills _convert.task_from_json__mutmut_1, _2 (the default 'what'), _8, _11, _12 (the
    # field errors joined with '; ').
    body = {"id": "a", "state": "completed", "video": {"url": "u", "width": "wide", "height": [1]}}
    with pytest.raises(DecodeError) as caught:
        task_from_json(body)
    assert str(caught.value) == (
        "task: cannot read the answer as a task: invalid value for type, expected int | None "
        "@ $.width; invalid value for type, expected int | None @ $.height"
    )
    assert caught.value.body == body


# -- _shapes: times and gateway rows ------------------------------------------------------------


def test_epoch_times_are_seconds_up_to_1e11_and_milliseconds_above() -> None:
    # Kills _shapes.parse_datetime__mutmut_15, _16 (the boundary moved) and _22 (the error's
    # text).
    def created(value: object) -> datetime | None:
        return task_from_json({"id": "a", "state": "x", "created_at": value}).created_at

    assert created(100000000000) == datetime(5138, 11, 16, 9, 46, 40, tzinfo=UTC)
    assert created(100000000000.5) == datetime(1973, 3, 3, 9, 46, 40, 500, tzinfo=UTC)
    assert created("2024-07-01T07:35:13") == datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)
    with pytest.raises(DecodeError) as caught:
        created([1])
    assert str(caught.value) == "task: cannot read the answer as a task: not a timestamp: [1]"


def test_a_new_converter_keeps_a_datetime_it_is_given() -> None:
    # Kills _shapes.parse_datetime__mutmut_1 (a datetime given read as None), _23 to _26 (a
    # naive one not taken as UTC, an aware one moved to UTC).
    conv = make_luma_converter()
    aware = datetime(2024, 7, 1, 9, 35, tzinfo=timezone(timedelta(hours=2)))
    assert conv.structure(aware, datetime) is aware
    naive = conv.structure(datetime(2024, 7, 1, 7, 35, tzinfo=UTC).replace(tzinfo=None), datetime)
    assert naive == datetime(2024, 7, 1, 7, 35, tzinfo=UTC)
    assert naive.tzinfo is UTC


def test_a_gateway_row_with_a_text_id_and_an_odd_status() -> None:
    # Kills _shapes._is_gateway_row__mutmut_10 to _13 (a row whose own id is text),
    # _from_gateway_row__mutmut_29 (a status that is no text), _34, _36, _38 (an unknown
    # status kept in lower case).
    row = {"id": "row-1", "task_id": "t", "status": "Weird", "data": {"prompt": "p"}}
    assert task_from_json(row) == Task("t", "weird", prompt="p")
    with pytest.raises(DecodeError) as caught:
        task_from_json({"id": 3, "task_id": "t", "status": 5, "data": {}})
    assert str(caught.value) == "task: cannot read the answer as a task: task t has no 'state'"


def test_a_time_is_written_in_utc_whatever_the_machines_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Kills _convert._format_datetime__mutmut_2 (``astimezone(None)``: the machine's local
    # time).  It passes on a machine whose zone is UTC, so the test moves the process to UTC+3
    # (a POSIX zone string: no tz database needed) and back.
    monkeypatch.setenv("TZ", "XYZ-3")
    time.tzset()
    try:
        assert time.timezone == -3 * 3600  # the zone really moved
        task = Task(
            TASK_ID,
            TaskState.PENDING,
            created_at=datetime(2024, 7, 1, 9, 35, 13, tzinfo=timezone(timedelta(hours=2))),
        )
        assert task_to_json(task)["created_at"] == "2024-07-01T07:35:13Z"
        assert make_luma_converter().unstructure(WHEN) == CREATED
    finally:
        monkeypatch.undo()
        time.tzset()
