"""Values luma-async hands out: frozen attrs classes, free of any wire-format knowledge.

How JSON becomes these values lives in ``_convert.py``.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from luma_async._errors import LumaError

__all__ = [
    "Account",
    "BatchResult",
    "ExtendRequest",
    "FinishedTask",
    "Frame",
    "GenerateRequest",
    "ImageInput",
    "RawVideo",
    "StateChange",
    "Task",
    "TaskState",
    "UploadedFile",
    "Usage",
    "Video",
]

#: What ``image_url`` and ``image_end_url`` accept: an http(s) URL or ``data:`` URI (``str``),
#: a file (``pathlib.Path``) or the image itself (``bytes``).
ImageInput = str | Path | bytes


class TaskState(str, enum.Enum):
    """The states the service is known to report. Compares equal to the wire string."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


#: The ``extra`` of every value whose service said nothing unmodelled: one shared read-only
#: view (an empty proxy of its own dict cost each task 224 B in 3 blocks).
EMPTY: Mapping[str, Any] = MappingProxyType({})


def _freeze(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if value else EMPTY


@attrs.frozen
class Frame:
    """A still image the service made for a task: a thumbnail, or the video's last frame."""

    url: str
    width: int | None = attrs.field(default=None, kw_only=True)
    height: int | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class RawVideo:
    """The raw render of a task's video (``video_raw``): for some accounts, without watermark.

    ``duration`` is in seconds.
    """

    url: str
    width: int | None = attrs.field(default=None, kw_only=True)
    height: int | None = attrs.field(default=None, kw_only=True)
    duration: float | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Video:
    """A finished video. ``best_url`` is the link to fetch.

    ``thumbnail`` is the URL of its still, wherever the service put it; ``raw`` the raw render
    when the service reported one.
    """

    url: str
    width: int | None = attrs.field(default=None, kw_only=True)
    height: int | None = attrs.field(default=None, kw_only=True)
    thumbnail: str | None = attrs.field(default=None, kw_only=True)
    download_url: str | None = attrs.field(default=None, kw_only=True)
    raw: RawVideo | None = attrs.field(default=None, kw_only=True)

    @property
    def best_url(self) -> str:
        """The link to fetch, preferring one without watermark: ``download_url``, then the
        raw render's, then ``url``."""
        if self.download_url:
            return self.download_url
        if self.raw is not None and self.raw.url:
            return self.raw.url
        return self.url


@attrs.frozen
class Task:
    """One generation or extension task as the service last reported it.

    ``state`` is a :class:`TaskState` when known, else the raw string the service sent.
    ``sent_state`` is the state string exactly as sent when it differs from ``state`` (the
    official API's ``queued`` and ``dreaming`` read as pending and processing), else ``None``.
    ``video`` stays ``None`` until a link exists, even while ``state`` says completed.
    ``last_frame`` is the still of the video's final frame (what a chain or preview needs).
    Fields this version does not model are kept in ``extra`` (read-only).
    """

    id: str
    state: TaskState | str
    prompt: str = attrs.field(default="", kw_only=True)
    failure_reason: str | None = attrs.field(default=None, kw_only=True)
    created_at: datetime | None = attrs.field(default=None, kw_only=True)
    video: Video | None = attrs.field(default=None, kw_only=True)
    liked: Any = attrs.field(default=None, kw_only=True)
    estimate_wait_seconds: float | None = attrs.field(default=None, kw_only=True)
    extra: Mapping[str, Any] = attrs.field(
        factory=dict[str, Any], kw_only=True, converter=_freeze, repr=False, hash=False
    )
    last_frame: Frame | None = attrs.field(default=None, kw_only=True)
    sent_state: str | None = attrs.field(default=None, kw_only=True)

    @property
    def video_raw(self) -> RawVideo | None:
        """The raw render of the video (``video_raw``), once the video exists."""
        return None if self.video is None else self.video.raw

    @property
    def is_finished(self) -> bool:
        """The video exists: the task is done for the user."""
        return self.video is not None

    @property
    def is_failed(self) -> bool:
        return self.state == TaskState.FAILED

    @property
    def is_terminal(self) -> bool:
        """Nothing more will happen: finished or failed."""
        return self.is_finished or self.is_failed


@attrs.frozen(eq=False)
class FinishedTask(Task):
    """A task whose video exists: what :meth:`LumaSession.wait` returns.

    The same fields as :class:`Task`, but ``video`` is a :class:`Video`, never ``None``, so
    ``done.video.url`` needs no check, for the reader or the type checker.
    """

    video: Video = attrs.field(kw_only=True)

    @classmethod
    def of(cls, task: Task) -> FinishedTask:
        """``task`` as a :class:`FinishedTask`; :class:`ValueError` if it has no video yet."""
        if isinstance(task, FinishedTask):
            return task
        if task.video is None:
            raise ValueError(f"task {task.id} has no video yet (state: {task.state})")
        # The same slots, copied by their descriptors: the values are already a Task's (its
        # extra a read-only view no one can change), so __init__ has nothing to check.
        finished = _new(cls)
        for set_slot, value in zip(_SET_TASK_SLOTS, _task_values(task), strict=True):
            set_slot(finished, value)
        return finished

    # Equal to (and hashed as) the plain Task with the same fields: only the type is narrower.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return all(
            getattr(self, field.name) == getattr(other, field.name)
            for field in attrs.fields(Task)
            if field.eq
        )

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = Task.__hash__


