"""The click commands behind ``luma-async`` (imported only when the ``cli`` extra is there)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import click

from luma_async._cli import (
    EXIT_OK,
    Reporter,
    demo,
    follow_task,
    read_requests,
    run_batch,
    run_command,
)
from luma_async._models import ImageInput, Task
from luma_async._policy import PollPolicy
from luma_async._session import LumaSession

EPILOG_EXIT = (
    "Exit codes: 0 success, 1 task failed, 2 usage, 3 API or transport error, 4 timeout, "
    "5 submission uncertain, 130 interrupted."
)


def _image(value: str | None) -> ImageInput | None:
    if value is None:
        return None
    if value.startswith(("http://", "https://", "data:")):
        return value
    return Path(value)


class _Context:
    def __init__(self, api_key: str | None, base_url: str | None) -> None:
        self.api_key = api_key
        self.base_url = base_url

    def session(self, **kwargs: Any) -> LumaSession:
        return LumaSession(self.api_key, base_url=self.base_url, **kwargs)


def _submit_and_report(
    obj: _Context,
    submit: Callable[[LumaSession], Awaitable[Task]],
    *,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> int:
    """Submit one paid job, print its task, and follow it when asked to."""

    async def run() -> int:
        reporter = Reporter(as_json=as_json)
        async with obj.session() as luma:
            task = await submit(luma)
            reporter.task(task)
            if wait:
                await follow_task(luma, task, reporter, PollPolicy(timeout=timeout))
        return EXIT_OK

    return run_command(run)


pass_context = click.make_pass_decorator(_Context)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
timeout_option = click.option(
    "--timeout",
    type=float,
    default=900.0,
    show_default=True,
    help="Give up following after SECONDS.",
)


@click.group(epilog=EPILOG_EXIT)
@click.option("--api-key", envvar="LUMA_API_KEY", help="API key (default: $LUMA_API_KEY).")
@click.option(
    "--base-url",
    envvar="LUMA_BASE_URL",
    help="API base URL (default: $LUMA_BASE_URL or https://api.gpt.ge).",
)
@click.version_option(package_name="luma-async")
@click.pass_context
def cli(ctx: click.Context, api_key: str | None, base_url: str | None) -> None:
    """Extend Luma videos and follow tasks from the command line."""
    ctx.obj = _Context(api_key, base_url)


@cli.command(epilog="Example: luma-async generate 'a red fox in snow' --aspect-ratio 16:9 --wait")
@click.argument("prompt")
@click.option("--aspect-ratio", help="1:1, 4:3, 3:4, 16:9, 9:16, 21:9 or 9:21.")
@click.option(
    "--expand-prompt/--no-expand-prompt", default=None, help="Let the service rewrite the prompt."
)
@click.option("--image", help="First frame: an https URL, a data: URI or a file.")
@click.option("--end-image", help="Last frame: an https URL, a data: URI or a file.")
@click.option("--notify-hook", help="A URL the service calls when the task changes.")
@click.option("--wait/--no-wait", default=False, help="Follow the new task to its end.")
@timeout_option
@json_option
@pass_context
def generate(
    obj: _Context,
    prompt: str,
    aspect_ratio: str | None,
    expand_prompt: bool | None,
    image: str | None,
    end_image: str | None,
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
            image_url=_image(image),
            image_end_url=_image(end_image),
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
@click.option("--image", help="First frame: an https URL, a data: URI or a file.")
@click.option("--end-image", help="Last frame: an https URL, a data: URI or a file.")
@click.option("--notify-hook", help="A URL the service calls when the task changes.")
@click.option("--wait/--no-wait", default=False, help="Follow the new task to its end.")
@timeout_option
@json_option
@pass_context
def extend(
    obj: _Context,
    task_id: str,
    prompt: str,
    expand_prompt: bool | None,
    image: str | None,
    end_image: str | None,
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
            image_url=_image(image),
            image_end_url=_image(end_image),
            notify_hook=notify_hook,
        )

    return _submit_and_report(obj, submit, wait=wait, timeout=timeout, as_json=as_json)


@cli.command(epilog="Example: luma-async get 9d4b7516-77e5-481a-b015-48313946f33b --json")
@click.argument("task_id")
@json_option
@pass_context
def get(obj: _Context, task_id: str, as_json: bool) -> int:
    """Print a task as the service reports it now."""

    async def run() -> int:
        async with obj.session() as luma:
            Reporter(as_json=as_json).task(await luma.get(task_id))
        return EXIT_OK

    return run_command(run)


@cli.command(epilog="Example: luma-async watch 9d4b7516-77e5-481a-b015-48313946f33b --json")
@click.argument("task_ids", nargs=-1, required=True)
@timeout_option
@json_option
@pass_context
def watch(obj: _Context, task_ids: tuple[str, ...], timeout: float, as_json: bool) -> int:
    """Follow tasks until their videos exist, printing every change of state."""

    async def run() -> int:
        reporter = Reporter(as_json=as_json)
        policy = PollPolicy(timeout=timeout)
        async with obj.session() as luma:

            async def one(task_id: str) -> None:
                async for change in luma.poll(task_id, policy=policy):
                    reporter.change(change)

            await asyncio.gather(*(one(task_id) for task_id in task_ids))
        return EXIT_OK

    return run_command(run)


@cli.command(
    epilog="Example: luma-async batch requests.jsonl --concurrency 8 --journal run.sqlite "
    "--output results.jsonl\n\nEach JSONL line (or CSV row with a header) holds task_id and "
    "user_prompt, optionally expand_prompt, image_url, image_end_url, notify_hook."
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
    type=click.File("w"),
    default="-",
    help="Where to write one JSON line per result (default: stdout).",
)
@click.option(
    "--download-to",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Download each finished video into this directory.",
)
@timeout_option
@json_option
@pass_context
def batch(
    obj: _Context,
    requests_file: Path,
    concurrency: int,
    journal: Path | None,
    no_journal: bool,
    output: TextIO,
    download_to: Path | None,
    timeout: float,
    as_json: bool,
) -> int:
    """Extend many videos at once, following each to its end; results go out as JSONL."""

    async def run() -> int:
        requests = read_requests(requests_file)
        book = (
            None
            if no_journal
            else journal or requests_file.with_name(requests_file.name + ".journal.sqlite")
        )
        reporter = Reporter(as_json=as_json, out=sys.stderr)
        async with obj.session() as luma:
            return await run_batch(
                luma,
                requests,
                reporter=reporter,
                results=output,
                concurrency=concurrency,
                journal=book,
                download_to=download_to,
                policy=PollPolicy(timeout=timeout),
            )

    return run_command(run)


@cli.command(
    epilog="Example: luma-async download 9d4b7516-77e5-481a-b015-48313946f33b videos/ "
    "--no-watermark"
)
@click.argument("task_id")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--watermark/--no-watermark",
    default=True,
    show_default=True,
    help="--no-watermark asks the service for the clean link first.",
)
@pass_context
def download(obj: _Context, task_id: str, dest: Path, watermark: bool) -> int:
    """Download a finished task's video to DEST (a file, or a directory for <task id>.mp4)."""

    async def run() -> int:
        live = sys.stderr.isatty()

        def progress(done: int, total: int | None) -> None:
            if live:
                share = f" {100 * done / total:5.1f}%" if total else ""
                sys.stderr.write(f"\r{done:>12,} bytes{share}")

        async with obj.session() as luma:
            task = await luma.get(task_id)
            path = await luma.download(task, dest, watermark=watermark, progress=progress)
        if live:
            sys.stderr.write("\n")
        click.echo(str(path))
        return EXIT_OK

    return run_command(run)


