"""``LumaSession``: submit generations and extensions, read tasks, follow them to the end."""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import platform
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import attrs

from luma_async import _download, _inputs, _protocol
from luma_async._batch import Batch
from luma_async._batch_wiring import make_batch
from luma_async._budget import Budget
from luma_async._download import ProgressCallback, video_url_of
from luma_async._errors import InputError, SessionClosedError
from luma_async._journal import Journal
from luma_async._models import (
    Account,
    BatchResult,
    ExtendRequest,
    FinishedTask,
    GenerateRequest,
    ImageInput,
    StateChange,
    Task,
    UploadedFile,
    Usage,
    Video,
)
from luma_async._options import DEFAULT_BASE_URL, SessionOptions
from luma_async._policy import PollPolicy, RequestBudget, RetryPolicy
from luma_async._transport import AiohttpTransport, Client, Transport
from luma_async._validators import check, instance_of
from luma_async._watch import FollowEnd, Hub, Listener, Subscription

if TYPE_CHECKING:
    from luma_async._callbacks import CallbackReceiver

__all__ = ["DEFAULT_BASE_URL", "LumaSession"]

_R = TypeVar("_R", GenerateRequest, ExtendRequest)
log = logging.getLogger("luma_async")

_DEFAULT_CONNECTIONS = 100  # aiohttp's own default connector limit


class SessionState(enum.Enum):
    """Where a :class:`LumaSession` is in its life (httpx's ``ClientState``).

    ``UNOPENED``: made, usable without ``async with`` (its aiohttp session is made on first
    use).  ``OPENED``: inside its ``async with`` block.  ``CLOSED``: after ``aclose()`` or
    the block's end; every use raises :class:`SessionClosedError`.  A session goes only
    forward: UNOPENED -> OPENED -> CLOSED, or UNOPENED -> CLOSED.
    """

    UNOPENED = "unopened"
    OPENED = "open"
    CLOSED = "closed"


_OPENED_TWICE = (
    "cannot open a LumaSession more than once: it is already in use by an 'async with' block"
)
_CLOSED = "this LumaSession is closed; create a new one"
_POLICY = instance_of(PollPolicy)


def _user_agent() -> str:
    from importlib.metadata import version  # noqa: PLC0415 - only when a session is made

    return (
        f"luma-async/{version('luma-async')} aiohttp/{aiohttp.__version__} "
        f"Python/{platform.python_version()}"
    )


