"""The ``luma-async`` command line (install the ``cli`` extra).

Exit codes: 0 success, 1 a task failed, 2 usage error, 3 API or transport error,
4 timeout, 5 a submission's outcome is uncertain, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from luma_async import _clock
from luma_async._convert import converter
from luma_async._errors import (
    InputError,
    LumaError,
    PollTimeoutError,
    SubmissionUncertainError,
    TaskFailedError,
)
from luma_async._models import StateChange, Task
from luma_async._policy import PollPolicy
from luma_async._session import LumaSession

__all__ = ["EXIT_CODES", "main"]

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_TIMEOUT = 4
EXIT_UNCERTAIN = 5
EXIT_INTERRUPTED = 130
EXIT_CODES = {
    "success": EXIT_OK,
    "task failed": EXIT_TASK_FAILED,
    "usage": EXIT_USAGE,
    "API or transport error": EXIT_API,
    "timeout": EXIT_TIMEOUT,
    "submission uncertain": EXIT_UNCERTAIN,
    "interrupted": EXIT_INTERRUPTED,
}


class Reporter:
    """Prints state changes: a line each (piped), JSON lines (``--json``), or a live view."""

    def __init__(self, *, as_json: bool, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.as_json = as_json
        self.live = not as_json and self.out.isatty()
        self._rows: dict[str, str] = {}
        self._drawn = 0
        self._started = _clock.monotonic()

    def change(self, change: StateChange) -> None:
        if self.as_json:
            self.out.write(json.dumps(converter.unstructure(change)) + "\n")
        elif self.live:
            self._rows[change.task_id] = _describe(change)
            self._redraw()
            return
        else:
            self.out.write(_describe(change) + "\n")
        self.out.flush()

    def _redraw(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
        rows = list(self._rows.values())
        self.out.write("\n".join(rows) + "\n")
        self._drawn = len(rows)
        self.out.flush()

    def task(self, task: Task) -> None:
        if self.as_json:
            self.out.write(json.dumps(converter.unstructure(task)) + "\n")
        else:
            video = f"  video: {task.video.best_url}" if task.video is not None else ""
            self.out.write(f"{task.id}  {task.state}{video}\n")
        self.out.flush()

    def message(self, text: str) -> None:
        if not self.as_json:
            self.out.write(text + "\n")
            self.out.flush()


def _describe(change: StateChange) -> str:
    arrow = f"{change.previous} -> {change.state}" if change.previous else f"{change.state}"
    video = f"  {change.task.video.best_url}" if change.task.video is not None else ""
    return f"{change.task_id}  {arrow:<24} {change.elapsed:7.1f}s  polls={change.polls}{video}"


def _run(factory: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a command's coroutine and turn library errors into exit codes."""
    try:
        return asyncio.run(factory())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TaskFailedError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return EXIT_TASK_FAILED
    except PollTimeoutError as exc:
        print(f"timeout: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except SubmissionUncertainError as exc:
        print(f"uncertain: {exc}", file=sys.stderr)
        return EXIT_UNCERTAIN
    except LumaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_API


async def _follow(
    luma: LumaSession, task: Task, reporter: Reporter, policy: PollPolicy | None
) -> Task:
    last = task
    async for change in luma.poll(task.id, policy=policy):
        reporter.change(change)
        last = change.task
    return last


async def demo(out: TextIO | None = None, *, time_scale: float = 0.1) -> int:
    """Generate, extend and follow both to the end against an in-process emulator."""
    from luma_async.testing import LumaEmulator  # noqa: PLC0415 - only the demo needs it

    reporter = Reporter(as_json=False, out=out)
    policy = PollPolicy(interval=0.1, max_interval=0.3, jitter=0.05, timeout=60)
    async with (
        LumaEmulator(time_scale=time_scale) as emulator,
        LumaSession(emulator.api_key, base_url=emulator.base_url, poll=policy) as luma,
    ):
        reporter.message(
            f"emulator listening on {emulator.base_url} (1 emulated second = {time_scale}s)"
        )
        first = await luma.generate("a red fox trotting through fresh snow", aspect_ratio="16:9")
        reporter.message(f"generate -> task {first.id}")
        done = await _follow(luma, first, reporter, None)
        extension = await luma.extend(done.id, "the fox leaps over a frozen stream")
        reporter.message(f"extend {done.id} -> task {extension.id}")
        finished = await _follow(luma, extension, reporter, None)
        assert finished.video is not None
        reporter.message(f"done: {finished.video.best_url}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``luma-async`` console script."""
    try:
        import click  # noqa: PLC0415

        from luma_async._cli_commands import cli  # noqa: PLC0415
    except ImportError:  # pragma: no cover - exercised only without the extra
        print(
            "the luma-async command needs the 'cli' extra: pip install 'luma-async[cli]'",
            file=sys.stderr,
        )
        return EXIT_USAGE

    try:
        result = cli.main(args=argv, prog_name="luma-async", standalone_mode=False)
    except click.UsageError as exc:
        exc.show()
        return EXIT_USAGE
    except click.Abort:
        return EXIT_INTERRUPTED
    return int(result or 0)
