"""Every check of luma-async, one session each: ``nox -s tests lint typing docs``."""

from __future__ import annotations

from pathlib import Path

import nox
from packaging.requirements import Requirement

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)


def _install(session: nox.Session, *groups: str, extras: str = "cli") -> None:
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))
    session.install("-e", f".[{extras}]" if extras else ".")


def _run_tests(session: nox.Session) -> None:
    _install(session, "tests")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report", "--fail-under=95")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite with branch coverage, on the Python that runs nox."""
    _run_tests(session)


@nox.session(python=PYTHONS)
def tests_all(session: nox.Session) -> None:
    """The suite on every supported Python that is installed."""
    _run_tests(session)


@nox.session
def tests_lowest(session: nox.Session) -> None:
    """The suite with every dependency at the lowest version pyproject.toml declares.

    The bounds in pyproject.toml are what this session proves: raise one only with a reason.
    """
    project = PYPROJECT["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["cli"]]
    constraints = Path(session.create_tmp()) / "lowest.txt"
    constraints.write_text("".join(f"{_lowest(line)}\n" for line in declared))
    session.install("-c", str(constraints), *nox.project.dependency_groups(PYPROJECT, "tests"))
    session.install("-c", str(constraints), "-e", ".[cli]")
    session.run("python", "-m", "pip", "list")
    # The examples' type check reads the installed stubs, and aiohttp 3.10's leave a parameter
    # of web.run_app untyped: typing is proved against current releases by the typing session.
    ignore = "--ignore=tests/test_examples_typecheck.py"
    session.run("pytest", "-p", "no:cacheprovider", ignore, *session.posargs)


def _lowest(requirement: str) -> str:
    """``aiohttp>=3.10.11`` -> ``aiohttp==3.10.11``: the declared minimum, pinned."""
    parsed = Requirement(requirement)
    minimum = [spec.version for spec in parsed.specifier if spec.operator == ">="]
    if len(minimum) != 1:
        raise ValueError(f"{requirement!r} declares no single minimum version")
    return f"{parsed.name}=={minimum[0]}"


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict and pyright (strict) over the package and the typing-only test file."""
    _install(session, "typing")
    session.run("mypy")
    session.run("pyright")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs with warnings as errors, then run their code examples.

    The examples are whole programs in docs/examples/ (the pages include them), run against
    the emulator by tests/test_docs_examples.py rather than by Sphinx's doctest builder.
    """
    _install(session, "docs", "tests")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    session.run("pytest", "tests/test_docs_examples.py", "-p", "no:cacheprovider")


@nox.session(default=False)
def mutate(session: nox.Session) -> None:
    """Mutation testing of the core modules with mutmut, as [tool.mutmut] in pyproject says.

    By hand only, never in CI: every mutant reruns the tests that cover it (hours on two
    cores).  ``nox -s mutate -- 'luma_async._policy*'`` limits the run to one module's mutants.
    Results stay in mutants/: ``mutmut results`` lists the survivors, ``mutmut show NAME``
    shows one.  Kill each survivor with a test (tests/test_pinned.py) or say why it is
    equivalent; the goal is 90 % or more killed per module.
    """
    _install(session, "tests")
    session.install("mutmut>=3.3")
    session.run("mutmut", "run", *session.posargs)
    session.run("mutmut", "results")


@nox.session
def bench(session: nox.Session) -> None:
    """Speed and memory against raw aiohttp and the official SDK, each beside its goal.

    ``nox -s bench -- --quick`` for a smoke run, ``-- --check`` to exit 1 on a missed goal
    (by hand only: timings depend on the machine), ``-- --json PATH``, ``-- --big N``.
    """
    _install(session, "tests")
    session.install("lumaai", "pyinstrument")
    session.run("python", "-m", "bench", *session.posargs)
