"""What the ``luma-async`` command shows while it follows tasks (needs the ``cli`` extra)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections import Counter
from collections.abc import AsyncGenerator
from typing import Any, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from luma_async import _clock
from luma_async._convert import converter
from luma_async._models import StateChange, Task

__all__ = ["Reporter", "make_console"]


def make_console(out: TextIO) -> Console:
    """The rich console behind a :class:`Reporter` (tests replace it with a recording one)."""
    return Console(file=out, highlight=False)


class Reporter:
    """Shows state changes: a live table on a terminal, a plain line each when piped, or one
    JSON object per change with ``--json``.

    The live table (rich) has one row per task: its id, state, the time since it was first
    seen, polls and a shortened video link.  It always fits the terminal: long values are
    shortened, and when there are more tasks than lines it shows a summary row and the most
    recently changed tasks.  :meth:`ticking` keeps the times moving between changes;
    :meth:`close` ends the view and prints the full video links once.
    """

    def __init__(
        self, *, as_json: bool, out: TextIO | None = None, console: Console | None = None
    ) -> None:
        self.out = out or sys.stdout
        self.as_json = as_json
        self.console = console or make_console(self.out)
        self.live = not as_json and self.console.is_terminal
        # task id -> (last change, when first seen, when last changed)
        self._rows: dict[str, tuple[StateChange, float, float]] = {}
        self._view: Live | None = None
        self._closed = False

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def change(self, change: StateChange) -> None:
        if self.as_json:
            data = converter.unstructure(change)
            data["task"] = _one_failure_field(data["task"])
            self._write(json.dumps(data))
        elif self.live:
            now = _clock.monotonic()
            known = self._rows.get(change.task_id)
            first_seen = known[1] if known is not None else now - change.elapsed
            self._rows[change.task_id] = (change, first_seen, now)
            self.redraw()
        else:
            self._write(_describe(change, change.elapsed))

    def redraw(self) -> None:
        """Draw the table again (starting the live view at the first change)."""
        if not self.live or not self._rows or self._closed:
            return
        if self._view is None:
            self._view = Live(
                self.table(),
                console=self.console,
                auto_refresh=False,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
                vertical_overflow="crop",
            )
            self._view.start(refresh=True)
        else:
            self._view.update(self.table(), refresh=True)

    def table(self) -> RenderableType:
        """The table as it is drawn now, fitted to the console's width and height."""
        now = _clock.monotonic()
        width = self.console.size.width
        # state, time and polls keep their width; the id and the link share the rest.
        rest = max(16, width - (11 + 8 + 5) - 2 * 4 - 1)
        id_width = min(36, max(8, rest // 2))
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
        table.add_column("task", no_wrap=True, overflow="ellipsis", width=id_width)
        table.add_column("state", no_wrap=True, overflow="ellipsis", width=11)
        table.add_column("time", no_wrap=True, justify="right", width=8)
        table.add_column("polls", no_wrap=True, justify="right", width=5)
        table.add_column("video", no_wrap=True, overflow="ellipsis", width=max(5, rest - id_width))
        rows = list(self._rows.values())
        header: Text | None = None
        # Header (2 lines), the summary, the cursor's line and one spare line for a message.
        room = max(2, self.console.size.height - 5)
        if len(rows) > room:
            rows.sort(key=lambda row: row[2])
            hidden, rows = rows[: len(rows) - room + 1], rows[len(rows) - room + 1 :]
            counts = Counter(str(change.state) for change, _, _ in hidden)
            summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            header = Text(
                f"+{len(hidden)} more tasks: {summary}", no_wrap=True, overflow="ellipsis"
            )
        for change, first_seen, _ in rows:
            task = change.task
            elapsed = change.elapsed if task.is_terminal else now - first_seen
            state = Text(str(change.state), style=_STYLES.get(str(change.state), ""))
            link = task.video.best_url if task.video is not None else ""
            table.add_row(change.task_id, state, f"{elapsed:.1f}s", str(change.polls), link)
        return table if header is None else Group(header, table)

    def close(self) -> None:
        """End the live view (its last frame stays) and print the full video links once."""
        if self._closed:
            return
        self._closed = True
        if self._view is None:
            return
        self._view.stop()
        for change, _, _ in self._rows.values():
            if change.task.video is not None:
                self.console.print(
                    f"{change.task_id}  {change.task.video.best_url}",
                    soft_wrap=True,
                    markup=False,
                    highlight=False,
                )

    @contextlib.asynccontextmanager
    async def ticking(self, every: float = 1.0) -> AsyncGenerator[None, None]:
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
            self._write(json.dumps(_one_failure_field(converter.unstructure(task))))
        else:
            self.message(_describe_task(task))

    def message(self, text: str) -> None:
        """A line above the live table (or a plain line); nothing with ``--json``."""
        if self.as_json:
            return
        if self.live:
            self.console.print(text, soft_wrap=True, markup=False, highlight=False)
        else:
            self._write(text)

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()


def _one_failure_field(task: dict[str, Any]) -> dict[str, Any]:
    """The task's JSON with its reason once, as ``failure_reason`` (the wire's older
    ``fail_reason``, kept among the extra fields, would repeat it)."""
    if "fail_reason" in task:
        reason = task.pop("fail_reason")
        if task.get("failure_reason") is None:
            task["failure_reason"] = reason
    return task


_STYLES = {"completed": "green", "failed": "red", "processing": "yellow", "pending": "dim"}


def _describe_task(task: Task) -> str:
    video = f"  video: {task.video.best_url}" if task.video is not None else ""
    reason = f"  reason: {task.failure_reason}" if task.is_failed and task.failure_reason else ""
    return f"{task.id}  {task.state}{reason}{video}"


def _describe(change: StateChange, elapsed: float) -> str:
    arrow = f"{change.previous} -> {change.state}" if change.previous else f"{change.state}"
    video = f"  {change.task.video.best_url}" if change.task.video is not None else ""
    return f"{change.task_id}  {arrow:<24} {elapsed:7.1f}s  polls={change.polls}{video}"
