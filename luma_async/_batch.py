"""Many extensions at once: a bounded pool of workers, results as they finish.

At most ``concurrency`` requests are in flight (submitted and not yet finished) at any time.
A failure of one item becomes that item's :class:`BatchResult`; with ``fail_fast`` the batch
stops after it.  However the batch ends (finished, broken out of, cancelled), its workers are
cancelled and every task it submitted but did not see finish is listed in
:attr:`Batch.in_flight` and logged, so no paid task is lost track of.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from luma_async._errors import InputError, LumaError
from luma_async._models import BatchResult, ExtendRequest, Task

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Batch"]

log = logging.getLogger("luma_async")

Submit = Callable[[ExtendRequest], Awaitable[Task]]
Follow = Callable[[Task], Awaitable[Task]]
AfterFinish = Callable[[BatchResult], Awaitable[BatchResult]]


class _Crash:
    """A worker died of something that is not a LumaError: re-raised to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Batch:
    """The running batch: iterate it for results; ``in_flight`` says what is still out there.

    Use it as ``async for result in batch`` (optionally inside ``async with batch:``).
    """

    def __init__(
        self,
        requests: Iterable[ExtendRequest] | AsyncIterable[ExtendRequest],
        *,
        submit: Submit,
        follow: Follow,
        concurrency: int,
        fail_fast: bool = False,
        after: AfterFinish | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InputError(
                f"concurrency must be a whole number of at least 1, not {concurrency!r}"
            )
        if not isinstance(requests, (Iterable, AsyncIterable)):
            raise InputError(
                f"requests must be an iterable of ExtendRequest, not {type(requests).__name__}"
            )
        self._requests = requests
        self._submit = submit
        self._follow = follow
        self._after = after
        self.concurrency = concurrency
        self.fail_fast = fail_fast
        #: task id -> request, for every request the service accepted.
        self.submitted: dict[str, ExtendRequest] = {}
        #: task ids that reached an end (finished or failed) while the batch watched.
        self.ended: set[str] = set()
        self._running = 0
        self.peak_running = 0
        self._results = self._run()

    @property
    def in_flight(self) -> dict[str, ExtendRequest]:
        """Submitted tasks not seen to end: follow them later with ``poll``/``wait``."""
        return {task_id: r for task_id, r in self.submitted.items() if task_id not in self.ended}

    def __aiter__(self) -> Batch:
        return self

    async def __anext__(self) -> BatchResult:
        return await self._results.__anext__()

    async def aclose(self) -> None:
        await self._results.aclose()

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _requests_iter(self) -> AsyncIterator[ExtendRequest]:
        if isinstance(self._requests, AsyncIterable):
            async for request in self._requests:
                yield request
        else:
            for request in self._requests:
                yield request

    async def _one(self, request: ExtendRequest) -> BatchResult:
        if not isinstance(request, ExtendRequest):
            return BatchResult(
                request,
                error=InputError(
                    f"a batch takes ExtendRequest items, not {type(request).__name__}"
                ),
            )
        try:
            task = await self._submit(request)
        except LumaError as exc:
            return BatchResult(request, error=exc)
        self.submitted[task.id] = request
        try:
            done = await self._follow(task)
        except LumaError as exc:
            if getattr(exc, "task", None) is not None and exc.task.is_failed:  # type: ignore[attr-defined]
                self.ended.add(task.id)
            return BatchResult(request, error=exc, task_id=task.id)
        self.ended.add(task.id)
        result = BatchResult(request, task=done, task_id=task.id)
        if self._after is not None:
            try:
                result = await self._after(result)
            except LumaError as exc:
                return BatchResult(request, task=done, task_id=task.id, error=exc)
        return result

    async def _run(self) -> AsyncIterator[BatchResult]:
        results: asyncio.Queue[BatchResult | _Crash | None] = asyncio.Queue()
        source = self._requests_iter()
        lock = asyncio.Lock()
        stopping = False

        async def next_request() -> ExtendRequest | None:
            async with lock:  # one reader of the (possibly async) source at a time
                if stopping:
                    return None
                try:
                    return await source.__anext__()
                except StopAsyncIteration:
                    return None

        async def worker() -> None:
            try:
                while (request := await next_request()) is not None:
                    self._running += 1
                    self.peak_running = max(self.peak_running, self._running)
                    try:
                        result = await self._one(request)
                    finally:
                        self._running -= 1
                    results.put_nowait(result)
            except Exception as exc:  # noqa: BLE001 - handed to the consumer
                results.put_nowait(_Crash(exc))
            finally:
                results.put_nowait(None)

        loop = asyncio.get_running_loop()
        workers = [
            loop.create_task(worker(), name=f"luma-batch-{i}") for i in range(self.concurrency)
        ]
        alive = len(workers)
        try:
            while alive:
                item = await results.get()
                if item is None:
                    alive -= 1
                    continue
                if isinstance(item, _Crash):
                    raise item.error
                yield item
                if self.fail_fast and item.error is not None:
                    stopping = True
                    raise item.error
        finally:
            stopping = True
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await source.aclose()
            if self.in_flight:
                log.warning(
                    "batch stopped with %d submitted task(s) not seen to finish: %s",
                    len(self.in_flight),
                    ", ".join(self.in_flight),
                )
