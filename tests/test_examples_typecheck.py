"""The README's and the docs' examples type-check under mypy --strict and pyright strict.

A user copies these first; an example that its own users' type checker rejects teaches the
wrong thing.  All snippets go to one mypy call and one pyright call, in a subprocess.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))


def snippets() -> dict[str, str]:
    """Every Python block of README.md and docs/**/*.md, and every docs/examples program."""
    found: dict[str, str] = {}
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
        for number, block in enumerate(blocks, start=1):
            name = re.sub(r"\W", "_", str(page.relative_to(ROOT)).removesuffix(".md"))
            found[f"snippet_{name}_{number}.py"] = block
    for example in EXAMPLES:
        found[example.name] = example.read_text()  # their own names: they import each other
    return found


@pytest.fixture(scope="module")
def snippet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("snippets")
    for name, code in snippets().items():
        (folder / name).write_text(code)
    return folder


def test_there_are_snippets_to_check() -> None:
    names = snippets()
    assert sum(name.startswith("snippet_README") for name in names) == 3
    assert "first_extension.py" in names


def test_examples_pass_mypy_strict(snippet_dir: Path) -> None:
    files = sorted(str(path) for path in snippet_dir.glob("*.py"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(snippet_dir / ".mypy_cache"),
            "--explicit-package-bases",
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=snippet_dir,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_examples_pass_pyright_strict(snippet_dir: Path) -> None:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    assert pyright is not None, "pyright is in the test and typing groups"
    config = {"typeCheckingMode": "strict", "pythonVersion": "3.10"}
    (snippet_dir / "pyrightconfig.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [pyright, "--pythonpath", sys.executable, "-p", str(snippet_dir / "pyrightconfig.json")],
        capture_output=True,
        text=True,
        cwd=snippet_dir,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
