"""The click commands behind ``luma-async`` (imported only when the ``cli`` extra is there).

Every option is checked before the first request: a command that bills (``generate``,
``extend``, ``batch``) rejects a bad timeout, file or folder while nothing has been paid yet.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

import click

from luma_async._cli import (
    EXIT_OK,
    cli_message,
    exit_code_of,
    follow_task,
    label_of,
    read_requests,
    run_batch,
    run_command,
)
from luma_async._cli_download import download
from luma_async._cli_emulator import demo_command, emulator
from luma_async._cli_journal import journal
from luma_async._cli_options import (
    CliContext,
    check_image,
    check_writable_file,
    connection_options,
    json_option,
    pass_context,
    timeout_option,
)
from luma_async._cli_view import Reporter
from luma_async._errors import InputError, LumaError
from luma_async._journal import Journal
from luma_async._models import ImageInput, Task
from luma_async._policy import PollPolicy
from luma_async._session import LumaSession

EPILOG_EXIT = (
    "Exit codes: 0 success, 1 task failed, 2 usage (a bad option, file or input; nothing "
    "was paid), 3 API or transport error, 4 timeout, 5 submission uncertain, 130 interrupted."
)


def _submit_and_report(
    obj: CliContext,
    submit: Callable[[LumaSession], Awaitable[Task]],
    *,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> int:
    """Submit one paid job, print its task, and follow it when asked to."""

    async def run() -> int:
        with Reporter(as_json=as_json) as reporter:
            async with obj.session() as luma:
                task = await submit(luma)
                reporter.task(task)
                if wait:
                    try:
                        await follow_task(luma, task, reporter, PollPolicy(timeout=timeout))
                    except asyncio.CancelledError:
                        reporter.close()
                        print(
                            f"task {task.id} is still running; follow it again with: "
                            f"luma-async watch {task.id}",
                            file=sys.stderr,
                        )
                        raise
        return EXIT_OK

    return run_command(run)


@click.group(epilog=EPILOG_EXIT)
@click.option("--api-key", envvar="LUMA_API_KEY", help="API key (default: $LUMA_API_KEY).")
@click.option(
    "--base-url",
    envvar="LUMA_BASE_URL",
    help="API base URL (default: $LUMA_BASE_URL or https://api.gpt.ge).",
)
@click.option(
    "--allow-insecure-http",
    is_flag=True,
    envvar="LUMA_ALLOW_INSECURE_HTTP",
    help="Allow a plain-http base URL off this machine, e.g. an emulator or gateway on a LAN "
    "(default: $LUMA_ALLOW_INSECURE_HTTP).",
)
@click.version_option(package_name="luma-async")
@click.pass_context
def cli(
    ctx: click.Context, api_key: str | None, base_url: str | None, allow_insecure_http: bool
) -> None:
    """Extend Luma videos and follow tasks from the command line.

    --api-key, --base-url and --allow-insecure-http go before or after the sub-command.
    """
    ctx.obj = CliContext(api_key, base_url, allow_insecure_http)


@cli.command(epilog="Example: luma-async generate 'a red fox in snow' --aspect-ratio 16:9 --wait")
@click.argument("prompt")
@click.option("--aspect-ratio", help="1:1, 4:3, 3:4, 16:9, 9:16, 21:9 or 9:21.")
@click.option(
    "--expand-prompt/--no-expand-prompt", default=None, help="Let the service rewrite the prompt."
)
@click.option(
    "--image", callback=check_image, help="First frame: an https URL, a data: URI or a file."
)
@click.option(
    "--end-image", callback=check_image, help="Last frame: an https URL, a data: URI or a file."
)
@click.option("--notify-hook", help="A URL the service calls when the task changes.")
@click.option("--wait/--no-wait", default=False, help="Follow the new task to its end.")
@timeout_option
@json_option
@connection_options
@pass_context
def generate(
    obj: CliContext,
    prompt: str,
    aspect_ratio: str | None,
    expand_prompt: bool | None,
    image: ImageInput | None,
    end_image: ImageInput | None,
    notify_hook: str | None,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> int:
    """Submit a new generation (a paid job) and print its task."""

    def submit(luma: LumaSession) -> Awaitable[Task]:
        return luma.generate(
            prompt,
            aspect_ratio=aspect_ratio,
            expand_prompt=expand_prompt,
            image_url=image,
            image_end_url=end_image,
            notify_hook=notify_hook,
        )

    return _submit_and_report(obj, submit, wait=wait, timeout=timeout, as_json=as_json)


@cli.command(
    epilog="Example: luma-async extend 9d4b7516-77e5-481a-b015-48313946f33b 'add a cat' --wait"
)
@click.argument("task_id")
@click.argument("prompt")
@click.option(
    "--expand-prompt/--no-expand-prompt", default=None, help="Let the service rewrite the prompt."
)
@click.option(
    "--image", callback=check_image, help="First frame: an https URL, a data: URI or a file."
)
@click.option(
    "--end-image", callback=check_image, help="Last frame: an https URL, a data: URI or a file."
)
@click.option("--notify-hook", help="A URL the service calls when the task changes.")
@click.option("--wait/--no-wait", default=False, help="Follow the new task to its end.")
@timeout_option
@json_option
@connection_options
@pass_context
def extend(
    obj: CliContext,
    task_id: str,
    prompt: str,
    expand_prompt: bool | None,
    image: ImageInput | None,
    end_image: ImageInput | None,
    notify_hook: str | None,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> int:
    """Extend the video of a completed task (a paid job) and print the new task."""

    def submit(luma: LumaSession) -> Awaitable[Task]:
        return luma.extend(
            task_id,
            prompt,
            expand_prompt=expand_prompt,
            image_url=image,
            image_end_url=end_image,
            notify_hook=notify_hook,
        )

    return _submit_and_report(obj, submit, wait=wait, timeout=timeout, as_json=as_json)


@cli.command(epilog="Example: luma-async get 9d4b7516-77e5-481a-b015-48313946f33b --json")
@click.argument("task_id")
@json_option
@connection_options
@pass_context
def get(obj: CliContext, task_id: str, as_json: bool) -> int:
    """Print a task as the service reports it now (with the reason, if it failed)."""

    async def run() -> int:
        async with obj.session() as luma:
            Reporter(as_json=as_json).task(await luma.get(task_id))
        return EXIT_OK

    return run_command(run)


@cli.command(epilog="Example: luma-async watch 9d4b7516-77e5-481a-b015-48313946f33b --json")
@click.argument("task_ids", nargs=-1, required=True)
@timeout_option
@json_option
@connection_options
@pass_context
def watch(obj: CliContext, task_ids: tuple[str, ...], timeout: float, as_json: bool) -> int:
    """Follow tasks until each has ended, printing every change of state.

    Every task is followed to its end, even when another fails; the exit code is the
    highest of theirs (1 failed, 4 timeout...).  An id given twice is followed once.
    """

    async def run() -> int:
        policy = PollPolicy(timeout=timeout)
        problems: list[str] = []
        with Reporter(as_json=as_json) as reporter:
            async with obj.session() as luma, reporter.ticking():

                async def one(task_id: str) -> int:
                    try:
                        async for change in luma.poll(task_id, policy=policy):
                            reporter.change(change)
                    except LumaError as exc:
                        code = exit_code_of(exc)
                        problems.append(f"{label_of(code)}: {cli_message(exc)}")
                        return code
                    return EXIT_OK

                codes = await asyncio.gather(*(one(i) for i in dict.fromkeys(task_ids)))
        for problem in problems:
            print(problem, file=sys.stderr)
        return max(codes)

    return run_command(run)


@cli.command(
    epilog="Example: luma-async batch requests.jsonl --concurrency 8 --journal run.sqlite "
    "--output results.jsonl\n\nEach JSONL line (or CSV row with a header; comma, semicolon or "
    "tab separated) holds task_id and user_prompt, optionally expand_prompt, image_url, "
    "image_end_url, notify_hook."
)
@click.argument("requests_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--concurrency",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="At most this many tasks in flight.",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    help="sqlite journal: rerun with the same one to resume after a crash "
    "(default: REQUESTS_FILE.journal.sqlite).",
)
@click.option("--no-journal", is_flag=True, help="Run without a journal.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    default="-",
    help="Where to write one JSON line per result (default: stdout).",
)
@click.option(
    "--download-to",
    type=click.Path(file_okay=False, exists=True, writable=True, path_type=Path),
    help="Download each finished video into this directory.",
)
@timeout_option
@json_option
@connection_options
@pass_context
def batch(
    obj: CliContext,
    requests_file: Path,
    concurrency: int,
    journal: Path | None,
    no_journal: bool,
    output: Path,
    download_to: Path | None,
    timeout: float,
    as_json: bool,
) -> int:
    """Extend many videos at once, following each to its end; results go out as JSONL."""
    book = (
        None
        if no_journal
        else journal or requests_file.with_name(requests_file.name + ".journal.sqlite")
    )
    to_stdout = str(output) == "-"
    if not to_stdout:
        check_writable_file(output, "--output")
    if book is not None:
        check_writable_file(book, "--journal")

    async def run() -> int:
        requests = read_requests(requests_file)
        obj.check()
        if book is not None:
            with Journal(book):  # a file that is not a journal is refused before any request
                pass
        results: TextIO
        try:
            results = sys.stdout if to_stdout else output.open("w", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc
        try:
            with Reporter(as_json=as_json, out=sys.stderr) as reporter:
                async with obj.session() as luma:
                    return await run_batch(
                        luma,
                        requests,
                        reporter=reporter,
                        results=results,
                        concurrency=concurrency,
                        journal=book,
                        download_to=download_to,
                        policy=PollPolicy(timeout=timeout),
                    )
        finally:
            if not to_stdout:
                results.close()

    return run_command(run)


# -- usage (issue 10) ----------------------------------------------------------------------


@cli.command(epilog="Example: luma-async usage --json")
@json_option
@pass_context
def usage(obj: CliContext, as_json: bool) -> int:
    """Print the credits of the account behind the key (check before a big batch)."""
    import json  # noqa: PLC0415 - only this command prints raw JSON

    async def run() -> int:
        async with obj.session() as luma:
            account_usage = await luma.usage()
        if as_json:
            click.echo(json.dumps(dict(account_usage.extra), ensure_ascii=False, sort_keys=True))
            return EXIT_OK
        for name in ("available", "used", "total"):
            value = getattr(account_usage, name)
            if value is not None:
                click.echo(f"{name}: {value:g}")
        for key, value in sorted(account_usage.extra.items()):
            if key not in ("available", "used", "total") and not isinstance(value, (dict, list)):
                click.echo(f"{key}: {value}")
        return EXIT_OK

    return run_command(run)


for _command in (download, journal, emulator, demo_command):
    cli.add_command(_command)

__all__ = ["cli"]
