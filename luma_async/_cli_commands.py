"""The click commands behind ``luma-async`` (imported only when the ``cli`` extra is there).

Every option is checked before the first request: a command that bills (``generate``,
``extend``, ``batch``) rejects a bad timeout, file or folder while nothing has been paid yet.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import click

from luma_async import _inputs
from luma_async._cli import (
    EXIT_OK,
    EXIT_USAGE,
    cli_message,
    exit_code_of,
    follow_task,
    label_of,
    read_requests,
    run_batch,
    run_command,
)
from luma_async._cli import demo as run_demo
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


# -- option types: each value is checked while the command line is read -------------------


def _seconds(_ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A positive, finite number of seconds (``0``, ``-1``, ``nan`` and ``inf`` are refused)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a positive number of seconds, not {value}", param=param)
    return value


def _image_option(
    _ctx: click.Context, param: click.Parameter, value: str | None
) -> ImageInput | None:
    """An http(s) URL, a ``data:`` URI, or an image file that exists and can be read."""
    if value is None or value.startswith(("http://", "https://", "data:")):
        return value
    path = Path(value)
    if not path.is_file():
        raise click.BadParameter(f"no such image file: {path}", param=param)
    if not os.access(path, os.R_OK):
        raise click.BadParameter(f"cannot read image file: {path}", param=param)
    return path


def _writable_file(path: Path, what: str) -> None:
    """``path`` can be created or overwritten: its folder exists and is writable."""
    if path.is_dir():
        raise click.BadParameter(f"{path} is a directory, not a file", param_hint=what)
    folder = path.parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist (for {path})", param_hint=what)
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"cannot write {path}", param_hint=what)


# -- connection options: before or after the sub-command ------------------------------------


class _Context:
    def __init__(self, api_key: str | None, base_url: str | None, insecure: bool) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.insecure = insecure

    def check(self) -> None:
        """Refuse a missing key or an insecure base URL in the command line's words."""
        key = self.api_key if self.api_key is not None else os.environ.get("LUMA_API_KEY")
        if not key or not key.strip():
            raise InputError("no API key: pass --api-key KEY or set LUMA_API_KEY")
        url = self.base_url or os.environ.get("LUMA_BASE_URL") or "https://api.gpt.ge"
        try:
            _inputs.check_base_url(url, allow_insecure=True)
        except InputError as exc:
            raise InputError(f"--base-url / LUMA_BASE_URL: {exc}") from exc
        if not self.insecure:
            try:
                _inputs.check_base_url(url, allow_insecure=False)
            except InputError:
                raise InputError(
                    f"base URL {url} is plain http to a non-loopback host: the API key would "
                    "travel unencrypted. Use https, or for an emulator or gateway on your LAN "
                    "pass --allow-insecure-http (or set LUMA_ALLOW_INSECURE_HTTP=1)"
                ) from None

    def session(self, **kwargs: Any) -> LumaSession:
        self.check()
        return LumaSession(
            self.api_key, base_url=self.base_url, allow_insecure_http=self.insecure, **kwargs
        )


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            setattr(ctx.ensure_object(_Context), name, value)

    return callback


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--api-key``, ``--base-url`` and ``--allow-insecure-http`` on a sub-command too."""
    command = click.option(
        "--allow-insecure-http",
        is_flag=True,
        default=None,
        expose_value=False,
        callback=_store("insecure"),
        help="Allow a plain-http base URL off this machine (an emulator or gateway on a LAN).",
    )(command)
    command = click.option(
        "--base-url",
        expose_value=False,
        callback=_store("base_url"),
        help="API base URL (default: $LUMA_BASE_URL or https://api.gpt.ge).",
    )(command)
    return click.option(
        "--api-key",
        expose_value=False,
        callback=_store("api_key"),
        help="API key (default: $LUMA_API_KEY).",
    )(command)


pass_context = click.make_pass_decorator(_Context, ensure=True)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
timeout_option = click.option(
    "--timeout",
    type=float,
    callback=_seconds,
    default=900.0,
    show_default=True,
    help="Give up following after SECONDS (a positive number).",
)


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
    ctx.obj = _Context(api_key, base_url, allow_insecure_http)


@cli.command(epilog="Example: luma-async generate 'a red fox in snow' --aspect-ratio 16:9 --wait")
@click.argument("prompt")
@click.option("--aspect-ratio", help="1:1, 4:3, 3:4, 16:9, 9:16, 21:9 or 9:21.")
@click.option(
    "--expand-prompt/--no-expand-prompt", default=None, help="Let the service rewrite the prompt."
)
@click.option(
    "--image", callback=_image_option, help="First frame: an https URL, a data: URI or a file."
)
@click.option(
    "--end-image", callback=_image_option, help="Last frame: an https URL, a data: URI or a file."
)
@click.option("--notify-hook", help="A URL the service calls when the task changes.")
@click.option("--wait/--no-wait", default=False, help="Follow the new task to its end.")
@timeout_option
@json_option
@connection_options
@pass_context
def generate(
    obj: _Context,
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
    "--image", callback=_image_option, help="First frame: an https URL, a data: URI or a file."
)
@click.option(
    "--end-image", callback=_image_option, help="Last frame: an https URL, a data: URI or a file."
)
@click.option("--notify-hook", help="A URL the service calls when the task changes.")
@click.option("--wait/--no-wait", default=False, help="Follow the new task to its end.")
@timeout_option
@json_option
@connection_options
@pass_context
def extend(
    obj: _Context,
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
def get(obj: _Context, task_id: str, as_json: bool) -> int:
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
def watch(obj: _Context, task_ids: tuple[str, ...], timeout: float, as_json: bool) -> int:
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
    obj: _Context,
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
        _writable_file(output, "--output")
    if book is not None:
        _writable_file(book, "--journal")

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
@connection_options
@pass_context
def download(obj: _Context, task_id: str, dest: Path, watermark: bool) -> int:
    """Download a finished task's video to DEST (a file, or a directory for <task id>.mp4)."""
    if not dest.is_dir():
        _writable_file(dest, "DEST")

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


