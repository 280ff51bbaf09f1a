"""Speed never changes meaning: the fast task decoder against the old one, value for value.

``tests/decode_reference.py`` is the decoder as it was before the per-shape fast path.  For
every recorded body and for Hypothesis-made tasks in each shape and envelope, both must give
the same task, field by field and type by type (``1360`` is not ``1360.0``, a
:class:`TaskState` is not its string, the same ``tzinfo``), or both refuse it with a
:class:`DecodeError` that keeps the body; and neither may change the body it was given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from luma_async import DecodeError
from luma_async._convert import batch_from_json, make_luma_converter, task_from_json
from luma_async._models import Task
from luma_async._shapes import _from_zulu, _parse_iso_leniently
from tests.decode_reference import reference_task_from_json

HERE = Path(__file__).parent
TASK_ID = "9d4b7516-77e5-481a-b015-48313946f33b"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def snapshot(value: Any) -> Any:
    """A value's full identity: every field, with the type of every leaf."""
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))
        return (type(value).__name__, *((f.name, snapshot(getattr(value, f.name))) for f in fields))
    if isinstance(value, Mapping):
        return ("mapping", tuple((key, snapshot(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(snapshot(item) for item in value))
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), value.tzinfo, type(value.tzinfo))
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value), value)


def outcome(decode: Any, body: Any) -> Any:
    before = repr(body)
    try:
        result = ("task", snapshot(decode(body)))
    except DecodeError as exc:
        result = ("refused", exc.body is body)
    assert repr(body) == before, "the decoder changed the body it was given"
    return result


def assert_same(body: Any) -> None:
    assert outcome(task_from_json, body) == outcome(reference_task_from_json, body)


# --- every recorded body -------------------------------------------------------------------


def _recorded() -> list[Any]:
    bodies = []
    for path in sorted([*HERE.glob("samples/*.json"), *HERE.glob("fixtures/*.json")]):
        document = json.loads(path.read_text(encoding="utf-8"))
        bodies.append(pytest.param(document, id=path.name))
        items = document.get("data") if isinstance(document, dict) else document
        if isinstance(items, list):
            bodies += [pytest.param(item, id=f"{path.name}[{i}]") for i, item in enumerate(items)]
    return bodies


@pytest.mark.parametrize("body", _recorded())
def test_every_recorded_body_decodes_as_before(body: Any) -> None:
    assert_same(body)


# --- Hypothesis-made tasks in every shape ----------------------------------------------------

URLS = st.sampled_from(["https://cdn.example.net/v.mp4", "https://cdn.example.net/t.jpg", "x"])
JUNK = st.one_of(st.integers(-3, 3), st.booleans(), st.lists(st.integers(), max_size=1))


def _mostly(valid: Any, invalid: Any) -> Any:
    """``valid`` about four times in five (``one_of`` would give each branch the same odds,
    and Hypothesis leans to the ends of a range)."""
    return st.integers(0, 9).flatmap(lambda n: invalid if n in (4, 5) else valid)


SIZES = st.one_of(
    st.none(),
    st.integers(-10, 5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["720", "wide", "7.5", ""]),
    st.booleans(),
    st.just([1]),
    st.just({"h": 1}),
)
LINK = st.one_of(st.none(), st.just(""), URLS, JUNK)
LINKED_OBJECT = st.fixed_dictionaries(
    {},
    optional={
        "url": LINK,
        "width": SIZES,
        "height": SIZES,
        "duration": st.one_of(st.none(), st.floats(), st.booleans(), st.just("5")),
        "palette": st.just("AgQGCA=="),
    },
)
PLACE = _mostly(
    st.fixed_dictionaries(
        {"url": URLS}, optional={"width": SIZES, "height": SIZES, "duration": st.floats()}
    ),
    st.one_of(LINK, LINKED_OBJECT),
)
VIDEO_OBJECT = st.fixed_dictionaries(
    {},
    optional={
        "url": LINK,
        "width": SIZES,
        "height": SIZES,
        "thumbnail": PLACE,
        "download_url": PLACE,
        "raw": PLACE,
        "unmodelled": JUNK,
    },
)
#: A video as deployments send it (a link, whole or integral sizes), most of the time.
LINKED_VIDEO = st.fixed_dictionaries(
    {"url": URLS},
    optional={
        "width": _mostly(st.one_of(st.integers(1, 4096), st.just(1360.0)), SIZES),
        "height": _mostly(st.one_of(st.integers(1, 4096), st.just(752.0)), SIZES),
        "thumbnail": PLACE,
        "download_url": st.one_of(st.none(), URLS),
        "raw": PLACE,
    },
)
VIDEO = _mostly(LINKED_VIDEO, st.one_of(st.none(), URLS, JUNK, VIDEO_OBJECT))
TIMES = _mostly(
    st.sampled_from(["2026-11-25T20:57:01.123456Z", "2024-09-18T12:01:02.123Z"]),
    st.one_of(
        st.none(),
        st.sampled_from(
            [
                "",
                "2026-11-25T20:57:01.123456Z",
                "2024-09-18T12:01:02.123Z",
                "2024-08-02T10:00:00+08:00",
                "2024-07-01T07:35:13",
                "2024-07-01T07:35:13.4986Z",
                " 2024-07-01T07:35:13.498660Z ",
                "2024-07-01T07:35:13.498660z",
                "0001-01-01T00:00:00Z",
                "yesterday",
                "2024-13-45T99:00:00Z",
            ]
        ),
        st.integers(-(10**13), 10**13),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.just({"t": 1}),
    ),
)
REASON = st.one_of(
    st.none(),
    st.just(""),
    st.text(max_size=5),
    st.booleans(),
    st.integers(0, 3),
    st.fixed_dictionaries(
        {},
        optional={k: st.one_of(st.none(), st.text(max_size=3)) for k in ("message", "reason")},
    ),
)
FAILURES = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        ("failure_reason", "fail_reason", "error", "detail", "failure", "reason"), REASON
    ),
)


