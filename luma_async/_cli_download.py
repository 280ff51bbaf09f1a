"""``luma-async download``: save a finished task's video to a file or a directory."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from luma_async._cli import EXIT_OK, run_command
from luma_async._cli_options import (
    CliContext,
    check_writable_file,
    connection_options,
    pass_context,
)


@click.command(
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
def download(obj: CliContext, task_id: str, dest: Path, watermark: bool) -> int:
    """Download a finished task's video to DEST (a file, or a directory for <task id>.mp4)."""
    if not dest.is_dir():
        check_writable_file(dest, "DEST")

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


__all__ = ["download"]
