"""The hub's connection gate: polls by GET queue for one of ``connections`` slots, in order.

Thousands of followed tasks poll through it; a poll cancelled while queued (its follower
left) or while holding a slot never loses the slot for the others.  Virtual time.
"""

from __future__ import annotations

import asyncio

import pytest

from luma_async import Task, TaskState
from luma_async._clock import sleep
from luma_async._refresh import Refresher
from luma_async.testing import VirtualClock

pytestmark = pytest.mark.asyncio


class Server:
    """fetch_one for a Refresher: each GET takes a virtual second; counts what is in flight."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.started: list[str] = []

    async def fetch_one(self, task_id: str) -> Task:
        self.started.append(task_id)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await sleep(1.0)
        finally:
            self.in_flight -= 1
        return Task(task_id, TaskState.PROCESSING)


async def no_batch(_: list[str]) -> list[Task] | str:
    raise AssertionError("no batch refresh here")


def refresher(server: Server, connections: int) -> Refresher:
    return Refresher(
        server.fetch_one,
        no_batch,
        batch=False,
        window=0.05,
        watched=lambda: 1,
        connections=connections,
    )


async def test_polls_queue_for_a_slot_in_order(vclock: VirtualClock) -> None:
    server = Server()
    gate = refresher(server, 2)
    started = vclock.monotonic()
    ids = [f"t{i}" for i in range(7)]
    tasks = await asyncio.gather(*(gate.fetch(i) for i in ids))
    assert [t.id for t in tasks] == ids
    assert server.most == 2
    assert server.started == ids  # first come, first served
    assert vclock.monotonic() - started == 4.0  # 7 GETs of 1 s, 2 at a time


async def test_a_cancelled_poll_never_loses_a_slot(vclock: VirtualClock) -> None:
    server = Server()
    gate = refresher(server, 1)
    holder = asyncio.ensure_future(gate.fetch("a"))
    queued = asyncio.ensure_future(gate.fetch("b"))
    last = asyncio.ensure_future(gate.fetch("c"))
    await asyncio.sleep(0)
    queued.cancel()  # left while waiting for the slot
    assert (await holder).id == "a"
    assert (await last).id == "c"
    assert queued.cancelled()
    # a poll cancelled while it holds the slot gives it back too
    held = asyncio.ensure_future(gate.fetch("d"))
    await asyncio.sleep(0)
    assert server.in_flight == 1
    held.cancel()
    await asyncio.gather(held, return_exceptions=True)
    assert (await asyncio.wait_for(gate.fetch("e"), 5)).id == "e"
    assert server.started == ["a", "c", "d", "e"]
    assert server.most == 1


async def test_a_slot_handed_to_a_poll_cancelled_before_it_ran_goes_on(
    vclock: VirtualClock,
) -> None:
    server = Server()
    gate = refresher(server, 1)
    queued: asyncio.Future[Task] | None = None

    async def first_then_cancel_the_next() -> Task:
        task = await gate.fetch("a")
        assert queued is not None
        queued.cancel()  # the slot was just handed to "b", which has not run yet
        return task

    holder = asyncio.ensure_future(first_then_cancel_the_next())
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(gate.fetch("b"))
    last = asyncio.ensure_future(gate.fetch("c"))
    assert (await holder).id == "a"
    assert (await last).id == "c"
    assert queued.cancelled()
    assert server.started == ["a", "c"]
    assert server.most == 1
