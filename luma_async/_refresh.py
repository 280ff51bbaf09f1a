"""Batch refresh: the polls of many watched tasks folded into one ``POST /luma/tasks``.

The batch status query is an optimisation some deployments offer; it must never cost a task.
A :class:`Refresher` collects the fetches of a short window and asks for them together.  An
answer that is a readable list of tasks (bare, ``{"code", "data": [...]}``, or new-api's rows
with the task under ``data[i].data``) refreshes the tasks it holds; a task it lacks, or whose
item cannot be read, is fetched alone by GET.  Any other answer (an HTML page with status 200,
400, 401, 403, 404, a 5xx after retries, ``{"data": null}``, not a list) means the route is not
offered here: the session then uses one GET per task for good, decided once and logged once.
Trouble that says nothing about the route (the connection, 429) only sends this round's
tasks by GET.  So a follower fails only for what a GET of its own task says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from luma_async import _clock
from luma_async._errors import APIError, DecodeError, LumaError
from luma_async._gate import Gate
from luma_async._models import Task
from luma_async._protocol import BATCH_TASKS_PATH

__all__ = ["Refresher"]

log = logging.getLogger("luma_async")

_Waiting = dict[str, list["asyncio.Future[Task]"]]
#: Statuses that say nothing about whether the route exists: refused now, maybe not later.
_PASSING = frozenset({408, 429})


class Refresher:
    """Fetches tasks for the watches of one session: alone, or many in one batch query.

    ``fetch_one`` is one GET of a task, ``fetch_many`` the batch status query (its tasks,
    or, when the answer is no list of tasks, a ``str`` saying what came instead).
    ``batch`` is the session's setting:
    ``None`` (find out), ``True`` (use it while it works), ``False`` (never ask).
    ``watched`` tells how many tasks are followed: a lone watch is fetched by
    GET at once, without the collecting window.
    """

    def __init__(
        self,
        fetch_one: Callable[[str], Awaitable[Task]],
        fetch_many: Callable[[list[str]], Awaitable[list[Task] | str]],
        *,
        batch: bool | None,
        window: float,
        watched: Callable[[], int],
        max_batch: int = 50,
        connections: int = 100,
    ) -> None:
        self._fetch_one = fetch_one
        self._fetch_many = fetch_many
        self._watched = watched
        # Fetches queue here for a free connection: thousands of waiting polls then cost a
        # small frame each, not a whole HTTP call stack waiting deep in the transport.
        self._gate = Gate(connections)
        self.batch_supported = batch  # None: not known yet
        self._window = window
        self._max_batch = max_batch
        # One refresh collects fetches for ``window`` seconds, then sends them together.
        # ``_collecting`` is the one still collecting; ``_refreshes`` all that are running.
        self._collecting: _Waiting | None = None
        self._refreshes: dict[asyncio.Task[None], _Waiting] = {}
        self.batch_requests = 0

    @property
    def running(self) -> list[asyncio.Task[None]]:
        """The refreshes in flight (cancelled by the hub when the session closes)."""
        return list(self._refreshes)

    def fetch(self, task_id: str) -> Awaitable[Task]:
        """The task now: alone by GET, or folded into a batch refresh with other watches."""
        if self.batch_supported is False or self._watched() < 2:
            return self._get(task_id)  # awaited by the poll: no coroutine of its own
        return self._collected(task_id)

    async def _collected(self, task_id: str) -> Task:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Task] = loop.create_future()
        if self._collecting is None:
            self._collecting = {}
            refresh = loop.create_task(self._flush(self._collecting), name="luma-refresh")
            self._refreshes[refresh] = self._collecting
        self._collecting.setdefault(task_id, []).append(future)
        try:
            return await future
        except asyncio.CancelledError:
            self._forget(task_id, future)
            raise

    async def _get(self, task_id: str) -> Task:
        gate = self._gate
        if not gate.take():  # a free connection is taken without an await
            await gate.wait()
        try:
            return await self._fetch_one(task_id)
        finally:
            gate.release()

    def _forget(self, task_id: str, future: asyncio.Future[Task]) -> None:
        """A fetcher gave up: a refresh that nobody waits for any more is cancelled."""
        for refresh, waiting in list(self._refreshes.items()):
            futures = waiting.get(task_id, [])
            if future not in futures:
                continue
            futures.remove(future)
            if all(f.done() for fs in waiting.values() for f in fs):
                refresh.cancel()
                if self._collecting is waiting:
                    self._collecting = None

    async def _flush(self, waiting: _Waiting) -> None:
        refresh = asyncio.current_task()
        try:
            await _clock.sleep(self._window)
            if self._collecting is waiting:
                self._collecting = None
            ids = list(waiting)
            chunks = [ids[i : i + self._max_batch] for i in range(0, len(ids), self._max_batch)]
            await asyncio.gather(*(self._refresh(chunk, waiting) for chunk in chunks))
        except asyncio.CancelledError:
            if self._collecting is waiting:
                self._collecting = None
            for futures in waiting.values():
                for future in futures:
                    future.cancel()
            raise
        finally:
            if refresh is not None:
                self._refreshes.pop(refresh, None)

    async def _refresh(self, ids: list[str], waiting: _Waiting) -> None:
        found = await self._ask_batch(ids) if self.batch_supported is not False else {}
        missing = [task_id for task_id in ids if task_id not in found]
        results = await asyncio.gather(*(self._get(t) for t in missing), return_exceptions=True)
        for task_id, result in zip(missing, results, strict=True):
            if isinstance(result, BaseException):
                _settle(task_id, waiting, error=result)
            else:
                found[task_id] = result
        for task_id, task in found.items():
            for future in waiting.get(task_id, ()):
                if not future.done():
                    future.set_result(task)

    async def _ask_batch(self, ids: list[str]) -> dict[str, Task]:
        """The asked tasks the batch query answered; never raises a :class:`LumaError`."""
        try:
            tasks = await self._fetch_many(ids)
        except APIError as exc:
            if exc.status in _PASSING:
                return {}
            self._not_offered(f"it answered {exc.status}")
            return {}
        except DecodeError:
            self._not_offered("its answer is not JSON")
            return {}
        except LumaError as exc:  # transport trouble: says nothing about the route
            log.debug("batch refresh failed (%s); these tasks are fetched one by one", exc)
            return {}
        if isinstance(tasks, str):
            self._not_offered(f"its answer is not a list of tasks ({tasks})")
            return {}
        self.batch_supported = True
        self.batch_requests += 1
        asked = set(ids)
        # An item for a task not asked is never taken for one that was.
        return {task.id: task for task in tasks if task.id in asked}

    def _not_offered(self, why: str) -> None:
        if self.batch_supported is False:
            return
        self.batch_supported = False
        log.info(
            "this deployment offers no batch status query (POST %s: %s); "
            "following each task by its own GET from now on",
            BATCH_TASKS_PATH,
            why,
        )


def _settle(task_id: str, waiting: _Waiting, *, error: BaseException) -> None:
    for future in waiting.get(task_id, ()):
        if not future.done():
            future.set_exception(error)
