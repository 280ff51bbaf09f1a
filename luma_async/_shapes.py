"""How a task is read from every shape the services send, in one pass (no converter here).

Aggregators serve the same task in several shapes (see ``luma-api.md``): a bare object, a
one-element array, ``{"code", "message", "data"}`` or a gateway row; the prompt at the top or
under ``request``; the video at the top, under ``artifact`` or (the official API) a bare link
under ``assets``; the failure reason under one of several names.  :func:`read_task` accepts
all of them; anything it does not model is kept in ``Task.extra``.

This is the hot path of every poll, so it is written for the shapes deployments send: the
bare object is recognised by one exact-type test and two key tests, each place of a video,
still or raw render is looked at once and only when the places before it are empty, and the
video dict is copied only when a still or raw render found elsewhere must be added to it.
``_convert`` builds the converter around these functions.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeGuard

from luma_async._construct import new_frame, new_task, plain_video
from luma_async._errors import is_json_list as _is_list
from luma_async._models import Frame, RawVideo, Task, TaskState, Video

#: A cattrs-generated structure function of :class:`Video` (``fn(fields, Video)``).
StructureVideo = Callable[[Mapping[str, Any], type[Video]], Video]

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
_FAILURE_KEYS = frozenset(_FAILURE_FIELDS)
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
_NOTHING: Mapping[str, Any] = {}  # never written to: the "absent object" of every lookup


def parse_datetime(value: Any) -> datetime:
    """ISO 8601 with or without fractions, ``Z`` or an offset; always timezone-aware."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:  # the common case, without the lenient parser's string work
            parsed = _from_iso(value)
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


def _from_zulu(text: str) -> datetime:
    """Python 3.10's fromisoformat, taught the trailing ``Z`` every deployment sends."""
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


#: Python 3.11+ reads ``Z``, offsets and any fraction in C: the fast path as it is.
_from_iso = datetime.fromisoformat if sys.version_info >= (3, 11) else _from_zulu


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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if _is_object(value) else _NOTHING


def _url_of(value: Any) -> str | None:
    """The link of a URL string or of an object with a ``url``; ``None`` when there is none."""
    if type(value) is str:
        return value or None
    if _is_object(value):
        value = value.get("url")
    return value if isinstance(value, str) and value else None


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
    if value.__class__ is dict:  # (not type(): it would narrow to dict[Unknown, Unknown])
        url = value.get("url")
        if not isinstance(url, str) or not url:
            return None
        width, height = value.get("width"), value.get("height")
        return new_frame(
            url,
            width if type(width) is int else _size(width),
            height if type(height) is int else _size(height),
        )
    url = _url_of(value)
    if url is None:
        return None
    if not _is_object(value):
        return new_frame(url, None, None)
    return new_frame(url, _size(value.get("width")), _size(value.get("height")))


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


# --- the structure hooks of a video's fields (cattrs calls them as ``hook(value, type)``) ----


def video_size(value: Any, _: object) -> int | None:
    """``width``/``height``: a whole number (an integral float or a numeric string too)."""
    if value is None or type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"a video size must be a number, not {type(value).__name__}")
    return int(value)  # ValueError for text or NaN, OverflowError for infinity


def video_link(value: Any, _: object) -> str | None:
    """``thumbnail``/``download_url``: a URL string, or an object with a ``url``."""
    if type(value) is str:
        return value or None
    url = None if value is None else _url_of(value)
    if url is None or type(url) is str:
        return url
    raise TypeError(f"expected a string, not {type(url).__name__}")


def video_raw(value: Any, _: object) -> RawVideo | None:
    """``raw``: the raw render as an object or a bare link; ``None`` when it has no link."""
    return _raw_video(value)


# --- envelopes -------------------------------------------------------------------------------


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


# --- the task --------------------------------------------------------------------------------


