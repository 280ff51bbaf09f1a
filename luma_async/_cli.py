"""The ``luma-async`` command line (install the ``cli`` extra).

Exit codes: 0 success, 1 a task failed, 2 usage error, 3 API or transport error,
4 timeout, 5 a submission's outcome is uncertain, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import sys
from collections.abc import AsyncGenerator, Callable, Coroutine
from pathlib import Path
from typing import Any, TextIO, cast

from luma_async import _clock
from luma_async._convert import converter
from luma_async._errors import (
    InputError,
    LumaError,
    PollTimeoutError,
    SubmissionUncertainError,
    TaskFailedError,
)
from luma_async._inputs import extend_body
from luma_async._models import BatchResult, ExtendRequest, StateChange, Task
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
    """Shows state changes: a live table on a terminal, a plain line each when piped, or one
    JSON object per change with ``--json``.

    The live table has one row per task with its state and the time since it was first
    seen; :meth:`ticking` keeps the times moving between changes.
    """

    def __init__(self, *, as_json: bool, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.as_json = as_json
        self.live = not as_json and self.out.isatty()
        self._rows: dict[str, tuple[StateChange, float]] = {}
        self._drawn = 0

    def change(self, change: StateChange) -> None:
        if self.as_json:
            self.out.write(json.dumps(converter.unstructure(change)) + "\n")
        elif self.live:
            first_seen = self._rows.get(change.task_id, (change, _clock.monotonic()))[1]
            self._rows[change.task_id] = (change, first_seen)
            self.redraw()
            return
        else:
            self.out.write(_describe(change, change.elapsed) + "\n")
        self.out.flush()

    def redraw(self) -> None:
        if not self.live or not self._rows:
            return
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
        now = _clock.monotonic()
        rows = [
            _describe(change, change.elapsed if change.task.is_terminal else now - seen)
            for change, seen in self._rows.values()
        ]
        self.out.write("\n".join(rows) + "\n")
        self._drawn = len(rows)
        self.out.flush()

    @contextlib.asynccontextmanager
    async def ticking(self, every: float = 0.5) -> AsyncGenerator[None, None]:
        """Redraw the live table every ``every`` seconds while the block runs."""

        async def tick() -> None:
            while True:
                await _clock.sleep(every)
                self.redraw()

        ticker = asyncio.get_running_loop().create_task(tick()) if self.live else None
        try:
            yield
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

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


def _describe(change: StateChange, elapsed: float) -> str:
    arrow = f"{change.previous} -> {change.state}" if change.previous else f"{change.state}"
    video = f"  {change.task.video.best_url}" if change.task.video is not None else ""
    return f"{change.task_id}  {arrow:<24} {elapsed:7.1f}s  polls={change.polls}{video}"


def run_command(factory: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a command's coroutine and turn library errors into exit codes."""
    try:
        return asyncio.run(factory())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except LumaError as exc:
        code = _exit_code_of(exc)
        print(f"{_LABELS[code]}: {exc}", file=sys.stderr)
        return code


async def follow_task(
    luma: LumaSession, task: Task, reporter: Reporter, policy: PollPolicy | None
) -> Task:
    last = task
    async with reporter.ticking():
        async for change in luma.poll(task.id, policy=policy, first=task):
            reporter.change(change)
            last = change.task
    return last


_REQUEST_FIELDS = (
    "task_id",
    "user_prompt",
    "expand_prompt",
    "image_url",
    "image_end_url",
    "notify_hook",
)


def _request_from(row: dict[str, Any], where: str) -> ExtendRequest:
    unknown = set(row) - {*_REQUEST_FIELDS, "prompt"}
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    prompt = row.get("user_prompt", row.get("prompt"))
    expand = row.get("expand_prompt")
    if isinstance(expand, str):
        lowered = expand.strip().lower()
        if lowered not in ("", "true", "false", "1", "0", "yes", "no"):
            raise InputError(f"{where}: expand_prompt must be true or false, not {expand!r}")
        expand = None if lowered == "" else lowered in ("true", "1", "yes")
    request = ExtendRequest(
        row.get("task_id"),  # type: ignore[arg-type]  # checked just below
        prompt,  # type: ignore[arg-type]
        expand_prompt=expand,
        image_url=row.get("image_url") or None,
        image_end_url=row.get("image_end_url") or None,
        notify_hook=row.get("notify_hook") or None,
    )
    try:
        extend_body(request)  # every check of extend(), before any request is sent
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from exc
    return request


