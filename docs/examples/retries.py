"""How-to: retries, timeouts and a request budget, and what to do when they run out."""

import asyncio
import sys

from luma_async import (
    LumaSession,
    PollPolicy,
    PollTimeoutError,
    RequestBudget,
    RetryPolicy,
    SubmissionUncertainError,
    Task,
)

#: One request: up to 6 tries within 2 minutes, waits from 0.5 s growing to at most 10 s.
RETRY = RetryPolicy(attempts=6, initial=0.5, max_wait=10.0, timeout=120.0)
#: Following a task: first look after 3 s, then up to every 20 s; give up after 30 minutes.
POLL = PollPolicy(interval=3.0, max_interval=20.0, timeout=1800.0)
#: The whole session: at most 5 requests a second and 10 at once (429s slow it further).
BUDGET = RequestBudget(max_rate=5.0, max_connections=10)


def make_session() -> LumaSession:
    # timeout: seconds for one HTTP exchange, before RETRY decides whether to try again.
    return LumaSession(retry=RETRY, poll=POLL, budget=BUDGET, timeout=30.0)


async def submit(luma: LumaSession, prompt: str) -> Task | None:
    """A paid POST: retried only when it provably never reached the service."""
    try:
        return await luma.generate(prompt)
    except SubmissionUncertainError as exc:
        # It may have created (and billed) a task. Look in your task list before re-sending.
        print(f"not sure whether {prompt!r} was created: {exc}")
        return None


async def follow(luma: LumaSession, task_id: str, *, patience: PollPolicy | None = None) -> Task:
    """Follow a task; a deadline that passes does not stop the task, so look again later."""
    for _ in range(3):
        try:
            return await luma.wait(task_id, policy=patience)
        except PollTimeoutError as exc:  # noqa: PERF203 - one deadline per round
            last = exc.task.state if exc.task is not None else "never seen"
            print(f"{task_id} not finished after {exc.waited:.0f}s (last: {last}); waiting on")
    raise TimeoutError(f"{task_id} took too long; follow it later with luma.wait({task_id!r})")


async def main(prompts: list[str], *, patience: PollPolicy | None = None) -> list[Task | None]:
    async with make_session() as luma:
        submitted = [await submit(luma, prompt) for prompt in prompts]
        return [
            None if task is None else await follow(luma, task.id, patience=patience)
            for task in submitted
        ]


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1:] or ["a red fox in snow"])))
