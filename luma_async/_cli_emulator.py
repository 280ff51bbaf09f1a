"""``luma-async emulator`` and ``luma-async demo``: the API emulator from the command line."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import click

from luma_async._cli import EXIT_OK, run_command
from luma_async._cli import demo as run_demo
from luma_async._cli_options import check_seconds
from luma_async._errors import InputError

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
    callback=check_seconds,
    show_default=True,
    help="Real seconds per emulated second (0.1 runs ten times faster; must be positive).",
)


@click.command(
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


@click.command("demo", epilog="Example: luma-async demo")
@time_scale_option
def demo_command(time_scale: float | None) -> int:
    """Generate, extend and follow to the end against an in-process emulator (no key needed)."""
    scale = 0.1 if time_scale is None else time_scale
    return run_command(lambda: run_demo(time_scale=scale))


__all__ = ["demo_command", "emulator"]
