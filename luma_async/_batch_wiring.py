"""Wiring a :class:`~luma_async._batch.Batch` to a session: what ``extend_many`` returns.

:func:`make_batch` checks every argument before the batch runs, and builds the follow step
and the download after-hook from the session's own methods.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from luma_async import _inputs
from luma_async._batch import AfterFinish, Batch
from luma_async._errors import InputError
from luma_async._journal import Journal
from luma_async._journal_file import check_journal_path
from luma_async._models import BatchResult, ExtendRequest, Task

if TYPE_CHECKING:
    from luma_async._models import FinishedTask, StateChange
    from luma_async._policy import PollPolicy

__all__ = ["make_batch"]


class _Session(Protocol):
    """What a batch uses of a :class:`LumaSession`."""

    async def submit_extend(self, request: ExtendRequest, /) -> Task: ...

    async def wait(
        self,
        task_id: str,
        /,
        *,
        policy: PollPolicy | None = ...,
        first: Task | None = ...,
        on_change: Callable[[StateChange], object] | None = ...,
    ) -> FinishedTask: ...

    async def download(self, task: Task, dest: Path, /, *, watermark: bool = ...) -> Path: ...


def make_batch(
    session: _Session,
    requests: Iterable[ExtendRequest] | AsyncIterable[ExtendRequest],
    *,
    concurrency: int,
    fail_fast: bool,
    policy: PollPolicy,
    journal: Journal | str | Path | None,
    download_to: Path | str | None,
    watermark: bool,
    on_change: Callable[[StateChange], object] | None,
) -> Batch:
    """The batch ``session.extend_many`` returns, every argument checked before it runs.

    A journal path is checked (in use, locked, read-only, not sqlite: :class:`InputError`)
    without creating anything; the batch creates it when it starts.
    """
    _inputs.check_bool(fail_fast, "fail_fast")
    _inputs.check_bool(watermark, "watermark")
    if on_change is not None and not callable(on_change):
        raise InputError(
            f"on_change must be a function or coroutine function, not {type(on_change).__name__}"
        )

    async def follow(task_id: str, first: Task | None) -> Task:
        return await session.wait(task_id, policy=policy, first=first, on_change=on_change)

    after = None if download_to is None else _downloader(session, download_to, watermark)
    batch = Batch(
        requests,
        submit=session.submit_extend,
        follow=follow,
        concurrency=concurrency,
        fail_fast=fail_fast,
        journal=journal,
        after=after,
    )
    if journal is not None and not isinstance(journal, Journal):
        check_journal_path(journal)
    return batch


def _downloader(session: _Session, download_to: Path | str, watermark: bool) -> AfterFinish:
    """The after-hook that downloads each finished video into ``download_to``."""
    if not isinstance(download_to, (str, os.PathLike)):
        raise InputError(f"download_to must be a directory path, not {type(download_to).__name__}")
    folder = Path(download_to)
    if not folder.is_dir():
        raise InputError(f"download_to {folder} is not an existing directory")

    async def download_result(result: BatchResult) -> BatchResult:
        assert result.task is not None
        # A download appears under its final name only when complete, so a file there is
        # this video, fetched by an earlier run of a journaled batch: not fetched twice.
        done = folder / f"{result.task.id}.mp4"
        if done.is_file():
            return attrs.evolve(result, path=done)
        path = await session.download(result.task, folder, watermark=watermark)
        return attrs.evolve(result, path=path)

    return download_result
