"""An emulator of the aggregators' Luma API: a real HTTP server on loopback for tests.

:class:`LumaEmulator` serves the ``/luma/...`` endpoints the way the aggregators do, with
every variation they are known for (envelopes, task shapes, error dialects, a batch query,
links that lag behind ``completed``), plus a second "CDN" origin for the videos.  It is a
product feature: point your own application at ``emu.base_url`` with ``emu.api_key`` and test
it without the network, a key or money.

Quick start::

    from luma_async.testing import LumaEmulator, virtual_time

    async def test_my_app() -> None:
        with virtual_time() as clock:  # optional: no real waiting at all
            async with LumaEmulator() as emu:
                await my_app.make_video(base_url=emu.base_url, api_key=emu.api_key)
                assert emu.count("generate") == 1

Timing.  A task is ``pending`` for ``pending_seconds``, then ``processing`` for
``processing_seconds``, then ``completed`` (or ``failed``).  Those are *emulated* seconds; one
of them lasts ``time_scale`` seconds of the clock of :mod:`luma_async._clock`, which is read
afresh at every request.  Under :func:`luma_async.testing.virtual_time` every wait of the
library (and the ``delay`` of injected faults) passes instantly, and ``clock.advance(s)``
moves the emulated tasks along by hand.

Faults.  :meth:`LumaEmulator.inject` makes the next requests of a route fail in the ways real
gateways do: an error status with the dialect's body, an HTML error page, a slow answer, a
dropped connection, or an answer lost *after* the paid job was created.

Records.  Everything that reached the emulator is kept for assertions: :attr:`requests`,
:attr:`created`, :attr:`callbacks`, :meth:`count`, :meth:`gets_for`, :attr:`video_requests`.

Threads.  ``LumaEmulator.in_thread(**options)`` runs one on its own event loop in a background
thread, so sync tests (and the pytest fixture ``luma_emulator``) can use it.  Timing still
follows the shared clock; with :func:`virtual_time`, prefer the in-loop emulator, since the
virtual clock only knows when *its* loop is idle.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import datetime as dt
import http
import json
import re
import threading
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Literal, TypeVar, cast

import attrs
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from multidict import CIMultiDict, CIMultiDictProxy

from luma_async import _clock
from luma_async.testing._mp4 import build_mp4, build_png

__all__ = [
    "BATCH_ROUTES",
    "MEDIA_PLACES",
    "UPSTREAM_UNAUTHENTICATED_BODY",
    "CallbackDelivery",
    "EmulatedTask",
    "EmulatorThread",
    "Fault",
    "LumaEmulator",
    "RecordedRequest",
    "serve",
]

Dialect = Literal["proxy", "gateway"]
Envelope = Literal["bare", "list", "wrapped"]
TaskShape = Literal["classic", "artifact", "official"]
#: How ``POST /luma/tasks`` answers: a list of tasks (bare, or wrapped as the envelope is),
#: new-api's rows with the task nested under ``data``, the answers of deployments without
#: the route (``missing``: as any unrouted path; ``html``: new-api's dashboard page with
#: status 200; ``400``/``403``: an error; ``null``: ``{"code": "success", "data": null}``).
BatchRoute = Literal["list", "nested", "missing", "html", "400", "403", "null"]
#: Where a finished task's stills and raw video are: ``all`` (as the shape has them),
#: ``video`` (the thumbnail only as ``video.thumbnail``; ``last_frame``/``video_raw`` at the
#: top), ``top`` (all at the top level) or ``artifact`` (all only under ``artifact``).
Media = Literal["all", "video", "top", "artifact"]
#: What a path the deployment has no route for answers: ``404``, or new-api's ``html``
#: dashboard page with status 200.
Unrouted = Literal["404", "html"]

BATCH_ROUTES: tuple[BatchRoute, ...] = ("list", "nested", "missing", "html", "400", "403", "null")
MEDIA_PLACES: tuple[Media, ...] = ("all", "video", "top", "artifact")

#: Routes that :meth:`LumaEmulator.inject` and :meth:`LumaEmulator.count` know.
ROUTES = frozenset(
    {
        "generate",
        "extend",
        "get",
        "download_video_url",
        "file_upload",
        "tasks",
        "usage",
        "account",
        "cdn",
        "video",
        "file",
        "image",
        "*",
    }
)
_API_ROUTES = frozenset(
    {
        "generate",
        "extend",
        "get",
        "download_video_url",
        "file_upload",
        "tasks",
        "usage",
        "account",
    }
)
_FINAL = frozenset({"completed", "failed"})
_GATEWAY_STATUS = {"pending": "IN_PROGRESS", "processing": "IN_PROGRESS", "completed": "SUCCESS"}
_OFFICIAL_STATE = {"pending": "queued", "processing": "dreaming"}
#: The Go proxy's 401 when its upstream session expired: the upstream body, then its own.
UPSTREAM_UNAUTHENTICATED_BODY = (
    b'{"detail":"Not authenticated"}{"detail":{"reason":"unexpected end of JSON input","code":1}}'
)
_DASHBOARD = (
    '<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>New API</title>'
    '<script type="module" crossorigin src="/assets/index.js"></script></head>'
    '<body><div id="root"></div></body></html>'
)
_GATEWAY_CODES = {
    400: "invalid_request",
    403: "quota_not_enough",
    404: "not_found",
    413: "request_too_large",
    429: "rate_limit_exceeded",
}
_DIMENSIONS = {
    "16:9": (1360, 752),
    "9:16": (752, 1360),
    "1:1": (1024, 1024),
    "4:3": (1168, 880),
    "3:4": (880, 1168),
    "21:9": (1568, 672),
    "9:21": (672, 1568),
}
_ZERO_TIME = "0001-01-01T00:00:00Z"
_DATA_URI = re.compile(
    r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)", re.DOTALL
)
_RANGE = re.compile(r"bytes=(?P<start>\d*)-(?P<end>\d*)")
_VIDEO_SECONDS_PER_EXTEND = 5.0
_STR, _BOOL = (str,), (bool,)
#: Known optional request fields and the JSON types they must have.
_GENERATE_FIELDS: Mapping[str, tuple[type, ...]] = {
    "aspect_ratio": _STR,
    "expand_prompt": _BOOL,
    "image_url": _STR,
    "image_end_url": _STR,
    "notify_hook": _STR,
    "loop": _BOOL,
    "model_name": _STR,
    "resolution": _STR,
    "duration": (str, int),
}
_EXTEND_FIELDS = {k: v for k, v in _GENERATE_FIELDS.items() if k != "aspect_ratio"}
_URL_FIELDS = ("image_url", "image_end_url", "notify_hook")

_E = TypeVar("_E", bound="LumaEmulator")
_T = TypeVar("_T")


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


@attrs.define
class Fault:
    """A fault waiting in the queue of :meth:`LumaEmulator.inject`; ``remaining`` counts down."""

    route: str
    remaining: int
    status: int | None = None
    body: bytes | str | Mapping[str, Any] | list[Any] | None = None
    headers: Mapping[str, str] | None = None
    html: bool = False
    delay: float = 0.0
    drop: bool = False
    retry_after: float | str | None = None
    after_processing: bool = False
    other_task: bool = False

    @property
    def answers(self) -> bool:
        """Whether the fault replaces the answer (rather than only delaying it)."""
        return (
            self.status is not None
            or self.body is not None
            or self.html
            or self.retry_after is not None
            or self.other_task
        )


@attrs.define
class EmulatedTask:
    """The emulator's record of one task; tests may read and adjust it.

    ``pending_seconds`` / ``processing_seconds`` are emulated seconds counted from
    ``created_clock``; ``fail_reason`` makes the task end ``failed`` instead of ``completed``;
    ``fail_at`` (emulated seconds after creation) makes it fail earlier.  ``parent_id`` is the
    extended task for an extension.  ``request`` is the JSON body that created it.
    """

    id: str
    prompt: str
    kind: Literal["generate", "extend"]
    request: dict[str, Any]
    created_at: dt.datetime
    created_clock: float
    pending_seconds: float
    processing_seconds: float
    aspect_ratio: str = "16:9"
    parent_id: str | None = None
    fail_reason: str | None = None
    fail_at: float | None = None
    batch_id: str = ""
    video_seconds: float = _VIDEO_SECONDS_PER_EXTEND
    completed_reads: int = 0
    notified_state: str | None = None

    @property
    def notify_hook(self) -> str | None:
        hook = self.request.get("notify_hook")
        return hook if isinstance(hook, str) else None

    def state_at(self, elapsed: float) -> str:
        """The state of the task ``elapsed`` emulated seconds after its creation."""
        if self.fail_at is not None and elapsed >= self.fail_at:
            return "failed"
        if elapsed < self.pending_seconds:
            return "pending"
        if elapsed < self.pending_seconds + self.processing_seconds:
            return "processing"
        return "failed" if self.fail_reason is not None else "completed"


class _Answer(Exception):  # noqa: N818 - control flow, not an error
    """Raised inside a handler to answer at once (a rejected request)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _origin(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class LumaEmulator:
    """A Luma API server as aggregators sell it, on 127.0.0.1, for tests.

    Use it as ``async with LumaEmulator(...) as emu:`` (or :meth:`start` / :meth:`close`).
    Options (all keyword-only):

    ``api_key``
        the only accepted bearer token (``emu.api_key``).
    ``host``, ``port``, ``video_port``
        where the API (``emu.base_url``) and the video host listen; 0 picks free ports.
    ``video_host``
        the host *name* in video links (``emu.video_base_url``); the video site listens on
        ``host`` too, but a different name makes it a different origin for clients, so a
        client that leaks its token to the CDN is caught in :attr:`video_requests`.
    ``pending_seconds``, ``processing_seconds``, ``time_scale``
        emulated durations of new tasks, and how many clock seconds one emulated second is.
    ``dialect``
        ``"proxy"``: errors are ``{"detail": ...}``, an unknown task is a 404;
        ``"gateway"``: ``{"code", "message", "data": null}``, an unknown task is a 400 with
        code ``task_not_exist``, a bad token a 401 ``{"error": {"message", "type"}}``.
    ``envelope``
        ``"bare"`` task object, ``"list"`` (a one-element array) or ``"wrapped"``
        (``{"code": "success", "message": "", "data": task}``) for every task answer.
    ``task_shape``
        ``"classic"`` (top-level ``prompt``, ``fail_reason``), ``"artifact"`` (later
        deployments: ``request``, ``artifact``, ``queue_state``, ``batch_id``, ``video_raw``,
        ``failure_reason``) or ``"official"`` (Luma's own API: states ``queued``/``dreaming``,
        the video as the string ``assets.video``, ``failure_reason``).
    ``batch_endpoint``
        serve ``POST /luma/tasks`` (else it answers as ``batch_route="missing"``).
    ``batch_route``
        how ``POST /luma/tasks`` answers (:data:`BatchRoute`): ``"list"`` (default),
        ``"nested"`` (new-api's ``{"code", "data": [{"id": <row>, "task_id", "status",
        "data": <task>}]}``), or as deployments without it: ``"missing"``, ``"html"``,
        ``"400"``, ``"403"``, ``"null"``.
    ``unrouted``
        what paths without a route answer: ``"404"``, or ``"html"`` (new-api's dashboard page
        with status 200).
    ``media``
        where stills and the raw video of a finished task are (:data:`Media`).
    ``upstream_expired``
        the aggregator's own Luma account has expired: every API request with the right key
        answers 401 ``Not authenticated`` (the proxy dialect: two JSON documents in one body).
    ``wrong_task_answers``
        the next N task GETs answer with another task (a gateway bug); see also
        ``inject(route, other_task=True)``.
    ``account_routes``
        serve ``GET /luma/users/me`` and ``GET /luma/subscription/usage`` (else unrouted).
    ``credit_limit``
        the credits ``/luma/subscription/usage`` starts from; each task created uses one.
    ``estimate_wait``
        fill ``estimate_wait_seconds`` with the seconds left, as the client's clock counts
        them (emulated seconds times ``time_scale``; else ``null``).
    ``link_delay_polls``
        the first N reads (GETs, or the batch query) of a completed task show ``completed``
        with ``video: null``, and ``download_video_url`` answers 400 meanwhile; callbacks
        show the same but do not count as reads.
    ``fail_marker``
        a prompt containing it makes the task end ``failed``.
    ``callback_attempts``, ``callback_retry_seconds``
        deliveries to ``notify_hook`` are tried this often, this many emulated seconds apart,
        until answered 200.
    ``max_body_bytes``
        larger request bodies are refused with 413.
    ``video_redirect``
        video links point to ``/cdn/<id>.mp4`` on the API host, which redirects (302) to the
        video host: a test that the client drops its token on the way.
    """

    def __init__(
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
        if dialect not in ("proxy", "gateway"):
            raise ValueError(f"dialect must be 'proxy' or 'gateway', not {dialect!r}")
        if envelope not in ("bare", "list", "wrapped"):
            raise ValueError(f"envelope must be 'bare', 'list' or 'wrapped', not {envelope!r}")
        if task_shape not in ("classic", "artifact", "official"):
            raise ValueError(
                f"task_shape must be 'classic', 'artifact' or 'official', not {task_shape!r}"
            )
        if batch_route not in BATCH_ROUTES:
            raise ValueError(f"batch_route must be one of {BATCH_ROUTES}, not {batch_route!r}")
        if unrouted not in ("404", "html"):
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

        self._faults: list[Fault] = []
        self._fault_lock = threading.Lock()
        self._runners: list[web.AppRunner] = []
        self._client: ClientSession | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        if wrong_task_answers:
            self.inject("get", count=wrong_task_answers, other_task=True)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API origin, e.g. ``http://127.0.0.1:41234`` (the SDK's ``base_url``)."""
        self._require_started()
        return _origin(self.host, self.port)

    @property
    def video_base_url(self) -> str:
        """The video host origin, e.g. ``http://localhost:41235``."""
        self._require_started()
        return _origin(self.video_host, self.video_port)

    @property
    def running(self) -> bool:
        return self._started

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("the emulator is not started: use 'async with LumaEmulator()'")

    async def __aenter__(self: _E) -> _E:  # noqa: PYI019 - typing.Self is 3.11+
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen on the API and video ports (free ones when 0); a no-op when running."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        try:
            await self._listen()
        except BaseException:
            await self._stop_listening()
            raise
        self._started = True

    async def close(self) -> None:
        """Stop listening, cancel callbacks in flight, release everything; idempotent.

        Tasks and records are kept: :meth:`start` serves them again.
        """
        await self._stop_listening()
        background = [t for t in (self._ticker, *self._deliveries) if t is not None]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        self._ticker = None
        self._deliveries.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None
        self._started = False

    async def restart(self) -> None:
        """Stop listening (dropping open connections), then listen again on the same ports.

        Tasks, records and faults survive, like a server restart behind a load balancer.
        """
        self._require_started()
        await self._stop_listening()
        await self._listen()

    async def serve_forever(self) -> None:
        """Serve until cancelled, then close."""
        await self.start()
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await self.close()

    @classmethod
    def in_thread(cls, **options: Any) -> EmulatorThread:
        """An emulator on its own event loop in a background thread, for sync code.

        ``with LumaEmulator.in_thread(time_scale=0.01) as emu: ...``
        """
        return EmulatorThread(cls(**options))

    def run_threadsafe(
        self, awaitable: Coroutine[Any, Any, _T], timeout: float | None = 30.0
    ) -> _T:
        """Run a coroutine (e.g. ``emu.restart()``) on the emulator's loop from another thread.

        For an emulator started by :meth:`in_thread`; blocks until it is done.
        """
        loop = self._loop
        if loop is None or not loop.is_running():
            awaitable.close()
            raise RuntimeError("the emulator does not run on an event loop")
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            awaitable.close()
            raise RuntimeError("run_threadsafe() called from the emulator's own loop: await it")
        return asyncio.run_coroutine_threadsafe(awaitable, loop).result(timeout)

    async def _listen(self) -> None:
        api = web.Application(client_max_size=self.max_body_bytes)
        add = api.router.add_route
        add("POST", "/luma/generations", self._endpoint("generate", self._generate))
        add("POST", "/luma/generations/file_upload", self._endpoint("file_upload", self._upload))
        add("POST", "/luma/generations/{task_id}/extend", self._endpoint("extend", self._extend))
        add("GET", "/luma/generations/{task_id}", self._endpoint("get", self._get))
        add(
            "GET",
            "/luma/generations/{task_id}/download_video_url",
            self._endpoint("download_video_url", self._download_url),
        )
        add("POST", "/luma/tasks", self._endpoint("tasks", self._batch))
        add("GET", "/luma/subscription/usage", self._endpoint("usage", self._usage))
        add("GET", "/luma/users/me", self._endpoint("account", self._account))
        api.router.add_get("/cdn/{task_id}.mp4", self._endpoint("cdn", self._cdn))
        api.router.add_route("*", "/{tail:.*}", self._endpoint("unknown", self._not_routed))
        video = web.Application()
        video.router.add_get("/videos/{task_id}.mp4", self._endpoint("video", self._video, "video"))
        video.router.add_get("/files/{name}", self._endpoint("file", self._file, "video"))
        video.router.add_get(
            "/images/{task_id}/{kind}.png", self._endpoint("image", self._image, "video")
        )
        video.router.add_route(
            "*", "/{tail:.*}", self._endpoint("unknown", self._not_routed, "video")
        )
        for app, attr in ((api, "port"), (video, "video_port")):
            runner = web.AppRunner(
                app, access_log=None, shutdown_timeout=0.05, handle_signals=False
            )
            await runner.setup()
            self._runners.append(runner)
            site = web.TCPSite(runner, self.host, getattr(self, attr), backlog=1024)
            await site.start()
            setattr(self, attr, runner.addresses[0][1])

    async def _stop_listening(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

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
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected one of {sorted(ROUTES)}")
        if count < 1:
            raise ValueError("count must be at least 1")
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
        with self._fault_lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Forget every fault not used yet."""
        with self._fault_lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        with self._fault_lock:
            return list(self._faults)

    def _take_fault(self, route: str) -> Fault | None:
        with self._fault_lock:
            for fault in self._faults:
                if fault.route in (route, "*"):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

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

    # -- rendering ---------------------------------------------------------------------------

    def _elapsed(self, task: EmulatedTask) -> float:
        return (_clock.monotonic() - task.created_clock) / self.time_scale

    def _video_url(self, task: EmulatedTask) -> str:
        if self.video_redirect:
            return f"{self.base_url}/cdn/{task.id}.mp4"
        return f"{self.video_base_url}/videos/{task.id}.mp4"

    def _image_ref(self, task: EmulatedTask, kind: str) -> dict[str, Any]:
        width, height = _DIMENSIONS.get(task.aspect_ratio, _DIMENSIONS["16:9"])
        return {
            "url": f"{self.video_base_url}/images/{task.id}/{kind}.png",
            "width": width,
            "height": height,
        }

    def _render(self, task: EmulatedTask, *, read: bool) -> dict[str, Any]:
        body = self._render_shape(task, read=read)
        if self.media != "all" and self.task_shape != "official":
            _place_media(body, self.media, self.task_shape)
        return body

    def _render_shape(self, task: EmulatedTask, *, read: bool) -> dict[str, Any]:
        elapsed = self._elapsed(task)
        state = task.state_at(elapsed)
        linked = state == "completed"
        if linked and task.completed_reads < self.link_delay_polls:
            linked = False
            if read:
                task.completed_reads += 1
        width, height = _DIMENSIONS.get(task.aspect_ratio, _DIMENSIONS["16:9"])
        url = self._video_url(task)
        thumbnail = self._image_ref(task, "thumbnail") if linked else None
        last_frame = self._image_ref(task, "last_frame") if linked else None
        estimate: float | None = None
        if self.estimate_wait and state not in _FINAL:
            total = task.pending_seconds + task.processing_seconds
            # Real seconds, as a client experiences them: the emulated rest times the scale.
            estimate = round(max(total - elapsed, 0.0) * self.time_scale, 3)
        failure = (task.fail_reason or "failed") if state == "failed" else None
        video: dict[str, Any] | None = None
        if self.task_shape == "official":
            return {
                "id": task.id,
                "generation_type": "video",
                "state": _OFFICIAL_STATE.get(state, state),
                "failure_reason": failure,
                "created_at": _iso(task.created_at),
                "assets": {
                    "video": url if linked else None,
                    "image": thumbnail["url"] if thumbnail else None,
                    "progress_video": None,
                },
                "model": str(task.request.get("model_name") or "ray-2"),
                "request": {"prompt": task.prompt, "aspect_ratio": task.aspect_ratio},
                "version": "emulated",
            }
        if self.task_shape == "classic":
            if linked:
                video = {
                    "url": url,
                    "width": width,
                    "height": height,
                    "thumbnail": thumbnail["url"] if thumbnail else None,
                    "download_url": f"{url}?download=1",
                }
            body: dict[str, Any] = {
                "id": task.id,
                "prompt": task.prompt,
                "state": state,
                "created_at": _iso(task.created_at),
                "video": video,
                "liked": None,
                "estimate_wait_seconds": estimate,
                "thumbnail": thumbnail,
                "last_frame": last_frame,
            }
            if failure is not None:
                body["fail_reason"] = failure
            return body
        video_raw: dict[str, Any] | None = None
        if linked:
            video = {"url": url, "width": width, "height": height, "thumbnail": thumbnail}
            video_raw = {
                "url": f"{url}?raw=1",
                "width": width,
                "height": height,
                "duration": task.video_seconds,
            }
        finished = task.created_at + dt.timedelta(
            seconds=task.pending_seconds + task.processing_seconds
        )
        request = {"prompt": task.prompt, "aspect_ratio": task.aspect_ratio}
        request.update({k: v for k, v in task.request.items() if k in ("expand_prompt", "loop")})
        return {
            "id": task.id,
            "state": state,
            "queue_state": "queued" if state == "pending" else None,
            "created_at": _iso(task.created_at),
            "batch_id": task.batch_id,
            "liked": None,
            "estimate_wait_seconds": estimate,
            "failure_reason": failure,
            "request": request,
            "video": video,
            "video_raw": video_raw,
            "thumbnail": thumbnail,
            "last_frame": last_frame,
            "artifact": {
                "video": video,
                "thumbnail": thumbnail,
                "video_raw": video_raw,
                "last_frame": last_frame,
                "created_at": _iso(finished) if linked else _ZERO_TIME,
            },
        }

    def _wrap(self, payload: Any) -> Any:
        if self.envelope == "list":
            return [payload]
        if self.envelope == "wrapped":
            return {"code": "success", "message": "", "data": payload}
        return payload

    def _error(self, status: int, message: str, *, code: str | None = None) -> web.Response:
        """An error answer in the dialect of the deployment."""
        if self.dialect == "proxy":
            if status == 401:
                return _json_response({"detail": {"reason": message, "code": 1}}, status)
            return _json_response({"detail": message}, status)
        if status == 401:
            return _json_response(
                {"error": {"message": message, "type": "invalid_request_error"}}, status
            )
        default = _GATEWAY_CODES.get(status, "upstream_error" if status >= 500 else "error")
        return _json_response({"code": code or default, "message": message, "data": None}, status)

    def _upstream_unauthenticated(self) -> web.Response:
        """The aggregator's own Luma session expired: upstream's 401, passed through."""
        if self.dialect == "proxy":  # the Go proxy appends its own document to upstream's
            body = UPSTREAM_UNAUTHENTICATED_BODY
        else:
            body = b'{"detail":"Not authenticated"}'
        return web.Response(body=body, status=401, content_type="application/json")

    def _not_found(self, task_id: str) -> _Answer:
        if self.dialect == "gateway":
            return _Answer(
                self._error(400, f"task {task_id} does not exist", code="task_not_exist")
            )
        return _Answer(self._error(404, "Not found"))

    def _fault_response(self, fault: Fault) -> web.Response:
        status = fault.status
        if status is None:
            status = (
                200 if fault.body is not None else 429 if fault.retry_after is not None else 502
            )
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            retry = fault.retry_after
            headers["Retry-After"] = retry if isinstance(retry, str) else str(int(retry))
        if fault.body is not None:
            body = fault.body
            if isinstance(body, (Mapping, list)):
                response = _json_response(body, status)
            else:
                raw = body.encode() if isinstance(body, str) else body
                try:
                    json.loads(raw)
                except (ValueError, RecursionError):
                    kind = "text/plain"
                else:
                    kind = "application/json"
                response = web.Response(body=raw, status=status, content_type=kind)
        elif fault.html:
            title = f"{status} {_reason(status)}"
            page = (
                f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
                f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                "</body>\r\n</html>\r\n"
            )
            response = web.Response(text=page, status=status, content_type="text/html")
        else:
            response = self._error(status, _reason(status))
        response.headers.update(headers)
        if fault.headers:
            response.headers.update(fault.headers)
        return response

    # -- request plumbing --------------------------------------------------------------------

    def _endpoint(
        self,
        route: str,
        handler: Callable[[web.Request, RecordedRequest], Awaitable[web.StreamResponse]],
        host: Literal["api", "video"] = "api",
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:

        async def endpoint(request: web.Request) -> web.StreamResponse:
            record = RecordedRequest(
                method=request.method,
                path=request.path,
                route=route,
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                json=None,
                at=_clock.monotonic(),
                host=host,
                query=dict(request.query),
                task_id=request.match_info.get("task_id"),
            )
            self.requests.append(record)
            fault = self._take_fault(route) if route != "unknown" else None
            response = await self._answer(request, record, handler, fault)
            record.status = None if response is None else response.status
            return response if response is not None else web.Response(status=499)

        return endpoint

    async def _answer(
        self,
        request: web.Request,
        record: RecordedRequest,
        handler: Callable[[web.Request, RecordedRequest], Awaitable[web.StreamResponse]],
        fault: Fault | None,
    ) -> web.StreamResponse | None:
        """The response to send, or ``None`` when the connection was dropped."""
        if fault is not None and not fault.after_processing:
            if fault.delay:
                await _clock.sleep(fault.delay)
            if fault.drop:
                _drop(request)
                return None
            if fault.other_task:
                return self._other_task_answer(record.task_id)
            if fault.answers:
                return self._fault_response(fault)
        try:
            guarded = record.route in _API_ROUTES or (
                record.host == "api" and request.path.startswith("/luma/")
            )
            if guarded and not self._authorized(request):
                response: web.StreamResponse = self._error(401, "unauthorized secret token")
            elif guarded and self.upstream_expired:
                response = self._upstream_unauthenticated()
            else:
                response = await handler(request, record)
        except _Answer as answer:
            response = answer.response
        if fault is not None and fault.after_processing:
            if fault.delay:
                await _clock.sleep(fault.delay)
            if fault.drop:
                _drop(request)
                return None
            if fault.other_task:
                return self._other_task_answer(record.task_id)
            if fault.answers:
                return self._fault_response(fault)
        return response

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key

    async def _body(self, request: web.Request, record: RecordedRequest) -> dict[str, Any]:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise _Answer(self._error(413, f"request body over {self.max_body_bytes} bytes"))
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _Answer(
                self._error(413, f"request body over {self.max_body_bytes} bytes")
            ) from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise _Answer(self._error(400, "the request body is not valid JSON")) from None
        record.json = body
        if not isinstance(body, dict):
            raise _Answer(self._error(400, "the request body must be a JSON object"))
        return cast("dict[str, Any]", body)

    def _check_fields(
        self, body: Mapping[str, Any], fields: Mapping[str, tuple[type, ...]]
    ) -> None:
        prompt = body.get("user_prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _Answer(self._error(400, "user_prompt is required: a non-empty string"))
        for name, kinds in fields.items():
            if name not in body:
                continue
            value = body[name]
            if value is None:
                raise _Answer(self._error(400, f"{name} must be left out, not null"))
            if not isinstance(value, kinds):
                wanted = " or ".join(k.__name__ for k in kinds)
                raise _Answer(self._error(400, f"{name} must be a {wanted}"))
            if name in _URL_FIELDS and not _acceptable_url(
                str(value), images=name != "notify_hook"
            ):
                raise _Answer(self._error(400, f"{name} is not an http(s) URL or image data URI"))

    def _create(
        self,
        body: dict[str, Any],
        *,
        kind: Literal["generate", "extend"],
        parent: EmulatedTask | None,
    ) -> EmulatedTask:
        prompt = body["user_prompt"]
        task = EmulatedTask(
            id=str(uuid.uuid4()),
            prompt=prompt,
            kind=kind,
            request=body,
            created_at=dt.datetime.now(dt.timezone.utc),
            created_clock=_clock.monotonic(),
            pending_seconds=self.pending_seconds,
            processing_seconds=self.processing_seconds,
            aspect_ratio=(
                parent.aspect_ratio if parent else str(body.get("aspect_ratio") or "16:9")
            ),
            parent_id=parent.id if parent else None,
            batch_id=str(uuid.uuid4()),
            video_seconds=(parent.video_seconds if parent else 0.0) + _VIDEO_SECONDS_PER_EXTEND,
        )
        if self.fail_marker and self.fail_marker in prompt:
            task.fail_reason = "The prompt was refused by the emulator's fail marker"
        self.tasks[task.id] = task
        self.created.append(task.id)
        if task.notify_hook is not None:
            self._notice(task)
            self._ensure_ticker()
        return task

    def _task_answer(self, task: EmulatedTask, *, read: bool = True) -> web.Response:
        return _json_response(self._wrap(self._render(task, read=read)))

    # -- handlers ----------------------------------------------------------------------------

    async def _generate(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        body = await self._body(request, record)
        self._check_fields(body, _GENERATE_FIELDS)
        task = self._create(body, kind="generate", parent=None)
        record.created_id = task.id
        return self._task_answer(task)

    async def _extend(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        parent_id = request.match_info["task_id"]
        body = await self._body(request, record)
        parent = self.tasks.get(parent_id)
        if parent is None:
            raise self._not_found(parent_id)
        state = parent.state_at(self._elapsed(parent))
        if state != "completed":
            raise _Answer(
                self._error(
                    400, f"task {parent_id} is {state}: only a completed task can be extended"
                )
            )
        self._check_fields(body, _EXTEND_FIELDS)
        task = self._create(body, kind="extend", parent=parent)
        record.created_id = task.id
        return self._task_answer(task)

    async def _get(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            raise self._not_found(request.match_info["task_id"])
        return self._task_answer(task)

    async def _download_url(
        self, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        task = self.tasks.get(task_id)
        if task is None:
            raise self._not_found(task_id)
        state = task.state_at(self._elapsed(task))
        if state != "completed" or task.completed_reads < self.link_delay_polls:
            raise _Answer(self._error(400, f"the video of task {task_id} is not ready ({state})"))
        expires = int(time.time()) + 3600
        url = f"{self.video_base_url}/videos/{task_id}.mp4?watermark=0&expires={expires}"
        return _json_response({"url": url})

    async def _upload(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        body = await self._body(request, record)
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise _Answer(self._error(400, "url is required: an https URL or an image data URI"))
        upload_id = str(uuid.uuid4())
        if url.startswith(("https://", "http://")):
            return _json_response({"id": upload_id, "presigned_url": url, "public_url": url})
        match = _DATA_URI.fullmatch(url)
        if match is None or not match["mime"].startswith("image/"):
            raise _Answer(self._error(400, "url must be an http(s) URL or a base64 image data URI"))
        try:
            data = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError):
            raise _Answer(self._error(400, "the data URI is not valid base64")) from None
        if not data:
            raise _Answer(self._error(400, "the data URI holds no data"))
        subtype = match["mime"].split("/", 1)[1].lower()
        ext = {"jpeg": "jpg", "svg+xml": "svg"}.get(subtype, re.sub(r"[^a-z0-9]", "", subtype))
        name = f"{upload_id}.{ext or 'bin'}"
        self.uploads[name] = (match["mime"], data)
        public = f"{self.video_base_url}/files/{name}"
        return _json_response(
            {
                "id": upload_id,
                "presigned_url": f"{public}?X-Amz-Signature=emulated",
                "public_url": public,
            }
        )

    async def _batch(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        route: BatchRoute = self.batch_route if self.batch_endpoint else "missing"
        if route == "missing":
            return self._unrouted_answer()
        if route == "html":
            return _dashboard()
        if route in ("400", "403"):
            status = int(route)
            raise _Answer(self._error(status, f"{_reason(status)}: no batch query here"))
        if route == "null":
            return _json_response({"code": "success", "message": "", "data": None})
        body = await self._body(request, record)
        ids: Any = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):  # pyright: ignore[reportUnknownVariableType]
            raise _Answer(self._error(400, "ids must be a list of task id strings"))
        found: list[dict[str, Any]] = []
        wanted: list[str] = ids  # pyright: ignore[reportUnknownVariableType]
        for task_id in dict.fromkeys(wanted):
            task = self.tasks.get(task_id)
            if task is None:
                continue
            item = self._render(task, read=True)
            if route == "nested":
                found.append(self._gateway_row(task, item))
                continue
            if self.envelope == "wrapped":
                item["status"] = _GATEWAY_STATUS.get(task.state_at(self._elapsed(task)), "FAILURE")
            found.append(item)
        if self.envelope == "wrapped" or route == "nested":
            return _json_response({"code": "success", "message": "", "data": found})
        return _json_response(found)

    def _gateway_row(self, task: EmulatedTask, item: dict[str, Any]) -> dict[str, Any]:
        """new-api's task row: its own integer id, the Luma task id, and the task under data."""
        state = task.state_at(self._elapsed(task))
        submitted = int(task.created_at.timestamp())
        done = state in _FINAL
        return {
            "id": 13917 + self.created.index(task.id) if task.id in self.created else 13917,
            "created_at": submitted,
            "updated_at": submitted,
            "task_id": task.id,
            "platform": "luma",
            "user_id": 1,
            "channel_id": 1,
            "quota": 0,
            "action": "LUMA_EXTEND" if task.kind == "extend" else "LUMA_VIDEO",
            "status": _GATEWAY_STATUS.get(state, "FAILURE"),
            "fail_reason": (task.fail_reason or "failed") if state == "failed" else "",
            "submit_time": submitted,
            "start_time": submitted + int(task.pending_seconds) if state != "pending" else 0,
            "finish_time": submitted + 60 if done else 0,
            "progress": "100%" if done else "50%",
            "properties": {},
            "data": item,
        }

    async def _usage(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        if not self.account_routes:
            return self._unrouted_answer()
        used = float(len(self.tasks))
        payload = {
            "available": max(self.credit_limit - used, 0.0),
            "used": used,
            "total": self.credit_limit,
            "plan": "emulated",
            "period_end": "2099-01-01T00:00:00Z",
        }
        return _json_response(self._wrap_object(payload))

    async def _account(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        if not self.account_routes:
            return self._unrouted_answer()
        payload = {
            "id": "emulated-account",
            "email": "luma@emulator.invalid",
            "name": "Emulated upstream account",
            "plan": "emulated",
            "created_at": "2024-06-12T00:00:00Z",
        }
        return _json_response(self._wrap_object(payload))

    def _wrap_object(self, payload: dict[str, Any]) -> Any:
        if self.envelope == "wrapped":
            return {"code": "success", "message": "", "data": payload}
        return payload

    def _unrouted_answer(self) -> web.Response:
        if self.unrouted == "html":
            return _dashboard()
        return self._error(404, "Not Found")

    def _other_task_answer(self, asked: str | None) -> web.Response:
        """A task answer for some task other than ``asked`` (a gateway bug or a cache)."""
        other = next((t for t in self.tasks.values() if t.id != asked), None)
        if other is not None:
            body = self._render(other, read=False)
        else:
            body = {
                "id": str(uuid.uuid4()),
                "prompt": "someone else's video",
                "state": "completed",
                "created_at": _iso(dt.datetime.now(dt.timezone.utc)),
                "video": {"url": f"{self.video_base_url}/videos/elsewhere.mp4"},
            }
        return _json_response(self._wrap(body))

    async def _cdn(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        location = f"{self.video_base_url}/videos/{request.match_info['task_id']}.mp4"
        if request.query_string:
            location += f"?{request.query_string}"
        return web.Response(status=302, headers={"Location": location})

    async def _not_routed(
        self, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        if record.host == "api":
            return self._unrouted_answer()
        return self._error(404, "Not Found")

    async def _video(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        task = self.tasks.get(request.match_info["task_id"])
        if task is None or task.state_at(self._elapsed(task)) != "completed":
            return web.Response(status=404, text="no such video")
        expires = request.query.get("expires")
        if expires is not None and (not expires.isdigit() or int(expires) < time.time()):
            return web.Response(status=403, text="the link has expired")
        return _ranged(request, self.video_bytes, "video/mp4")

    async def _file(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        upload = self.uploads.get(request.match_info["name"])
        if upload is None:
            return web.Response(status=404, text="no such file")
        return _ranged(request, upload[1], upload[0])

    async def _image(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        if request.match_info["task_id"] not in self.tasks:
            return web.Response(status=404, text="no such image")
        return _ranged(request, self.image_bytes, "image/png")

    # -- callbacks ---------------------------------------------------------------------------

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(
                self._tick(), name="luma-emulator-callbacks"
            )

    async def _tick(self) -> None:
        """Notice state changes of tasks with a ``notify_hook`` and call them back."""
        while True:
            await asyncio.sleep(self.callback_tick)
            waiting = [
                task
                for task in list(self.tasks.values())
                if task.notify_hook is not None and task.notified_state not in _FINAL
            ]
            if not waiting:
                return  # started again by the next task with a hook
            for task in waiting:
                self._notice(task)

    def _notice(self, task: EmulatedTask) -> None:
        body = self._render(task, read=False)
        if body["state"] == task.notified_state:
            return
        task.notified_state = body["state"]
        hook = task.notify_hook
        assert hook is not None
        for _ in range(1 + max(self.callback_duplicates, 0)):
            delivery = asyncio.get_running_loop().create_task(
                self._deliver(hook, task.id, body["state"], self._wrap(body))
            )
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    async def _deliver(self, url: str, task_id: str, state: str, body: Any) -> None:
        if self._client is None:
            self._client = ClientSession(timeout=ClientTimeout(total=10))
        for attempt in range(1, self.callback_attempts + 1):
            status: int | None = None
            try:
                async with self._client.post(url, json=body) as response:
                    status = response.status
                    await response.read()
            except (ClientError, asyncio.TimeoutError, OSError):
                status = None
            self.callbacks.append(
                CallbackDelivery(url, task_id, state, status, attempt, _clock.monotonic(), body)
            )
            if status == 200:
                return
            if attempt < self.callback_attempts:
                await _clock.sleep(self.callback_retry_seconds * self.time_scale)


def _dashboard() -> web.Response:
    """new-api's web page, which it serves with status 200 for any path it has no route for."""
    return web.Response(text=_DASHBOARD, status=200, content_type="text/html")


def _place_media(body: dict[str, Any], media: Media, shape: TaskShape) -> None:
    """Move a rendered task's stills and raw video to where ``media`` says they are."""
    artifact: dict[str, Any] = body.get("artifact") or {}
    shown: dict[str, Any] | None = body.get("video")
    thumbnail: dict[str, Any] | None = body.get("thumbnail") or artifact.get("thumbnail")
    last_frame: dict[str, Any] | None = body.get("last_frame") or artifact.get("last_frame")
    video_raw: dict[str, Any] | None = body.get("video_raw") or artifact.get("video_raw")
    video: dict[str, Any] | None = None
    if shown is not None:
        video = dict(shown)
        video["thumbnail"] = None
        video.pop("download_url", None)
        body["video"] = video
        if video_raw is None and thumbnail is not None:
            video_raw = {
                "url": f"{video['url']}?raw=1",
                "width": video.get("width"),
                "height": video.get("height"),
                "duration": _VIDEO_SECONDS_PER_EXTEND,
            }
    for key in ("thumbnail", "last_frame", "video_raw"):
        body.pop(key, None)
    if "artifact" in body:  # only the chosen place keeps them
        body["artifact"] = {
            **artifact,
            "video": video,
            "thumbnail": None,
            "last_frame": None,
            "video_raw": None,
        }
    if media == "video":
        if video is not None and thumbnail is not None:
            video["thumbnail"] = thumbnail["url"] if shape == "classic" else thumbnail
        body["last_frame"] = last_frame
        body["video_raw"] = video_raw
    elif media == "top":
        body["thumbnail"] = thumbnail
        body["last_frame"] = last_frame
        body["video_raw"] = video_raw
    else:  # artifact
        artifact = dict(artifact)
        artifact.update(
            {
                "video": video,
                "thumbnail": thumbnail,
                "last_frame": last_frame,
                "video_raw": video_raw,
            }
        )
        body["artifact"] = artifact


def _drop(request: web.Request) -> None:
    """Close the connection without an answer (aiohttp then fails to write, silently)."""
    transport = request.transport
    if transport is not None:
        transport.close()


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _acceptable_url(value: str, *, images: bool) -> bool:
    if value.startswith(("https://", "http://")):
        return True
    return images and value.startswith("data:image/")


def _ranged(request: web.Request, data: bytes, content_type: str) -> web.Response:
    """Serve ``data`` honouring one ``Range: bytes=`` header (206, or 416 when unsatisfiable)."""
    size = len(data)
    headers = {"Accept-Ranges": "bytes", "ETag": f'"emu-{size}-{zlib.crc32(data):08x}"'}
    spec = request.headers.get("Range")
    if spec is None or not spec.strip().startswith("bytes=") or "," in spec:
        return web.Response(body=data, content_type=content_type, headers=headers)
    match = _RANGE.fullmatch(spec.strip())
    start, end = size, size - 1  # unsatisfiable unless the header says otherwise
    if match is not None and match["start"]:
        start = int(match["start"])
        if match["end"]:
            end = int(match["end"])
            if end < start:
                start = size
            end = min(end, size - 1)
    elif match is not None and match["end"] and int(match["end"]) > 0:
        start = max(size - int(match["end"]), 0)
    if start >= size:
        headers["Content-Range"] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return web.Response(
        status=206, body=data[start : end + 1], content_type=content_type, headers=headers
    )


class EmulatorThread:
    """Runs a :class:`LumaEmulator` on its own event loop in a daemon thread.

    ``with EmulatorThread(LumaEmulator()) as emu:`` starts it and yields the emulator; leaving
    the block closes it, stops the loop and joins the thread.  Use
    :meth:`LumaEmulator.run_threadsafe` to await its coroutines (``restart``) from outside.
    """

    def __init__(self, emulator: LumaEmulator, *, timeout: float = 30.0) -> None:
        self.emulator = emulator
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LumaEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LumaEmulator:
        if self._thread is not None:
            raise RuntimeError("the emulator thread is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._run, args=(loop,), name="luma-emulator", daemon=True)
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.emulator.start(), loop).result(self.timeout)
        except BaseException:
            self.stop()
            raise
        return self.emulator

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if thread.is_alive():
                future = asyncio.run_coroutine_threadsafe(self.emulator.close(), loop)
                future.result(self.timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout)
            self._loop = self._thread = None

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()


async def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    ready: Callable[[LumaEmulator], object] | None = None,
    **options: Any,
) -> None:
    """Serve an emulator until cancelled (the ``luma-async emulator`` command).

    ``ready(emu)`` is called once it listens (to print ``emu.base_url``, say); this function
    itself prints nothing.  ``options`` are those of :class:`LumaEmulator`.
    """
    emulator = LumaEmulator(host=host, port=port, **options)
    try:
        await emulator.start()
        if ready is not None:
            ready(emulator)
        await asyncio.get_running_loop().create_future()
    finally:
        await emulator.close()
