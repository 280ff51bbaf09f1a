"""The task decoder as it was before issue 14's fast path: the reference of the differential
test (``test_decode_differential.py``).  Copied from ``luma_async/_convert.py`` at commit
6bb17b3 and left alone: it is what "the same decoded values" means.  Do not optimise it.
"""
# mypy: ignore-errors

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeGuard

import cattrs
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.json import make_converter

from luma_async._errors import DecodeError
from luma_async._errors import is_json_list as _is_list
from luma_async._models import Frame, RawVideo, Task, TaskState, Video

_TASK_FIELDS = frozenset(
    {
        "id",
        "prompt",
        "state",
        "failure_reason",
        "created_at",
        "video",
        "liked",
        "estimate_wait_seconds",
    }
)
_FAILURE_FIELDS = ("failure_reason", "fail_reason", "error", "detail", "failure", "reason")
_STATES = {state.value: state for state in TaskState}
#: The official Dream Machine API's names for the same states.
_OFFICIAL_STATES = {"queued": TaskState.PENDING, "dreaming": TaskState.PROCESSING}
#: A new-api gateway's task-row ``status``, for a row whose Luma task says nothing itself.
_GATEWAY_STATES = {
    "NOT_START": "pending",
    "SUBMITTED": "pending",
    "QUEUED": "pending",
    "IN_PROGRESS": "processing",
    "SUCCESS": "completed",
    "FAILURE": "failed",
}


def parse_datetime(value: Any) -> datetime:
    """ISO 8601 with or without fractions, ``Z`` or an offset; always timezone-aware."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:  # Python 3.11+ reads Z, offsets and any fraction itself: the common case
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = _parse_iso_leniently(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds or seconds
        try:
            return datetime.fromtimestamp(seconds, timezone.utc)
        except OSError as exc:  # out of the platform's time_t range (errno 75)
            raise ValueError(f"timestamp out of range: {value!r}") from exc
    else:
        raise TypeError(f"not a timestamp: {value!r}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _parse_iso_leniently(value: str) -> datetime:
    """What Python 3.10's fromisoformat refuses: Z, and fractions of other than 0/3/6 digits."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat takes only 0, 3 or 6 fraction digits.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, tail = rest[:digits], rest[digits:]
        text = f"{head}.{(frac + '000000')[:6]}{tail}"
    return datetime.fromisoformat(text)


def _is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    """Whether ``value`` is a decoded JSON object (its keys are strings, its values any JSON)."""
    # json.loads makes dicts: the exact-type test answers them without the slow ABC check.
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def _url_of(value: Any) -> str | None:
    if _is_object(value):
        value = value.get("url")
    return value if isinstance(value, str) and value else None


def _video_fields(value: Any) -> dict[str, Any]:
    """A video object with ``thumbnail`` as a URL (it may come as an object) and whole sizes."""
    if not _is_object(value):
        raise TypeError(f"video must be an object, not {type(value).__name__}")
    data = dict(value)
    for key in ("thumbnail", "download_url"):  # a URL string, or an object with a url
        if key in data:
            data[key] = _url_of(data[key])
    for key in ("width", "height"):
        size = data.get(key)
        if isinstance(size, bool) or (size is not None and not isinstance(size, (int, float, str))):
            raise TypeError(f"video {key} must be a number, not {type(size).__name__}")
        if isinstance(size, float) and size.is_integer():
            data[key] = int(size)
    if "raw" in data:
        data["raw"] = _raw_video(data["raw"])
    return data


def _size(value: Any) -> int | None:
    """A whole number of pixels, or ``None`` for anything else (media sizes are a nicety)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def _frame(value: Any) -> Frame | None:
    """A still (``{url, width, height}`` or a bare URL), or ``None`` when it has no link."""
    url = _url_of(value)
    if url is None:
        return None
    if not _is_object(value):
        return Frame(url)
    return Frame(url, width=_size(value.get("width")), height=_size(value.get("height")))


def _raw_video(value: Any) -> RawVideo | None:
    if isinstance(value, RawVideo):
        return value
    url = _url_of(value)
    if url is None:
        return None
    if not _is_object(value):
        return RawVideo(url)
    duration = value.get("duration")
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
    ):
        duration = None
    return RawVideo(
        url,
        width=_size(value.get("width")),
        height=_size(value.get("height")),
        duration=None if duration is None else float(duration),
    )


def _raw_video_or_fail(value: Any) -> RawVideo:
    raw = _raw_video(value)
    if raw is None:
        raise TypeError("video_raw has no 'url'")
    return raw


def _is_gateway_row(raw: Mapping[str, Any]) -> bool:
    """A new-api task row: ``{"id": <row number>, "task_id", "status", "data": {<task>}}``."""
    task_id = raw.get("task_id")
    return (
        isinstance(task_id, str)
        and bool(task_id)
        and (not isinstance(raw.get("id"), str) or _is_object(raw.get("data")))
    )


def _from_gateway_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The Luma task of a gateway row; the row's ``status`` and ``fail_reason`` fill only
    what the task itself lacks (the row's integer ``id`` is never the task's)."""
    inner = row.get("data")
    task: dict[str, Any] = dict(inner) if _is_object(inner) else {}
    if not isinstance(task.get("id"), str) or not task["id"]:
        task["id"] = row["task_id"]
    if not isinstance(task.get("state"), str) or not task["state"]:
        status = row.get("status")
        if isinstance(status, str) and status:
            task["state"] = _GATEWAY_STATES.get(status.upper(), status.lower())
    reason = row.get("fail_reason")
    if isinstance(reason, str) and reason and _failure_reason(task) is None:
        task["fail_reason"] = reason
    return task


