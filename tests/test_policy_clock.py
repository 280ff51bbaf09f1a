"""Policy objects, the poll-wait formula, the clocks and the session-wide request budget."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from luma_async import (
    InputError,
    PollPolicy,
    RequestBudget,
    RetryPolicy,
    Task,
    TaskState,
    Video,
)
from luma_async._budget import Budget
from luma_async._clock import RealClock, VirtualClock, Wakeup, get_clock
from luma_async._poll import follow, next_wait

pytestmark = pytest.mark.asyncio

# --- policy validation -----------------------------------------------------------------------


def test_policy_defaults_match_the_contract() -> None:
    poll = PollPolicy()
    assert (poll.interval, poll.max_interval, poll.backoff, poll.jitter, poll.timeout) == (
        2.0,
        15.0,
        1.5,
        0.5,
        900.0,
    )
    retry = RetryPolicy()
    assert (retry.attempts, retry.initial, retry.max_wait, retry.timeout) == (5, 0.5, 20.0, 60.0)
    budget = RequestBudget()
    assert budget.max_rate is None
    assert budget.max_connections is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval": 0},
        {"interval": -1},
        {"interval": math.nan},
        {"interval": math.inf},
        {"interval": True},
        {"interval": "2"},
        {"max_interval": 0},
        {"interval": 10, "max_interval": 5},
        {"backoff": 0.5},
        {"backoff": 0},
        {"jitter": -0.1},
        {"jitter": math.nan},
        {"timeout": 0},
        {"timeout": -5},
        {"timeout": math.inf},
        {"pending_factor": 0},
    ],
)
def test_bad_poll_policies(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        PollPolicy(**kwargs)


def test_poll_policy_message_names_the_field() -> None:
    with pytest.raises(InputError, match="interval must be a positive number of seconds"):
        PollPolicy(interval=-1)
    with pytest.raises(InputError, match=r"max_interval.*must not be below interval"):
        PollPolicy(interval=10, max_interval=5)


def test_good_poll_policies() -> None:
    assert PollPolicy(timeout=None).timeout is None
    assert PollPolicy(jitter=0).jitter == 0
    assert PollPolicy(interval=3, max_interval=3, backoff=1).backoff == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": -1},
        {"attempts": 1.5},
        {"attempts": True},
        {"initial": 0},
        {"max_wait": -1},
        {"timeout": 0},
        {"timeout": math.nan},
        {"jitter": -1},
    ],
)
def test_bad_retry_policies(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        RetryPolicy(**kwargs)


def test_retry_policy_message() -> None:
    with pytest.raises(InputError, match="attempts must be a whole number of at least 1"):
        RetryPolicy(attempts=0)
    assert RetryPolicy(attempts=1).attempts == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_rate": 0},
        {"max_rate": -2},
        {"max_rate": math.inf},
        {"max_connections": 0},
        {"max_connections": 2.5},
        {"max_connections": True},
        {"pause": 0},
        {"recovery": 0},
    ],
)
def test_bad_budgets(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        RequestBudget(**kwargs)


def test_policies_are_frozen() -> None:
    policy = PollPolicy()
    with pytest.raises(AttributeError):
        policy.interval = 1.0  # type: ignore[misc]


# --- next_wait -----------------------------------------------------------------------------

EXACT = PollPolicy(interval=2.0, max_interval=15.0, backoff=1.5, jitter=0)


def running(estimate: float | None = None, state: str = TaskState.PROCESSING) -> Task:
    return Task(id="t", state=state, estimate_wait_seconds=estimate)


def test_waits_grow_by_backoff_up_to_the_cap() -> None:
    waits = [next_wait(EXACT, attempt, running(), None) for attempt in range(1, 10)]
    assert waits[:4] == pytest.approx([2.0, 3.0, 4.5, 6.75])
    assert waits[-1] == 15.0
    assert max(waits) == 15.0
    assert waits == sorted(waits)


@pytest.mark.parametrize("attempt", [1_750, 1_800, 10**6, 10**12])
@pytest.mark.parametrize("backoff", [1.01, 1.5, 2.0, 1e6, 1e300])
def test_waits_never_overflow_however_many_polls(attempt: int, backoff: float) -> None:
    policy = PollPolicy(interval=2.0, max_interval=15.0, backoff=backoff, jitter=0)
    assert next_wait(policy, attempt, running(), None) == 15.0
    assert next_wait(policy, attempt, running(state=TaskState.PENDING), None) == 15.0


def test_waits_at_the_edges_of_floats() -> None:
    wide = PollPolicy(interval=1e-300, max_interval=1e300, backoff=1e300, jitter=0)
    assert [next_wait(wide, n, None, None) for n in (1, 2, 3, 10**9)] == [
        1e-300,
        1.0,
        1e300,
        1e300,
    ]
    flat = PollPolicy(interval=2.0, max_interval=15.0, backoff=1.0, jitter=0)
    assert next_wait(flat, 10**9, None, None) == 2.0


async def test_a_follow_runs_for_any_number_of_polls(vclock: VirtualClock) -> None:
    """Issue 11.4: after ~1,750 polls ``interval * backoff ** n`` overflowed the float."""
    polls = 0

    async def fetch() -> Task:
        nonlocal polls
        polls += 1
        state = TaskState.COMPLETED if polls >= 3_000 else TaskState.PROCESSING
        video = Video("https://cdn.example/v.mp4") if polls >= 3_000 else None
        return Task(id="t", state=state, video=video)

    policy = PollPolicy(interval=1.0, max_interval=2.0, backoff=1.5, jitter=0, timeout=None)
    changes = [change async for change in follow(fetch, "t", policy)]
    assert polls == 3_000
    assert changes[-1].state == TaskState.COMPLETED


def test_first_wait_without_a_task() -> None:
    assert next_wait(EXACT, 1, None, None) == 2.0
    assert next_wait(EXACT, 0, None, None) == 2.0  # never below the interval


def test_pending_waits_longer_but_not_past_the_cap() -> None:
    pending = running(state=TaskState.PENDING)
    assert next_wait(EXACT, 1, pending, None) == pytest.approx(3.0)
    assert next_wait(EXACT, 2, pending, None) == pytest.approx(4.5)
    assert next_wait(EXACT, 20, pending, None) == 15.0


@pytest.mark.parametrize(
    ("estimate", "expected"),
    [(7.0, 7.0), (0.5, 2.0), (600.0, 15.0)],
)
def test_estimate_is_used_and_clamped(estimate: float, expected: float) -> None:
    # the estimate replaces the backoff sequence, whatever the attempt number
    for attempt in (1, 5):
        assert next_wait(EXACT, attempt, running(estimate), None) == pytest.approx(expected)


def test_estimate_of_zero_is_no_estimate() -> None:
    assert next_wait(EXACT, 3, running(0.0), None) == pytest.approx(4.5)


def test_estimate_ignored_when_switched_off() -> None:
    policy = PollPolicy(interval=2.0, max_interval=15.0, jitter=0, use_estimate=False)
    assert next_wait(policy, 1, running(10.0), None) == 2.0


def test_estimate_beats_the_pending_factor() -> None:
    assert next_wait(EXACT, 1, running(5.0, TaskState.PENDING), None) == pytest.approx(5.0)


def test_retry_after_hint_wins() -> None:
    assert next_wait(EXACT, 1, running(), 9.0) == 9.0
    assert next_wait(EXACT, 1, running(), 60.0) == 60.0  # even above max_interval
    assert next_wait(EXACT, 5, running(), 0.1) == pytest.approx(2.0 * 1.5**4)  # never shorter


def test_jitter_spreads_within_bounds() -> None:
    policy = PollPolicy(interval=2.0, max_interval=15.0, jitter=1.0)
    waits = {next_wait(policy, 1, running(), None) for _ in range(200)}
    assert all(2.0 <= wait <= 3.0 for wait in waits)
    assert len(waits) > 100  # really spread, not one fixed value


# --- VirtualClock ------------------------------------------------------------------------------


async def test_virtual_sleep_advances_virtual_time_only() -> None:
    clock = VirtualClock(start=100.0)
    real = time.monotonic()
    assert await clock.sleep(3600) is False
    assert clock.monotonic() == 3700.0
    assert time.monotonic() - real < 1.0


async def test_virtual_sleepers_wake_in_order_of_wake_time() -> None:
    clock = VirtualClock(start=0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    await asyncio.gather(
        sleeper("c", 30), sleeper("a", 10), sleeper("d", 40), sleeper("b", 20), sleeper("a2", 10)
    )
    assert woke == [("a", 10.0), ("a2", 10.0), ("b", 20.0), ("c", 30.0), ("d", 40.0)]


async def test_virtual_clock_waits_for_busy_work_before_jumping() -> None:
    clock = VirtualClock(start=0.0)
    steps = 0

    async def busy() -> None:
        nonlocal steps
        for _ in range(50):
            steps += 1
            await asyncio.sleep(0)

    async def sleeper() -> float:
        await clock.sleep(5)
        return steps

    seen, _ = await asyncio.gather(sleeper(), busy())
    assert seen == 50  # time did not jump while other work was runnable


async def test_advance_ends_due_sleeps_only() -> None:
    clock = VirtualClock(start=0.0)
    clock.advance(5)
    assert clock.monotonic() == 5.0
    clock.advance(-3)  # never backwards
    assert clock.monotonic() == 5.0

    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.monotonic())

    short = asyncio.create_task(sleeper(2))
    long = asyncio.create_task(sleeper(10))
    await asyncio.sleep(0)  # both are now sleeping
    clock.advance(3)
    await short
    assert woke == [8.0]
    assert not long.done()
    await long  # the rest of its sleep is still honoured: woken at 15, not 18
    assert woke == [8.0, 15.0]


async def test_wakeup_cuts_a_virtual_sleep_short() -> None:
    clock = VirtualClock(start=0.0)
    wakeup = Wakeup()

    async def waker() -> None:
        await clock.sleep(1)
        wakeup.wake()

    interrupted, _ = await asyncio.gather(clock.sleep(100, wakeup), waker())
    assert interrupted is True
    assert clock.monotonic() == 1.0


async def test_wake_before_the_sleep_is_not_lost() -> None:
    clock = VirtualClock(start=0.0)
    wakeup = Wakeup()
    wakeup.wake()
    assert await clock.sleep(100, wakeup) is True
    assert clock.monotonic() == 0.0
    # used up: the next sleep runs its full length
    assert await clock.sleep(100, wakeup) is False
    assert clock.monotonic() == 100.0


def driver_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "luma-virtual-clock"]


async def test_cancelling_a_sleeper_leaves_no_driver_running() -> None:
    clock = VirtualClock(start=0.0, settle_rounds=1_000_000)  # never jumps on its own
    wakeup = Wakeup()
    sleeper = asyncio.create_task(clock.sleep(50, wakeup))
    await asyncio.sleep(0)
    assert len(driver_tasks()) == 1
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    for _ in range(5):
        await asyncio.sleep(0)
    assert driver_tasks() == []
    assert clock.monotonic() == 0.0  # cancelling did not move time
    wakeup.wake()  # the cancelled sleep is detached: the wake-up is kept for the next one
    assert await clock.sleep(10, wakeup) is True


async def test_driver_stops_when_nothing_sleeps() -> None:
    clock = VirtualClock()
    await clock.sleep(1)
    for _ in range(5):
        await asyncio.sleep(0)
    assert driver_tasks() == []


# --- RealClock -----------------------------------------------------------------------------------


async def test_real_clock_sleeps_for_real() -> None:
    clock = RealClock()
    assert isinstance(get_clock(), RealClock)  # the autouse fixture keeps the real clock
    start = clock.monotonic()
    assert await clock.sleep(0.02) is False
    assert clock.monotonic() - start >= 0.015
    assert await clock.sleep(-1) is False  # negative is no wait, not an error


async def test_real_clock_wakeup() -> None:
    clock = RealClock()
    wakeup = Wakeup()
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, wakeup.wake)
    start = time.monotonic()
    assert await clock.sleep(30, wakeup) is True
    assert time.monotonic() - start < 5

    assert await clock.sleep(0.01, wakeup) is False  # a sleep that ran out
    wakeup.wake()  # nobody sleeping: kept for the next sleep
    start = time.monotonic()
    assert await clock.sleep(30, wakeup) is True
    assert time.monotonic() - start < 5


async def test_real_clock_cancel_cleans_up() -> None:
    clock = RealClock()
    wakeup = Wakeup()
    sleeper = asyncio.create_task(clock.sleep(30, wakeup))
    await asyncio.sleep(0.005)
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    wakeup.wake()
    assert await clock.sleep(30, wakeup) is True  # not swallowed by the cancelled sleep


# --- Budget on virtual time ---------------------------------------------------------------------


@asynccontextmanager
async def slot(budget: Budget) -> AsyncIterator[None]:
    """One request's slot, taken by the budget's general path (``acquire``; the no-await
    ``take``/``take_free`` fast paths are pinned in tests/test_perf_cuts.py)."""
    await budget.acquire()
    try:
        yield
    finally:
        budget.release()


async def take_slots(budget: Budget, count: int, clock: VirtualClock) -> list[float]:
    times: list[float] = []

    async def one() -> None:
        async with slot(budget):
            times.append(clock.monotonic())

    await asyncio.gather(*(one() for _ in range(count)))
    return sorted(times)


async def test_unlimited_budget_never_waits(vclock: VirtualClock) -> None:
    start = vclock.monotonic()
    times = await take_slots(Budget(), 50, vclock)
    assert times == [start] * 50


async def test_rate_spaces_requests_evenly(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_rate=10))
    start = vclock.monotonic()
    times = await take_slots(budget, 20, vclock)
    assert times[0] == start
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.1] * 19)
    assert times[-1] - start == pytest.approx(1.9)  # N slots take about N/rate


async def test_rate_applies_to_sequential_requests(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_rate=4))
    start = vclock.monotonic()
    for _ in range(9):
        async with slot(budget):
            pass
    assert vclock.monotonic() - start == pytest.approx(2.0)


async def test_slow_down_pauses_everyone_and_halves_the_rate(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_rate=10))
    start = vclock.monotonic()
    budget.slow_down(5.0)
    assert budget.rate == 5.0
    assert budget.throttled == 1
    times = await take_slots(budget, 6, vclock)
    assert times[0] == pytest.approx(start + 5.0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.2] * 5)


async def test_slow_down_while_requests_wait(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_rate=1))
    start = vclock.monotonic()
    waiting = asyncio.create_task(take_slots(budget, 3, vclock))
    for _ in range(3):  # the first slot is taken at once, the others are booked
        await asyncio.sleep(0)
    assert budget.in_flight == 0
    budget.slow_down(10.0)
    times = await waiting
    assert times[0] == start
    assert times[1] == pytest.approx(start + 10.0)  # the pause held the booked ones back
    assert times[2] - times[1] == pytest.approx(2.0)  # then at the halved rate


async def test_slow_down_without_retry_after_uses_pause(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(pause=3.0))
    start = vclock.monotonic()
    budget.slow_down(None)
    assert budget.rate is None  # no rate limit to halve
    async with slot(budget):
        assert vclock.monotonic() == pytest.approx(start + 3.0)


def test_rate_halving_has_a_floor_and_recovers() -> None:
    budget = Budget(RequestBudget(max_rate=32, recovery=2.0))
    for _ in range(20):
        budget.slow_down(0)
    assert budget.rate == 1.0  # never below max_rate / 32
    budget.succeeded()
    assert budget.rate == 2.0
    for _ in range(10):
        budget.succeeded()
    assert budget.rate == 32.0  # back to the full rate, never above it


def test_succeeded_recovers_gradually() -> None:
    budget = Budget(RequestBudget(max_rate=10))  # recovery 1.05 by default
    budget.slow_down(0)
    assert budget.rate == 5.0
    budget.succeeded()
    assert budget.rate == pytest.approx(5.25)
    for _ in range(100):
        budget.succeeded()
    assert budget.rate == 10.0


async def test_max_connections_bounds_requests_in_flight(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_connections=3))
    start = vclock.monotonic()
    seen: list[int] = []

    async def request() -> None:
        async with slot(budget):
            seen.append(budget.in_flight)
            await vclock.sleep(1)

    await asyncio.gather(*(request() for _ in range(10)))
    assert max(seen) == 3
    assert budget.peak_in_flight == 3
    assert budget.in_flight == 0
    assert vclock.monotonic() - start == pytest.approx(4.0)  # ceil(10 / 3) rounds of 1 s


async def test_slot_is_released_on_error(vclock: VirtualClock) -> None:
    budget = Budget(RequestBudget(max_connections=1))
    with pytest.raises(RuntimeError):
        async with slot(budget):
            raise RuntimeError
    assert budget.in_flight == 0

    async def again() -> int:
        async with slot(budget):
            return budget.in_flight

    assert await asyncio.wait_for(again(), 5) == 1  # the one connection is free again
