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
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs

if sys.platform == "win32":  # pragma: no cover - POSIX in CI
    import msvcrt
else:
    import fcntl

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

_PROBE_WAIT_MS = 1000  # how long opening waits for another program's write lock
_BUSY_WAIT_MS = 5000  # sqlite3's default, for every later step

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
        if self.path.is_dir():
            raise InputError(f"journal {path!r} is a directory; give the path of a file")
        self._lock = _hold(self.path)  # one process (one Journal) at a time
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except (sqlite3.Error, ValueError) as exc:  # ValueError: a NUL in the path
            self._lock.close()
            raise InputError(f"journal {path!r} cannot be opened as sqlite3: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._check_writable()
        except (sqlite3.Error, InputError) as exc:
            self._db.close()  # not left open for the garbage collector
            self._lock.close()
            if isinstance(exc, InputError):
                raise
            raise InputError(f"journal {self.path} cannot be opened as sqlite3: {exc}") from exc
        self._seen: dict[str, int] = {}

    def _check_writable(self) -> None:
        """Fail now, before any request is sent, if the batch could not record its steps."""
        self._db.execute(f"PRAGMA busy_timeout = {_PROBE_WAIT_MS}")
        try:
            self._db.execute("BEGIN IMMEDIATE")  # takes the write lock, as every step will
            try:
                (version,) = self._db.execute("PRAGMA user_version").fetchone()
                self._db.execute(f"PRAGMA user_version = {int(version)}")  # a write, undone
            finally:
                self._db.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            why = str(exc)
            if "locked" in why or "busy" in why:
                why = f"it is locked by another program ({why}); close that program first"
            elif "readonly" in why or "read-only" in why:
                why = f"it cannot be written ({why}); the batch must record every step"
            raise InputError(f"journal {self.path} is not usable: {why}") from exc
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {_BUSY_WAIT_MS}")

    def close(self) -> None:
        self._db.close()
        self._lock.close()  # releases the lock

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

    def claim(self, key: str, request: ExtendRequest) -> JournalEntry | None:
        """Check and claim ``key`` in one transaction.

        ``None``: the request was never sent (or was refused); it is now ``submitting`` and
        the caller sends it.  Otherwise the entry as recorded, which the caller must not send.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            entry = self.get(key)
            if entry is None or entry.state == "rejected":
                self._write(key, request, "submitting", task_id=None, task=None, error=None)
                entry = None
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return entry

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


def _hold(path: Path) -> IO[bytes]:
    """The open lock file ``<journal>-lock``, locked exclusively for the journal's lifetime.

    A second process (or a second :class:`Journal` on the same file) fails at once with
    :class:`InputError`: two batches on one journal would race to submit the same requests.
    The operating system releases the lock when the process ends, even by SIGKILL.
    """
    lock_path = path.with_name(path.name + "-lock")
    try:
        handle = lock_path.open("a+b")  # held open until Journal.close
    except (OSError, ValueError) as exc:
        raise InputError(f"journal {path} cannot be opened: {exc}") from exc
    try:
        _lock_exclusive(handle)
    except OSError as exc:
        handle.seek(0)
        holder = handle.read(32).decode(errors="replace").strip() or "unknown"
        handle.close()
        raise InputError(
            f"journal {path} is in use by another batch (process {holder}); two batches on "
            "one journal could submit the same request twice. Wait for it to end, or use "
            "another journal"
        ) from exc
    handle.truncate(0)
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle


def _lock_exclusive(handle: IO[bytes]) -> None:
    if sys.platform == "win32":  # pragma: no cover - POSIX in CI
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


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