def _unwrap(raw: Any) -> Any:
    """The task inside a bare, array, ``{"code", "data"}`` or gateway-row envelope."""
    if _is_list(raw):
        if len(raw) != 1:
            raise TypeError(f"expected one task, got a list of {len(raw)}")
        raw = raw[0]
    if _is_object(raw):
        if _is_gateway_row(raw):
            return _from_gateway_row(raw)
        if "id" not in raw and isinstance(raw.get("data"), (Mapping, list)):
            return _unwrap(raw["data"])
    return raw


def _optional_int(value: Any, _: object) -> int | None:
    if value is None or type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a whole number, not {type(value).__name__}")
    return int(value)


def _optional_str(value: Any, _: object) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(f"expected a string, not {type(value).__name__}")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if _is_object(value) else {}


def _task(raw: Any, structure_video: Callable[[Any], Video]) -> Task:  # noqa: C901, PLR0912 - the old decoder, kept verbatim as the reference
    raw = _unwrap(raw)
    if not _is_object(raw):
        raise TypeError(f"a task must be a JSON object, not {type(raw).__name__}")
    task_id = raw.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise TypeError("the task has no 'id'")
    state = raw.get("state")
    if not isinstance(state, str) or not state:
        raise TypeError(f"task {task_id} has no 'state'")
    prompt: Any = raw.get("prompt")
    if not isinstance(prompt, str):  # later deployments keep it under "request"
        prompt = _mapping(raw.get("request")).get("prompt")
        prompt = prompt if isinstance(prompt, str) else ""

    artifact = _mapping(raw.get("artifact"))
    assets = _mapping(raw.get("assets"))  # the official API's shape
    shown: Any = raw.get("video")
    if _url_of(shown) is None:  # null, or an object still without its link
        shown = artifact.get("video")
        if _url_of(shown) is None:
            shown = assets.get("video")
    if isinstance(shown, str) and shown:  # a bare link
        shown = {"url": shown}
    video = None
    if _is_object(shown) and _url_of(shown) is not None:
        fields = dict(shown)
        if _url_of(fields.get("thumbnail")) is None:  # a still from wherever else it is
            for place in (raw.get("thumbnail"), artifact.get("thumbnail"), assets.get("image")):
                if (thumbnail := _url_of(place)) is not None:
                    fields["thumbnail"] = thumbnail
                    break
        if _url_of(fields.get("raw")) is None:
            fields["raw"] = _raw_video(raw.get("video_raw")) or _raw_video(
                artifact.get("video_raw")
            )
        video = structure_video(fields)

    created = raw.get("created_at")
    estimate = raw.get("estimate_wait_seconds")
    if (
        isinstance(estimate, bool)
        or not isinstance(estimate, (int, float))
        or not math.isfinite(estimate)
    ):
        estimate = None

    known = _STATES.get(state)
    sent_state = None
    if known is None and (known := _OFFICIAL_STATES.get(state)) is not None:
        sent_state = state
    last_frame = _frame(raw.get("last_frame")) or _frame(artifact.get("last_frame"))
    return Task(
        id=task_id,
        state=state if known is None else known,
        sent_state=sent_state,
        last_frame=last_frame,
        prompt=prompt,
        failure_reason=_failure_reason(raw),
        created_at=None if created in (None, "") else parse_datetime(created),
        video=video,
        liked=raw.get("liked"),
        estimate_wait_seconds=None if estimate is None else float(estimate),
        extra={key: value for key, value in raw.items() if key not in _TASK_FIELDS},
    )


def _failure_reason(raw: Mapping[str, Any]) -> str | None:
    for key in _FAILURE_FIELDS:
        value = raw.get(key)
        if value is None:
            continue
        if _is_object(value):
            value = value.get("message") or value.get("reason") or value.get("detail")
        if value not in (None, "") and not isinstance(value, bool):  # "error": false is none
            return str(value)
    return None


def _make_structure_task() -> Callable[[Any], Task]:
    conv = make_converter()
    conv.register_structure_hook_func(lambda t: t == (int | None), _optional_int)
    conv.register_structure_hook_func(lambda t: t == (str | None), _optional_str)
    conv.register_structure_hook(datetime, lambda value, _: parse_datetime(value))
    conv.register_structure_hook(RawVideo, lambda value, _: _raw_video_or_fail(value))
    structure_video = make_dict_structure_fn(Video, conv)

    def video(value: Any) -> Video:
        return structure_video(_video_fields(value), Video)

    return lambda value: _task(value, video)


_structure_task = _make_structure_task()


def reference_task_from_json(data: Any, *, what: str = "task") -> Task:
    """The old ``task_from_json``: a task in any known shape, or :class:`DecodeError`."""
    try:
        return _structure_task(data)
    except (
        cattrs.BaseValidationError,
        TypeError,
        ValueError,
        OverflowError,
        RecursionError,
    ) as exc:
        message = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        raise DecodeError(
            f"{what}: cannot read the answer as a task: {message}", body=data
        ) from exc
