"""The emulator's state: its options, its tasks, its records and the controls of tests.

No server here (``server.py`` answers requests from this state, ``runner.py`` serves it):
the options of :class:`~luma_async.testing.LumaEmulator` checked once, the tasks and what
reached the emulator, and how the tasks look now (``shapes.py`` on the shared clock).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs
from multidict import CIMultiDictProxy

from luma_async import _clock
from luma_async.testing._emulator.faults import Fault, FaultQueue
from luma_async.testing._emulator.shapes import (
    BATCH_ROUTES,
    DIALECTS,
    ENVELOPES,
    UNROUTED,
    BatchRoute,
    Deployment,
    Dialect,
    Envelope,
    Unrouted,
    origin,
)
from luma_async.testing._emulator.tasks import (
    MEDIA_PLACES,
    TASK_SHAPES,
    EmulatedTask,
    Media,
    TaskShape,
)
from luma_async.testing._mp4 import build_mp4, build_png

if TYPE_CHECKING:
    from aiohttp import ClientSession
    from aiohttp.web import AppRunner


@attrs.define
class RecordedRequest:
    """One request that reached the emulator (either host).

    ``route`` is one of :data:`ROUTES` (or ``"unknown"``); ``json`` the decoded body when it
    was a JSON value; ``at`` the clock reading on arrival; ``status`` the status answered, or
    ``None`` while in flight and when the connection was dropped.  ``task_id`` is the id in
    the path, ``created_id`` the task this request created (generate and extend).
    """

    method: str
    path: str
    route: str
    headers: CIMultiDictProxy[str]
    json: Any
    at: float
    host: Literal["api", "video"] = "api"
    query: Mapping[str, str] = attrs.field(factory=dict[str, str])
    status: int | None = None
    task_id: str | None = None
    created_id: str | None = None


@attrs.define
class CallbackDelivery:
    """One attempt to POST a task to its ``notify_hook``; ``status`` is ``None`` on failure."""

    url: str
    task_id: str
    state: str
    status: int | None
    attempt: int
    at: float
    body: Any = None


class EmulatorState:
    """Options, tasks, records and test controls of :class:`LumaEmulator` (which see)."""

    def __init__(  # noqa: C901, PLR0915 - one check and one field per documented option
        self,
        *,
        api_key: str = "emulator-key",
        host: str = "127.0.0.1",
        port: int = 0,
        video_host: str = "localhost",
        video_port: int = 0,
        pending_seconds: float = 2.0,
        processing_seconds: float = 8.0,
        time_scale: float = 1.0,
        dialect: Dialect = "proxy",
        envelope: Envelope = "bare",
        task_shape: TaskShape = "classic",
        batch_endpoint: bool = True,
        batch_route: BatchRoute = "list",
        unrouted: Unrouted = "404",
        media: Media = "all",
        upstream_expired: bool = False,
        wrong_task_answers: int = 0,
        account_routes: bool = True,
        credit_limit: float = 1000.0,
        estimate_wait: bool = True,
        link_delay_polls: int = 0,
        fail_marker: str | None = "[fail]",
        callback_attempts: int = 3,
        callback_retry_seconds: float = 1.0,
        max_body_bytes: int = 20 * 1024 * 1024,
        video_redirect: bool = False,
    ) -> None:
        # Long on purpose: one keyword per option (documented on LumaEmulator), each checked
        # here once, so the handlers can trust them.
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be 'proxy' or 'gateway', not {dialect!r}")
        if envelope not in ENVELOPES:
            raise ValueError(f"envelope must be 'bare', 'list' or 'wrapped', not {envelope!r}")
        if task_shape not in TASK_SHAPES:
            raise ValueError(
                f"task_shape must be 'classic', 'artifact' or 'official', not {task_shape!r}"
            )
        if batch_route not in BATCH_ROUTES:
            raise ValueError(f"batch_route must be one of {BATCH_ROUTES}, not {batch_route!r}")
        if unrouted not in UNROUTED:
            raise ValueError(f"unrouted must be '404' or 'html', not {unrouted!r}")
        if media not in MEDIA_PLACES:
            raise ValueError(f"media must be one of {MEDIA_PLACES}, not {media!r}")
        if wrong_task_answers < 0:
            raise ValueError("wrong_task_answers must not be negative")
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if pending_seconds < 0 or processing_seconds < 0:
            raise ValueError("pending_seconds and processing_seconds must not be negative")
        if callback_attempts < 1:
            raise ValueError("callback_attempts must be at least 1")
        if link_delay_polls < 0 or max_body_bytes < 1:
            raise ValueError("link_delay_polls must be >= 0 and max_body_bytes >= 1")
        self.api_key = api_key
        self.host = host
        self.port = port
        self.video_host = video_host
        self.video_port = video_port
        self.pending_seconds = float(pending_seconds)
        self.processing_seconds = float(processing_seconds)
        self.time_scale = float(time_scale)
        self.dialect: Dialect = dialect
        self.envelope: Envelope = envelope
        self.task_shape: TaskShape = task_shape
        self.batch_endpoint = batch_endpoint
        self.batch_route: BatchRoute = batch_route
        self.unrouted: Unrouted = unrouted
        self.media: Media = media
        self.upstream_expired = upstream_expired
        self.account_routes = account_routes
        self.credit_limit = float(credit_limit)
        self.estimate_wait = estimate_wait
        self.link_delay_polls = link_delay_polls
        self.fail_marker = fail_marker
        self.callback_attempts = callback_attempts
        self.callback_retry_seconds = callback_retry_seconds
        self.max_body_bytes = max_body_bytes
        self.video_redirect = video_redirect
        #: Send every callback delivery this many extra times (aggregators repeat them).
        self.callback_duplicates = 0
        #: Real seconds between two looks for state changes to call back.
        self.callback_tick = 0.01
        #: The MP4 served for every completed task.
        self.video_bytes = build_mp4()
        #: The PNG served as every thumbnail and last frame.
        self.image_bytes = build_png()

        self.tasks: dict[str, EmulatedTask] = {}
        self.uploads: dict[str, tuple[str, bytes]] = {}
        self.requests: list[RecordedRequest] = []
        self.created: list[str] = []
        self.callbacks: list[CallbackDelivery] = []

        self._faults = FaultQueue()
        self._runners: list[AppRunner] = []
        self._client: ClientSession | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        if wrong_task_answers:
            self.inject("get", count=wrong_task_answers, other_task=True)

    # -- addresses --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API origin, e.g. ``http://127.0.0.1:41234`` (the SDK's ``base_url``)."""
        self._require_started()
        return origin(self.host, self.port)

    @property
    def video_base_url(self) -> str:
        """The video host origin, e.g. ``http://localhost:41235``."""
        self._require_started()
        return origin(self.video_host, self.video_port)

    @property
    def running(self) -> bool:
        return self._started

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("the emulator is not started: use 'async with LumaEmulator()'")

    # -- test controls ---------------------------------------------------------------------

    def inject(
        self,
        route: str,
        *,
        count: int = 1,
        status: int | None = None,
        body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
        html: bool = False,
        delay: float = 0.0,
        drop: bool = False,
        retry_after: float | str | None = None,
        after_processing: bool = False,
        other_task: bool = False,
    ) -> Fault:
        """Make the next ``count`` requests of ``route`` misbehave (first injected, first used).

        ``route``: ``generate``, ``extend``, ``get``, ``download_video_url``, ``file_upload``,
        ``tasks``, ``cdn``, ``video`` (``/videos/...`` on the video host), ``file``,
        ``image`` or ``"*"`` (any request on either host).

        - ``status``: answer it, with the dialect's error body (``html=True``: an nginx-style
          HTML page; ``body``: these raw bytes/str, or JSON for a dict/list).  Without a
          status, ``body`` answers 200 (a corrupt answer), ``html`` 502, ``retry_after`` 429.
        - ``retry_after``: a ``Retry-After`` header (seconds, or an HTTP-date string).
        - ``delay``: wait that many clock seconds first (virtual time makes it instant).
          Alone, it only slows the real answer.
        - ``drop``: close the connection without any answer.
        - ``after_processing``: process the request for real first (the task IS created and
          counted), then replace its answer: the paid POST landed but its answer was lost.
        - ``other_task``: answer a task GET with another task (another one of the emulator's,
          or a made-up one): a gateway bug or a cache.

        Safe to call from any thread.  Returns the queued :class:`Fault`.
        """
        fault = Fault(
            route=route,
            remaining=count,
            status=status,
            body=body,
            headers=dict(headers) if headers else None,
            html=html,
            delay=delay,
            drop=drop,
            retry_after=retry_after,
            after_processing=after_processing,
            other_task=other_task,
        )
        return self._faults.add(fault)

    def clear_faults(self) -> None:
        """Forget every fault not used yet."""
        self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        return self._faults.pending()

    def fail_task(
        self, task_id: str, reason: str = "emulated failure", *, now: bool = False
    ) -> None:
        """Make a task end ``failed`` with ``reason``: at once (``now=True``) or when it
        would have completed.  A task already completed cannot fail."""
        task = self._task(task_id)
        elapsed = self._elapsed(task)
        if task.state_at(elapsed) == "completed":
            raise ValueError(f"task {task_id} is already completed")
        task.fail_reason = reason
        if now:
            task.fail_at = elapsed

    def set_durations(
        self, task_id: str, *, pending: float | None = None, processing: float | None = None
    ) -> None:
        """Change how long (emulated seconds, from creation) one task stays in each state."""
        task = self._task(task_id)
        if pending is not None:
            task.pending_seconds = float(pending)
        if processing is not None:
            task.processing_seconds = float(processing)

    def state_of(self, task_id: str) -> str:
        """The state of a task now, without counting as a read."""
        task = self._task(task_id)
        return task.state_at(self._elapsed(task))

    def task_json(self, task_id: str) -> dict[str, Any]:
        """The task object a GET would answer now (no envelope; not counted as a read)."""
        return self._render(self._task(task_id), read=False)

    def _task(self, task_id: str) -> EmulatedTask:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise KeyError(f"no task {task_id!r} in the emulator") from None

    # -- records -----------------------------------------------------------------------------

    @property
    def video_requests(self) -> list[RecordedRequest]:
        """Every request that reached the video host, with its headers."""
        return [r for r in self.requests if r.host == "video"]

    def count(self, route: str) -> int:
        """How many requests of ``route`` arrived (``"*"``: all of them)."""
        return sum(1 for r in self.requests if route in ("*", r.route))

    def gets_for(self, task_id: str) -> int:
        """How many ``GET /luma/generations/{task_id}`` requests arrived."""
        return sum(1 for r in self.requests if r.route == "get" and r.task_id == task_id)

    def creations_by_prompt(self) -> collections.Counter[str]:
        """How many tasks were created per prompt (catches double submissions)."""
        return collections.Counter(self.tasks[i].prompt for i in self.created if i in self.tasks)

    def reset_records(self) -> None:
        """Forget requests, creations and callbacks (tasks stay)."""
        self.requests.clear()
        self.created.clear()
        self.callbacks.clear()

    # -- how tasks look now -----------------------------------------------------------------

    @property
    def _deployment(self) -> Deployment:
        """The wire options as they are now (tests may change the attributes at any time)."""
        return Deployment(
            dialect=self.dialect,
            envelope=self.envelope,
            task_shape=self.task_shape,
            media=self.media,
            estimate_wait=self.estimate_wait,
            time_scale=self.time_scale,
        )

    def _elapsed(self, task: EmulatedTask) -> float:
        return (_clock.monotonic() - task.created_clock) / self.time_scale

    def _video_url(self, task: EmulatedTask) -> str:
        if self.video_redirect:
            return f"{self.base_url}/cdn/{task.id}.mp4"
        return f"{self.video_base_url}/videos/{task.id}.mp4"

    def _render(self, task: EmulatedTask, *, read: bool) -> dict[str, Any]:
        """The task object now; ``read`` counts it as a read (links may lag behind)."""
        elapsed = self._elapsed(task)
        linked = task.state_at(elapsed) == "completed"
        if linked and task.completed_reads < self.link_delay_polls:
            linked = False
            if read:
                task.completed_reads += 1
        return self._deployment.task(
            task,
            elapsed=elapsed,
            linked=linked,
            video_url=self._video_url(task),
            image_base=self.video_base_url,
        )

    def _wrap(self, payload: Any) -> Any:
        return self._deployment.wrap(payload)
