"""The files of one download: the target's name, the ``.part`` being written and its lock,
the ``.meta`` validator kept beside it, and every ``OSError`` as a :class:`DownloadError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from typing import IO

from yarl import URL

from luma_async._errors import DownloadError, InputError

__all__ = ["check_dest", "display_url", "fs_error", "fsync_directory", "open_part", "target_path"]

_MAX_NAME = 255  # bytes in one file name on common file systems (NAME_MAX)


def display_url(url: str | URL) -> str:
    """A checked URL for messages and logs: no credentials, query or fragment (presigned)."""
    return str(URL(url).with_user(None).with_query(None).with_fragment(None))


def target_path(dest: Path | str, url: str, filename: str | None) -> Path:
    if not isinstance(dest, (str, os.PathLike)):
        raise InputError(f"dest must be a path, not {type(dest).__name__}")
    path = Path(dest)
    try:
        return _name_target(path, url, filename)
    except OSError as exc:  # e.g. a name too long for the file system
        raise fs_error(exc, url, path) from exc


def _name_target(path: Path, url: str, filename: str | None) -> Path:
    if path.is_dir():
        name = URL(url).name if filename is None else filename
        if not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in "/\\\0"):
            raise InputError(
                f"cannot name a file after {display_url(url)!r}; pass a file path as dest"
            )
        path /= name
    if not path.parent.is_dir():
        raise InputError(f"the directory {path.parent} does not exist")
    return path


def open_part(target: Path, url: str) -> tuple[Path, IO[bytes], str | None]:
    """The ``.part`` file to write, opened at its end, and the validator of what it holds.

    Named after the destination and the link without its query (presigned queries change
    between links to the same video), so a later download finds what a killed one left. A
    ``.part`` that another download holds is left alone: this one gets a file of its own.
    """
    key = hashlib.sha256(display_url(url).encode()).hexdigest()[:12]
    part = target.with_name(_part_name(target.name, key))
    fd = os.open(part, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    if not _lock(fd):
        os.close(fd)
        part = target.with_name(_part_name(target.name, f"{key}-{secrets.token_hex(4)}"))
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    file = os.fdopen(fd, "r+b")
    validator = None
    if os.fstat(fd).st_size:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            validator = part.with_suffix(".meta").read_text(encoding="utf-8").strip() or None
        if validator is None:  # nothing to check the bytes against: start over
            file.truncate()
    return part, file, validator


def _part_name(name: str, key: str) -> str:
    """``.<name>.<key>.part``, the name shortened to fit one file-name length."""
    room = _MAX_NAME - len(f"..{key}.part".encode())
    short = name.encode()[:room].decode("utf-8", "ignore")
    return f".{short}.{key}.part"


def _lock(fd: int) -> bool:
    """An advisory lock on an open file, held until it is closed (False where unsupported)."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only

    except ImportError:  # pragma: no cover - Windows: no resume across processes
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def fs_error(exc: OSError, url: str, path: Path, received: int = 0) -> DownloadError:
    """A file-system failure as a :class:`DownloadError`, its paths shown as paths."""
    why = exc.strerror or type(exc).__name__
    if exc.filename is not None and os.fsdecode(exc.filename) != str(path):
        why = f"{why} ({os.fsdecode(exc.filename)})"
    return DownloadError(
        f"GET {display_url(url)}: cannot save to {path}: {why}",
        url=display_url(url),
        path=path,
        received=received,
    )


def check_dest(dest: object, url: str, filename: str | None) -> None:
    """Refuse a ``dest`` that :func:`download` would refuse, before any request is sent."""
    try:
        target_path(dest, url, filename)  # type: ignore[arg-type]
    except InputError as exc:
        raise InputError(f"dest: {exc}") from None


def fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows it (POSIX); harmless elsewhere."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