def slot_setters(cls: type, *names: str) -> tuple[Any, ...]:
    """The ``__set__`` of each slot of attrs class ``cls``, whose fields must be ``names``
    (here and in ``_construct``, which builds these values without their ``__init__``)."""
    fields = tuple(field.name for field in attrs.fields(cls))
    if fields != names:  # a field added to the class must be added here too
        raise AssertionError(f"{cls.__name__}: fields {fields}, built {names}")
    return tuple(cls.__dict__[name].__set__ for name in names)


_new = object.__new__
_TASK_FIELDS = tuple(field.name for field in attrs.fields(Task))
#: Every field of a Task, read at once (a tuple, in the order of the setters below).
_task_values = operator.attrgetter(*_TASK_FIELDS)
#: The ``__set__`` of Task's slots; FinishedTask adds no slot (only a narrower type).
_SET_TASK_SLOTS = slot_setters(Task, *_TASK_FIELDS)


@attrs.frozen
class StateChange:
    """One change of a task's state, as seen by a poller.

    ``previous`` is ``None`` for the first state seen; ``elapsed`` counts seconds since the
    poller began and ``polls`` the requests it made so far.
    """

    task_id: str
    previous: TaskState | str | None
    state: TaskState | str
    task: Task
    elapsed: float
    polls: int

    @property
    def finished(self) -> FinishedTask | None:
        """The task as a :class:`FinishedTask` once its video exists, else ``None``."""
        return FinishedTask.of(self.task) if self.task.video is not None else None


@attrs.frozen
class GenerateRequest:
    """The fields of :meth:`LumaSession.generate` as one value."""

    user_prompt: str
    aspect_ratio: str | None = attrs.field(default=None, kw_only=True)
    expand_prompt: bool | None = attrs.field(default=None, kw_only=True)
    image_url: ImageInput | None = attrs.field(default=None, kw_only=True, repr=False)
    image_end_url: ImageInput | None = attrs.field(default=None, kw_only=True, repr=False)
    notify_hook: str | None = attrs.field(default=None, kw_only=True)
    loop: bool | None = attrs.field(default=None, kw_only=True)
    model_name: str | None = attrs.field(default=None, kw_only=True)
    resolution: str | None = attrs.field(default=None, kw_only=True)
    #: Seconds: ``5`` or ``"5s"`` (sent as ``"5s"``).
    duration: str | int | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class ExtendRequest:
    """The fields of :meth:`LumaSession.extend` as one value: extend ``task_id``'s video."""

    task_id: str
    user_prompt: str
    expand_prompt: bool | None = attrs.field(default=None, kw_only=True)
    image_url: ImageInput | None = attrs.field(default=None, kw_only=True, repr=False)
    image_end_url: ImageInput | None = attrs.field(default=None, kw_only=True, repr=False)
    notify_hook: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class BatchResult:
    """The outcome of one request of a batch: ``task`` when it finished, else ``error``.

    ``task_id`` is set as soon as the request was submitted, so a failed or cancelled item
    can still be followed later; ``parent_id`` is the task that was extended.
    """

    request: ExtendRequest
    task: Task | None = attrs.field(default=None, kw_only=True)
    error: LumaError | None = attrs.field(default=None, kw_only=True)
    task_id: str | None = attrs.field(default=None, kw_only=True)
    path: Path | None = attrs.field(default=None, kw_only=True)

    @property
    def ok(self) -> bool:
        return self.error is None and self.task is not None

    @property
    def parent_id(self) -> str:
        return self.request.task_id


@attrs.frozen
class UploadedFile:
    """An image uploaded with :meth:`LumaSession.upload`; pass ``public_url`` on."""

    id: str
    public_url: str
    presigned_url: str | None = attrs.field(default=None, kw_only=True, repr=False)


@attrs.frozen
class Usage:
    """The credits of the account behind the key (``GET /luma/subscription/usage``).

    The answer's shape is not documented: the fields below are read where present under
    their common names, and everything the service sent is kept in ``extra`` (read-only).
    """

    available: float | None = attrs.field(default=None, kw_only=True)
    used: float | None = attrs.field(default=None, kw_only=True)
    total: float | None = attrs.field(default=None, kw_only=True)
    extra: Mapping[str, Any] = attrs.field(
        factory=dict[str, Any], kw_only=True, converter=_freeze, repr=False, hash=False
    )


@attrs.frozen
class Account:
    """The upstream account the aggregator uses (``GET /luma/users/me``).

    The answer's shape is not documented: the fields below are read where present, and
    everything the service sent is kept in ``extra`` (read-only).
    """

    id: str | None = attrs.field(default=None, kw_only=True)
    email: str | None = attrs.field(default=None, kw_only=True)
    name: str | None = attrs.field(default=None, kw_only=True)
    plan: str | None = attrs.field(default=None, kw_only=True)
    extra: Mapping[str, Any] = attrs.field(
        factory=dict[str, Any], kw_only=True, converter=_freeze, repr=False, hash=False
    )
