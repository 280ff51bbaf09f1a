"""Serving the emulator: in the caller's loop, until cancelled, or in a background thread.

:class:`LumaEmulator` is the emulator with its lifecycle: ``async with`` (or
:meth:`~LumaEmulator.start` / :meth:`~LumaEmulator.close`) in the caller's loop, and
:meth:`~LumaEmulator.serve_forever`, the one loop that serves until cancelled, which
:func:`serve` (the ``luma-async emulator`` command) and :class:`EmulatorThread` (the pytest
fixture, :meth:`LumaEmulator.in_thread`) both run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from luma_async.testing._emulator.handlers import Handlers

_E = TypeVar("_E", bound="LumaEmulator")
_T = TypeVar("_T")


class LumaEmulator(Handlers):
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
        await self._stop_callbacks()
        self._started = False

    async def restart(self) -> None:
        """Stop listening (dropping open connections), then listen again on the same ports.

        Tasks, records and faults survive, like a server restart behind a load balancer.
        """
        self._require_started()
        await self._stop_listening()
        await self._listen()

    async def serve_forever(  # noqa: PYI019 - typing.Self is 3.11+
        self: _E, *, ready: Callable[[_E], object] | None = None
    ) -> None:
        """Serve until cancelled, then close: how every runner of the emulator serves.

        Starts (a no-op when running), calls ``ready(self)`` once it listens, and closes
        however it ends, also when starting fails.
        """
        try:
            await self.start()
            if ready is not None:
                ready(self)
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


class EmulatorThread:
    """Runs a :class:`LumaEmulator` on its own event loop in a daemon thread.

    ``with EmulatorThread(LumaEmulator()) as emu:`` starts it and yields the emulator; leaving
    the block closes it, stops the loop and joins the thread.  Use
    :meth:`LumaEmulator.run_threadsafe` to await its coroutines (``restart``) from outside.
    The thread runs :meth:`LumaEmulator.serve_forever`; stopping cancels it.
    """

    def __init__(self, emulator: LumaEmulator, *, timeout: float = 30.0) -> None:
        self.emulator = emulator
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._served: asyncio.Task[None] | None = None
        self._listening: concurrent.futures.Future[None] | None = None

    def __enter__(self) -> LumaEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LumaEmulator:
        """Start the thread and return once the emulator listens (or raise why it cannot)."""
        if self._thread is not None:
            raise RuntimeError("the emulator thread is already running")
        listening: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()
        # Created before the loop runs (the thread's start orders it before any use), so
        # stop() always has a task to cancel.
        served = loop.create_task(
            self.emulator.serve_forever(ready=lambda _: listening.set_result(None)),
            name="luma-emulator",
        )
        thread = threading.Thread(
            target=self._run, args=(loop, served, listening), name="luma-emulator", daemon=True
        )
        self._loop, self._thread, self._served = loop, thread, served
        self._listening = listening
        thread.start()
        try:
            listening.result(self.timeout)
        except BaseException:
            self.stop()
            raise
        return self.emulator

    def stop(self) -> None:
        """Cancel the serving (the emulator closes), then join the thread; idempotent."""
        loop, thread, served, listening = self._loop, self._thread, self._served, self._listening
        if loop is None or thread is None or served is None or listening is None:
            return
        try:
            if thread.is_alive():
                loop.call_soon_threadsafe(served.cancel)
        except RuntimeError:  # the loop closed meanwhile: serving already ended
            pass
        thread.join(self.timeout)
        self._loop = self._thread = self._served = self._listening = None
        if thread.is_alive():
            raise TimeoutError(f"the emulator did not stop within {self.timeout} seconds")
        started = listening.done() and listening.exception() is None
        error = None if served.cancelled() else served.exception()
        if started and error is not None:
            raise error  # closing failed

    @staticmethod
    def _run(
        loop: asyncio.AbstractEventLoop,
        served: asyncio.Task[None],
        listening: concurrent.futures.Future[None],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(served)
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that started it
            if not listening.done():
                listening.set_exception(exc)
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
    await LumaEmulator(host=host, port=port, **options).serve_forever(ready=ready)
