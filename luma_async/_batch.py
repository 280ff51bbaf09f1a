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
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from luma_async._errors import InputError, LumaError, SubmissionUncertainError, TaskFailedError
from luma_async._journal import Journal
from luma_async._models import BatchResult, ExtendRequest, Task
from luma_async._validators import check, whole

if TYPE_CHECKING:
    from types import TracebackType

    from luma_async._journal import JournalEntry

__all__ = ["Batch"]

log = logging.getLogger("luma_async")

Submit = Callable[[ExtendRequest], Awaitable[Task]]
Follow = Callable[[str, "Task | None"], Awaitable[Task]]
AfterFinish = Callable[[BatchResult], Awaitable[BatchResult]]


class _Crash:
    """A worker died of something that is not a LumaError: re-raised to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Batch:
    """The running batch: iterate it for results; ``in_flight`` says what is still out there.

    Use it as ``async for result in batch`` (optionally inside ``async with batch:``).

    Returned by :meth:`LumaSession.extend_many`; not created directly.
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
        journal: Journal | str | Path | None = None,
    ) -> None:
        check(concurrency, "concurrency", whole(1))
        if not isinstance(requests, (Iterable, AsyncIterable)):
            raise InputError(
                f"requests must be an iterable of ExtendRequest, not {type(requests).__name__}"
            )
        self._requests = requests
        self._submit = submit
        self._follow = follow
        self._after = after
        # A journal given by path is opened when the batch starts and closed when it ends,
        # so a batch that is never iterated leaves no database open.
        self.journal = journal if isinstance(journal, Journal) else None
        self._journal_path = None if journal is None or isinstance(journal, Journal) else journal
        self.concurrency = concurrency
        self.fail_fast = fail_fast
        #: task id -> request, for every request the service accepted.
        self.submitted: dict[str, ExtendRequest] = {}
        #: task ids that reached an end (finished or failed) while the batch watched.
        self.ended: set[str] = set()
        #: requests whose submission was cut off by cancellation: they may or may not exist.
        self.uncertain: list[ExtendRequest] = []
        self._submitting: list[ExtendRequest] = []  # a list: a bad item may be unhashable
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

    async def _requests_iter(self) -> AsyncGenerator[ExtendRequest, None]:
        if isinstance(self._requests, AsyncIterable):
            async for request in self._requests:
                yield request
        else:
            for request in self._requests:
                yield request

    async def _one(self, request: object, key: str | None) -> BatchResult:
        if not isinstance(request, ExtendRequest):
            return BatchResult(
                request,  # type: ignore[arg-type]  # reported back as given
                error=InputError(
                    f"a batch takes ExtendRequest items, not {type(request).__name__}"
                ),
            )
        journal = self.journal if key is not None else None
        # Checked and claimed in one transaction: ``submitting`` is on disk before the POST.
        entry = None if journal is None or key is None else journal.claim(key, request)
        if entry is not None:
            recorded = self._recorded(request, entry)
            if recorded is not None:
                return recorded
        first: Task | None = None
        task_id = entry.task_id if entry is not None and entry.state == "submitted" else None
        if task_id is None:
            self._submitting.append(request)
            try:
                first = await self._submit(request)
            except SubmissionUncertainError as exc:
                if journal is not None and key is not None:
                    journal.mark_uncertain(key, str(exc), task_id=exc.task_id)
                return BatchResult(request, error=exc)
            except LumaError as exc:
                if journal is not None and key is not None:
                    journal.rejected(key, str(exc))
                return BatchResult(request, error=exc)
            except asyncio.CancelledError:
                # Stopped mid-POST: the service may have created the task; say so, never guess.
                self.uncertain.append(request)
                raise
            finally:
                self._submitting.remove(request)
            task_id = first.id
            if journal is not None and key is not None:
                journal.submitted(key, first)
        self.submitted[task_id] = request
        try:
            done = await self._follow(task_id, first)
        except TaskFailedError as exc:
            self.ended.add(task_id)
            if journal is not None and key is not None:
                journal.failed(key, exc.task)
            return BatchResult(request, error=exc, task_id=task_id)
        except LumaError as exc:
            return BatchResult(request, error=exc, task_id=task_id)
        self.ended.add(task_id)
        if journal is not None and key is not None:
            journal.finished(key, done)
        result = BatchResult(request, task=done, task_id=task_id)
        if self._after is not None:
            try:
                result = await self._after(result)
            except LumaError as exc:
                return BatchResult(request, task=done, task_id=task_id, error=exc)
        return result

    def _recorded(self, request: ExtendRequest, entry: JournalEntry) -> BatchResult | None:
        """The result a journal already holds, or None when the request must (re)run."""
        if entry.state == "finished" and entry.task is not None:
            self.submitted[entry.task.id] = request
            self.ended.add(entry.task.id)
            return BatchResult(request, task=entry.task, task_id=entry.task.id)
        if entry.state == "failed" and entry.task is not None:
            self.submitted[entry.task.id] = request
            self.ended.add(entry.task.id)
            return BatchResult(request, error=TaskFailedError(entry.task), task_id=entry.task.id)
        if entry.state in ("submitting", "uncertain"):
            assert self.journal is not None
            why = entry.error or "the process stopped while this request was being submitted"
            self.journal.mark_uncertain(entry.key, why)
            error = SubmissionUncertainError(
                f"extend {request.task_id}: {why}. It may have created a task, so it is not "
                f"sent again; check your tasks, then Journal.resolve({entry.key!r}, task_id=...)",
                method="POST",
                path=f"/luma/generations/{request.task_id}/extend",
                request=request,
                task_id=entry.task_id,
            )
            return BatchResult(request, error=error)
        return None  # submitted (follow it again) or rejected (send it again)

    async def _run(self) -> AsyncGenerator[BatchResult, None]:
        results: asyncio.Queue[BatchResult | _Crash | None] = asyncio.Queue()
        if self._journal_path is not None:
            self.journal = Journal(self._journal_path)
        if self.journal is not None:
            self.journal.start_batch()
        source = self._requests_iter()
        lock = asyncio.Lock()
        stopping = False

        async def next_request() -> tuple[ExtendRequest, str | None] | None:
            async with lock:  # one reader of the (possibly async) source at a time
                if stopping:
                    return None
                try:
                    request = await source.__anext__()
                except StopAsyncIteration:
                    return None
                journal = self.journal
                usable = journal is not None and isinstance(request, ExtendRequest)
                return request, journal.key_for(request) if usable else None  # type: ignore[union-attr]

        async def worker() -> None:
            try:
                while (item := await next_request()) is not None:
                    self._running += 1
                    self.peak_running = max(self.peak_running, self._running)
                    try:
                        result = await self._one(*item)
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
            if self._journal_path is not None and self.journal is not None:
                self.journal.close()
            if self.uncertain:
                log.warning(
                    "batch stopped while submitting %d request(s); they may have created tasks: %s",
                    len(self.uncertain),
                    "; ".join(repr(r) for r in self.uncertain),
                )
            if self.in_flight:
                log.warning(
                    "batch stopped with %d submitted task(s) not seen to finish: %s",
                    len(self.in_flight),
                    ", ".join(self.in_flight),
                )
