"""Every code example of the docs runs here, against the emulator, and the docs say the truth.

The examples live in ``docs/examples/`` as complete programs; the pages include them with
``literalinclude``.  Each test imports one, points it at an in-process emulator through
``LUMA_BASE_URL`` / ``LUMA_API_KEY`` and checks what it did, mostly on virtual time.
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

import luma_async
import luma_async.testing
from luma_async import (
    LumaSession,
    PollPolicy,
    SubmissionUncertainError,
    TaskFailedError,
    TaskState,
)
from luma_async._cli import EXIT_CODES
from luma_async._cli_commands import cli
from luma_async.testing import LumaEmulator, VirtualClock, virtual_time

from .helpers import finished_task

pytestmark = pytest.mark.asyncio

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"
#: Pages written by others; the rules below are about the pages that teach the API.
NOT_OURS = {"performance.md", "guarantees.md"}


def load(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def vclock() -> Iterator[VirtualClock]:
    with virtual_time() as clock:
        yield clock


@pytest_asyncio.fixture
async def emu(vclock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LumaEmulator]:
    """An emulator on virtual time, and the environment every example reads."""
    async with LumaEmulator() as emulator:
        monkeypatch.setenv("LUMA_BASE_URL", emulator.base_url)
        monkeypatch.setenv("LUMA_API_KEY", emulator.api_key)
        yield emulator


async def finished_id(emu: LumaEmulator, prompt: str = "a red fox in snow") -> str:
    """A completed task to extend or download, made behind the example's back."""
    async with LumaSession(emu.api_key, base_url=emu.base_url) as luma:
        return (await finished_task(luma, prompt)).id


# -- tutorial ---------------------------------------------------------------------------------


async def test_tutorial_first_extension(emu: LumaEmulator, capsys: pytest.CaptureFixture[str]):
    parent = await finished_id(emu)
    url = await load("first_extension").main(parent)
    out = capsys.readouterr().out
    states = [line.split()[0] for line in out.splitlines()[1:]]
    # One line per change: pending first, completed last (processing may be polled past).
    assert states[0] == "pending"
    assert states[-1] == "completed"
    assert len(states) == len(set(states))
    (extension,) = [t for t in emu.tasks.values() if t.parent_id == parent]
    assert url == emu.task_json(extension.id)["video"]["url"]
    assert emu.count("extend") == 1


# -- how-to: batches ----------------------------------------------------------------------


async def test_batch_resumes_from_its_journal(emu: LumaEmulator, tmp_path: Path):
    example = load("batch")
    parents = [await finished_id(emu, f"clip {i}") for i in range(3)]
    prompts = ("the camera pulls back", "a storm [fail]")
    first = await example.main(parents, tmp_path, prompts=prompts)
    assert len(first) == 6
    ok = [r for r in first if r.ok]
    assert len(ok) == 3
    assert all(r.path is not None and r.path.read_bytes() == emu.video_bytes for r in ok)
    assert all(isinstance(r.error, TaskFailedError) for r in first if not r.ok)
    created = len(emu.created)

    again = await example.main(parents, tmp_path, prompts=prompts)  # the "restart"
    assert len(emu.created) == created  # nothing submitted twice
    assert emu.count("extend") == 6
    assert sorted(r.task_id for r in again) == sorted(r.task_id for r in first)
    assert example.uncertain_requests(tmp_path / "batch.sqlite") == []


async def test_batch_lists_uncertain_requests(emu: LumaEmulator, tmp_path: Path):
    example = load("batch")
    parent = await finished_id(emu)
    emu.inject("extend", after_processing=True, drop=True)  # created, answer lost
    (result,) = await example.main([parent], tmp_path, prompts=("the camera pulls back",))
    assert isinstance(result.error, SubmissionUncertainError)
    (line,) = example.uncertain_requests(tmp_path / "batch.sqlite")
    assert line.endswith(": the camera pulls back")


# -- how-to: streaming ----------------------------------------------------------------------


async def test_stream_with_a_queue(emu: LumaEmulator):
    board = await load("stream_to_coroutines").with_a_queue(["a fox", "a cat [fail]"])
    assert sorted(board.values()) == ["completed", "failed"]


async def test_stream_with_a_callback(emu: LumaEmulator):
    seen = await load("stream_to_coroutines").with_a_callback("a fox")
    assert seen[0] == "pending"
    assert seen[-1] == "completed"
    assert len(seen) == len(set(seen))


async def test_stream_merged(emu: LumaEmulator):
    changes = await load("stream_to_coroutines").merged(["a fox", "a cat [fail]", "an owl"])
    ends = {task_id: state for task_id, state in changes if state in ("completed", "failed")}
    assert sorted(ends.values()) == ["completed", "completed", "failed"]


