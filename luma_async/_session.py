"""``LumaSession``: submit generations and extensions, read tasks, follow them to the end.

This module holds the session's life and its requests (one method per endpoint, each a
``_protocol`` request sent through the ``Client``); the methods that follow tasks come from
its base class, :class:`~luma_async._following.Following`.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp

from luma_async import _inputs, _lifecycle, _protocol
from luma_async._budget import Budget
from luma_async._errors import InputError
from luma_async._following import Following
from luma_async._lifecycle import SessionState
from luma_async._models import (
    Account,
    ExtendRequest,
    GenerateRequest,
    ImageInput,
    Task,
    UploadedFile,
    Usage,
    Video,
)
from luma_async._options import DEFAULT_BASE_URL, DEFAULT_MAX_BYTES, SessionOptions
from luma_async._policy import PollPolicy, RequestBudget, RetryPolicy
from luma_async._transport import AiohttpTransport, Client, Transport
from luma_async._watch import Hub

if TYPE_CHECKING:
    from luma_async._callbacks import CallbackReceiver
    from luma_async._download import ProgressCallback

__all__ = ["DEFAULT_BASE_URL", "LumaSession", "SessionState"]


class LumaSession(Following):
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
        self._transport: Transport = AiohttpTransport(self._aiohttp, timeout=float(options.timeout))
        self._api = Client(
            base_url=self.base_url,
            api_key=options.api_key,
            retry=self.retry,
            user_agent=_lifecycle.user_agent(),
            budget=self.budget,
            transport=self._transport,
        )
        self._hub = Hub(
            self._fetch_once,
            self._fetch_many,
            batch=options.batch_refresh,
            window=options.batch_window,
            connections=self.budget.policy.max_connections or _lifecycle.DEFAULT_CONNECTIONS,
        )
        self._callbacks: CallbackReceiver | None = None

    def __repr__(self) -> str:
        owner = "own" if self._owns_session else "borrowed"
        state = self._state.value
        return f"<LumaSession {self.base_url} api_key=*** {owner} aiohttp session, {state}>"

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> LumaSession:
        _lifecycle.check_enter(self._state)
        self._aiohttp()
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

    def _aiohttp(self) -> aiohttp.ClientSession:
        """The aiohttp session (made on first use), refused once this one is closed.

        A plain function, not a coroutine: the transport asks for it on every request.
        """
        session = self._session
        if session is None or self._state is SessionState.CLOSED:
            self._check_open()
            session = self._session = _lifecycle.client_session(self.budget.policy.max_connections)
        return session

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
        body = _inputs.generate_body(
            request, max_image_bytes=self.max_image_bytes, hook=self._hook_url()
        )
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
        body = _inputs.extend_body(
            request, max_image_bytes=self.max_image_bytes, hook=self._hook_url()
        )
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
        max_bytes: int = DEFAULT_MAX_BYTES,
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
        from luma_async import _download  # noqa: PLC0415 - the download modules, on first use

        return await _download.download_for(
            self,
            self._aiohttp,
            task_or_video,
            dest,
            watermark=watermark,
            progress=progress,
            max_bytes=max_bytes,
            retry=self.retry,
        )

    async def upload(self, image: ImageInput) -> UploadedFile:
        """Upload an image (URL, ``Path`` or ``bytes``); use ``.public_url`` in later requests."""
        value = _inputs.image_value(image, "image", max_bytes=self.max_image_bytes)
        if value is None:
            raise InputError("image is required: an http(s) URL, a pathlib.Path or bytes")
        request = image if isinstance(image, str) else f"<{type(image).__name__} image>"
        return await self._api.send(_protocol.file_upload(value, request))

    # -- callbacks -------------------------------------------------------------------------

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
        from luma_async._callbacks import start_receiver  # noqa: PLC0415 - aiohttp.web, lazily

        self._callbacks = await start_receiver(
            self,
            host=host,
            port=port,
            public_url=public_url,
            max_connections=max_connections,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
        )
        return self._callbacks

    def _hook_url(self) -> str | None:
        """The running receiver's hook, sent when a request has no ``notify_hook`` (only in
        the body: errors keep the caller's request, so its secret never shows in one)."""
        receiver = self._callbacks
        return receiver.hook_url if receiver is not None and receiver.running else None

    def _check_open(self) -> None:
        _lifecycle.check_open(self._state)
