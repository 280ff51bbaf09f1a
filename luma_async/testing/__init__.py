"""Test your code against luma-async's emulator, without the network or real waiting."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager

from luma_async._clock import VirtualClock, set_clock
from luma_async.testing._emulator import (
    CallbackDelivery,
    EmulatedTask,
    EmulatorThread,
    Fault,
    LumaEmulator,
    RecordedRequest,
)

__all__ = [
    "CallbackDelivery",
    "EmulatedTask",
    "EmulatorThread",
    "Fault",
    "LumaEmulator",
    "RecordedRequest",
    "VirtualClock",
    "virtual_time",
]


@contextmanager
def virtual_time(start: float = 1_000.0) -> Generator[VirtualClock, None, None]:
    """Run the block on simulated time: no wait of luma-async (or its emulator) really sleeps.

    Install it before starting the emulator, so tasks are timed on the same clock.
    """
    clock = VirtualClock(start)
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