# -- the journal of a batch -----------------------------------------------------------------


@cli.group(epilog="Example: luma-async journal list requests.jsonl.journal.sqlite")
def journal() -> None:
    """Look into a batch's journal and settle requests whose outcome is uncertain."""


def _open_journal(path: Path) -> Journal:
    if not path.is_file():
        raise InputError(f"no journal at {path}")
    return Journal(path)


@journal.command(
    "list", epilog="Example: luma-async journal list requests.jsonl.journal.sqlite --json"
)
@click.argument("journal_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--state", help="Only requests in this state (uncertain, finished, ...).")
@json_option
def journal_list(journal_file: Path, state: str | None, as_json: bool) -> int:
    """One line per request: its key, state, task and prompt."""
    import json  # noqa: PLC0415

    try:
        with _open_journal(journal_file) as book:
            for entry in book.entries(state):
                if as_json:
                    line = {
                        "key": entry.key,
                        "state": entry.state,
                        "task_id": entry.task_id,
                        "parent_id": entry.request.get("task_id"),
                        "user_prompt": entry.request.get("user_prompt"),
                        "error": entry.error,
                    }
                    click.echo(json.dumps(line))
                else:
                    prompt = entry.request.get("user_prompt")
                    click.echo(
                        f"{entry.key}  {entry.state:<10}  {entry.task_id or '-'}  "
                        f"extends {entry.request.get('task_id')}: {prompt!r}"
                    )
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    return EXIT_OK


