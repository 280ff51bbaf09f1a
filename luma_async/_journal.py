"""A durable record of a batch, so a killed process can resume without paying twice.

Each request of a batch gets a row keyed by what it asks for (and how many identical
requests came before it in the same batch).  The row is written, and committed, *before* the
paid POST leaves (``submitting``), again when the service answers with a task id
(``submitted``), and when the task ends (``finished`` / ``failed``).  Restarted with the same
journal and requests, a batch

- yields finished and failed requests from the journal, without any request;
- follows ``submitted`` tasks again, without submitting them;
- flags requests found ``submitting`` (the process died mid-POST: the task may exist) as
  ``uncertain`` and never re-sends them until the user says what happened with
  :meth:`Journal.resolve`;
- submits only the requests it never sent (or that the service refused outright).

It is plain ``sqlite3`` in WAL mode with ``synchronous=FULL``: every state change is on disk
before the batch moves on.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from luma_async._convert import task_from_json, task_to_json
from luma_async._errors import InputError
from luma_async._models import ExtendRequest, Task

__all__ = ["Journal", "JournalEntry", "request_fingerprint"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    key        TEXT PRIMARY KEY,
    request    TEXT NOT NULL,
    state      TEXT NOT NULL,
    task_id    TEXT,
    task       TEXT,
    error      TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state);
"""

STATES = ("submitting", "submitted", "finished", "failed", "uncertain", "rejected")


def _image_fingerprint(value: object) -> object:
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, Path):
        return f"path:{value}"
    return value


def request_fingerprint(request: ExtendRequest) -> str:
    """A stable digest of what a request asks for (images by content or path)."""
    canonical = json.dumps(
        _request_json(request), sort_keys=True, separators=(",", ":"), default=repr
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@attrs.frozen
class JournalEntry:
    """One request's row: ``state`` is one of submitting, submitted, finished, failed,
    uncertain, rejected."""

    key: str
    request: dict[str, Any]
    state: str
    task_id: str | None
    task: Task | None
    error: str | None


class Journal:
    """The sqlite3 journal of one batch (or several batches over time).

    Use one journal per batch of requests; open it again after a crash to resume.
    """

    def __init__(self, path: str | Path) -> None:
        if not isinstance(path, (str, Path)) or not str(path):
            raise InputError(f"journal must be a file path, not {path!r}")
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except (sqlite3.Error, ValueError) as exc:  # ValueError: a NUL in the path
            raise InputError(f"journal {path!r} cannot be opened as sqlite3: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()  # not left open for the garbage collector
            raise InputError(f"journal {self.path} cannot be opened as sqlite3: {exc}") from exc
        self._seen: dict[str, int] = {}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- keys ------------------------------------------------------------------------------

    def start_batch(self) -> None:
        """Rank identical requests from zero again: each batch run sees them in order."""
        self._seen.clear()

    def key_for(self, request: ExtendRequest) -> str:
        """The row key: the request's fingerprint and its rank among identical requests."""
        fingerprint = request_fingerprint(request)
        rank = self._seen.get(fingerprint, 0)
        self._seen[fingerprint] = rank + 1
        return f"{fingerprint}:{rank}"

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> JournalEntry | None:
        row = self._db.execute(
            "SELECT key, request, state, task_id, task, error FROM requests WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else _entry(row)

    def entries(self, state: str | None = None) -> Iterator[JournalEntry]:
        query = "SELECT key, request, state, task_id, task, error FROM requests"
        rows = (
            self._db.execute(query + " WHERE state = ? ORDER BY key", (state,))
            if state is not None
            else self._db.execute(query + " ORDER BY key")
        )
        for row in rows.fetchall():
            yield _entry(row)

    def uncertain(self) -> list[JournalEntry]:
        """Requests that may or may not have created a task: look, then :meth:`resolve`."""
        return list(self.entries("uncertain")) + list(self.entries("submitting"))

    # -- writing (each a committed transaction) ----------------------------------------------

    def _write(self, key: str, request: ExtendRequest | None, state: str, **fields: Any) -> None:
        columns = {"state": state, "updated_at": time.time(), **fields}
        if request is not None:
            self._db.execute(
                "INSERT INTO requests (key, request, state, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO NOTHING",
                (
                    key,
                    json.dumps(_request_json(request), default=repr),
                    state,
                    columns["updated_at"],
                ),
            )
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self._db.execute(
            f"UPDATE requests SET {assignments} WHERE key = ?",  # noqa: S608 - fixed names
            (*columns.values(), key),
        )

    def submitting(self, key: str, request: ExtendRequest) -> None:
        """Before the POST: if the process dies now, the request becomes uncertain."""
        self._write(key, request, "submitting", task_id=None, task=None, error=None)

    def submitted(self, key: str, task: Task) -> None:
        self._write(key, None, "submitted", task_id=task.id, task=json.dumps(task_to_json(task)))

    def finished(self, key: str, task: Task) -> None:
        self._write(key, None, "finished", task_id=task.id, task=json.dumps(task_to_json(task)))

    def failed(self, key: str, task: Task) -> None:
        self._write(key, None, "failed", task_id=task.id, task=json.dumps(task_to_json(task)))

    def mark_uncertain(self, key: str, error: str, *, task_id: str | None = None) -> None:
        """The request may have created a task (``task_id``, when its answer named one)."""
        if task_id is None:
            self._write(key, None, "uncertain", error=error)
        else:
            self._write(key, None, "uncertain", error=error, task_id=task_id)

    def rejected(self, key: str, error: str) -> None:
        """The service refused the request (nothing created): it may be sent again."""
        self._write(key, None, "rejected", error=error)

    def resolve(self, key: str, *, task_id: str | None) -> None:
        """Settle an uncertain request: it created ``task_id`` (follow it), or nothing (``None``:
        it will be submitted again by the next run)."""
        entry = self.get(key)
        if entry is None or entry.state not in ("uncertain", "submitting"):
            raise InputError(f"journal has no uncertain request {key!r}")
        if task_id is None:
            self._write(key, None, "rejected", error="resolved: no task was created")
        else:
            self._write(key, None, "submitted", task_id=task_id, error=None)


def _request_json(request: ExtendRequest) -> dict[str, Any]:
    return {
        "task_id": request.task_id,
        "user_prompt": request.user_prompt,
        "expand_prompt": request.expand_prompt,
        "image_url": _image_fingerprint(request.image_url),
        "image_end_url": _image_fingerprint(request.image_end_url),
        "notify_hook": request.notify_hook,
    }


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    key, request, state, task_id, task, error = row
    return JournalEntry(
        key=key,
        request=json.loads(request),
        state=state,
        task_id=task_id,
        task=None if task is None else task_from_json(json.loads(task), what="journal"),
        error=error,
    )
