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

:class:`Journal` is what users hold: it reads rows and settles uncertain ones.  The steps a
batch records go through a :class:`JournalWriter` (this module's private write protocol):
:func:`writer_of` a journal writes to its database, :class:`NullJournal` (a batch without a
journal) writes nothing and has every request run.
"""

from __future__ import annotations

import enum
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs

from luma_async._convert import task_from_json, task_to_json
from luma_async._errors import InputError
from luma_async._journal_file import checked_path, hold, open_database
from luma_async._models import ExtendRequest, Task

__all__ = [
    "Journal",
    "JournalEntry",
    "JournalState",
    "JournalWriter",
    "NullJournal",
    "request_fingerprint",
    "writer_of",
]


class JournalState(str, enum.Enum):
    """Where a request of a journaled batch stands; equal to the string stored on disk."""

    #: claimed, and its POST may be on the way: if the process dies now, it is uncertain.
    SUBMITTING = "submitting"
    #: the service answered with a task id: a rerun follows that task.
    SUBMITTED = "submitted"
    #: the task ended with its video.
    FINISHED = "finished"
    #: the task ended in failure.
    FAILED = "failed"
    #: it may or may not have created a task: never sent again until :meth:`Journal.resolve`.
    UNCERTAIN = "uncertain"
    #: the service refused it (nothing was created): a rerun sends it again.
    REJECTED = "rejected"

    __hash__ = str.__hash__  # ``{JournalState.FINISHED} == {"finished"}`` on every Python

    def __str__(self) -> str:
        return self.value


def _state(value: object) -> JournalState:
    """A state given by a user (member or string), or an InputError that lists the states."""
    try:
        return JournalState(value)
    except ValueError:
        names = ", ".join(state.value for state in JournalState)
        raise InputError(f"journal state must be one of {names}, not {value!r}") from None


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
    """One request's row, in the :class:`JournalState` ``state``."""

    key: str
    request: dict[str, Any]
    state: JournalState
    task_id: str | None
    task: Task | None
    error: str | None


class Journal:
    """The sqlite3 journal of one batch (or several batches over time).

    Use one journal per batch of requests; open it again after a crash to resume.  Only a
    batch writes its steps; a user reads the rows and settles uncertain ones (:meth:`resolve`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = checked_path(path)
        self._lock = hold(self.path)  # one process (one Journal) at a time
        try:
            self._db = open_database(self.path, path, setup=True)
        except BaseException:
            self._lock.close()
            raise
        self._writer = _SqliteWriter(self._db)

    def close(self) -> None:
        self._db.close()
        self._lock.close()  # releases the lock

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def key_for(self, request: ExtendRequest) -> str:
        """The row key: the request's fingerprint and its rank among identical requests."""
        return self._writer.key_for(request)

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> JournalEntry | None:
        return _get(self._db, key)

    def entries(self, state: JournalState | str | None = None) -> Iterator[JournalEntry]:
        """Every row in key order, or only those in ``state`` (a :class:`JournalState` or
        its string)."""
        query = "SELECT key, request, state, task_id, task, error FROM requests"
        rows = (
            self._db.execute(query + " WHERE state = ? ORDER BY key", (_state(state).value,))
            if state is not None
            else self._db.execute(query + " ORDER BY key")
        )
        for row in rows.fetchall():
            yield _entry(row)

    def uncertain(self) -> list[JournalEntry]:
        """Requests that may or may not have created a task: look, then :meth:`resolve`."""
        return [*self.entries(JournalState.UNCERTAIN), *self.entries(JournalState.SUBMITTING)]

    def resolve(self, key: str, *, task_id: str | None) -> None:
        """Settle an uncertain request: it created ``task_id`` (follow it), or nothing (``None``:
        it will be submitted again by the next run)."""
        entry = self.get(key)
        if entry is None or entry.state not in _UNSURE:
            raise InputError(f"journal has no uncertain request {key!r}")
        if task_id is None:
            self._writer.write(key, JournalState.REJECTED, error="resolved: no task was created")
        else:
            self._writer.write(key, JournalState.SUBMITTED, task_id=task_id, error=None)


_UNSURE = (JournalState.UNCERTAIN, JournalState.SUBMITTING)
_STORED = {state.value: state for state in JournalState}


# -- the write protocol of a batch ------------------------------------------------------------


class JournalWriter(Protocol):
    """The steps a batch records, each a committed transaction before the batch goes on."""

    def begin(self) -> None:
        """A batch run starts: identical requests are ranked from zero again."""
        ...

    def key_for(self, request: ExtendRequest) -> str:
        """The request's row key (see :meth:`Journal.key_for`)."""
        ...

    def claim(self, key: str, request: ExtendRequest) -> JournalEntry | None:
        """``None``: send the request (it is now ``submitting``); else the row as recorded,
        which must not be sent."""
        ...

    def submitted(self, key: str, task: Task) -> None: ...

    def finished(self, key: str, task: Task) -> None: ...

    def failed(self, key: str, task: Task) -> None: ...

    def uncertain(self, key: str, error: str, *, task_id: str | None = None) -> None:
        """The request may have created a task (``task_id``, when its answer named one)."""
        ...

    def rejected(self, key: str, error: str) -> None:
        """The service refused the request (nothing created): it may be sent again."""
        ...


class NullJournal:
    """The journal of a batch run without one: records nothing, and every request runs."""

    def begin(self) -> None:
        pass

    def key_for(self, request: ExtendRequest) -> str:
        return ""

    def claim(self, key: str, request: ExtendRequest) -> JournalEntry | None:
        return None

    def submitted(self, key: str, task: Task) -> None:
        pass

    def finished(self, key: str, task: Task) -> None:
        pass

    def failed(self, key: str, task: Task) -> None:
        pass

    def uncertain(self, key: str, error: str, *, task_id: str | None = None) -> None:
        pass

    def rejected(self, key: str, error: str) -> None:
        pass


def writer_of(journal: Journal) -> JournalWriter:
    """What a batch records its steps through: the journal's own database."""
    return journal._writer  # noqa: SLF001 - the batch is the one writer besides resolve


class _SqliteWriter:
    """:class:`JournalWriter` over a journal's open database."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._seen: dict[str, int] = {}

    def begin(self) -> None:
        self._seen.clear()

    def key_for(self, request: ExtendRequest) -> str:
        fingerprint = request_fingerprint(request)
        rank = self._seen.get(fingerprint, 0)
        self._seen[fingerprint] = rank + 1
        return f"{fingerprint}:{rank}"

    def write(self, key: str, state: JournalState, **fields: Any) -> None:
        columns = {"state": state.value, "updated_at": time.time(), **fields}
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self._db.execute(
            f"UPDATE requests SET {assignments} WHERE key = ?",  # noqa: S608 - fixed names
            (*columns.values(), key),
        )

    def claim(self, key: str, request: ExtendRequest) -> JournalEntry | None:
        self._db.execute("BEGIN IMMEDIATE")  # checked and claimed in one transaction
        try:
            entry = _get(self._db, key)
            if entry is None or entry.state is JournalState.REJECTED:
                self._db.execute(
                    "INSERT INTO requests (key, request, state, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(key) DO NOTHING",
                    (key, json.dumps(_request_json(request), default=repr), "submitting", 0.0),
                )
                self.write(key, JournalState.SUBMITTING, task_id=None, task=None, error=None)
                entry = None
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return entry

    def submitted(self, key: str, task: Task) -> None:
        self.write(key, JournalState.SUBMITTED, task_id=task.id, task=_task_json(task))

    def finished(self, key: str, task: Task) -> None:
        self.write(key, JournalState.FINISHED, task_id=task.id, task=_task_json(task))

    def failed(self, key: str, task: Task) -> None:
        self.write(key, JournalState.FAILED, task_id=task.id, task=_task_json(task))

    def uncertain(self, key: str, error: str, *, task_id: str | None = None) -> None:
        if task_id is None:
            self.write(key, JournalState.UNCERTAIN, error=error)
        else:
            self.write(key, JournalState.UNCERTAIN, error=error, task_id=task_id)

    def rejected(self, key: str, error: str) -> None:
        self.write(key, JournalState.REJECTED, error=error)


def _get(db: sqlite3.Connection, key: str) -> JournalEntry | None:
    row = db.execute(
        "SELECT key, request, state, task_id, task, error FROM requests WHERE key = ?", (key,)
    ).fetchone()
    return None if row is None else _entry(row)


def _task_json(task: Task) -> str:
    return json.dumps(task_to_json(task))


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
    if state not in _STORED:
        raise InputError(f"journal row {key} is in an unknown state {state!r}")
    return JournalEntry(
        key=key,
        request=json.loads(request),
        state=_STORED[state],
        task_id=task_id,
        task=None if task is None else task_from_json(json.loads(task), what="journal"),
        error=error,
    )
