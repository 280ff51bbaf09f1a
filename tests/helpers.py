"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio


def ours(tasks: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """The tasks of the library: not the emulator's server side, not the virtual clock."""
    return {
        t
        for t in tasks
        if "RequestHandler" not in getattr(t.get_coro(), "__qualname__", "")
        and t.get_name() != "luma-virtual-clock"
    }
