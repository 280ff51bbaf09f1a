"""Decoding: what mutation testing of ``_shapes.py`` and ``_construct.py`` showed no test pinned
(docs/mutation.md).  Each test names the mutants it kills, as measured on this code.

Every test checks the exact values decoded from a body a deployment sends (each shape, envelope
and quirk of ``luma-api.md``), or the exact error, never how the decoder is built.  Values are
compared with ``==`` and by ``repr`` too, so a size read as ``1280.0`` instead of ``1280`` or a
link read as an object fails.  Tests that name no mutant pin values whose mutants the earlier
test files already kill; they make this file a full account of the shapes in ``luma-api.md``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import cattrs
import pytest

from luma_async import DecodeError, Frame, RawVideo, Task, TaskState, Video
from luma_async._construct import plain_video, slot_setters
from luma_async._convert import task_from_json
from luma_async._models import EMPTY
from luma_async._shapes import _from_zulu

UTC = timezone.utc
TASK_ID = "9d4b7516-77e5-481a-b015-48313946f33b"
V = "https://cdn/v.mp4"
PREFIX = "task: cannot read the answer as a task: "


def read(body: Any) -> Task:
    return task_from_json(body)


def same(got: object, want: object) -> None:
    """Equal, and equal in ``repr``: the same types of number and link, field by field."""
    assert got == want
    assert repr(got) == repr(want)


def refused(body: Any) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        task_from_json(body)
    assert caught.value.body is body
    return caught.value


def cause(error: DecodeError) -> str:
    """The field hook's own error, which cattrs' summary leaves out, with where it was."""
    group = error.__cause__
    assert isinstance(group, cattrs.BaseValidationError)

    def own(exc: BaseException, _: object) -> str:
        return f"{type(exc).__name__}: {exc}"

    return "; ".join(cattrs.transform_error(group, format_exception=own))


def task(**fields: Any) -> dict[str, Any]:
    return {"id": TASK_ID, "state": "completed", **fields}


# -- the task's own fields ----------------------------------------------------------------------


def test_a_bare_task_with_every_field_is_read_exactly() -> None:
    body = {
        "id": TASK_ID,
        "prompt": "cat dance",
        "state": "completed",
        "created_at": "2024-07-01T07:35:13.498660Z",
        "video": {
            "url": V,
            "width": 1280,
            "height": 720,
            "thumbnail": "https://cdn/t.jpg",
            "download_url": "https://cdn/d.mp4",
        },
        "liked": True,
        "estimate_wait_seconds": 12,
        "failure_reason": None,
        "queue_state": "x",
        "batch_id": "b",
    }
    got = read(body)
    same(
        got,
        Task(
            TASK_ID,
            TaskState.COMPLETED,
            prompt="cat dance",
            created_at=datetime(2024, 7, 1, 7, 35, 13, 498660, tzinfo=UTC),
            video=Video(
                V,
                width=1280,
                height=720,
                thumbnail="https://cdn/t.jpg",
                download_url="https://cdn/d.mp4",
            ),
            liked=True,
            estimate_wait_seconds=12.0,
            extra={"queue_state": "x", "batch_id": "b"},
        ),
    )
    assert dict(got.extra) == {"queue_state": "x", "batch_id": "b"}
    assert type(got.estimate_wait_seconds) is float
    assert got.state is TaskState.COMPLETED
    assert got.sent_state is None
    assert got.last_frame is None


def test_a_task_without_unknown_keys_shares_the_empty_extra() -> None:
    got = read({"id": "t", "state": "pending"})
    same(got, Task("t", TaskState.PENDING))
    assert got.extra is EMPTY
    assert (got.prompt, got.video, got.created_at, got.failure_reason) == ("", None, None, None)


def test_the_extra_of_a_task_is_read_only_and_holds_only_unknown_keys() -> None:
    got = read(task(prompt="p", unknown=[1], liked=None, video=None))
    assert dict(got.extra) == {"unknown": [1]}
    assert isinstance(got.extra, MappingProxyType)
    with pytest.raises(TypeError):
        got.extra["x"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("state", "want", "sent"),
    [
        ("pending", TaskState.PENDING, None),
        ("processing", TaskState.PROCESSING, None),
        ("completed", TaskState.COMPLETED, None),
        ("failed", TaskState.FAILED, None),
        ("queued", TaskState.PENDING, "queued"),
        ("dreaming", TaskState.PROCESSING, "dreaming"),
        ("paused", "paused", None),
    ],
)
def test_each_state_is_read_with_the_official_apis_names_kept(
    state: str, want: object, sent: str | None
) -> None:
    got = read({"id": "t", "state": state})
    assert got.state == want
    assert type(got.state) is type(want)
    assert got.sent_state == sent


def test_the_prompt_is_read_at_the_top_or_under_request_and_else_empty() -> None:
    assert read(task(prompt="top", request={"prompt": "under"})).prompt == "top"
    assert read(task(request={"prompt": "under", "aspect_ratio": "16:9"})).prompt == "under"
    assert read(task(prompt=None, request={"prompt": "under"})).prompt == "under"
    assert read(task(prompt=5, request={"prompt": 6})).prompt == ""
    assert read(task(request="not an object")).prompt == ""
    assert read(task(request=MappingProxyType({"prompt": "a view"}))).prompt == "a view"
    assert read(task()).prompt == ""


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (12, 12.0),
        (2.5, 2.5),
        (None, None),
        (True, None),
        (False, None),
        ("12", None),
        (float("nan"), None),
        (float("inf"), None),
    ],
)
def test_the_wait_estimate_is_a_finite_number_or_none(value: object, want: float | None) -> None:
    got = read(task(estimate_wait_seconds=value)).estimate_wait_seconds
    assert got == want
    assert type(got) is type(want)


# -- failure reasons ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "want"),
    [
        ({"failure_reason": "a"}, "a"),
        ({"fail_reason": "b"}, "b"),
        ({"error": "c"}, "c"),
        ({"detail": "d"}, "d"),
        ({"failure": "e"}, "e"),
        ({"reason": "f"}, "f"),
        ({"failure_reason": None, "fail_reason": "", "error": False, "detail": "d"}, "d"),
        ({"error": {"message": "m", "reason": "r", "detail": "x"}}, "m"),
        ({"error": {"message": "", "reason": "r", "detail": "x"}}, "r"),
        ({"error": {"reason": None, "detail": "x"}}, "x"),
        ({"error": {"type": "t"}, "detail": "next"}, "next"),
        ({"error": MappingProxyType({"message": "a view"})}, "a view"),
        ({"error": 500}, "500"),
        ({"error": 0}, "0"),
        ({"error": True}, None),
        ({"error": False}, None),
        ({"failure_reason": "first", "reason": "last"}, "first"),
        ({"reason": "last", "failure_reason": "first"}, "first"),
        ({}, None),
    ],
)
def test_the_failure_reason_is_the_first_name_that_says_something(
    fields: dict[str, Any], want: str | None
) -> None:
    # Kills _shapes._failure_reason__mutmut_15, _16, _17 (an object's "detail" not read).
    assert read({"id": "t", "state": "failed", **fields}).failure_reason == want


# -- envelopes ----------------------------------------------------------------------------------


def test_every_envelope_gives_the_same_task() -> None:
    inner = task(prompt="p", video={"url": V})
    want = Task(TASK_ID, TaskState.COMPLETED, prompt="p", video=Video(V))
    for body in (
        inner,
        [inner],
        {"code": "success", "message": "", "data": inner},
        {"code": "success", "message": "", "data": [inner]},
        {"data": {"data": inner}},
        MappingProxyType(inner),
        [MappingProxyType(inner)],
        {"data": MappingProxyType(inner)},
    ):
        same(read(body), want)


def test_a_list_of_other_than_one_task_and_what_is_no_object_are_refused() -> None:
    # Kills _shapes._unwrap__mutmut_4 (the count dropped from the message), _11, _12 (a "data"
    # beside an "id" unwrapped), read_task__mutmut_3 (what is no dict tested for an "id" key), _14,
    # _15 (the type dropped from the message).
    assert str(refused([])) == PREFIX + "expected one task, got a list of 0"
    assert str(refused([task(), task()])) == PREFIX + "expected one task, got a list of 2"
    assert str(refused(5)) == PREFIX + "a task must be a JSON object, not int"
    assert str(refused(None)) == PREFIX + "a task must be a JSON object, not NoneType"
    assert str(refused(["x"])) == PREFIX + "a task must be a JSON object, not str"
    assert str(refused({"code": "x", "data": None})) == PREFIX + "the task has no 'id'"
    assert str(refused({"code": "x", "data": "t"})) == PREFIX + "the task has no 'id'"
    # a "data" beside an "id" is the task's own field, not an envelope
    for body in (
        {"id": "t", "state": "pending", "data": task()},
        [{"id": "t", "state": "pending", "data": task()}],
        MappingProxyType({"id": "t", "state": "pending", "data": task()}),
    ):
        got = read(body)
        assert (got.id, dict(got.extra)) == ("t", {"data": task()})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"state": "pending"}, "the task has no 'id'"),
        ({"id": "", "state": "pending"}, "the task has no 'id'"),
        ({"id": 7, "state": "pending"}, "the task has no 'id'"),
        ({"id": "t"}, "task t has no 'state'"),
        ({"id": "t", "state": ""}, "task t has no 'state'"),
        ({"id": "t", "state": 3}, "task t has no 'state'"),
    ],
)
def test_a_task_without_its_id_or_state_is_refused_by_name(
    body: dict[str, Any], message: str
) -> None:
    # Kills _shapes.read_task__mutmut_25, _26, _27 (the missing id's message).
    assert str(refused(body)) == PREFIX + message


def test_a_gateway_row_gives_its_luma_task_and_fills_only_what_it_lacks() -> None:
    # Kills _shapes._from_gateway_row__mutmut_12 (the task's own id replaced by the row's).
    def row(**fields: Any) -> dict[str, Any]:
        return {"id": 13917, "task_id": "luma-id", "platform": "luma_free", **fields}

    same(
        read(row(status="IN_PROGRESS", fail_reason="", data={"id": "own", "state": "pending"})),
        Task("own", TaskState.PENDING),
    )
    for status, state in [
        ("NOT_START", TaskState.PENDING),
        ("SUBMITTED", TaskState.PENDING),
        ("QUEUED", TaskState.PENDING),
        ("IN_PROGRESS", TaskState.PROCESSING),
        ("in_progress", TaskState.PROCESSING),
        ("SUCCESS", TaskState.COMPLETED),
        ("FAILURE", TaskState.FAILED),
    ]:
        got = read(row(status=status, data={"prompt": "p"}))
        same(got, Task("luma-id", state, prompt="p"))
    # the row's id is never the task's; an empty or text-less inner id is replaced too
    assert read(row(status="SUCCESS", data={"id": ""})).id == "luma-id"
    assert read(row(status="SUCCESS", data={"id": 5})).id == "luma-id"
    assert read(row(status="SUCCESS", data={"state": ""})).state is TaskState.COMPLETED
    assert read(row(status="SUCCESS", data={"state": 1})).state is TaskState.COMPLETED
    assert read(row(status="SUCCESS", data=None)).state is TaskState.COMPLETED
    assert read(row(status="SUCCESS", data=MappingProxyType({"prompt": "v"}))).prompt == "v"
    # the row's reason only when the task has none
    failed = read(row(status="FAILURE", fail_reason="row says", data={}))
    assert failed.failure_reason == "row says"
    assert dict(failed.extra) == {"fail_reason": "row says"}
    own = read(row(status="FAILURE", fail_reason="row says", data={"error": "task says"}))
    assert own.failure_reason == "task says"
    assert "fail_reason" not in own.extra
    assert read(row(status="FAILURE", fail_reason="", data={})).failure_reason is None
    assert read(row(status="FAILURE", fail_reason=3, data={})).failure_reason is None
    # a row without a state anywhere
    for empty in ({}, {"status": ""}, {"status": None}):
        error = refused(row(data={}, **empty))
        assert str(error) == PREFIX + "task luma-id has no 'state'"


def test_what_is_no_gateway_row_is_read_as_it_is() -> None:
    # Kills _shapes._is_gateway_row__mutmut_6 (a task_id that is no text taken for a row).
    # a task_id that is empty or no text, or a text id without a data object: a task
    got = read({"id": "t", "state": "pending", "task_id": ""})
    assert (got.id, dict(got.extra)) == ("t", {"task_id": ""})
    got = read({"id": "t", "state": "pending", "task_id": 5})
    assert (got.id, dict(got.extra)) == ("t", {"task_id": 5})
    got = read({"id": "t", "state": "pending", "task_id": "other", "data": "x"})
    assert (got.id, dict(got.extra)) == ("t", {"task_id": "other", "data": "x"})
    # a text id beside a data object is a row (its id is the row's)
    got = read({"id": "row", "task_id": "luma", "status": "QUEUED", "data": {}})
    same(got, Task("luma", TaskState.PENDING))


# -- times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("2024-07-01T07:35:13.498660Z", datetime(2024, 7, 1, 7, 35, 13, 498660, tzinfo=UTC)),
        ("2024-07-01T07:35:13Z", datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        ("2024-07-01T07:35:13z", datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        ("2024-07-01T07:35:13", datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        (
            "2024-07-01T09:35:13+02:00",
            datetime(2024, 7, 1, 9, 35, 13, tzinfo=timezone(timedelta(hours=2))),
        ),
        # what only the lenient reader takes: blanks, nine digits of fraction
        (" 2024-07-01T07:35:13.5Z ", datetime(2024, 7, 1, 7, 35, 13, 500000, tzinfo=UTC)),
        (" 2024-07-01T07:35:13.5z", datetime(2024, 7, 1, 7, 35, 13, 500000, tzinfo=UTC)),
        (
            "2024-07-01T07:35:13.123456789Z",
            datetime(2024, 7, 1, 7, 35, 13, 123456, tzinfo=UTC),
        ),
        (
            "2024-07-01T07:35:13.1234567+02:00 ",
            datetime(2024, 7, 1, 7, 35, 13, 123456, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024-07-01T07:35:13.1234567 ", datetime(2024, 7, 1, 7, 35, 13, 123456, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        (1719819313, datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        (1719819313.5, datetime(2024, 7, 1, 7, 35, 13, 500000, tzinfo=UTC)),
        (1719819313000, datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_created_at_is_read_in_every_form_and_always_aware(value: object, want: object) -> None:
    got = read(task(created_at=value)).created_at
    assert got == want
    if isinstance(want, datetime):
        assert got is not None
        assert got.utcoffset() == want.utcoffset()


def test_a_time_in_the_artifact_or_elsewhere_is_no_created_at() -> None:
    got = read(task(artifact={"created_at": "0001-01-01T00:00:00Z"}))
    assert got.created_at is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "not a timestamp: True"),
        ([1], "not a timestamp: [1]"),
        (float("nan"), "not a timestamp: nan"),
        (float("inf"), "not a timestamp: inf"),
        (1e20, "timestamp out of range: 1e+20"),
        ("yesterday", "Invalid isoformat string: 'yesterday'"),
        (" 2024-07-01T07:35:13.5Q", "Invalid isoformat string: '2024-07-01T07:35:13.500000Q'"),
        (
            "2024-07-01T07:35:13.5.5Q",
            "Invalid isoformat string: '2024-07-01T07:35:13.500000.5Q'",
        ),
    ],
)
def test_a_time_that_is_none_is_refused_with_what_it_is(value: object, message: str) -> None:
    # Kills _shapes.parse_datetime__mutmut_21 (the out-of-range message),
    # _parse_iso_leniently__mutmut_14 (the last dot taken for the fraction's), _15 (no fraction
    # found), _22 (seven digits of fraction).
    error = refused(task(created_at=value))
    assert str(error) == PREFIX + message


# -- the video, wherever it is ------------------------------------------------------------------


def test_a_plain_video_object_is_read_with_whole_sizes_and_links() -> None:
    got = read(task(video={"url": V, "width": 1280, "height": 720}))
    same(got.video, Video(V, width=1280, height=720))
    got = read(task(video={"url": V, "thumbnail": "", "download_url": ""}))
    same(got.video, Video(V))
    got = read(
        task(
            video={"url": V, "width": None, "height": None, "thumbnail": None, "download_url": "d"}
        )
    )
    same(got.video, Video(V, download_url="d"))
    got = read(task(video={"url": V, "thumbnail": "t", "download_url": None}))
    same(got.video, Video(V, thumbnail="t"))


@pytest.mark.parametrize(
    "fields",
    [
        {"width": 1280.0, "height": 720},
        {"width": 1280, "height": 720.0},
        {"width": "1280", "height": "720"},
    ],
)
def test_video_sizes_given_as_floats_or_text_are_whole_numbers(fields: dict[str, Any]) -> None:
    got = read(task(video={"url": V, **fields}))
    same(got.video, Video(V, width=1280, height=720))


@pytest.mark.parametrize(
    ("fields", "want"),
    [
        ({"thumbnail": {"url": "t", "width": 1}}, Video(V, thumbnail="t")),
        ({"download_url": {"url": "d"}}, Video(V, download_url="d")),
        ({"thumbnail": {"url": ""}, "download_url": {"href": "d"}}, Video(V)),
        ({"thumbnail": 5, "download_url": ["d"]}, Video(V)),
        ({"thumbnail": MappingProxyType({"url": "t"})}, Video(V, thumbnail="t")),
        ({"other": 1}, Video(V)),
    ],
)
def test_video_links_given_as_objects_are_their_urls(fields: dict[str, Any], want: Video) -> None:
    same(read(task(video={"url": V, **fields})).video, want)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "TypeError: a video size must be a number, not bool"),
        ([1], "TypeError: a video size must be a number, not list"),
        ({"w": 1}, "TypeError: a video size must be a number, not dict"),
        ("wide", "ValueError: invalid literal for int() with base 10: 'wide'"),
    ],
)
def test_a_video_size_that_is_no_number_is_refused_by_field(value: object, message: str) -> None:
    # Kills _shapes.video_size__mutmut_7, _8 (the refusal's message).
    error = refused(task(video={"url": V, "width": value}))
    assert str(error) == PREFIX + "invalid value for type, expected int | None @ $.width"
    assert cause(error) == f"{message} @ $.width"


def test_a_video_link_in_a_text_subclass_object_is_refused() -> None:
    # Kills _shapes.video_link__mutmut_13, _14 (the refusal's message).
    class Text(str):
        __slots__ = ()

    error = refused(task(video={"url": V, "thumbnail": {"url": Text("t")}}))
    assert cause(error) == "TypeError: expected a string, not Text @ $.thumbnail"


def test_the_video_is_read_from_the_first_place_that_has_a_link() -> None:
    art = {"video": {"url": "https://cdn/a.mp4", "width": 10}}
    # the top-level video first
    same(read(task(video={"url": V}, artifact=art)).video, Video(V))
    # no link at the top: the artifact's
    for top in (None, {"url": None}, {"url": ""}, {"url": 5}, {}, "", 5):
        same(read(task(video=top, artifact=art)).video, Video("https://cdn/a.mp4", width=10))
    # the artifact's as a bare link
    same(read(task(artifact={"video": "https://cdn/a.mp4"})).video, Video("https://cdn/a.mp4"))
    # then the official API's bare link under assets
    got = read(task(video=None, artifact={"video": None}, assets={"video": "https://cdn/o.mp4"}))
    same(got.video, Video("https://cdn/o.mp4"))
    got = read(task(assets={"video": {"url": "https://cdn/o.mp4", "width": 3}}))
    same(got.video, Video("https://cdn/o.mp4", width=3))
    # nowhere
    for body in (
        task(),
        task(video=None, artifact=None, assets=None),
        task(video={"url": None}, artifact={"video": {}}, assets={"video": ""}),
        task(artifact="x", assets="y"),
        task(assets={"image": "https://cdn/i.jpg"}),
    ):
        assert read(body).video is None


def test_a_video_given_as_a_bare_link_or_a_read_only_object() -> None:
    # Kills _shapes.read_task__mutmut_59, _60, _61 (an artifact that is a Mapping but no dict
    # ignored).
    same(read(task(video=V)).video, Video(V))
    view = MappingProxyType({"url": V, "width": 1280, "thumbnail": "t"})
    same(read(task(video=view)).video, Video(V, width=1280, thumbnail="t"))
    art = MappingProxyType({"video": MappingProxyType({"url": V, "height": 9})})
    same(read(task(artifact=art)).video, Video(V, height=9))


def test_the_still_comes_from_the_video_then_the_top_the_artifact_and_assets() -> None:
    # Kills _shapes._video__mutmut_58 (a video's still object without a link kept, the others
    # ignored).
    def still(**fields: Any) -> str | None:
        video = read(task(**fields)).video
        assert video is not None
        return video.thumbnail

    top = {"url": "https://cdn/top.jpg", "width": 1, "height": 2, "palette": "x"}
    art = {"video": V, "thumbnail": {"url": "https://cdn/art.jpg"}}
    assets = {"image": "https://cdn/asset.jpg"}
    assert still(video={"url": V, "thumbnail": "own"}, thumbnail=top) == "own"
    assert still(video={"url": V, "thumbnail": {"url": "own"}}, thumbnail=top) == "own"
    assert still(video={"url": V}, thumbnail=top, artifact=art) == "https://cdn/top.jpg"
    assert still(video={"url": V, "thumbnail": ""}, thumbnail=top) == "https://cdn/top.jpg"
    assert still(video={"url": V, "thumbnail": {"url": ""}}, thumbnail="https://cdn/s.jpg") == (
        "https://cdn/s.jpg"
    )
    assert still(video={"url": V}, thumbnail={"url": ""}, artifact=art) == "https://cdn/art.jpg"
    assert still(video={"url": V}, thumbnail=None, artifact=art) == "https://cdn/art.jpg"
    assert still(artifact=art) == "https://cdn/art.jpg"
    assert still(video={"url": V}, assets=assets) == "https://cdn/asset.jpg"
    assert still(assets={"video": V, "image": {"url": "https://cdn/i.jpg"}}) == "https://cdn/i.jpg"
    assert still(artifact={"video": V, "thumbnail": ""}, assets=assets) == "https://cdn/asset.jpg"
    assert still(video={"url": V}, assets={"image": None}) is None
    assert still(video={"url": V}, thumbnail=5, artifact={"thumbnail": 6}) is None
    # a still found elsewhere leaves the video's own fields as they are
    got = read(task(video={"url": V, "width": 1280.0, "download_url": "d"}, thumbnail=top))
    same(got.video, Video(V, width=1280, thumbnail="https://cdn/top.jpg", download_url="d"))


def test_the_raw_render_comes_from_the_video_then_the_top_then_the_artifact() -> None:
    def raw(**fields: Any) -> RawVideo | None:
        video = read(task(**fields)).video
        assert video is not None
        return video.raw

    full = {"url": "https://cdn/r.mp4", "width": 1280, "height": 720.0, "duration": 5}
    want = RawVideo("https://cdn/r.mp4", width=1280, height=720, duration=5.0)
    same(raw(video={"url": V}, video_raw=full), want)
    same(raw(video={"url": V, "raw": None}, video_raw=full), want)
    same(raw(video={"url": V, "raw": {"url": ""}}, video_raw=full), want)
    same(
        raw(video={"url": V, "raw": "https://cdn/own.mp4"}, video_raw=full),
        RawVideo("https://cdn/own.mp4"),
    )
    same(raw(video={"url": V}, video_raw=None, artifact={"video_raw": full}), want)
    same(raw(video={"url": V}, video_raw={"url": None}, artifact={"video_raw": full}), want)
    same(
        raw(video={"url": V}, artifact={"video_raw": "https://cdn/r.mp4"}),
        RawVideo("https://cdn/r.mp4"),
    )
    same(raw(video={"url": V}, video_raw=MappingProxyType(full)), want)
    assert raw(video={"url": V}, video_raw={"width": 3}, artifact={"video_raw": ""}) is None
    assert raw(video={"url": V}, video_raw=5) is None
    # with both a still and a raw render found elsewhere
    got = read(task(video={"url": V, "height": 720}, thumbnail="s", artifact={"video_raw": full}))
    same(got.video, Video(V, height=720, thumbnail="s", raw=want))


@pytest.mark.parametrize(
    ("fields", "want"),
    [
        ({"duration": 5}, 5.0),
        ({"duration": 4.5}, 4.5),
        ({"duration": True}, None),
        ({"duration": "5s"}, None),
        ({"duration": float("nan")}, None),
        ({"duration": float("inf")}, None),
        ({"duration": None}, None),
        ({}, None),
    ],
)
def test_a_raw_renders_duration_is_finite_seconds_or_none(
    fields: dict[str, Any], want: float | None
) -> None:
    video = read(task(video={"url": V}, video_raw={"url": "r", **fields})).video
    assert video is not None
    assert video.raw is not None
    got = video.raw.duration
    assert got == want
    assert type(got) is type(want)


@pytest.mark.parametrize(
    ("size", "want"),
    [
        (1280, 1280),
        (1280.9, 1280),
        (True, None),
        (False, None),
        ("1280", None),
        (float("inf"), None),
        (float("nan"), None),
        (None, None),
    ],
)
def test_media_sizes_of_stills_and_raw_renders_are_whole_numbers_or_none(
    size: object, want: int | None
) -> None:
    # Kills _shapes._frame__mutmut_36, _41 to _54 (a last frame that is a Mapping but no dict: its
    # link or sizes lost).
    got = read(
        task(
            video={"url": V},
            video_raw={"url": "r", "width": size, "height": size},
            last_frame={"url": "f", "width": size, "height": size},
            artifact={"last_frame": "unused"},
        )
    )
    assert got.video is not None
    same(got.video.raw, RawVideo("r", width=want, height=want))
    same(got.last_frame, Frame("f", width=want, height=want))
    view = read(task(last_frame=MappingProxyType({"url": "f", "width": size, "height": size})))
    same(view.last_frame, Frame("f", width=want, height=want))


# -- the last frame -----------------------------------------------------------------------------


def test_the_last_frame_is_read_at_the_top_then_in_the_artifact() -> None:
    # Kills _shapes._frame__mutmut_6 (a last frame whose link is no text or empty kept), and _36,
    # _41 to _54 too.
    top = {"url": "https://cdn/f.jpg", "width": 1280, "height": 720}
    art = {"last_frame": {"url": "https://cdn/a.jpg", "width": 1}}
    same(
        read(task(last_frame=top, artifact=art)).last_frame,
        Frame("https://cdn/f.jpg", width=1280, height=720),
    )
    same(read(task(last_frame="https://cdn/f.jpg")).last_frame, Frame("https://cdn/f.jpg"))
    for missing in (None, {"url": None}, {"url": ""}, {"url": 5}, {}, "", 5):
        same(
            read(task(last_frame=missing, artifact=art)).last_frame,
            Frame("https://cdn/a.jpg", width=1),
        )
    same(
        read(task(artifact={"last_frame": "https://cdn/a.jpg"})).last_frame,
        Frame("https://cdn/a.jpg"),
    )
    view = MappingProxyType({"url": "https://cdn/v.jpg", "width": 2, "height": 3})
    same(read(task(last_frame=view)).last_frame, Frame("https://cdn/v.jpg", width=2, height=3))
    same(
        read(task(artifact={"last_frame": view})).last_frame,
        Frame("https://cdn/v.jpg", width=2, height=3),
    )
    for body in (
        task(),
        task(last_frame=None, artifact={"last_frame": None}),
        task(last_frame={"url": ""}, artifact={"last_frame": MappingProxyType({"url": ""})}),
        task(artifact=None),
    ):
        assert read(body).last_frame is None


# -- the constructors ---------------------------------------------------------------------------


def test_slot_setters_gives_one_setter_per_field_in_order_or_names_the_mismatch() -> None:
    # Kills _construct.slot_setters__mutmut_1, _6 (run at import only, so under mutmut only a test
    # that calls it sees them).
    set_url, set_width, set_height = slot_setters(Frame, "url", "width", "height")
    frame = object.__new__(Frame)
    set_url(frame, "u")
    set_width(frame, 1)
    set_height(frame, 2)
    same(frame, Frame("u", width=1, height=2))
    with pytest.raises(AssertionError) as caught:
        slot_setters(Frame, "url", "height", "width")
    assert str(caught.value) == (
        "Frame: fields ('url', 'width', 'height'), built ('url', 'height', 'width')"
    )
    with pytest.raises(AssertionError) as caught:
        slot_setters(RawVideo, "url")
    assert str(caught.value) == (
        "RawVideo: fields ('url', 'width', 'height', 'duration'), built ('url',)"
    )


def test_a_video_object_with_every_plain_field_is_built_directly() -> None:
    # Kills _construct.plain_video__mutmut_4 (a video object with all five plain keys sent to the
    # field hooks).
    fields = {"url": V, "width": 1, "height": 2, "thumbnail": "t", "download_url": "d"}
    built = plain_video(fields, V)
    assert built is not None
    same(built, Video(V, width=1, height=2, thumbnail="t", download_url="d"))
    same(read(task(video=fields)).video, built)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2024-07-01T07:35:13.498660Z", datetime(2024, 7, 1, 7, 35, 13, 498660, tzinfo=UTC)),
        ("2024-07-01T07:35:13z", datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        (
            "2024-07-01T09:35:13+02:00",
            datetime(2024, 7, 1, 9, 35, 13, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024-07-01T07:35:13", datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC).replace(tzinfo=None)),
    ],
)
def test_the_python_3_10_reader_takes_the_trailing_z(text: str, want: datetime) -> None:
    # _from_zulu is the fast reader on Python 3.10 only; on 3.11+ it is run by this test alone.
    got = _from_zulu(text)
    assert got == want
    assert got.utcoffset() == want.utcoffset()
