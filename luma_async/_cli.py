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
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from luma_async._errors import (
    InputError,
    LumaError,
    PollTimeoutError,
    SubmissionUncertainError,
    TaskFailedError,
)
from luma_async._inputs import extend_body
from luma_async._journal import request_fingerprint
from luma_async._models import BatchResult, ExtendRequest, Task
from luma_async._policy import PollPolicy
from luma_async._session import LumaSession

if TYPE_CHECKING:
    from rich.console import Console

    from luma_async._cli_view import Reporter

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


def cli_message(exc: LumaError) -> str:
    """An error's message in the command line's terms (flags, not Python arguments)."""
    if isinstance(exc, PollTimeoutError):
        state = exc.task.state if exc.task is not None else "never seen"
        return (
            f"task {exc.task_id} not finished after {exc.waited:.1f}s (last state: {state}); "
            f"it may still finish: run 'luma-async watch {exc.task_id}' later, or pass a "
            "larger --timeout"
        )
    return str(exc)


def run_command(factory: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a command's coroutine and turn expected failures into one line and an exit code."""
    try:
        return asyncio.run(factory())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        _quiet_broken_pipe()
        return EXIT_OK
    except LumaError as exc:
        code = exit_code_of(exc)
        print(f"{label_of(code)}: {cli_message(exc)}", file=sys.stderr)
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
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is not a field name
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {path}: not UTF-8 text ({exc.reason})") from exc
    requests: list[ExtendRequest] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text), dialect=_sniff(text))
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


def _sniff(text: str) -> type[csv.Dialect] | str:
    """The CSV dialect of ``text``: comma, semicolon or tab separated (comma when unsure)."""
    header = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t")
    except csv.Error:
        return "excel"


def result_json(result: BatchResult, key: str | None = None) -> dict[str, Any]:
    """One line of a batch's output; ``key`` is the request's journal key, if journalled."""
    return {
        "key": key,
        "parent_id": result.parent_id,
        "user_prompt": result.request.user_prompt,
        "task_id": result.task_id,
        "ok": result.ok,
        "state": None if result.task is None else str(result.task.state),
        "video_url": None
        if result.task is None or result.task.video is None
        else result.task.video.best_url,
        "path": None if result.path is None else str(result.path),
        "error": None
        if result.error is None
        else f"{type(result.error).__name__}: {cli_message(result.error)}",
    }


def journal_keys(requests: list[ExtendRequest]) -> dict[int, str]:
    """Each request's journal key (by identity), as :meth:`Journal.key_for` ranks them."""
    seen: dict[str, int] = {}
    keys: dict[int, str] = {}
    for request in requests:
        fingerprint = request_fingerprint(request)
        rank = seen.get(fingerprint, 0)
        seen[fingerprint] = rank + 1
        keys[id(request)] = f"{fingerprint}:{rank}"
    return keys


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
    keys = journal_keys(requests) if journal is not None else {}
    code = EXIT_OK
    try:
        async with reporter.ticking(), batch:
            async for result in batch:
                key = keys.get(id(result.request))
                line = result_json(result, key)
                if isinstance(result.error, SubmissionUncertainError) and key is not None:
                    line["error"] = (
                        f"SubmissionUncertainError: extend {result.parent_id} may have created "
                        f"a task, so it is not sent again; look for it, then run 'luma-async "
                        f"journal resolve {journal} {key} --task-id ID' (or --not-created)"
                    )
                results.write(json.dumps(line) + "\n")
                results.flush()
                code = max(code, exit_code_of(result.error))
    except asyncio.CancelledError:
        reporter.close()
        _report_in_flight(
            batch.in_flight, [r.user_prompt for r in batch.uncertain], journal=journal
        )
        raise
    return code


def exit_code_of(error: LumaError | None) -> int:
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


def label_of(code: int) -> str:
    """The word that starts a failure's line on stderr."""
    return _LABELS.get(code, "error")


_LABELS = {
    EXIT_USAGE: "error",
    EXIT_UNCERTAIN: "uncertain",
    EXIT_TIMEOUT: "timeout",
    EXIT_TASK_FAILED: "failed",
    EXIT_API: "error",
}


def _report_in_flight(
    in_flight: dict[str, ExtendRequest], uncertain: list[str], *, journal: Path | None
) -> None:
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
    if journal is not None:
        print(
            f"to resume, run the same command again with the journal {journal}: finished "
            "results come back and nothing is paid twice; 'luma-async journal list "
            f"{journal}' shows every request",
            file=sys.stderr,
        )
    elif in_flight:
        print("follow them with: luma-async watch " + " ".join(in_flight), file=sys.stderr)


async def demo(
    out: TextIO | None = None, *, time_scale: float = 0.1, console: Console | None = None
) -> int:
    """Generate, extend and follow both to the end against an in-process emulator."""
    from luma_async._cli_view import Reporter  # noqa: PLC0415 - needs the cli extra
    from luma_async.testing import LumaEmulator  # noqa: PLC0415 - only the demo needs it

    policy = PollPolicy(interval=0.1, max_interval=0.3, jitter=0.05, timeout=60)
    with Reporter(as_json=False, out=out, console=console) as reporter:
        async with (
            LumaEmulator(time_scale=time_scale) as emulator,
            LumaSession(emulator.api_key, base_url=emulator.base_url, poll=policy) as luma,
        ):
            reporter.message(
                f"emulator listening on {emulator.base_url} (1 emulated second = {time_scale}s)"
            )
            first = await luma.generate(
                "a red fox trotting through fresh snow", aspect_ratio="16:9"
            )
            reporter.message(f"generate -> task {first.id}")
            done = await follow_task(luma, first, reporter, None)
            extension = await luma.extend(done.id, "the fox leaps over a frozen stream")
            reporter.message(f"extend {done.id}\n  -> task {extension.id}")
            finished = await follow_task(luma, extension, reporter, None)
            if not reporter.live:  # the live view prints the full links when it ends
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
            "the luma-async command needs the 'cli' extra (click and rich): "
            "pip install '.[cli]' from a clone",
            file=sys.stderr,
        )
        return EXIT_USAGE

    try:
        result = cli.main(args=argv, prog_name="luma-async", standalone_mode=False)
    except click.ClickException as exc:  # usage errors, unusable files
        exc.show()
        return EXIT_USAGE
    except click.Abort:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_broken_pipe()
        return EXIT_OK
    return int(result or 0)


def _quiet_broken_pipe() -> None:
    """The reader of stdout went away (``| head``): end without a traceback at exit."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