class LumaSession:
    """A connection to the Luma API of one aggregator.

    Use it as ``async with LumaSession() as luma:``.  ``api_key`` falls back to the
    ``LUMA_API_KEY`` environment variable, ``base_url`` to ``LUMA_BASE_URL`` and then to
    ``https://api.gpt.ge``.  Pass ``session`` to share your own ``aiohttp.ClientSession``: it is
    used and never closed.  ``budget`` limits the session's request rate and concurrency.

    A session lives once: made (usable at once, even without ``async with``; then call
    :meth:`aclose`), opened by ``async with`` (at most once), closed by :meth:`aclose` or
    the end of the block (closing again does nothing).  Once closed, every use raises
    :class:`SessionClosedError`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        timeout: float = 60.0,
        budget: RequestBudget | None = None,
        max_image_bytes: int = _inputs.MAX_IMAGE_BYTES,
        allow_insecure_http: bool = False,
        batch_refresh: bool | None = None,
        batch_window: float = 0.05,
    ) -> None:
        options = SessionOptions(
            api_key=api_key,
            base_url=base_url,
            session=session,
            retry=retry,
            poll=poll,
            timeout=timeout,
            budget=budget,
            max_image_bytes=max_image_bytes,
            allow_insecure_http=allow_insecure_http,
            batch_refresh=batch_refresh,
            batch_window=batch_window,
        )
        self._options = options
        self.base_url = options.base_url
        self.retry = options.retry or RetryPolicy()
        self.poll_policy = options.poll or PollPolicy()
        self.max_image_bytes = options.max_image_bytes
        self._session = options.session
        self._owns_session = options.session is None
        self._state = SessionState.UNOPENED
        self.budget = Budget(options.budget)
        self._transport: Transport = AiohttpTransport(self._client, timeout=float(options.timeout))
        self._api = Client(
            base_url=self.base_url,
            api_key=options.api_key,
            retry=self.retry,
            user_agent=_user_agent(),
            budget=self.budget,
            transport=self._transport,
        )
        self._hub = Hub(
            self._fetch_once,
            self._fetch_many,
            batch=options.batch_refresh,
            window=options.batch_window,
            connections=self.budget.policy.max_connections or _DEFAULT_CONNECTIONS,
        )
        self._callbacks: CallbackReceiver | None = None

    def __repr__(self) -> str:
        owner = "own" if self._owns_session else "borrowed"
        state = self._state.value
        return f"<LumaSession {self.base_url} api_key=*** {owner} aiohttp session, {state}>"

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> LumaSession:
        if self._state is SessionState.OPENED:
            raise RuntimeError(_OPENED_TWICE)
        self._check_open()
        await self._client()
        self._state = SessionState.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the aiohttp session if this object made it. Safe to call twice."""
        if self._state is SessionState.CLOSED:
            return
        self._state = SessionState.CLOSED
        receiver, self._callbacks = self._callbacks, None
        if receiver is not None:  # first: no callback may wake a poller being cancelled
            await receiver.close()
        await self._hub.aclose()
        await self._transport.aclose()
        session, self._session = self._session, None
        if self._owns_session and session is not None:
            await session.close()

    @property
    def closed(self) -> bool:
        return self._state is SessionState.CLOSED

    async def _client(self) -> aiohttp.ClientSession:
        self._check_open()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.budget.policy.max_connections or _DEFAULT_CONNECTIONS
                ),
                raise_for_status=False,
            )
        return self._session

    # -- requests --------------------------------------------------------------------------

    async def generate(
        self,
        user_prompt: str,
        *,
        aspect_ratio: str | None = None,
        expand_prompt: bool | None = None,
        image_url: ImageInput | None = None,
        image_end_url: ImageInput | None = None,
        notify_hook: str | None = None,
        loop: bool | None = None,
        model_name: str | None = None,
        resolution: str | None = None,
        duration: str | int | None = None,
    ) -> Task:
        """Submit a new generation (a paid job) and return its task as first reported.

        ``loop``, ``model_name`` (``ray-v2``...), ``resolution`` (``720p``/``1080p``) and
        ``duration`` (``5`` or ``"5s"``) are options some aggregators add; others drop them.
        """
        request = GenerateRequest(
            user_prompt,
            aspect_ratio=aspect_ratio,
            expand_prompt=expand_prompt,
            image_url=image_url,
            image_end_url=image_end_url,
            notify_hook=notify_hook,
            loop=loop,
            model_name=model_name,
            resolution=resolution,
            duration=duration,
        )
        body = _inputs.generate_body(self._with_hook(request), max_image_bytes=self.max_image_bytes)
        return await self._api.send(_protocol.generate(body, request))

    async def extend(
        self,
        task_id: str,
        user_prompt: str,
        *,
        expand_prompt: bool | None = None,
        image_url: ImageInput | None = None,
        image_end_url: ImageInput | None = None,
        notify_hook: str | None = None,
    ) -> Task:
        """Extend the video of the completed task ``task_id`` (a paid job).

        Returns the new extension task, which has its own id; follow it with :meth:`poll`
        or :meth:`wait`.
        """
        return await self.submit_extend(
            ExtendRequest(
                task_id,
                user_prompt,
                expand_prompt=expand_prompt,
                image_url=image_url,
                image_end_url=image_end_url,
                notify_hook=notify_hook,
            )
        )

    async def submit_extend(self, request: ExtendRequest) -> Task:
        """:meth:`extend` for a prepared :class:`ExtendRequest`."""
        if not isinstance(request, ExtendRequest):
            raise InputError(f"expected an ExtendRequest, not {type(request).__name__}")
        body = _inputs.extend_body(self._with_hook(request), max_image_bytes=self.max_image_bytes)
        return await self._api.send(_protocol.extend(request.task_id, body, request))

    async def get(self, task_id: str) -> Task:
        """The task as the service reports it now (retried on transient errors).

        An answer for another task is never returned: it is retried like a passing failure
        (within ``self.retry``), then raised as :class:`WrongTaskError`.
        """
        _inputs.check_task_id(task_id)
        return await self._api.send(_protocol.get(task_id))

    async def _fetch_once(self, task_id: str) -> Task:
        """One GET without retries: the poller does its own (an answer for another task is
        a passing failure to it)."""
        return await self._api.send(_protocol.get(task_id, poll=True))

    async def _fetch_many(self, task_ids: list[str]) -> list[Task] | str:
        """The batch status query (a ``str`` says what came when it is no list of tasks)."""
        return await self._api.send(_protocol.batch_tasks(task_ids))

    async def usage(self) -> Usage:
        """The credits of the account behind the key (``GET /luma/subscription/usage``):
        worth a look before a big batch."""
        return await self._api.send(_protocol.usage())

    async def account(self) -> Account:
        """The upstream account the aggregator uses (``GET /luma/users/me``)."""
        return await self._api.send(_protocol.account())

    async def download_video_url(self, task_id: str) -> str:
        """A fresh link to the finished video without watermark (it expires; fetch it late)."""
        _inputs.check_task_id(task_id)
        return await self._api.send(_protocol.download_video_url(task_id))

    def _use_transport(self, transport: Transport) -> None:
        """Send the API's requests through ``transport`` (the tests' in-memory one) instead
        of aiohttp; the video downloads still use aiohttp.  Call it before any request."""
        self._transport = self._api.transport = transport

    async def download(
        self,
        task_or_video: Task | Video | str,
        dest: Path | str,
        *,
        watermark: bool = True,
        progress: ProgressCallback | None = None,
        max_bytes: int = _download.DEFAULT_MAX_BYTES,
    ) -> Path:
        """Stream a finished video to ``dest``: a file, or a directory (``<task id>.mp4``).

        ``watermark=False`` (for a :class:`Task`) asks for the link without watermark first.
        The video host never gets the API key, not even across redirects; a broken transfer
        resumes with a Range request under ``self.retry``; the file appears at ``dest`` only
        when complete and of the announced length.  A link that expired (403) is asked for
        again once (for a :class:`Task`), and a ``.part`` left by a killed process is resumed.
        At most ``max_bytes`` are written (2 GiB by default); a longer body, or one the host
        compressed, is a :class:`DownloadError`.
        """
        url = video_url_of(task_or_video)  # a task must be finished, before any request
        _inputs.check_bool(watermark, "watermark")
        if progress is not None and not callable(progress):
            raise InputError(f"progress must be callable, not {type(progress).__name__}")
        name = f"{task_or_video.id}.mp4" if isinstance(task_or_video, Task) else None
        _download.check_dest(dest, url, name)  # before the link request below
        _download.check_max_bytes(max_bytes)
        refresh: _download.RefreshLink | None = None
        if isinstance(task_or_video, Task):
            task_id = task_or_video.id

            async def fresh_link() -> str:  # the link expired (403): ask for a fresh one, once
                if not watermark:
                    return await self.download_video_url(task_id)
                return video_url_of(await self.get(task_id))

            refresh = fresh_link

        if not watermark:
            if not isinstance(task_or_video, Task):
                raise InputError("watermark=False needs the Task: that link is asked by task id")
            url = await self.download_video_url(task_or_video.id)
        client = await self._client()
        return await _download.download(
            client,
            url,
            dest,
            progress=progress,
            retry=self.retry,
            filename=name,
            max_bytes=max_bytes,
            refresh=refresh,
        )

    async def upload(self, image: ImageInput) -> UploadedFile:
        """Upload an image (URL, ``Path`` or ``bytes``); use ``.public_url`` in later requests."""
        value = _inputs.image_value(image, "image", max_bytes=self.max_image_bytes)
        if value is None:
            raise InputError("image is required: an http(s) URL, a pathlib.Path or bytes")
        request = image if isinstance(image, str) else f"<{type(image).__name__} image>"
        return await self._api.send(_protocol.file_upload(value, request))

    # -- following tasks -------------------------------------------------------------------

    def poll(
        self, task_id: str, *, policy: PollPolicy | None = None, first: Task | None = None
    ) -> Subscription:
        """Follow a task: one :class:`StateChange` per change of state, until the video exists.

        Raises :class:`TaskFailedError` after yielding the ``failed`` state, and
        :class:`PollTimeoutError` when ``policy.timeout`` passes first.  Several coroutines
        following the same task share one poller; one that joins late gets the latest state
        at once.  ``first`` is the task as ``extend``/``generate`` returned it (saves a GET).
        """
        _inputs.check_task_id(task_id)
        if first is not None and not isinstance(first, Task):
            raise InputError(
                f"first must be the Task that generate/extend returned, not {type(first).__name__}"
            )
        self._check_open()
        return self._hub.subscribe([task_id], self._policy(policy), first=first)

    async def wait(
        self,
        task_id: str,
        *,
        policy: PollPolicy | None = None,
        first: Task | None = None,
        on_change: Callable[[StateChange], object] | None = None,
    ) -> FinishedTask:
        """Follow a task to its end and return it finished: a :class:`FinishedTask`, whose
        ``video`` is never ``None``.

        ``on_change`` (a function or coroutine function) sees each change on the way.
        """
        subscription = self.poll(task_id, policy=policy, first=first)
        last: Task | None = None
        try:
            async for change in subscription:
                last = change.task
                if on_change is not None:
                    outcome = on_change(change)
                    if inspect.isawaitable(outcome):
                        await outcome
        finally:
            await subscription.aclose()
        assert last is not None  # a subscription ends only after a change with a video
        return FinishedTask.of(last)

    def watch_many(
        self, task_ids: Iterable[str], *, policy: PollPolicy | None = None
    ) -> Subscription:
        """The changes of many tasks merged into one stream, in the order they happen.

        Failed tasks are reported by their ``failed`` change and the stream goes on; it ends
        when every task has ended, or raises :class:`PollTimeoutError` at the deadline.
        """
        ids = [_inputs.check_task_id(task_id) for task_id in _listed(task_ids, "task_ids")]
        self._check_open()
        return self._hub.subscribe(ids, self._policy(policy), merged=True)

    def subscribe(
        self,
        task_id: str,
        *,
        queue: asyncio.Queue[StateChange | FollowEnd] | None = None,
        callback: Callable[[StateChange], object] | None = None,
        policy: PollPolicy | None = None,
    ) -> Listener:
        """Feed a task's changes to ``queue`` or ``callback`` in the background.

        ``callback`` is a function or a coroutine function (awaited for each change, in
        order), as ``on_change`` of :meth:`wait`.  A ``queue`` receives every change and then,
        however the follow ends, one :class:`FollowEnd` saying how (``error`` is ``None``
        when the video exists), so a consumer never waits for a change that will not come.

        Returns a :class:`Listener`: ``await`` it for the :class:`FinishedTask`, ``cancel()``
        it to stop.  It shares the task's poller with every other follower.
        """
        if (queue is None) == (callback is None):
            raise InputError("pass exactly one of queue= or callback=")
        if queue is not None and not isinstance(queue, asyncio.Queue):
            raise InputError(f"queue must be an asyncio.Queue, not {type(queue).__name__}")
        if callback is not None and not callable(callback):
            raise InputError(
                "callback must be a function or async function taking a StateChange, "
                f"not {type(callback).__name__}"
            )
        subscription = self.poll(task_id, policy=policy)
        if queue is None:
            assert callback is not None
            return self._hub.listen(subscription, callback)

        def end(item: FollowEnd) -> None:
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                log.warning("queue full: the end of following task %s was not queued", task_id)

        return self._hub.listen(subscription, queue.put, on_end=end)

    def notify(self, task_id: str) -> bool:
        """Tell the poller of ``task_id`` to look now (a callback arrived). True if watched."""
        return self._hub.notify(task_id)

    async def start_callbacks(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        max_connections: int | None = None,
        header_timeout: float | None = None,
        body_timeout: float | None = None,
    ) -> CallbackReceiver:
        """Listen for ``notify_hook`` deliveries, so followed tasks are polled as they change.

        While the returned :class:`CallbackReceiver` runs, :meth:`generate`, :meth:`extend`
        and :meth:`submit_extend` send its ``hook_url`` as ``notify_hook`` unless given one.
        Callbacks only make polls happen sooner; states still come from GETs.  The receiver
        is closed with the session (or earlier by ``await receiver.close()``).  The bounds
        default to the receiver's (128 connections, 10 s for headers, 10 s for a body).
        """
        self._check_open()
        if self._callbacks is not None and self._callbacks.running:
            raise RuntimeError(f"callbacks are already being received: {self._callbacks!r}")
        from luma_async import _callbacks  # noqa: PLC0415 - aiohttp.web, lazily
        from luma_async._callbacks import CallbackReceiver  # noqa: PLC0415

        receiver = CallbackReceiver(
            self,
            host=host,
            port=port,
            public_url=public_url,
            max_connections=_callbacks.DEFAULT_MAX_CONNECTIONS
            if max_connections is None
            else max_connections,
            header_timeout=_callbacks.DEFAULT_HEADER_TIMEOUT
            if header_timeout is None
            else header_timeout,
            body_timeout=_callbacks.DEFAULT_BODY_TIMEOUT if body_timeout is None else body_timeout,
        )
        await receiver.start()
        self._callbacks = receiver
        return receiver

    def _with_hook(self, request: _R) -> _R:
        """``request`` with the receiver's hook as ``notify_hook`` when it has none.

        Only the body sent carries it: errors keep the caller's request, so the hook's secret
        never shows in an exception.
        """
        receiver = self._callbacks
        if request.notify_hook is not None or receiver is None or not receiver.running:
            return request
        return attrs.evolve(request, notify_hook=receiver.hook_url)

    def extend_many(
        self,
        requests: Iterable[ExtendRequest] | AsyncIterable[ExtendRequest],
        *,
        concurrency: int = 8,
        fail_fast: bool = False,
        policy: PollPolicy | None = None,
        journal: Journal | str | Path | None = None,
        download_to: Path | str | None = None,
        watermark: bool = True,
        on_change: Callable[[StateChange], object] | None = None,
    ) -> Batch:
        """Submit every :class:`ExtendRequest`, follow each to its end, yield results as they end.

        At most ``concurrency`` are in flight at once.  A failed item is reported in its
        :class:`BatchResult`; ``fail_fast=True`` stops the batch after the first failure
        (raising it).  :attr:`Batch.in_flight` lists what was submitted and not seen to end.
        With ``journal`` (a path or :class:`Journal`), every step is recorded in sqlite first,
        and a batch restarted after a crash resumes without submitting anything twice.
        With ``download_to`` (a directory), each finished video is downloaded before its
        result is yielded (``result.path``); a failed download is the result's ``error``.
        ``on_change`` (a function or coroutine function) sees every state change of every
        task, to stream the batch's progress elsewhere.
        """
        self._check_open()
        return make_batch(
            self,
            requests,
            concurrency=concurrency,
            fail_fast=fail_fast,
            policy=self._policy(policy),
            journal=journal,
            download_to=download_to,
            watermark=watermark,
            on_change=on_change,
        )

    async def extend_chain(
        self, task_id: str, prompts: Iterable[str], *, policy: PollPolicy | None = None
    ) -> AsyncIterator[BatchResult]:
        """Grow one video step by step: extend, wait, extend the result again.

        Yields each finished step; ``result.parent_id`` is the task it extended.  A failed
        step raises (the chain cannot go on without its video).
        """
        current = _inputs.check_task_id(task_id)
        steps = [_inputs.check_prompt(prompt) for prompt in _listed(prompts, "prompts")]
        policy = self._policy(policy)  # checked before the first paid request
        for prompt in steps:
            request = ExtendRequest(current, prompt)
            submitted = await self.submit_extend(request)
            done = await self.wait(submitted.id, policy=policy, first=submitted)
            yield BatchResult(request, task=done, task_id=done.id)
            current = done.id

    def _check_open(self) -> None:
        if self._state is SessionState.CLOSED:
            raise SessionClosedError(_CLOSED)

    def _policy(self, policy: PollPolicy | None) -> PollPolicy:
        if policy is None:
            return self.poll_policy
        return check(policy, "policy", _POLICY)


def _listed(values: Iterable[str], name: str) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InputError(
            f"{name} must be a list (or other iterable) of strings, not {type(values).__name__}"
        )
    listed = list(values)
    if not listed:
        raise InputError(f"{name} is empty")
    return listed
