"""Shared fixtures: global state reset before every test, virtual time, the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from luma_async import _clock
from luma_async.testing import LumaEmulator, VirtualClock, virtual_time


@pytest.fixture(autouse=True)
def _reset_global_state() -> Iterator[None]:
    """Every test starts on the real clock and leaves it there."""
    previous = _clock.set_clock(_clock.RealClock())
    yield
    _clock.set_clock(previous)


@pytest.fixture
def vclock() -> Iterator[VirtualClock]:
    """Simulated time: backoff and poll waits end at once, and the emulator sees time pass."""
    with virtual_time() as clock:
        yield clock


@pytest_asyncio.fixture
async def emulator(vclock: VirtualClock) -> AsyncIterator[LumaEmulator]:
    """An emulator in the test's own event loop, on virtual time."""
    async with LumaEmulator() as emu:
        yield emu