def read_task(raw: Any, structure_video: StructureVideo) -> Task:  # noqa: C901, PLR0912 - hot path, see docstring
    """The task of ``raw`` in any shape; ``structure_video`` builds its :class:`Video`.

    One function for every field on purpose (complexity over 12): it is the hot path of
    every poll, and each helper call it saves is paid by every task of every answer.
    """
    # The bare object is the commonest answer: the envelope checks only when it is not.
    if raw.__class__ is not dict or "id" not in raw or "task_id" in raw:
        raw = _unwrap(raw)
        if not _is_object(raw):
            raise TypeError(f"a task must be a JSON object, not {type(raw).__name__}")
    body: Mapping[str, Any] = raw
    get = body.get
    task_id = get("id")
    if not isinstance(task_id, str) or not task_id:
        raise TypeError("the task has no 'id'")
    state = get("state")
    if not isinstance(state, str) or not state:
        raise TypeError(f"task {task_id} has no 'state'")
    prompt: Any = get("prompt")
    if not isinstance(prompt, str):  # later deployments keep it under "request"
        prompt = _mapping(get("request")).get("prompt")
        if not isinstance(prompt, str):
            prompt = ""
    artifact: Any = get("artifact")
    if artifact.__class__ is not dict:
        artifact = _NOTHING if artifact is None else _mapping(artifact)
    video = _video(body, artifact, structure_video)

    created: Any = get("created_at")
    if created is None or created == "":
        created = None
    elif type(created) is str:
        try:
            created = _from_iso(created)
        except ValueError:
            created = parse_datetime(created)
        else:
            if created.tzinfo is None:
                created = created.replace(tzinfo=timezone.utc)
    else:
        created = parse_datetime(created)
    estimate = get("estimate_wait_seconds")
    if estimate is not None:
        if (
            isinstance(estimate, bool)
            or not isinstance(estimate, (int, float))
            or not math.isfinite(estimate)
        ):
            estimate = None
        else:
            estimate = float(estimate)

    known = _STATES.get(state)
    sent_state = None
    if known is None and (known := _OFFICIAL_STATES.get(state)) is not None:
        sent_state = state
    last_frame = get("last_frame")
    if last_frame is not None:
        last_frame = _frame(last_frame)
    if last_frame is None and (elsewhere := artifact.get("last_frame")) is not None:
        last_frame = _frame(elsewhere)
    return new_task(
        task_id,
        state if known is None else known,
        prompt,
        None if body.keys().isdisjoint(_FAILURE_KEYS) else _failure_reason(body),
        created,
        video,
        get("liked"),
        estimate,
        {key: value for key, value in body.items() if key not in _TASK_FIELDS},
        last_frame,
        sent_state,
    )


def _video(  # noqa: C901, PLR0912 - each place a link may be in, cheapest first, on the hot path
    raw: Mapping[str, Any], artifact: Mapping[str, Any], structure_video: StructureVideo
) -> Video | None:
    """The video wherever it is, with a still and raw render from wherever else they are.

    Every place is tested inline, in the order of precedence (complexity over 12), for the
    same reason as :func:`read_task`.
    """
    shown: Any = raw.get("video")
    if shown.__class__ is dict:  # the classic and later shapes: an object, with its link once made
        url = shown.get("url")
        if not isinstance(url, str) or not url:
            url = None
    else:
        url = None if shown is None else _url_of(shown)
    if url is None:  # null, or an object still without its link
        shown = artifact.get("video")
        url = None if shown is None else _url_of(shown)
        if url is None:
            shown = _mapping(raw.get("assets")).get("video")  # the official API's bare link
            url = None if shown is None else _url_of(shown)
            if url is None:
                return None
    if not _is_object(shown):
        shown = {"url": url}
    added: dict[str, Any] = {}
    thumbnail = shown.get("thumbnail")
    if not (type(thumbnail) is str and thumbnail) and _url_of(thumbnail) is None:
        thumbnail = _first_url(raw.get("thumbnail"), artifact.get("thumbnail"))
        if thumbnail is None:
            thumbnail = _first_url(_mapping(raw.get("assets")).get("image"))
        if thumbnail is not None:
            added["thumbnail"] = thumbnail
    found = shown.get("raw")
    if found is None or _url_of(found) is None:
        found = raw.get("video_raw")
        found = None if found is None else _raw_video(found)
        if found is None and (found := artifact.get("video_raw")) is not None:
            found = _raw_video(found)
        if found is not None:
            added["raw"] = found
    if added:
        return structure_video({**shown, **added}, Video)
    return plain_video(shown, url) or structure_video(shown, Video)


def _first_url(*places: Any) -> str | None:
    for place in places:
        if place is not None and (url := _url_of(place)) is not None:
            return url
    return None


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
