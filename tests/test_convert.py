"""The wire format: every task shape and envelope of luma-api.md, and what must never crash."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from luma_async import DecodeError, Frame, Task, TaskState, Video
from luma_async._convert import (
    decode_json,
    make_luma_converter,
    task_from_json,
    task_to_json,
    tasks_from_json,
    uploaded_from_json,
    url_from_json,
)

from . import strategies

FIXTURES = Path(__file__).parent / "fixtures"
TASK_ID = "9d4b7516-77e5-481a-b015-48313946f33b"
UTC = timezone.utc


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def task(**fields: Any) -> dict[str, Any]:
    """A minimal classic task body with ``fields`` on top."""
    return {"id": TASK_ID, "state": "pending", **fields}


# --- recorded bodies ---------------------------------------------------------------------


def test_classic_pending_fixture() -> None:
    got = task_from_json(load("task_pending.json"))
    assert got.id == TASK_ID
    assert got.state is TaskState.PENDING
    assert got.state == "pending"
    assert got.prompt == "cat dance"
    assert got.created_at == datetime(2024, 7, 1, 7, 35, 13, 498660, tzinfo=UTC)
    assert got.video is None
    assert got.liked is None
    assert got.estimate_wait_seconds is None
    assert got.failure_reason is None
    assert not got.is_finished
    assert not got.is_terminal
    assert dict(got.extra) == {}


def test_classic_completed_fixture_keeps_unmodelled_fields() -> None:
    got = task_from_json(load("task_completed_classic.json"))
    assert got.state is TaskState.COMPLETED
    assert got.is_finished
    assert got.is_terminal
    assert got.video == Video(
        url="https://storage.cdn-luma.com/lit_lite_inference_v1.6-xl/9d4b7516/watermarked_video.mp4",
        width=1360,
        height=752,
        # video.thumbnail is null: the top-level thumbnail object is the still (issue 10)
        thumbnail="https://storage.cdn-luma.com/9d4b7516/thumb.jpg",
    )
    assert got.video.best_url == got.video.url  # no download_url: the plain link
    assert set(got.extra) == {"thumbnail", "last_frame"}
    assert got.extra["last_frame"]["url"].endswith("last_frame.jpg")
    assert got.last_frame == Frame(
        "https://storage.cdn-luma.com/9d4b7516/last_frame.jpg", width=1360, height=752
    )


def test_later_shape_with_request_and_artifact() -> None:
    got = task_from_json(load("task_completed_artifact.json"))
    assert got.prompt == "a lighthouse at dusk, waves"  # from request.prompt
    assert got.state is TaskState.COMPLETED
    assert got.video is not None
    assert got.video.url == "https://storage.cdn-luma.com/2c3f9a6e/watermarked.mp4"
    assert got.video.thumbnail == "https://storage.cdn-luma.com/2c3f9a6e/thumb.jpg"
    assert got.video.download_url == "https://storage.cdn-luma.com/2c3f9a6e/video.mp4?sig=abc"
    assert got.video.best_url == got.video.download_url  # clients prefer download_url
    assert got.created_at == datetime(2024, 9, 18, 12, 1, 2, 123000, tzinfo=UTC)
    assert got.failure_reason is None
    for key in ("request", "artifact", "queue_state", "batch_id", "video_raw"):
        assert key in got.extra
    assert got.extra["video_raw"]["duration"] == pytest.approx(5.041667)
    assert got.extra["artifact"]["created_at"] == "0001-01-01T00:00:00Z"  # kept as sent


@pytest.mark.parametrize("top", [None, {}, {"url": None}, {"url": ""}, [1], ""])
def test_artifact_video_is_used_when_the_top_level_one_has_no_link(top: Any) -> None:
    got = task_from_json(
        task(state="completed", video=top, artifact={"video": {"url": "https://cdn/a.mp4"}})
    )
    assert got.video == Video(url="https://cdn/a.mp4")
    assert got.is_finished


def test_top_level_video_wins_over_artifact() -> None:
    got = task_from_json(
        task(
            state="completed",
            video={"url": "https://cdn/top.mp4"},
            artifact={"video": {"url": "https://cdn/a.mp4"}},
        )
    )
    assert got.video == Video(url="https://cdn/top.mp4")


def test_go_zero_time_survives_a_round_trip() -> None:
    got = task_from_json(task(created_at="0001-01-01T00:00:00Z"))
    assert task_from_json(task_to_json(got)) == got


def test_extra_is_read_only() -> None:
    got = task_from_json(load("task_completed_artifact.json"))
    with pytest.raises(TypeError):
        got.extra["batch_id"] = "other"  # type: ignore[index]


def test_wrapped_fixture() -> None:
    got = task_from_json(load("task_wrapped.json"))
    assert got.id == "5b0e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    assert got.state is TaskState.PROCESSING
    assert got.estimate_wait_seconds == 42.0
    assert isinstance(got.estimate_wait_seconds, float)
    assert got.video is not None
    assert got.video.thumbnail == "https://cdn.example.net/5b0e1f2a.jpg"  # object -> its url
    assert got.created_at == datetime(2024, 8, 2, 2, 0, tzinfo=UTC)
    assert got.created_at.utcoffset() == timedelta(hours=8)
    assert "code" not in got.extra
    assert "data" not in got.extra


def test_failed_fixture() -> None:
    got = task_from_json(load("task_failed.json"))
    assert got.is_failed
    assert got.is_terminal
    assert not got.is_finished
    assert got.failure_reason == "Prompt was flagged by moderation"
    assert got.prompt == "forbidden content"


@pytest.mark.parametrize(
    "envelope",
    [
        pytest.param(lambda body: body, id="bare"),
        pytest.param(lambda body: [body], id="array"),
        pytest.param(lambda body: {"code": "success", "message": "", "data": body}, id="wrapped"),
        pytest.param(
            lambda body: {"code": "success", "message": "", "data": [body]}, id="wrapped-array"
        ),
    ],
)
def test_every_envelope_gives_the_same_task(envelope: Any) -> None:
    body = load("task_pending.json")
    assert task_from_json(envelope(body)) == task_from_json(body)


def test_array_fixture_equals_bare_fixture() -> None:
    assert task_from_json(load("task_array.json")) == task_from_json(load("task_pending.json"))


def test_strict_converter_reads_every_fixture_video() -> None:
    strict = make_luma_converter(strict=True)
    videos = []
    for path in sorted(FIXTURES.glob("task_*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        for body in raw if isinstance(raw, list) else [raw]:
            inner = body.get("data", body)
            for candidate in (inner.get("video"), inner.get("artifact", {}).get("video")):
                if candidate is not None:
                    videos.append(strict.structure(candidate, Video))
    assert len(videos) >= 3  # the classic, artifact and wrapped fixtures carry videos
    assert all(video.url.startswith("https://") for video in videos)


def test_strict_converter_catches_a_typo_the_lax_one_tolerates() -> None:
    typo = {"url": "https://cdn.example.net/v.mp4", "widht": 1280}
    with pytest.raises(cattrs.BaseValidationError):
        make_luma_converter(strict=True).structure(typo, Video)
    assert make_luma_converter().structure(typo, Video) == Video(url=typo["url"])


# --- shapes field by field ---------------------------------------------------------------


def test_top_level_prompt_wins_over_request_prompt() -> None:
    got = task_from_json(task(prompt="top", request={"prompt": "nested"}))
    assert got.prompt == "top"


@pytest.mark.parametrize(
    "fields", [{}, {"prompt": None}, {"request": None}, {"request": {"prompt": 5}}]
)
def test_missing_prompt_is_empty(fields: dict[str, Any]) -> None:
    assert task_from_json(task(**fields)).prompt == ""


def test_only_id_and_state_are_needed() -> None:
    got = task_from_json({"id": "x1", "state": "processing"})
    assert got == Task(id="x1", state=TaskState.PROCESSING)
    assert got.created_at is None


@pytest.mark.parametrize(
    "thumbnail",
    [
        "https://cdn.example.net/t.jpg",
        {"url": "https://cdn.example.net/t.jpg", "width": 10, "height": 10},
    ],
)
def test_thumbnail_as_string_or_object(thumbnail: Any) -> None:
    got = task_from_json(task(video={"url": "https://cdn/v.mp4", "thumbnail": thumbnail}))
    assert got.video is not None
    assert got.video.thumbnail == "https://cdn.example.net/t.jpg"


@pytest.mark.parametrize("thumbnail", [None, "", {"url": None}, {}])
def test_thumbnail_absent_in_any_form_is_none(thumbnail: Any) -> None:
    got = task_from_json(task(video={"url": "https://cdn/v.mp4", "thumbnail": thumbnail}))
    assert got.video is not None
    assert got.video.thumbnail is None


def test_download_url_is_preferred() -> None:
    got = task_from_json(
        task(video={"url": "https://cdn/wm.mp4", "download_url": "https://cdn/clean.mp4"})
    )
    assert got.video is not None
    assert got.video.download_url == "https://cdn/clean.mp4"
    assert got.video.best_url == "https://cdn/clean.mp4"


def test_download_url_of_a_strange_type_never_becomes_a_fake_link() -> None:
    got = task_from_json(task(video={"url": "https://cdn/wm.mp4", "download_url": {"x": 1}}))
    assert got.video is not None
    assert got.video.download_url is None
    assert got.video.best_url == "https://cdn/wm.mp4"


def test_float_sizes_that_are_whole_become_ints() -> None:
    got = task_from_json(task(video={"url": "https://cdn/v.mp4", "width": 1360.0, "height": 752}))
    assert got.video is not None
    assert got.video.width == 1360
    assert isinstance(got.video.width, int)


@pytest.mark.parametrize(
    "fields",
    [
        {"state": "completed", "video": None},
        {"state": "completed"},
        {"state": "completed", "video": {"url": None, "width": 1, "height": 1}},
        {"state": "completed", "video": {"url": ""}},
        {"state": "completed", "video": {"width": 1360}},
        {"state": "completed", "video": None, "artifact": {"video": None}},
        {"state": "completed", "artifact": None},
    ],
)
def test_completed_without_a_link_has_no_video(fields: dict[str, Any]) -> None:
    got = task_from_json({"id": TASK_ID, **fields})
    assert got.state is TaskState.COMPLETED
    assert got.video is None
    assert not got.is_finished
    assert not got.is_terminal  # keep polling for the link


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"failure_reason": "flagged"}, "flagged"),
        ({"fail_reason": "flagged"}, "flagged"),
        ({"error": "upstream error"}, "upstream error"),
        ({"error": {"message": "upstream error", "code": 7}}, "upstream error"),
        ({"error": {"reason": "gpu lost"}}, "gpu lost"),
        ({"detail": "moderation"}, "moderation"),
        ({"failure_reason": None, "fail_reason": "second"}, "second"),
        ({"failure_reason": "", "error": "third"}, "third"),
        ({}, None),
        ({"failure_reason": None}, None),
    ],
)
def test_failure_reason_under_any_name(fields: dict[str, Any], reason: str | None) -> None:
    got = task_from_json(task(state="failed", **fields))
    assert got.is_failed
    assert got.failure_reason == reason


@pytest.mark.parametrize("state", ["queueing", "rendering", "IN_PROGRESS", "Pending"])
def test_unknown_states_are_kept_as_strings(state: str) -> None:
    got = task_from_json(task(state=state))
    assert got.state == state
    assert not isinstance(got.state, TaskState)
    assert got.sent_state is None
    assert not got.is_terminal


@pytest.mark.parametrize(
    ("sent", "meant"), [("queued", TaskState.PENDING), ("dreaming", TaskState.PROCESSING)]
)
def test_official_state_names_are_read_as_ours(sent: str, meant: TaskState) -> None:
    # Issue 10: the official Dream Machine API says queued/dreaming; before, they were kept
    # as unknown states (and "queued" did not get the slower pending cadence).
    got = task_from_json(task(state=sent))
    assert got.state is meant
    assert got.sent_state == sent  # the state as sent stays reachable
    assert task_from_json(task_to_json(got)) == got


@pytest.mark.parametrize("state", list(TaskState))
def test_known_states_become_task_states(state: TaskState) -> None:
    got = task_from_json(task(state=state.value))
    assert got.state is state
    assert str(got.state) == state.value


def test_unknown_top_level_fields_are_kept() -> None:
    got = task_from_json(task(queue_state="waiting", new_field={"nested": [1, 2]}, batch_id=None))
    assert got.extra == {
        "queue_state": "waiting",
        "new_field": {"nested": [1, 2]},
        "batch_id": None,
    }


@pytest.mark.parametrize(
    ("estimate", "expected"),
    [(30, 30.0), (12.5, 12.5), (None, None), ("12", None), (True, None), ([1], None)],
)
def test_estimate_wait_seconds_only_when_a_number(estimate: Any, expected: float | None) -> None:
    assert task_from_json(task(estimate_wait_seconds=estimate)).estimate_wait_seconds == expected


# --- created_at ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-07-01T07:35:13.498660Z", datetime(2024, 7, 1, 7, 35, 13, 498660, tzinfo=UTC)),
        ("2024-07-01T07:35:13Z", datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        ("2024-07-01T07:35:13.498Z", datetime(2024, 7, 1, 7, 35, 13, 498000, tzinfo=UTC)),
        ("2024-07-01T07:35:13.498660123Z", datetime(2024, 7, 1, 7, 35, 13, 498660, tzinfo=UTC)),
        ("2024-07-01T07:35:13.5z", datetime(2024, 7, 1, 7, 35, 13, 500000, tzinfo=UTC)),
        ("2024-07-01T15:35:13+08:00", datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        ("2024-07-01T15:35:13.498660+08:00", datetime(2024, 7, 1, 7, 35, 13, 498660, tzinfo=UTC)),
        ("2024-07-01T07:35:13.498660", datetime(2024, 7, 1, 7, 35, 13, 498660, tzinfo=UTC)),
        ("2024-07-01T07:35:13", datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        (1719819313, datetime(2024, 7, 1, 7, 35, 13, tzinfo=UTC)),
        (1719819313.5, datetime(2024, 7, 1, 7, 35, 13, 500000, tzinfo=UTC)),
        (1719819313498, datetime(2024, 7, 1, 7, 35, 13, 498000, tzinfo=UTC)),  # milliseconds
    ],
)
def test_created_at_forms(raw: Any, expected: datetime) -> None:
    got = task_from_json(task(created_at=raw)).created_at
    assert got == expected
    assert got is not None
    assert got.tzinfo is not None  # always aware


def test_created_at_keeps_the_offset_it_was_given() -> None:
    got = task_from_json(task(created_at="2024-07-01T15:35:13+08:00")).created_at
    assert got is not None
    assert got.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize("raw", [None, ""])
def test_created_at_absent_is_none(raw: Any) -> None:
    assert task_from_json(task(created_at=raw)).created_at is None


# --- malformed answers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"state": "pending"}, id="missing-id"),
        pytest.param({"id": "", "state": "pending"}, id="empty-id"),
        pytest.param({"id": 123, "state": "pending"}, id="numeric-id"),
        pytest.param({"id": TASK_ID}, id="missing-state"),
        pytest.param({"id": TASK_ID, "state": None}, id="null-state"),
        pytest.param({"id": TASK_ID, "state": ""}, id="empty-state"),
        pytest.param({"id": TASK_ID, "state": 3}, id="numeric-state"),
        pytest.param("not a task", id="string"),
        pytest.param(42, id="number"),
        pytest.param(None, id="null"),
        pytest.param(True, id="bool"),
        pytest.param([], id="empty-list"),
        pytest.param([task(), task()], id="list-of-two"),
        pytest.param({"code": "success", "message": "", "data": None}, id="wrapped-null"),
        pytest.param({"code": "success", "data": [task(), task()]}, id="wrapped-list-of-two"),
        pytest.param(task(video={"url": "https://cdn/v", "width": [1]}), id="width-list"),
        pytest.param(task(video={"url": "https://cdn/v", "width": "wide"}), id="width-text"),
        pytest.param(task(video={"url": "https://cdn/v", "height": {"h": 1}}), id="height-object"),
        pytest.param(task(video={"url": "https://cdn/v", "height": True}), id="height-bool"),
        pytest.param(task(video={"url": "https://cdn/v", "width": float("inf")}), id="width-inf"),
        pytest.param(task(created_at="yesterday"), id="bad-date"),
        pytest.param(task(created_at="2024-13-45T99:00:00Z"), id="impossible-date"),
        pytest.param(task(created_at=True), id="bool-date"),
        pytest.param(task(created_at={"t": 1}), id="object-date"),
        pytest.param(task(created_at=10**20), id="huge-epoch"),
        pytest.param(task(created_at=-(10**20)), id="huge-negative-epoch"),
    ],
)
def test_malformed_answers_raise_decode_error(body: Any) -> None:
    with pytest.raises(DecodeError) as info:
        task_from_json(body, what=f"GET /luma/generations/{TASK_ID}")
    assert str(info.value).startswith(f"GET /luma/generations/{TASK_ID}: ")
    assert info.value.body is body  # the answer is kept for the user to inspect


def test_deeply_nested_envelope_is_a_decode_error() -> None:
    body: Any = task()
    body.pop("id")
    for _ in range(5000):
        body = {"data": body}
    with pytest.raises(DecodeError):
        task_from_json(body)


def test_decode_json() -> None:
    assert decode_json(b'{"id": "a"}', what="x") == {"id": "a"}
    with pytest.raises(DecodeError, match=r"GET /x: the answer is not JSON.*'<html>"):
        decode_json(b"<html>oops</html>", what="GET /x")
    with pytest.raises(DecodeError):
        decode_json(b"\xff\xfe\x00garbage", what="x")
    with pytest.raises(DecodeError):
        decode_json(b"[" * 100_000, what="x")


def test_tasks_from_json_bare_and_wrapped() -> None:
    body = [task(), task(id="other", state="completed")]
    assert [t.id for t in tasks_from_json(body, what="x")] == [TASK_ID, "other"]
    wrapped = {"code": "success", "data": body}
    assert tasks_from_json(wrapped, what="x") == tasks_from_json(body, what="x")
    with pytest.raises(DecodeError):
        tasks_from_json(task(), what="x")
    with pytest.raises(DecodeError):
        tasks_from_json([task(), {"state": "pending"}], what="x")


def test_url_and_upload_answers() -> None:
    assert url_from_json({"url": "https://cdn/x.mp4"}, what="x") == "https://cdn/x.mp4"
    assert url_from_json({"code": "success", "data": {"url": "https://a"}}, what="x") == "https://a"
    for bad in ({}, {"url": ""}, {"url": 5}, None, ["https://a"]):
        with pytest.raises(DecodeError):
            url_from_json(bad, what="x")
    uploaded = uploaded_from_json(
        {"id": "f1", "presigned_url": "https://s3/put", "public_url": "https://cdn/f1.png"},
        what="x",
    )
    assert (uploaded.id, uploaded.public_url, uploaded.presigned_url) == (
        "f1",
        "https://cdn/f1.png",
        "https://s3/put",
    )
    for bad in ({}, {"id": "f1"}, "https://cdn/f1.png", None):
        with pytest.raises(DecodeError):
            uploaded_from_json(bad, what="x")


# --- properties ---------------------------------------------------------------------------

json_values = strategies.json_values(
    scalars=strategies.json_scalars(integers=strategies.SAFE_INTEGERS)
)

# Keys that mean something to the reader: an extra field by one of these names would be read
# as prompt, video, failure reason or envelope, so it cannot round-trip as an unknown field.
MEANINGFUL = {
    "id",
    "prompt",
    "state",
    "failure_reason",
    "created_at",
    "video",
    "liked",
    "estimate_wait_seconds",
    "request",
    "artifact",
    "fail_reason",
    "error",
    "detail",
    "failure",
    "reason",
    "data",
    # read since issue 10: stills, the raw video, the official shape, gateway rows
    "thumbnail",
    "last_frame",
    "video_raw",
    "assets",
    "task_id",
}

urls = st.text(min_size=1, max_size=40)
videos = st.builds(
    Video,
    url=urls,
    width=st.none() | st.integers(0, 10_000),
    height=st.none() | st.integers(0, 10_000),
    thumbnail=st.none() | urls,
    download_url=st.none() | urls,
)
aware_datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - bounds of a strategy with time zones
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5, minutes=30))]
    ),
)
tasks = st.builds(
    Task,
    id=st.text(min_size=1, max_size=40),
    state=st.sampled_from(list(TaskState))
    | st.text(min_size=1, max_size=12).filter(lambda s: s not in ("queued", "dreaming")),
    prompt=st.text(max_size=40),
    failure_reason=st.none() | st.text(min_size=1, max_size=40),
    created_at=st.none() | aware_datetimes,
    video=st.none() | videos,
    liked=json_values,
    estimate_wait_seconds=st.none() | st.floats(0, 1e6),
    extra=st.dictionaries(
        st.text(max_size=12).filter(lambda key: key not in MEANINGFUL), json_values, max_size=4
    ),
)


@settings(max_examples=150, deadline=None)
@given(tasks)
def test_round_trip(original: Task) -> None:
    wire = task_to_json(original)
    assert task_from_json(wire) == original
    assert task_from_json(json.loads(json.dumps(wire))) == original  # through real JSON text


task_keys = st.sampled_from(
    [
        "id",
        "state",
        "prompt",
        "video",
        "created_at",
        "request",
        "artifact",
        "failure_reason",
        "error",
        "estimate_wait_seconds",
        "liked",
    ]
)
video_like = st.fixed_dictionaries(
    {"url": urls | json_values},
    optional={
        key: json_values | urls | st.fixed_dictionaries({"url": urls | json_values})
        for key in ("width", "height", "thumbnail", "download_url", "duration")
    },
)
timestamps = (
    json_values
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.datetimes().map(lambda moment: moment.isoformat() + "Z")
)
mostly_text = st.text(min_size=1, max_size=5) | st.sampled_from(["pending", "completed", ""])
task_like = st.fixed_dictionaries(
    {"id": mostly_text | json_values, "state": mostly_text | json_values},
    optional={
        "video": video_like | json_values,
        "artifact": st.fixed_dictionaries({"video": video_like}) | json_values,
        "created_at": timestamps,
        "estimate_wait_seconds": json_values,
        "failure_reason": json_values,
        "error": json_values,
    },
).flatmap(
    lambda body: st.dictionaries(task_keys | st.text(max_size=6), json_values, max_size=3).map(
        lambda more: {**more, **body}
    )
)
hostile = (
    task_like
    | task_like.map(lambda body: [body])
    | task_like.map(lambda body: {"code": "success", "message": "", "data": body})
    | st.recursive(
        json_values | task_like,
        lambda inner: (
            st.lists(inner, max_size=2)
            | st.fixed_dictionaries({"code": json_values, "data": inner})
        ),
        max_leaves=4,
    )
)


@settings(max_examples=200, deadline=None)
@given(hostile)
def test_hostile_json_raises_only_decode_error(body: Any) -> None:
    try:
        got = task_from_json(body)
    except DecodeError:
        return
    assert isinstance(got.id, str)
    assert got.id
    assert isinstance(got.state, str)
    assert got.video is None or (isinstance(got.video.url, str) and got.video.url)
    assert got.created_at is None or got.created_at.tzinfo is not None
    assert got.estimate_wait_seconds is None or isinstance(got.estimate_wait_seconds, float)
    # whatever was read can be written and read back unchanged (the emulator and CLI do this)
    assert task_from_json(json.loads(json.dumps(task_to_json(got)))) == got


def test_year_one_with_an_offset_survives_a_round_trip() -> None:
    task = task_from_json(
        {"id": "t", "state": "pending", "created_at": "0001-01-01T00:00:00+08:00"}
    )
    assert task.created_at is not None
    assert task_from_json(task_to_json(task)) == task


def test_a_false_error_field_is_not_a_failure_reason() -> None:
    task = task_from_json({"id": "t", "state": "failed", "error": False, "fail_reason": "nsfw"})
    assert task.failure_reason == "nsfw"
    assert task_from_json({"id": "t", "state": "pending", "error": False}).failure_reason is None


@pytest.mark.parametrize("where", ["top", "artifact"])
def test_a_bare_video_link_is_a_video(where: str) -> None:
    link = "https://cdn.example.com/v.mp4"
    raw: dict[str, object] = {"id": "t", "state": "completed"}
    if where == "top":
        raw["video"] = link
    else:
        raw["artifact"] = {"video": link}
    task = task_from_json(raw)
    assert task.video is not None
    assert task.video.url == link
