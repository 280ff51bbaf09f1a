"""The request path's shortcuts (issue 14) keep every behaviour of the slow path they skip.

The budget hands a slot out without an await when it has nothing to wait for, and only then.
"""

from __future__ import annotations

import pytest

from luma_async import RequestBudget
from luma_async._budget import Budget
from luma_async._clock import VirtualClock

pytestmark = pytest.mark.asyncio


def test_an_unlimited_budget_gives_a_slot_at_once_and_counts_it() -> None:
    budget = Budget()
    assert budget.take()
    assert budget.take()
    assert (budget.in_flight, budget.peak_in_flight) == (2, 2)
    budget.release()
    budget.release()
    assert budget.take()
    assert (budget.in_flight, budget.peak_in_flight) == (1, 2)
    budget.release()
    assert budget.in_flight == 0


@pytest.mark.parametrize(
    "policy", [RequestBudget(max_rate=100.0), RequestBudget(max_connections=4)]
)
def test_a_limited_budget_never_gives_a_slot_without_waiting_in_acquire(
    policy: RequestBudget,
) -> None:
    budget = Budget(policy)
    assert not budget.take()
    assert (budget.in_flight, budget.peak_in_flight) == (0, 0)


def test_a_paused_budget_gives_no_slot_until_the_pause_is_over(vclock: VirtualClock) -> None:
    budget = Budget()
    budget.slow_down(2.0)
    assert not budget.take()
    vclock.advance(1.9)
    assert not budget.take()
    assert budget.in_flight == 0
    vclock.advance(0.2)
    assert budget.take()
    assert budget.in_flight == 1


async def test_acquire_after_a_refused_take_waits_out_the_pause(vclock: VirtualClock) -> None:
    budget = Budget()
    start = vclock.monotonic()
    budget.slow_down(3.0)
    assert not budget.take()
    await budget.acquire()
    assert vclock.monotonic() == pytest.approx(start + 3.0)
    assert budget.in_flight == 1
    budget.release()
    assert budget.in_flight == 0
