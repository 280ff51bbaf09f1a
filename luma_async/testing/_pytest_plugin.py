"""pytest plugin of luma-async (entry point ``luma_async``): emulator and virtual-time fixtures.

``luma_emulator``
    A running :class:`~luma_async.testing.LumaEmulator` on its own event loop in a background
    thread, so it serves sync tests, pytest-asyncio tests and anyio tests alike.  Options come
    from the marker: ``@pytest.mark.luma_emulator(time_scale=0.01, dialect="gateway")``.
    From async code, await its coroutines directly only on its loop; from the test, use
    ``luma_emulator.run_threadsafe(luma_emulator.restart())``.
``luma_virtual_time``
    :func:`luma_async.testing.virtual_time` for the test: yields the
    :class:`~luma_async.testing.VirtualClock`; no wait of luma-async really sleeps.

The two do not mix (the emulator thread runs on real time): a test asking for both fails at
setup with a message saying what to use instead.

The emulator is imported lazily, so merely having luma-async installed costs pytest nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from luma_async._clock import VirtualClock
    from luma_async.testing._emulator import LumaEmulator

_MARKER = "luma_emulator"

_BOTH = (
    "the luma_emulator and luma_virtual_time fixtures do not mix: luma_emulator runs the "
    "emulator in a background thread on real time, so under virtual time the client's "
    "polls would jump ahead while the emulated tasks do not move, and the test would end "
    "in a misleading PollTimeoutError. Use luma_virtual_time with an emulator on the "
    "test's own loop (async with LumaEmulator() as emu: ...), or luma_emulator without "
    "luma_virtual_time (a small time_scale makes it fast: "
    "@pytest.mark.luma_emulator(time_scale=0.01))."
)


def _refuse_both(request: pytest.FixtureRequest) -> None:
    if {"luma_emulator", "luma_virtual_time"} <= set(request.fixturenames):
        pytest.fail(_BOTH, pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): keyword options of the LumaEmulator behind the "
        "luma_emulator fixture (time_scale, dialect, envelope, task_shape, batch_route, "
        "unrouted, media, upstream_expired, wrong_task_answers, ...)",
    )


@pytest.fixture
def luma_emulator(request: pytest.FixtureRequest) -> Iterator[LumaEmulator]:
    """A running LumaEmulator (in a background thread); configure it with the marker."""
    from luma_async.testing._emulator import LumaEmulator  # noqa: PLC0415 - lazy on purpose

    _refuse_both(request)
    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, object] = {}
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{_MARKER} takes keyword options only, got {marker.args!r}"
            )
        options = dict(marker.kwargs)
    with LumaEmulator.in_thread(**options) as emulator:
        yield emulator


@pytest.fixture
def luma_virtual_time(request: pytest.FixtureRequest) -> Iterator[VirtualClock]:
    """Simulated time for the test (see :func:`luma_async.testing.virtual_time`).

    Not with ``luma_emulator`` (real time, another thread): the test fails at setup.
    """
    from luma_async.testing import virtual_time  # noqa: PLC0415 - lazy on purpose

    _refuse_both(request)
    with virtual_time() as clock:
        yield clock
