"""``luma-async journal``: look into a batch's journal and settle uncertain requests."""

from __future__ import annotations

from pathlib import Path

import click

from luma_async import _inputs
from luma_async._cli import EXIT_OK, EXIT_USAGE
from luma_async._cli_options import json_option
from luma_async._errors import InputError
from luma_async._journal import Journal

# -- the journal of a batch -----------------------------------------------------------------


@click.group(epilog="Example: luma-async journal list requests.jsonl.journal.sqlite")
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


__all__ = ["journal"]
