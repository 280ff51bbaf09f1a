"""The error tree as drawn (module docstring, README, reference) is the tree as defined.

Every public error is drawn, under its real parent, in all three drawings: a new error that
nobody draws fails here, so the drawings cannot go stale.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import luma_async
from luma_async import _errors

ROOT = Path(__file__).resolve().parent.parent


def parse_tree(text: str) -> dict[str, str | None]:
    """``{name: parent name}`` of the first box-drawn tree rooted at ``LumaError`` in ``text``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "LumaError")
    indent = len(lines[start]) - len(lines[start].lstrip())
    parents: dict[str, str | None] = {"LumaError": None}
    stack = ["LumaError"]
    for raw in lines[start + 1 :]:
        line = raw[indent:]
        if not line.strip() or line.lstrip().startswith("```"):
            break
        if "── " not in line:
            continue  # the second line of a long description
        depth = line.index("── ") // 4 + 1
        name = line[line.index("── ") + 3 :].split()[0]
        del stack[depth:]
        parents[name] = stack[-1]
        stack.append(name)
    return parents


def drawings() -> dict[str, str]:
    return {
        "_errors.py docstring": _errors.__doc__ or "",
        "README.md": (ROOT / "README.md").read_text(encoding="utf-8"),
        "docs/reference.md": (ROOT / "docs" / "reference.md").read_text(encoding="utf-8"),
    }


def public_errors() -> dict[str, type[luma_async.LumaError]]:
    found = {}
    for name in luma_async.__all__:
        value = getattr(luma_async, name)
        if isinstance(value, type) and issubclass(value, luma_async.LumaError):
            found[name] = value
    return found


def lumaerror_parent(cls: type[BaseException]) -> str | None:
    for base in cls.__bases__:
        if issubclass(base, luma_async.LumaError):
            return base.__name__
    return None


def test_the_parser_reads_nesting_and_skips_continuation_lines() -> None:
    drawn = parse_tree(
        "LumaError\n├── A    about a\n│   └── B   about b\n│       continued\n└── C\n"
    )
    assert drawn == {"LumaError": None, "A": "LumaError", "B": "A", "C": "LumaError"}


@pytest.mark.parametrize("where", sorted(drawings()))
def test_every_public_error_is_drawn_under_its_parent(where: str) -> None:
    drawn = parse_tree(drawings()[where])
    expected = {name: lumaerror_parent(cls) for name, cls in public_errors().items()}
    assert drawn == expected, where


def test_every_error_is_defined_in_the_errors_module() -> None:
    for name, cls in public_errors().items():
        assert cls.__module__ == "luma_async._errors", name
        assert name in _errors.__all__


def test_the_errors_that_used_to_live_elsewhere() -> None:
    assert issubclass(luma_async.DownloadError, luma_async.LumaError)
    assert issubclass(luma_async.SessionClosedError, luma_async.LumaError)
    assert issubclass(luma_async.SessionClosedError, RuntimeError)  # what it raised before
    from luma_async._download import DownloadError  # noqa: PLC0415 - the old home still works

    assert DownloadError is luma_async.DownloadError


def test_the_docstring_tree_has_no_stray_names() -> None:
    drawn = parse_tree(_errors.__doc__ or "")
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", name) for name in drawn)
