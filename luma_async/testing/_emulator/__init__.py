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

Layout.  ``tasks.py`` and ``shapes.py`` are pure (a task's state over time, and every wire
shape: task shapes, media placement, envelopes, error dialects, batch answers);
``faults.py`` queues injected faults; ``state.py`` holds options, tasks and records;
``callbacks.py`` calls ``notify_hook`` back; ``server.py`` and ``handlers.py`` answer HTTP;
``runner.py`` serves (``LumaEmulator`` itself, :class:`EmulatorThread`, :func:`serve`).
None of them imports the client library: only :mod:`luma_async._clock`.
"""

from __future__ import annotations

from luma_async.testing._emulator.faults import ROUTES, Fault
from luma_async.testing._emulator.handlers import _ranged
from luma_async.testing._emulator.runner import EmulatorThread, LumaEmulator, serve
from luma_async.testing._emulator.server import _json_response
from luma_async.testing._emulator.shapes import (
    BATCH_ROUTES,
    UPSTREAM_UNAUTHENTICATED_BODY,
    BatchRoute,
    Deployment,
    Dialect,
    Envelope,
    Reply,
    Unrouted,
)
from luma_async.testing._emulator.state import CallbackDelivery, RecordedRequest
from luma_async.testing._emulator.tasks import MEDIA_PLACES, EmulatedTask, Media, TaskShape

__all__ = [
    "BATCH_ROUTES",
    "MEDIA_PLACES",
    "ROUTES",
    "UPSTREAM_UNAUTHENTICATED_BODY",
    "BatchRoute",
    "CallbackDelivery",
    "Deployment",
    "Dialect",
    "EmulatedTask",
    "EmulatorThread",
    "Envelope",
    "Fault",
    "LumaEmulator",
    "Media",
    "RecordedRequest",
    "Reply",
    "TaskShape",
    "Unrouted",
    "_json_response",
    "_ranged",
    "serve",
]
