"""The journal's file: checked, locked against a second batch, opened as sqlite3.

:func:`check_journal_path` refuses, creating nothing, a path a batch could not use, so that
``extend_many`` can fail before anything is sent while the file itself is created only when
the batch runs.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import IO

if sys.platform == "win32":  # pragma: no cover - POSIX in CI
    import msvcrt
else:
    import fcntl

from luma_async._errors import InputError

__all__ = ["check_journal_path", "checked_path", "hold", "open_database"]

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


def check_journal_path(path: str | Path) -> None:
    """Refuse, creating nothing, a journal path a batch could not open and write.

    A file that exists is opened as the batch will open it (locked by another batch, locked
    by another program, read-only, not sqlite: :class:`InputError`); for a new file, its
    folder must exist and be writable.  The batch opens (and creates) the journal when it
    starts.
    """
    checked = checked_path(path)
    if not checked.exists():
        folder = checked.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise InputError(
                f"journal {checked} cannot be created: {folder} is not a writable folder"
            )
        return
    _check_free(checked)
    open_database(checked, path, setup=False).close()


def checked_path(path: object) -> Path:
    """``path`` as a Path, if it can name a journal file."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise InputError(f"journal must be a file path, not {path!r}")
    if "\0" in str(path):
        raise InputError(f"journal {path!r} cannot be opened: the path holds a NUL character")
    checked = Path(path)
    if checked.is_dir():
        raise InputError(f"journal {path!r} is a directory; give the path of a file")
    return checked


def open_database(path: Path, given: object, *, setup: bool) -> sqlite3.Connection:
    """The journal's database, checked writable; ``setup`` creates its table if missing."""
    try:
        db = sqlite3.connect(path, isolation_level=None)
    except (sqlite3.Error, ValueError) as exc:  # ValueError: a NUL in the path
        raise InputError(f"journal {given!r} cannot be opened as sqlite3: {exc}") from exc
    try:
        if setup:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        _check_writable(db, path)
    except (sqlite3.Error, InputError) as exc:
        db.close()  # not left open for the garbage collector
        if isinstance(exc, InputError):
            raise
        raise InputError(f"journal {path} cannot be opened as sqlite3: {exc}") from exc
    return db


def _check_writable(db: sqlite3.Connection, path: Path) -> None:
    """Fail now, before any request is sent, if the batch could not record its steps."""
    db.execute(f"PRAGMA busy_timeout = {_PROBE_WAIT_MS}")
    try:
        db.execute("BEGIN IMMEDIATE")  # takes the write lock, as every step will
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            db.execute(f"PRAGMA user_version = {int(version)}")  # a write, undone
        finally:
            db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        why = str(exc)
        if "locked" in why or "busy" in why:
            why = f"it is locked by another program ({why}); close that program first"
        elif "readonly" in why or "read-only" in why:
            why = f"it cannot be written ({why}); the batch must record every step"
        raise InputError(f"journal {path} is not usable: {why}") from exc
    finally:
        db.execute(f"PRAGMA busy_timeout = {_BUSY_WAIT_MS}")


def hold(path: Path) -> IO[bytes]:
    """The open lock file ``<journal>-lock``, locked exclusively for the journal's lifetime.

    A second process (or a second :class:`Journal` on the same file) fails at once with
    :class:`InputError`: two batches on one journal would race to submit the same requests.
    The operating system releases the lock when the process ends, even by SIGKILL.
    """
    try:
        handle = _lock_path(path).open("a+b")  # held open until Journal.close
    except OSError as exc:
        raise InputError(f"journal {path} cannot be opened: {exc}") from exc
    _lock_or_refuse(handle, path)
    handle.truncate(0)
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle


def _check_free(path: Path) -> None:
    """Refuse a journal another batch holds, without creating its lock file."""
    try:
        descriptor = os.open(_lock_path(path), os.O_RDWR)
    except FileNotFoundError:
        return  # never opened by a batch, so held by none
    except OSError as exc:
        raise InputError(f"journal {path} cannot be opened: {exc}") from exc
    with os.fdopen(descriptor, "r+b") as handle:  # closing it releases the lock just taken
        _lock_or_refuse(handle, path)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + "-lock")


def _lock_or_refuse(handle: IO[bytes], path: Path) -> None:
    """Lock ``handle`` exclusively, or close it and say which process holds it."""
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


def _lock_exclusive(handle: IO[bytes]) -> None:
    if sys.platform == "win32":  # pragma: no cover - POSIX in CI
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