async def read_events(response: aiohttp.ClientResponse) -> list[tuple[str, dict[str, object]]]:
    """Parse a server-sent event stream until the server ends it."""
    events: list[tuple[str, dict[str, object]]] = []
    name, data = "message", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and data:
            events.append((name, json.loads(data)))
            name, data = "message", ""
    return events


@pytest_asyncio.fixture
async def sse_app(emu: LumaEmulator) -> AsyncIterator[str]:
    runner = web.AppRunner(load("sse_app").make_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_sse_app_streams_progress_to_the_end(emu: LumaEmulator, sse_app: str):
    async with aiohttp.ClientSession() as browser:
        async with browser.get(sse_app + "/") as page:
            assert "EventSource" in await page.text()
        async with browser.post(sse_app + "/videos", data={"prompt": "a fox"}) as created:
            assert created.status == 201
            task = await created.json()
        async with browser.get(sse_app + task["events"]) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            events = await read_events(stream)
    assert [e for e, _ in events[:-1]] == ["state"] * (len(events) - 1)
    assert events[0][1]["state"] == "pending"
    assert events[-2][1]["state"] == "completed"
    assert events[-1][0] == "done"
    assert events[-1][1]["video"] == emu.task_json(task["id"])["video"]["url"]


async def test_sse_app_reports_failures_and_unknown_tasks(emu: LumaEmulator, sse_app: str):
    async with aiohttp.ClientSession() as browser:
        async with browser.post(sse_app + "/videos", data={"prompt": "a fox [fail]"}) as created:
            task = await created.json()
        async with browser.get(sse_app + task["events"]) as stream:
            failed = await read_events(stream)
        async with browser.get(sse_app + "/videos/no-such-task/events") as stream:
            unknown = await read_events(stream)
        async with browser.post(sse_app + "/videos", data={"prompt": " "}) as empty:
            assert empty.status == 400
    assert failed[-1] == ("failed", {"reason": emu.tasks[task["id"]].fail_reason})
    assert failed[-2][1]["state"] == "failed"
    assert unknown[-1][0] == "error"


# -- how-to: callbacks ----------------------------------------------------------------------


async def test_callbacks_finish_long_before_the_next_poll(monkeypatch: pytest.MonkeyPatch):
    # Real time on purpose: polls are 30 s apart, so a task seen finished within seconds
    # was polled because a callback asked for it.  The task itself lasts 0.2 s.
    async with LumaEmulator(time_scale=0.02) as emulator:
        monkeypatch.setenv("LUMA_BASE_URL", emulator.base_url)
        monkeypatch.setenv("LUMA_API_KEY", emulator.api_key)
        started = time.monotonic()
        done, deliveries = await load("callbacks").main("a fox")
        assert time.monotonic() - started < 5
    assert done.state == TaskState.COMPLETED
    assert done.video is not None
    assert deliveries >= 1
    assert {c.status for c in emulator.callbacks} == {200}


# -- how-to: downloads ----------------------------------------------------------------------


async def test_download_resumes_and_saves_the_whole_video(
    emu: LumaEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    task_id = await finished_id(emu)
    emu.inject("video", drop=True)  # the first transfer breaks
    path = await load("download").main(task_id, tmp_path)
    assert path == tmp_path / f"{task_id}.mp4"
    assert path.read_bytes() == emu.video_bytes
    assert emu.count("download_video_url") == 1  # watermark=False asked for the clean link
    assert "(100%)" in capsys.readouterr().out


# -- how-to: testing your own app ---------------------------------------------------------


def test_testing_howto_examples_pass_under_pytest(pytester: pytest.Pytester):
    """The how-to's test file is a real pytest file: run it with pytest, plugin and all."""
    for name in ("clipmaker.py", "test_clipmaker.py"):
        pytester.path.joinpath(name).write_text((EXAMPLES / name).read_text())
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:socket", "-W", "error"
    )
    result.assert_outcomes(passed=3)


# -- how-to: retries, timeouts and budgets ------------------------------------------------


async def test_retries_ride_through_transient_errors(emu: LumaEmulator):
    emu.inject("generate", status=429, retry_after=2)  # refused: safe to send again
    emu.inject("get", status=503, count=3)
    (task,) = await load("retries").main(["a fox"])
    assert task is not None
    assert task.video is not None
    assert emu.count("generate") == 2
    assert len(emu.created) == 1


async def test_retries_never_resend_an_uncertain_post(
    emu: LumaEmulator, capsys: pytest.CaptureFixture[str]
):
    emu.inject("generate", status=502)  # the gateway failed: the task may exist
    emu.inject("generate", after_processing=True, drop=True)  # it does exist
    results = await load("retries").main(["one", "two", "three"])
    assert results[0] is None
    assert results[1] is None
    assert results[2] is not None
    assert emu.count("generate") == 3  # each sent exactly once
    assert emu.creations_by_prompt() == {"two": 1, "three": 1}
    assert capsys.readouterr().out.count("not sure whether") == 2


async def test_follow_outlives_a_poll_deadline(
    emu: LumaEmulator, capsys: pytest.CaptureFixture[str]
):
    example = load("retries")
    patience = PollPolicy(interval=1.0, max_interval=1.0, jitter=0.0, timeout=6.0)
    (task,) = await example.main(["a slow fox"], patience=patience)  # a task lasts 10 s
    assert task is not None
    assert task.video is not None
    assert "not finished after" in capsys.readouterr().out


# -- how-to: your own aiohttp session -----------------------------------------------------


async def test_own_session_is_used_and_left_open(emu: LumaEmulator):
    task_id, size, requests = await load("own_session").main("a fox")
    assert size == len(emu.video_bytes)
    assert requests == len(emu.requests)  # every request went through the lent session
    assert emu.state_of(task_id) == "completed"


# -- the pages themselves -------------------------------------------------------------------


def pages() -> list[Path]:
    return [p for p in DOCS.rglob("*.md") if "_build" not in p.parts and p.name not in NOT_OURS]


def test_every_example_is_shown_and_every_include_exists():
    included = set()
    for page in pages():
        for target in re.findall(r"```\{literalinclude\}\s+(\S+)", page.read_text()):
            path = (page.parent / target).resolve()
            assert path.is_file(), f"{page.name} includes missing {target}"
            included.add(path)
    assert included == {p.resolve() for p in EXAMPLES.glob("*.py")}


def test_no_python_in_the_pages_that_the_suite_does_not_run():
    for page in pages():
        text = page.read_text()
        assert not re.search(r"```(python|py|pycon)\b", text), page.name
        assert not re.search(r"```\{code-block\}\s+(python|py)", text), page.name


def test_reference_documents_every_public_name():
    text = (DOCS / "reference.md").read_text()
    documented = set(re.findall(r"^\.\. auto\w+:: luma_async\.(\w+)$", text, re.MULTILINE))
    assert documented >= set(luma_async.__all__) - {"__version__"}
    testing = set(re.findall(r"^\.\. auto\w+:: luma_async\.testing\.(\w+)$", text, re.MULTILINE))
    assert testing >= set(luma_async.testing.__all__)


def public_members(cls: type) -> set[str]:
    """The public names a class (and its luma_async bases) defines itself."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("luma_async"):
            names |= {name for name in vars(klass) if not name.startswith("_")}
    return names


def test_reference_documents_every_member_even_without_a_docstring():
    """autodoc drops members without docstrings unless told: every class says
    ``:members:`` (all of them) and ``:undoc-members:``, or lists each public member."""
    text = (DOCS / "reference.md").read_text()
    directives = re.findall(
        r"^\.\. autoclass:: (luma_async(?:\.testing)?)\.(\w+)\n((?:   :[\w-]+:.*\n)*)",
        text,
        re.MULTILINE,
    )
    seen = set()
    documented = {name for _, name, _ in directives}
    for module_name, name, options in directives:
        module = luma_async.testing if module_name.endswith("testing") else luma_async
        cls = getattr(module, name)
        seen.add(name)
        members = public_members(cls)
        listed = re.search(r"^   :members:(.*)$", options, re.MULTILINE)
        assert listed is not None or not members, f"{name} documents no members"
        if listed is None:
            continue
        names = {n.strip() for n in listed.group(1).split(",") if n.strip()}
        if names:
            assert names >= members, f"{name} leaves out {sorted(members - names)}"
        else:
            assert ":undoc-members:" in options, f"{name} drops members without docstrings"
            # `:members:` alone documents only what the class defines itself: what it takes
            # from a base documented nowhere (LumaSession's following methods) would be lost
            hidden = {
                member
                for base in cls.__mro__[1:]
                if base.__module__.startswith("luma_async") and base.__name__ not in documented
                for member in vars(base)
                if not member.startswith("_")
            }
            assert not hidden or ":inherited-members:" in options, (
                f"{name} drops its inherited {sorted(hidden)}"
            )
    for must in ("Journal", "Listener", "BatchResult", "Video", "Batch", "FinishedTask"):
        assert must in seen
    # The ones the issue found missing are there now.
    for cls, member in (
        (luma_async.Journal, "entries"),
        (luma_async.Listener, "wait"),
        (luma_async.BatchResult, "ok"),
        (luma_async.Video, "best_url"),
    ):
        assert member in public_members(cls), (cls, member)


def test_cli_page_lists_every_command_and_exit_code():
    text = (DOCS / "cli.md").read_text()
    for name in cli.commands:
        assert f"`luma-async {name}" in text, name
    rows = dict(re.findall(r"^\| (\d+) \| ([^|]+?) \|", text, flags=re.MULTILINE))
    assert {int(code): what for code, what in rows.items()} == {
        code: what for what, code in EXIT_CODES.items()
    }
