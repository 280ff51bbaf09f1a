"""The decoder's constructors of :class:`Task`, :class:`Video` and :class:`Frame`: the same
values, without attrs' frozen ``__init__``.

A frozen attrs ``__init__`` sets each slot through ``object.__setattr__`` by name, and
``Task`` copies its ``extra`` into a new proxy; the decoder builds three of these values per
answer of every poll.  It already guarantees each field's type, and hands ``extra`` a fresh
dict no one else holds, so the slots are set directly, by their own descriptors looked up
once.  A field added to a class and not here fails at import; tests/test_perf_paths.py
checks that each value equals, hashes and prints like the one the class's ``__init__``
builds.
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Any

from luma_async._models import EMPTY, Frame, RawVideo, Task, TaskState, Video, slot_setters

__all__ = ["new_frame", "new_task", "new_video", "plain_video", "slot_setters"]

_new = object.__new__


_FRAME = slot_setters(Frame, "url", "width", "height")
_VIDEO = slot_setters(Video, "url", "width", "height", "thumbnail", "download_url", "raw")
_TASK = slot_setters(
    Task,
    "id",
    "state",
    "prompt",
    "failure_reason",
    "created_at",
    "video",
    "liked",
    "estimate_wait_seconds",
    "extra",
    "last_frame",
    "sent_state",
)


def new_frame(url: str, width: int | None, height: int | None) -> Frame:
    """``Frame(url, width=width, height=height)``."""
    frame: Frame = _new(Frame)
    set_url, set_width, set_height = _FRAME
    set_url(frame, url)
    set_width(frame, width)
    set_height(frame, height)
    return frame


def new_video(  # noqa: PLR0917 - one argument per field, positional: the hot path's cheapest
    url: str,
    width: int | None,
    height: int | None,
    thumbnail: str | None,
    download_url: str | None,
    raw: RawVideo | None,
) -> Video:
    """``Video(url, width=width, height=height, thumbnail=..., download_url=..., raw=raw)``."""
    video: Video = _new(Video)
    set_url, set_width, set_height, set_thumbnail, set_download_url, set_raw = _VIDEO
    set_url(video, url)
    set_width(video, width)
    set_height(video, height)
    set_thumbnail(video, thumbnail)
    set_download_url(video, download_url)
    set_raw(video, raw)
    return video


def new_task(  # noqa: PLR0917 - one argument per field, positional: the hot path's cheapest
    id: str,  # noqa: A002 - the field's name
    state: TaskState | str,
    prompt: str,
    failure_reason: str | None,
    created_at: datetime | None,
    video: Video | None,
    liked: Any,
    estimate_wait_seconds: float | None,
    extra: dict[str, Any],
    last_frame: Frame | None,
    sent_state: str | None,
) -> Task:
    """``Task(id, state, prompt=prompt, ..., extra=extra, ...)``, where ``extra`` is a
    fresh dict the caller gives up (it is wrapped, not copied; an empty one is not kept)."""
    task: Task = _new(Task)
    (
        set_id,
        set_state,
        set_prompt,
        set_failure_reason,
        set_created_at,
        set_video,
        set_liked,
        set_estimate,
        set_extra,
        set_last_frame,
        set_sent_state,
    ) = _TASK
    set_id(task, id)
    set_state(task, state)
    set_prompt(task, prompt)
    set_failure_reason(task, failure_reason)
    set_created_at(task, created_at)
    set_video(task, video)
    set_liked(task, liked)
    set_estimate(task, estimate_wait_seconds)
    set_extra(task, MappingProxyType(extra) if extra else EMPTY)
    set_last_frame(task, last_frame)
    set_sent_state(task, sent_state)
    return task


#: A video object with only these keys, each of its type or null, needs no field hook.
_PLAIN_VIDEO = frozenset({"url", "width", "height", "thumbnail", "download_url"})


def plain_video(fields: Any, url: str) -> Video | None:
    """The :class:`Video` of ``fields`` (a decoded video object whose link is ``url``) when
    every field is what the converter's field hooks would return as it is (a size an ``int``,
    a link a ``str``, no raw render, no other key); else ``None``: the hooks must read it."""
    if fields.__class__ is not dict or not fields.keys() <= _PLAIN_VIDEO:
        return None
    get = fields.get
    width, height, thumbnail, download_url = (
        get("width"),
        get("height"),
        get("thumbnail"),
        get("download_url"),
    )
    if (
        (width is None or width.__class__ is int)
        and (height is None or height.__class__ is int)
        and (thumbnail is None or thumbnail.__class__ is str)
        and (download_url is None or download_url.__class__ is str)
    ):
        return new_video(url, width, height, thumbnail or None, download_url or None, None)
    return None
