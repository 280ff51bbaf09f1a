"""``CallbackReceiver``: ``notify_hook`` deliveries as a fast path to the next poll.

Aggregators POST a task to its ``notify_hook`` when its state changes.  Those deliveries are
unsigned, may repeat, arrive out of order or never arrive, so the receiver believes none of
them: it only reads which task the body names and tells the session to poll that task *now*
(:meth:`LumaSession.notify`).  Every state a follower sees still comes from a GET; a callback
can only make it arrive sooner, and a lost callback only costs the time until the next
scheduled poll.

What stands between the internet and the session:

- the hook path ends with a secret of 256 random bits (:func:`secrets.token_urlsafe`), compared
  in constant time; any other path is a 404, so a prober learns nothing;
- only ``POST`` (405 otherwise), bodies of at most ``max_body_bytes`` (413, checked on the
  ``Content-Length`` and again while reading), a JSON object naming a valid task id (400);
- whatever the body claims about the task is ignored;
- the listener cannot be starved: at most ``max_connections`` connections are open at once
  (more are closed as they arrive), a connection must send its request line and headers
  within ``header_timeout`` seconds of opening (a timer of ours: aiohttp 3.10 starts none
  before a first request; its keep-alive timer then closes idle connections between
  requests), and its body within ``body_timeout`` seconds.  Connections that never finish
  their headers are closed, so they cannot exhaust the process's file descriptors.

The answer is ``200 {"ok": true}`` for every acceptable delivery, watched task or not, so the
service stops retrying.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from luma_async import _inputs
from luma_async._errors import InputError
from luma_async._shapes import _is_object, _unwrap
from luma_async._validators import SECONDS, check, whole

if TYPE_CHECKING:
    from luma_async._session import LumaSession

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_PATH_PREFIX",
    "CallbackReceiver",
    "start_receiver",
]

log = logging.getLogger("luma_async")

DEFAULT_PATH_PREFIX = "/luma-hook"
DEFAULT_MAX_BODY_BYTES = 1_048_576
#: Connections open at once; a service delivers a few at a time.
DEFAULT_MAX_CONNECTIONS = 128
#: Seconds for a connection to send its headers (or its next request), and its body.
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 10.0


class _Refused(asyncio.Protocol):
    """What a connection over the cap gets: closed at once, without reading a byte."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast("asyncio.Transport", transport).abort()


