"""Shared fixtures: global state reset before every test, virtual time, the emulator, a session.

A test module picks the poll policy of its ``luma`` session with a marker, so exact-gap
assertions keep the policy they were written for::

    pytestmark = [pytest.mark.asyncio, pytest.mark.poll(PollPolicy(interval=1.0, jitter=0.0))]
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from hypothesis import settings

from luma_async import LumaSession, PollPolicy, _clock
from luma_async.testing import LumaEmulator, VirtualClock, virtual_time

# CI (CI=true) draws Hypothesis examples from a fixed seed, so a submission is judged on what
# it changed, never on a new random draw; runs on a developer's machine keep exploring (and
# keep what they find in .hypothesis/, replayed first next time).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

#: The ``luma`` fixture's policy when a test names none: quick, exact (no jitter), bounded.
FAST = PollPolicy(interval=1.0, max_interval=5.0, jitter=0.0, timeout=300.0)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "poll(policy): the PollPolicy of the `luma` fixture")


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


@pytest_asyncio.fixture
async def luma(
    request: pytest.FixtureRequest, emulator: LumaEmulator
) -> AsyncIterator[LumaSession]:
    """A session on the emulator, polling by the test's ``poll`` marker (else :data:`FAST`)."""
    marker = request.node.get_closest_marker("poll")
    policy = FAST if marker is None else marker.args[0]
    async with LumaSession(emulator.api_key, base_url=emulator.base_url, poll=policy) as session:
        yield session