@journal.command(
    "resolve",
    epilog="Example: luma-async journal resolve run.sqlite 3f2a...:0 --task-id "
    "9d4b7516-77e5-481a-b015-48313946f33b",
)
@click.argument("journal_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("key")
@click.option("--task-id", help="The task this request did create: the next run follows it.")
@click.option(
    "--not-created", is_flag=True, help="It created nothing: the next run submits it again."
)
def journal_resolve(journal_file: Path, key: str, task_id: str | None, not_created: bool) -> int:
    """Settle an uncertain request (see 'journal list --state uncertain'), then run again."""
    if (task_id is None) == (not not_created):
        raise click.UsageError("pass exactly one of --task-id ID or --not-created")
    try:
        if task_id is not None:
            _inputs.check_task_id(task_id)
        with _open_journal(journal_file) as book:
            book.resolve(key, task_id=task_id)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    outcome = f"created task {task_id}" if task_id else "created nothing"
    click.echo(f"{key}: {outcome}; run the batch again with this journal to go on")
    return EXIT_OK


# -- the emulator and the demo --------------------------------------------------------------

#: The emulator's profile options: (flag, LumaEmulator keyword, click type, help).  A new
#: emulator option becomes a flag by adding a line here.
_EMULATOR_OPTIONS: list[tuple[str, str, Any, str]] = [
    (
        "--dialect",
        "dialect",
        click.Choice(["proxy", "gateway"]),
        "Error shapes: proxy (unknown task 404) or gateway (unknown task 400).",
    ),
    (
        "--envelope",
        "envelope",
        click.Choice(["bare", "list", "wrapped"]),
        "Task answers as a bare object, a one-element list, or {'code','data'}.",
    ),
    (
        "--task-shape",
        "task_shape",
        click.Choice(["classic", "artifact", "official"]),
        (
            "classic tasks (prompt, fail_reason), later ones (request, artifact, video_raw) or "
            "the official API's (queued/dreaming, assets.video)."
        ),
    ),
    (
        "--batch-route",
        "batch_route",
        click.Choice(["list", "nested", "missing", "html", "400", "403", "null"]),
        (
            "How POST /luma/tasks answers: a bare list, new-api's nested rows, or as a deployment "
            "without the route does (404, its HTML page, 400, 403, data: null)."
        ),
    ),
    (
        "--unrouted",
        "unrouted",
        click.Choice(["404", "html"]),
        "What paths without a route answer (html: new-api's page, status 200).",
    ),
    (
        "--media",
        "media",
        click.Choice(["all", "video", "top", "artifact"]),
        "Where thumbnails, last_frame and video_raw are put.",
    ),
    (
        "--upstream-expired/--no-upstream-expired",
        "upstream_expired",
        bool,
        "Answer every request 401 'Not authenticated' (the aggregator's Luma account).",
    ),
    (
        "--wrong-task-answers",
        "wrong_task_answers",
        click.IntRange(min=0),
        "Answer the next N task GETs with another task.",
    ),
    (
        "--pending-seconds",
        "pending_seconds",
        click.FloatRange(min=0),
        "Emulated seconds a new task stays pending.",
    ),
    (
        "--processing-seconds",
        "processing_seconds",
        click.FloatRange(min=0),
        "Emulated seconds a task stays processing.",
    ),
    (
        "--fail-marker",
        "fail_marker",
        str,
        "A prompt containing this text ends failed (default: [fail]).",
    ),
    (
        "--batch-endpoint/--no-batch-endpoint",
        "batch_endpoint",
        bool,
        "Serve POST /luma/tasks (most deployments answer 404).",
    ),
    (
        "--link-delay-polls",
        "link_delay_polls",
        click.IntRange(min=0),
        "The first N reads of a completed task show no video link yet.",
    ),
]


def _emulator_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for flag, keyword, kind, help_text in reversed(_EMULATOR_OPTIONS):
        if kind is bool:
            command = click.option(flag, keyword, default=None, help=help_text)(command)
        else:
            command = click.option(flag, keyword, type=kind, default=None, help=help_text)(command)
    return command


time_scale_option = click.option(
    "--time-scale",
    type=float,
    callback=_seconds,
    show_default=True,
    help="Real seconds per emulated second (0.1 runs ten times faster; must be positive).",
)


@cli.command(
    epilog="Example: luma-async emulator --port 8400 --time-scale 0.1 --dialect gateway\n\n"
    "A busy --port is exit code 2."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8400,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the API (0 picks a free one).",
)
@click.option(
    "--api-key",
    "emulator_key",
    default="emulator-key",
    show_default=True,
    help="The only bearer token the emulator accepts.",
)
@time_scale_option
@_emulator_options
def emulator(
    host: str, port: int, emulator_key: str, time_scale: float | None, **profile: Any
) -> int:
    """Serve the API emulator until interrupted, to test your own app against it."""
    from luma_async.testing import LumaEmulator  # noqa: PLC0415
    from luma_async.testing._emulator import serve  # noqa: PLC0415

    options = {name: value for name, value in profile.items() if value is not None}
    options["time_scale"] = 1.0 if time_scale is None else time_scale

    def announce(emu: LumaEmulator) -> None:
        click.echo(f"LUMA_BASE_URL={emu.base_url} LUMA_API_KEY={emu.api_key}")
        click.echo("serving; Ctrl-C to stop")

    async def run() -> int:
        try:
            await serve(host, port, ready=announce, api_key=emulator_key, **options)
        except OSError as exc:
            why = "address in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
            raise InputError(
                f"cannot listen on {host}:{port} ({why}): pick another --port"
            ) from None
        except ValueError as exc:
            raise InputError(str(exc)) from None
        return EXIT_OK  # pragma: no cover - only an interrupt ends it

    return run_command(run)


@cli.command("demo", epilog="Example: luma-async demo")
@time_scale_option
def demo_command(time_scale: float | None) -> int:
    """Generate, extend and follow to the end against an in-process emulator (no key needed)."""
    scale = 0.1 if time_scale is None else time_scale
    return run_command(lambda: run_demo(time_scale=scale))


__all__ = ["cli"]
