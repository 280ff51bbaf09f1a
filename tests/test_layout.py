"""The codebase stays one a maintainer can hold in mind (issue 13).

No module of the package is over ~400 lines, and every one imports on its own, first, in a
fresh interpreter: an import cycle between two modules fails that for one of them.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "luma_async"
MAX_LINES = 400

#: Modules allowed over MAX_LINES, each with the reason.  An entry is a debt, not a licence:
#: the test also fails when a listed module is back under the limit (remove it then).
EXCEPTIONS: dict[str, str] = {}


def modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_is_over_the_limit() -> None:
    over = {
        str(path.relative_to(PACKAGE)): lines
        for path in modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    unexpected = {name: lines for name, lines in over.items() if name not in EXCEPTIONS}
    assert not unexpected, f"modules over {MAX_LINES} lines: {unexpected}"
    stale = sorted(set(EXCEPTIONS) - set(over))
    assert not stale, f"listed as exceptions but no longer over the limit: {stale}"


def test_the_package_has_modules_to_check() -> None:
    names = {dotted(path) for path in modules()}
    assert {"luma_async", "luma_async._session", "luma_async._errors"} <= names


#: Run in one fresh interpreter: the third-party libraries are imported once, then each
#: module of the package is imported first in a forked child that has none of the package.
_IMPORT_EACH = """
import importlib, os, sys, traceback
import aiohttp, aiohttp.web, attrs, cattrs, click, rich.console, rich.live, sqlite3, tenacity  # noqa: E401, F401
# (third-party: loaded once, shared by every child; none of the package is loaded here)
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1]:
        failed.append(name)
print(" ".join(failed))
sys.exit(1 if failed else 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a child per module (POSIX)")
def test_each_module_imports_first_in_a_fresh_interpreter() -> None:
    """Each module imports on its own, with no other module of the package loaded before."""
    names = [dotted(path) for path in modules()]
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *names],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"failed: {result.stdout}\n{result.stderr}"


def _top_level_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports when it is loaded (not in functions, not for
    type checkers only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    this = dotted(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    pending: list[ast.AST] = list(tree.body)
    while pending:
        inner = pending.pop()
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue  # runs later, if ever: not a load-time import
        if isinstance(inner, ast.If) and "TYPE_CHECKING" in ast.unparse(inner.test):
            pending.extend(inner.orelse)
            continue
        pending.extend(ast.iter_child_nodes(inner))
        if isinstance(inner, ast.Import):
            found |= {alias.name for alias in inner.names}
        elif isinstance(inner, ast.ImportFrom):
            base = inner.module or ""
            if inner.level:
                parent = package.split(".")
                parent = parent[: len(parent) - inner.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in inner.names}
    known = {dotted(p) for p in modules()}
    return {name for name in found if name in known and name != this}


def test_no_import_cycle_between_modules() -> None:
    """The graph of load-time imports between the package's modules has no cycle (a package
    importing its own submodules, ``__init__`` re-exporting, is not counted as one)."""
    graph = {dotted(path): _top_level_imports(path) for path in modules()}
    for name, edges in graph.items():  # a module never "imports" the packages above it
        graph[name] = {edge for edge in edges if not name.startswith(edge + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for edge in sorted(graph[name]):
            if state.get(edge) == 1:
                cycle = [*stack[stack.index(edge) :], edge]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if edge not in state:
                visit(edge)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


#: Loaded on first use, not by ``import luma_async``: a program that never runs a batch, a
#: journal or a download does not pay for them (sqlite3 included), nor for aiohttp's server.
_LAZY_MODULES = (
    "aiohttp.web",
    "sqlite3",
    "luma_async._batch",
    "luma_async._batch_wiring",
    "luma_async._callbacks",
    "luma_async._download",
    "luma_async._download_http",
    "luma_async._journal",
)
_LOADED_BY_IMPORT = """
import sys
import luma_async
print(" ".join(sorted(name for name in sys.argv[1:] if name in sys.modules)))
"""


def test_import_luma_async_leaves_batches_journals_and_downloads_unloaded() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LOADED_BY_IMPORT, *_LAZY_MODULES],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == []


def test_the_lazy_names_are_the_classes_of_their_modules() -> None:
    import luma_async  # noqa: PLC0415
    from luma_async import _batch, _callbacks, _download, _journal  # noqa: PLC0415

    assert luma_async.Batch is _batch.Batch
    assert luma_async.CallbackReceiver is _callbacks.CallbackReceiver
    assert luma_async.Journal is _journal.Journal
    assert luma_async.JournalEntry is _journal.JournalEntry
    assert luma_async.JournalState is _journal.JournalState
    assert luma_async.ProgressCallback is _download.ProgressCallback
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = luma_async.Nope  # type: ignore[attr-defined]