class _Rejected(Exception):  # noqa: N818 - control flow: answer with this status
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CallbackReceiver:
    """An HTTP endpoint for ``notify_hook`` deliveries that wakes the session's pollers.

    ``async with CallbackReceiver(luma) as receiver:`` (or :meth:`start` / :meth:`close`)
    listens on ``host``:``port`` (0: a free port).  Give :attr:`hook_url` to the service as
    ``notify_hook`` (:meth:`LumaSession.start_callbacks` does that for you).  Behind a proxy
    or tunnel, pass ``public_url`` (e.g. ``"https://myapp.example.com"``): the address the
    service can reach, to which ``path_prefix`` and the secret are appended.

    At most ``max_connections`` connections are open at once; each must send its headers
    within ``header_timeout`` seconds and its body within ``body_timeout`` seconds, else it is
    closed (a slow body is answered 408).

    :attr:`deliveries` counts accepted deliveries, :attr:`rejected` refused requests,
    :attr:`refused_connections` connections closed for being over the cap.
    """

    def __init__(
        self,
        session: LumaSession,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        path_prefix: str = DEFAULT_PATH_PREFIX,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        if not callable(getattr(session, "notify", None)):
            raise InputError(f"session must be a LumaSession, not {type(session).__name__}")
        if not isinstance(host, str) or not host or any(c.isspace() for c in host):
            raise InputError(f"host must be an address to listen on, not {host!r}")
        check(port, "port", whole(0, at_most=65_535, what="an int from 0 (any free port) to 65535"))
        if public_url is not None:
            public_url = _inputs.check_http_url(public_url, "public_url").rstrip("/")
        if (
            not isinstance(path_prefix, str)
            or not path_prefix.startswith("/")
            or any(c.isspace() or c in "?#" for c in path_prefix)
        ):
            raise InputError(
                f"path_prefix must be a URL path starting with '/', not {path_prefix!r}"
            )
        check(max_body_bytes, "max_body_bytes", whole(1, what="a positive int"))
        check(max_connections, "max_connections", whole(1, what="a positive int"))
        check(header_timeout, "header_timeout", SECONDS)
        check(body_timeout, "body_timeout", SECONDS)
        self._session = session
        self.host = host
        self.port = port
        self.public_url = public_url
        self.path_prefix = path_prefix.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.max_connections = max_connections
        self.header_timeout = float(header_timeout)
        self.body_timeout = float(body_timeout)
        self._listener: asyncio.Server | None = None
        self._secret = secrets.token_urlsafe(32)
        self._path = f"{self.path_prefix}/{self._secret}"
        self._runner: web.AppRunner | None = None
        self._closed = False
        #: Deliveries accepted (answered 200), for watched and unwatched tasks alike.
        self.deliveries = 0
        #: Requests refused (404, 405, 413, 400, 408).
        self.rejected = 0
        #: Connections closed because no request arrived within ``header_timeout``.
        self.silent_connections = 0
        # Connections whose header timer runs and that have sent no request yet (start()).
        self._silent: set[object] = set()
        #: Connections closed on arrival because ``max_connections`` were open.
        self.refused_connections = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.running else "not started"
        where = self._base() if self.running or self.public_url else "(not listening)"
        return (
            f"<CallbackReceiver {where}{self.path_prefix}/*** {state}, "
            f"{self.deliveries} deliveries, {self.rejected} rejected>"
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def hook_url(self) -> str:
        """The URL to pass as ``notify_hook``; it holds the secret, so treat it as one."""
        if not self.running:
            raise RuntimeError("the CallbackReceiver is not running: start() it first")
        return self._base() + self._path

    def _base(self) -> str:
        if self.public_url is not None:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Listen (on a free port when ``port`` is 0); a no-op when already running."""
        if self._closed:
            raise RuntimeError("this CallbackReceiver is closed; create a new one")
        if self._runner is not None:
            return
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.5,
            # aiohttp starts this timer when a connection opens and closes the connection
            # if no whole request arrived in time: the slow-headers (slowloris) bound.
            keepalive_timeout=self.header_timeout,
            # a body left unread (413, 408) is drained so the client reads the answer, but
            # for no longer than a body may take
            lingering_time=self.body_timeout,
        )
        await runner.setup()
        server = runner.server
        assert server is not None

        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.BaseProtocol:
            if len(server.connections) >= self.max_connections:
                self.refused_connections += 1
                return _Refused()
            handler = server()
            self._silent.add(handler)
            loop.call_later(self.header_timeout, self._close_if_silent, handler)
            return handler

        try:
            # Not web.TCPSite: the protocol factory above is the connection cap.
            self._listener = await loop.create_server(protocol, self.host, self.port)
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(self._listener.sockets[0].getsockname()[1])
        self._runner = runner
        log.info("listening for task callbacks at %s%s/***", self._base(), self.path_prefix)

    async def close(self) -> None:
        """Stop listening and drop open connections. Safe to call twice."""
        self._closed = True
        runner, self._runner = self._runner, None
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # accept no more
        if runner is not None:
            await runner.cleanup()  # ends the open connections
        if listener is not None:
            await listener.wait_closed()

    async def __aenter__(self) -> CallbackReceiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- deliveries ------------------------------------------------------------------------

    def _close_if_silent(self, handler: web.RequestHandler) -> None:
        """``header_timeout`` after a connection opened: close it if no request arrived."""
        if handler not in self._silent:
            return
        self._silent.discard(handler)
        if handler.transport is not None:
            self.silent_connections += 1
            handler.transport.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._silent.discard(request.protocol)
        try:
            task_id = await self._task_id(request)
        except _Rejected as rejected:
            self.rejected += 1
            log.debug(
                "refused a callback request from %s: %s %s",
                request.remote,
                rejected.status,
                rejected.reason,
            )
            headers = {"Allow": "POST"} if rejected.status == 405 else None
            return web.json_response(
                {"ok": False, "error": rejected.reason}, status=rejected.status, headers=headers
            )
        self.deliveries += 1
        watched = self._session.notify(task_id)
        log.debug("callback for task %s (%s)", task_id, "polling now" if watched else "not watched")
        return web.json_response({"ok": True})

    async def _task_id(self, request: web.Request) -> str:
        """The task id a delivery names, or :class:`_Rejected` with the status to answer."""
        candidate = request.rel_url.raw_path.encode("utf-8", "replace")
        if not hmac.compare_digest(candidate, self._path.encode()):
            raise _Rejected(404, "not found")
        if request.method != "POST":
            raise _Rejected(405, "only POST is accepted")
        try:
            raw = await asyncio.wait_for(self._read(request), self.body_timeout)
        except asyncio.TimeoutError:
            raise _Rejected(408, f"the body did not arrive within {self.body_timeout}s") from None
        try:
            data: Any = json.loads(raw)
            task: Any = _unwrap(data)
        except (ValueError, TypeError, RecursionError) as exc:
            raise _Rejected(400, f"the body is not a JSON task: {exc}") from None
        if not _is_object(task):
            raise _Rejected(400, "the body is not a JSON object")
        try:
            return _inputs.check_task_id(task.get("id"), name="id")
        except InputError as exc:
            raise _Rejected(400, str(exc)) from None

    async def _read(self, request: web.Request) -> bytes:
        limit = self.max_body_bytes
        too_large = _Rejected(413, f"the body is larger than {limit} bytes")
        length = request.content_length
        if length is not None and length > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)


async def start_receiver(
    session: LumaSession,
    *,
    host: str,
    port: int,
    public_url: str | None,
    max_connections: int | None,
    header_timeout: float | None,
    body_timeout: float | None,
) -> CallbackReceiver:
    """A running receiver for :meth:`LumaSession.start_callbacks`; a bound left ``None``
    takes the receiver's default."""
    receiver = CallbackReceiver(
        session,
        host=host,
        port=port,
        public_url=public_url,
        max_connections=DEFAULT_MAX_CONNECTIONS if max_connections is None else max_connections,
        header_timeout=DEFAULT_HEADER_TIMEOUT if header_timeout is None else header_timeout,
        body_timeout=DEFAULT_BODY_TIMEOUT if body_timeout is None else body_timeout,
    )
    await receiver.start()
    return receiver