COMMON = {
    "id": _mostly(st.just(TASK_ID), st.sampled_from(["", None, 7])),
    "state": _mostly(
        st.sampled_from(["completed", "pending", "processing", "failed"]),
        st.sampled_from(["queued", "dreaming", "held", "", None]),
    ),
}
OPTIONAL = {
    "created_at": TIMES,
    "liked": st.one_of(st.none(), st.booleans(), st.integers(-1, 1)),
    "estimate_wait_seconds": st.one_of(
        st.none(),
        st.integers(-5, 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.just("12"),
    ),
    "queue_state": st.one_of(st.none(), st.just("queued")),
    "batch_id": st.just("b-7f1c"),
}
REQUEST = st.one_of(
    st.none(),
    JUNK,
    st.fixed_dictionaries({}, optional={"prompt": st.one_of(st.none(), st.text(max_size=5))}),
)


def _shape(required: dict[str, Any], optional: dict[str, Any]) -> Any:
    body = st.fixed_dictionaries({**COMMON, **required}, optional={**OPTIONAL, **optional})
    return st.builds(lambda b, f: {**b, **f}, body, FAILURES)


CLASSIC = _shape(
    {"video": VIDEO},
    {
        "prompt": st.one_of(st.none(), st.text(max_size=5), st.integers()),
        "thumbnail": PLACE,
        "last_frame": PLACE,
        "video_raw": PLACE,
    },
)
ARTIFACT = _shape(
    {"request": REQUEST},
    {
        "video": VIDEO,
        "video_raw": PLACE,
        "thumbnail": PLACE,
        "last_frame": PLACE,
        "artifact": st.one_of(
            st.none(),
            JUNK,
            st.fixed_dictionaries(
                {},
                optional={
                    "video": VIDEO,
                    "thumbnail": PLACE,
                    "video_raw": PLACE,
                    "last_frame": PLACE,
                    "created_at": TIMES,
                },
            ),
        ),
    },
)
OFFICIAL = _shape(
    {
        "assets": st.one_of(
            st.none(),
            JUNK,
            st.fixed_dictionaries(
                {"progress_video": st.none()}, optional={"video": VIDEO, "image": PLACE}
            ),
        ),
        "request": REQUEST,
    },
    {"generation_type": st.just("video"), "model": st.just("ray-2"), "video": VIDEO},
)


def _envelopes(task: Any) -> Any:
    return st.one_of(
        st.just(task),
        st.just([task]),
        st.just({"code": "success", "message": "", "data": task}),
        st.just({"code": "success", "data": [task]}),
        st.builds(
            lambda status, reason, inner: {
                "id": 13918,
                "task_id": TASK_ID,
                "status": status,
                "fail_reason": reason,
                "data": inner,
            },
            st.sampled_from(["SUCCESS", "FAILURE", "IN_PROGRESS", "NOT_START", "odd"]),
            st.one_of(st.just(""), st.text(max_size=3), st.none()),
            st.one_of(st.just(task), st.none()),
        ),
    )


@pytest.mark.parametrize(
    "shape", [CLASSIC, ARTIFACT, OFFICIAL], ids=["classic", "artifact", "official"]
)
@FAST
@given(data=st.data())
def test_generated_tasks_decode_as_before(shape: Any, data: st.DataObject) -> None:
    body = data.draw(shape.flatmap(_envelopes))
    assert_same(body)


@FAST
@given(st.lists(st.one_of(CLASSIC, ARTIFACT, OFFICIAL), max_size=4))
def test_batch_answers_decode_as_before(items: list[Any]) -> None:
    got = batch_from_json({"code": "success", "data": items})
    assert got is not None
    expected = []
    for item in items:
        try:
            expected.append(snapshot(reference_task_from_json(item)))
        except DecodeError:
            continue
    assert [snapshot(task) for task in got] == expected


# --- the pieces of the fast path on their own ------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25T20:57:01.123456Z",
        "2024-09-18T12:01:02.123Z",
        "2024-07-01T07:35:13z",
        "2024-08-02T10:00:00+08:00",
        "2024-07-01T07:35:13",
    ],
)
def test_the_zulu_fast_path_of_python_3_10_reads_as_the_lenient_parser(text: str) -> None:
    assert snapshot(_from_zulu(text)) == snapshot(_parse_iso_leniently(text))


def test_the_strict_converter_still_reads_task_videos_and_catches_their_typos() -> None:
    strict = make_luma_converter(strict=True)
    body = {"id": TASK_ID, "state": "completed", "video": {"url": "https://a", "widht": 1}}
    with pytest.raises(cattrs.BaseValidationError) as info:
        strict.structure(body, Task)
    assert "widht" in "; ".join(cattrs.transform_error(info.value))
    body["video"] = {"url": "https://a", "width": 1.0, "thumbnail": {"url": "https://t"}}
    assert strict.structure(body, Task) == task_from_json(body)