def read_requests(path: Path) -> list[ExtendRequest]:
    """Extension requests from a JSONL file (one object per line) or a CSV file with a header.

    Fields: ``task_id``, ``user_prompt`` (or ``prompt``), and optionally ``expand_prompt``,
    ``image_url``, ``image_end_url``, ``notify_hook``.  Every row is checked before anything
    is submitted; the first bad row is an :class:`InputError` naming its line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    requests: list[ExtendRequest] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            raise InputError(f"{path} is empty: expected a header row and one request per row")
        for number, row in enumerate(reader, start=2):
            if None in row:
                raise InputError(f"{path}:{number}: more values than header columns")
            requests.append(_request_from(dict(row), f"{path}:{number}"))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path}:{number}: not JSON ({exc})") from exc
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: expected a JSON object")
            requests.append(_request_from(cast("dict[str, Any]", row), f"{path}:{number}"))
    if not requests:
        raise InputError(f"{path} holds no requests")
    return requests


def result_json(result: BatchResult) -> dict[str, Any]:
    """One line of a batch's output."""
    return {
        "parent_id": result.parent_id,
        "user_prompt": result.request.user_prompt,
        "task_id": result.task_id,
        "ok": result.ok,
        "state": None if result.task is None else str(result.task.state),
        "video_url": None
        if result.task is None or result.task.video is None
        else result.task.video.best_url,
        "path": None if result.path is None else str(result.path),
        "error": None if result.error is None else f"{type(result.error).__name__}: {result.error}",
    }


async def run_batch(
    luma: LumaSession,
    requests: list[ExtendRequest],
    *,
    reporter: Reporter,
    results: TextIO,
    concurrency: int,
    journal: Path | None,
    download_to: Path | None,
    policy: PollPolicy | None,
) -> int:
    """Run a batch, writing one JSON line per result; the exit code says how it went."""
    batch = luma.extend_many(
        requests,
        concurrency=concurrency,
        journal=journal,
        download_to=download_to,
        policy=policy,
        on_change=reporter.change,
    )
    code = EXIT_OK
    try:
        async with reporter.ticking(), batch:
            async for result in batch:
                results.write(json.dumps(result_json(result)) + "\n")
                results.flush()
                code = max(code, _exit_code_of(result.error))
    except asyncio.CancelledError:
        _report_in_flight(batch.in_flight, [r.user_prompt for r in batch.uncertain])
        raise
    return code


def _exit_code_of(error: LumaError | None) -> int:
    if error is None:
        return EXIT_OK
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return EXIT_API


_CODES: tuple[tuple[type[LumaError], int], ...] = (
    (InputError, EXIT_USAGE),
    (SubmissionUncertainError, EXIT_UNCERTAIN),
    (PollTimeoutError, EXIT_TIMEOUT),
    (TaskFailedError, EXIT_TASK_FAILED),
)
_LABELS = {
    EXIT_USAGE: "error",
    EXIT_UNCERTAIN: "uncertain",
    EXIT_TIMEOUT: "timeout",
    EXIT_TASK_FAILED: "failed",
    EXIT_API: "error",
}


def _report_in_flight(in_flight: dict[str, ExtendRequest], uncertain: list[str]) -> None:
    if in_flight:
        print(f"interrupted; {len(in_flight)} submitted task(s) still running:", file=sys.stderr)
        for task_id, request in in_flight.items():
            print(
                f"  {task_id}  (extends {request.task_id}: {request.user_prompt!r})",
                file=sys.stderr,
            )
    if uncertain:
        print("requests cut off while being submitted (they may exist):", file=sys.stderr)
        for prompt in uncertain:
            print(f"  {prompt!r}", file=sys.stderr)


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
        done = await follow_task(luma, first, reporter, None)
        extension = await luma.extend(done.id, "the fox leaps over a frozen stream")
        reporter.message(f"extend {done.id} -> task {extension.id}")
        finished = await follow_task(luma, extension, reporter, None)
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