# -- usage (issue 10) ----------------------------------------------------------------------


@cli.command(epilog="Example: luma-async usage --json")
@json_option
@pass_context
def usage(obj: _Context, as_json: bool) -> int:
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


# -- emulator ------------------------------------------------------------------------------


@cli.command(epilog="Example: luma-async emulator --port 8400 --time-scale 0.1")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8400, show_default=True, type=int)
@click.option("--api-key", "emulator_key", default="emulator-key", show_default=True)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=float,
    help="Real seconds per emulated second (0.1 runs ten times faster).",
)
@click.option(
    "--dialect",
    type=click.Choice(["proxy", "gateway"]),
    default="proxy",
    show_default=True,
    help="Error bodies of the Go proxy or of a new-api gateway.",
)
@click.option(
    "--envelope",
    type=click.Choice(["bare", "list", "wrapped"]),
    default="bare",
    show_default=True,
    help="How task answers are wrapped.",
)
@click.option(
    "--task-shape",
    type=click.Choice(["classic", "artifact", "official"]),
    default="classic",
    show_default=True,
    help="The task object's shape (official: queued/dreaming, assets.video).",
)
@click.option(
    "--batch-route",
    type=click.Choice(["list", "nested", "missing", "html", "400", "403", "null"]),
    default="list",
    show_default=True,
    help="How POST /luma/tasks answers.",
)
@click.option(
    "--unrouted",
    type=click.Choice(["404", "html"]),
    default="404",
    show_default=True,
    help="What paths without a route answer (html: new-api's page, status 200).",
)
@click.option(
    "--media",
    type=click.Choice(["all", "video", "top", "artifact"]),
    default="all",
    show_default=True,
    help="Where thumbnails, last_frame and video_raw are.",
)
@click.option(
    "--upstream-expired",
    is_flag=True,
    help="Answer every request 401 'Not authenticated' (the aggregator's Luma account).",
)
@click.option(
    "--wrong-task-answers",
    type=click.IntRange(min=0),
    default=0,
    help="Answer the next N task GETs with another task.",
)
def emulator(
    host: str,
    port: int,
    emulator_key: str,
    time_scale: float,
    dialect: str,
    envelope: str,
    task_shape: str,
    batch_route: str,
    unrouted: str,
    media: str,
    upstream_expired: bool,
    wrong_task_answers: int,
) -> int:
    """Serve the API emulator until interrupted, to test your own app against it."""
    from luma_async.testing import LumaEmulator  # noqa: PLC0415

    profile: dict[str, Any] = {
        "dialect": dialect,
        "envelope": envelope,
        "task_shape": task_shape,
        "batch_route": batch_route,
        "unrouted": unrouted,
        "media": media,
        "upstream_expired": upstream_expired,
        "wrong_task_answers": wrong_task_answers,
    }

    async def run() -> int:
        async with LumaEmulator(
            host=host, port=port, api_key=emulator_key, time_scale=time_scale, **profile
        ) as emu:
            click.echo(f"LUMA_BASE_URL={emu.base_url} LUMA_API_KEY={emu.api_key}")
            click.echo("serving; Ctrl-C to stop")
            await asyncio.Event().wait()
        return EXIT_OK  # pragma: no cover - only an interrupt ends it

    return run_command(run)


@cli.command(epilog="Example: luma-async demo")
@click.option(
    "--time-scale",
    default=0.1,
    show_default=True,
    type=float,
    help="Real seconds per emulated second.",
)
def demo_command(time_scale: float) -> int:
    """Generate, extend and follow to the end against an in-process emulator (no key needed)."""
    return run_command(lambda: demo(time_scale=time_scale))


demo_command.name = "demo"
