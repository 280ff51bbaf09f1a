"""Many extensions at once: a bounded pool of workers, results as they finish.

At most ``concurrency`` requests are in flight (submitted and not yet finished) at any time.
A failure of one item becomes that item's :class:`BatchResult`; with ``fail_fast`` the batch
stops after it.  However the batch ends (finished, broken out of, cancelled), its workers are
cancelled and every task it submitted but did not hand to the consumer as ended is listed in
:attr:`Batch.in_flight` and logged, so no paid task is lost track of.

Each request takes three small steps: send (``_send``), follow (``_watch``), after-hook (a
download), each recorded through a ``JournalWriter``: the journal's, or a ``NullJournal``
that records nothing, so no step asks whether there is a journal.  ``_batch_wiring.make_batch``
wires a batch to a session: it is what ``LumaSession.extend_many`` returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from luma_async import _protocol
from luma_async._errors import InputError, LumaError, SubmissionUncertainError, TaskFailedError
from luma_async._journal import Journal, JournalState, NullJournal, writer_of
from luma_async._models import BatchResult, ExtendRequest, Task
from luma_async._validators import check, whole

if TYPE_CHECKING:
    from types import TracebackType

    from luma_async._journal import JournalEntry, JournalWriter

__all__ = ["AfterFinish", "Batch", "Follow", "Submit"]

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
        # A journal given by path is opened (and created) when the batch starts and closed
        # when it ends, so a batch that is never iterated leaves no file behind.
        self.journal = journal if isinstance(journal, Journal) else None
        self._journal_path = None if journal is None or isinstance(journal, Journal) else journal
        self._writer: JournalWriter = NullJournal()
        self.concurrency = concurrency
        self.fail_fast = fail_fast
        #: task id -> request, for every request the service accepted.
        self.submitted: dict[str, ExtendRequest] = {}
        #: task ids whose end (finished or failed) was handed to the consumer.
        self.ended: set[str] = set()
        #: requests whose submission was cut off by cancellation: they may or may not exist.
        self.uncertain: list[ExtendRequest] = []
        self._running = 0
        self.peak_running = 0
        self._stopping = False
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

    # -- one request: send, follow, after-hook ---------------------------------------------

    async def _one(self, request: object, key: str) -> BatchResult:
        if not isinstance(request, ExtendRequest):
            return BatchResult(
                request,  # type: ignore[arg-type]  # reported back as given
                error=InputError(
                    f"a batch takes ExtendRequest items, not {type(request).__name__}"
                ),
            )
        first: Task | None = None
        entry = self._writer.claim(key, request)  # on disk before the POST, in one transaction
        if entry is None:
            sent = await self._send(request, key)
            if isinstance(sent, BatchResult):
                return sent
            task_id, first = sent.id, sent
        else:
            resumed = self._resume(request, entry)
            if isinstance(resumed, BatchResult):
                # a video a killed run had not downloaded yet is fetched now
                return await self._after_hook(resumed)
            task_id = resumed
        self.submitted[task_id] = request
        result = await self._watch(request, key, task_id, first)
        return await self._after_hook(result)

    async def _send(self, request: ExtendRequest, key: str) -> Task | BatchResult:
        """The paid POST: its task, or the result that says why there is none."""
        try:
            first = await self._submit(request)
        except SubmissionUncertainError as exc:
            self._writer.uncertain(key, str(exc), task_id=exc.task_id)
            return BatchResult(request, error=exc)
        except LumaError as exc:
            self._writer.rejected(key, str(exc))
            return BatchResult(request, error=exc)
        except asyncio.CancelledError:
            # Stopped mid-POST: the service may have created the task; say so, never guess.
            self.uncertain.append(request)
            raise
        self._writer.submitted(key, first)
        return first

    async def _watch(
        self, request: ExtendRequest, key: str, task_id: str, first: Task | None
    ) -> BatchResult:
        try:
            done = await self._follow(task_id, first)
        except TaskFailedError as exc:
            self._writer.failed(key, exc.task)
            return BatchResult(request, error=exc, task_id=task_id)
        except LumaError as exc:  # not seen to end (a timeout, say): it stays in flight
            return BatchResult(request, error=exc, task_id=task_id)
        self._writer.finished(key, done)
        return BatchResult(request, task=done, task_id=task_id)

    async def _after_hook(self, result: BatchResult) -> BatchResult:
        if self._after is None or not result.ok:
            return result
        try:
            return await self._after(result)
        except LumaError as exc:
            return attrs.evolve(result, error=exc)

    def _resume(self, request: ExtendRequest, entry: JournalEntry) -> BatchResult | str:
        """What a journal row already says: the result, or the task id to follow again."""
        task = entry.task
        if task is not None and entry.state is JournalState.FINISHED:
            self.submitted[task.id] = request
            return BatchResult(request, task=task, task_id=task.id)
        if task is not None and entry.state is JournalState.FAILED:
            self.submitted[task.id] = request
            return BatchResult(request, error=TaskFailedError(task), task_id=task.id)
        if entry.state is JournalState.SUBMITTED and entry.task_id is not None:
            return entry.task_id
        why = entry.error or "the process stopped while this request was being submitted"
        self._writer.uncertain(entry.key, why)
        error = SubmissionUncertainError(
            f"extend {request.task_id}: {why}. It may have created a task, so it is not "
            f"sent again; check your tasks, then Journal.resolve({entry.key!r}, task_id=...)",
            method="POST",
            path=_protocol.extend_path(request.task_id),
            request=request,
            task_id=entry.task_id,
        )
        return BatchResult(request, error=error)

    # -- the pool ---------------------------------------------------------------------------

    async def _run(self) -> AsyncGenerator[BatchResult, None]:
        self._open_journal()  # before any request: an unusable journal is an InputError
        results: asyncio.Queue[BatchResult | _Crash | None] = asyncio.Queue()
        source = self._requests_iter()
        lock = asyncio.Lock()  # one reader of the (possibly async) source at a time
        loop = asyncio.get_running_loop()
        workers = [
            loop.create_task(self._worker(source, lock, results), name=f"luma-batch-{i}")
            for i in range(self.concurrency)
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
                self._hand_over(item)
                yield item
                if self.fail_fast and item.error is not None:
                    self._stopping = True
                    raise item.error
        finally:
            # Results still queued were never handed over: their tasks stay in flight.
            self._stopping = True
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await source.aclose()
            self._close_journal()
            self._log_unfinished()

    async def _worker(
        self,
        source: AsyncGenerator[ExtendRequest, None],
        lock: asyncio.Lock,
        results: asyncio.Queue[BatchResult | _Crash | None],
    ) -> None:
        try:
            while (request := await self._next(source, lock)) is not None:
                key = self._writer.key_for(request) if isinstance(request, ExtendRequest) else ""
                self._running += 1
                self.peak_running = max(self.peak_running, self._running)
                try:
                    result = await self._one(request, key)
                finally:
                    self._running -= 1
                results.put_nowait(result)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer
            results.put_nowait(_Crash(exc))
        finally:
            results.put_nowait(None)

    async def _next(
        self, source: AsyncGenerator[ExtendRequest, None], lock: asyncio.Lock
    ) -> ExtendRequest | None:
        async with lock:
            if self._stopping:
                return None
            try:
                return await source.__anext__()
            except StopAsyncIteration:
                return None

    async def _requests_iter(self) -> AsyncGenerator[ExtendRequest, None]:
        if isinstance(self._requests, AsyncIterable):
            async for request in self._requests:
                yield request
        else:
            for request in self._requests:
                yield request

    def _hand_over(self, result: BatchResult) -> None:
        """The consumer gets ``result``: if its task ended, it is no longer in flight."""
        ended = result.task is not None or isinstance(result.error, TaskFailedError)
        if result.task_id is not None and ended:
            self.ended.add(result.task_id)

    def _open_journal(self) -> None:
        if self._journal_path is not None:
            self.journal = Journal(self._journal_path)
        if self.journal is not None:
            self._writer = writer_of(self.journal)
        self._writer.begin()

    def _close_journal(self) -> None:
        if self._journal_path is not None and self.journal is not None:
            self.journal.close()

    def _log_unfinished(self) -> None:
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
