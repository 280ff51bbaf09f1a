"""What a newcomer meets first: options checked before paying, a live view that fits the
terminal, one line per expected failure, and the journal from the command line."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyte
import pytest
from rich.cells import cell_len
from rich.console import Console

from luma_async import PollPolicy, StateChange, Task, TaskState, Video, _clock
from luma_async._cli import EXIT_CODES, demo, main
from luma_async._cli_view import Reporter
from luma_async._journal import Journal, writer_of
from luma_async._models import ExtendRequest
from luma_async.testing import LumaEmulator, virtual_time

ROOT = Path(__file__).resolve().parent.parent
PARENT = "9d4b7516-77e5-481a-b015-48313946f33b"
HEIGHT = 24


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[LumaEmulator]:
    with LumaEmulator.in_thread(time_scale=0.002) as emulator:
        monkeypatch.setenv("LUMA_API_KEY", emulator.api_key)
        monkeypatch.setenv("LUMA_BASE_URL", emulator.base_url)
        monkeypatch.delenv("LUMA_ALLOW_INSECURE_HTTP", raising=False)
        yield emulator


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = PollPolicy(interval=0.02, max_interval=0.05, jitter=0.01, timeout=30)
    monkeypatch.setattr(
        "luma_async._cli_commands.PollPolicy",
        lambda *a, **k: (
            fast
            if "timeout" not in k
            else PollPolicy(interval=0.02, max_interval=0.05, jitter=0.01, timeout=k["timeout"])
        ),
    )


def finished_parent(emu: LumaEmulator, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["generate", "root clip", "--wait", "--json"]) == 0
    return str(json.loads(capsys.readouterr().out.splitlines()[0])["id"])


def assert_one_line_error(err: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "an expected failure says what happened"
    assert len(lines) <= 3, err  # click's usage errors add a usage and a hint line


# -- 1. every option is checked before the first paid request -------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
@pytest.mark.parametrize("command", ["generate", "extend"])
def test_a_bad_timeout_is_refused_before_submitting(
    emu: LumaEmulator, capsys: pytest.CaptureFixture[str], command: str, value: str
) -> None:
    args = ["generate", "a fox"] if command == "generate" else ["extend", PARENT, "more"]
    assert main([*args, "--wait", "--timeout", value]) == EXIT_CODES["usage"]
    err = capsys.readouterr().err
    assert "--timeout" in err
    assert_one_line_error(err)
    assert emu.created == []
    assert emu.requests == []


@pytest.mark.parametrize("flag", ["--image", "--end-image"])
@pytest.mark.parametrize("command", ["generate", "extend"])
def test_a_missing_image_file_is_refused_before_submitting(
    emu: LumaEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, flag: str
) -> None:
    args = ["generate", "a fox"] if command == "generate" else ["extend", PARENT, "more"]
    missing = tmp_path / "nope.png"
    assert main([*args, flag, str(missing)]) == EXIT_CODES["usage"]
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "PosixPath" not in err
    assert_one_line_error(err)
    assert emu.created == []


@pytest.fixture
def requests_file(tmp_path: Path) -> Path:
    source = tmp_path / "requests.jsonl"
    source.write_text(json.dumps({"task_id": PARENT, "user_prompt": "step"}) + "\n")
    return source


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (["--output", "{tmp}/missing/dir/out.jsonl"], "missing/dir"),
        (["--output", "{tmp}"], "directory"),
        (["--download-to", "{tmp}/missing"], "missing"),
        (["--journal", "{tmp}/missing/dir/j.sqlite"], "missing/dir"),
        (["--journal", "{tmp}/not-a-journal.txt"], "not-a-journal.txt"),
        (["--timeout", "0"], "--timeout"),
        (["--timeout", "nan"], "--timeout"),
        (["--concurrency", "0"], "--concurrency"),
    ],
)
def test_batch_checks_its_options_before_submitting(
    emu: LumaEmulator,
    tmp_path: Path,
    requests_file: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    needle: str,
) -> None:
    (tmp_path / "not-a-journal.txt").write_text("hello, I am not sqlite\n" * 100)
    args = [option.format(tmp=tmp_path) for option in options]
    assert main(["batch", str(requests_file), *args]) == EXIT_CODES["usage"]
    err = capsys.readouterr().err
    assert needle in err
    assert "PosixPath" not in err
    assert_one_line_error(err)
    assert emu.created == []


def test_no_api_key_names_the_flag_and_the_variable(
    emu: LumaEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LUMA_API_KEY")
    assert main(["generate", "a fox"]) == EXIT_CODES["usage"]
    err = capsys.readouterr().err
    assert "--api-key" in err
    assert "LUMA_API_KEY" in err
    assert "api_key=" not in err
    assert emu.created == []


def test_connection_options_go_before_or_after_the_sub_command(
    emu: LumaEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LUMA_API_KEY")
    monkeypatch.delenv("LUMA_BASE_URL")
    key, url = emu.api_key, emu.base_url
    assert main(["--api-key", key, "--base-url", url, "generate", "one"]) == 0
    assert main(["generate", "two", "--api-key", key, "--base-url", url]) == 0
    assert main(["--base-url", url, "generate", "three", "--api-key", key]) == 0
    assert len(emu.created) == 3
    capsys.readouterr()


def test_plain_http_to_a_lan_address_needs_the_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LUMA_API_KEY", "k")
    monkeypatch.delenv("LUMA_ALLOW_INSECURE_HTTP", raising=False)
    lan = "http://192.168.1.20:8400"
    assert main(["get", "abc", "--base-url", lan]) == EXIT_CODES["usage"]
    err = capsys.readouterr().err
    assert "--allow-insecure-http" in err
    assert "LUMA_ALLOW_INSECURE_HTTP" in err
    assert "allow_insecure_http=True" not in err
    # With the flag (or the variable) the URL is accepted; nothing listens there, and the
    # failure is then a transport error, not a refusal.
    checked: list[str] = []
    monkeypatch.setattr(
        "luma_async._cli_options.LumaSession",
        lambda *a, **k: checked.append(k["base_url"]) or (_ for _ in ()).throw(SystemExit(0)),
    )
    for args, env in ((["--allow-insecure-http"], None), ([], "1")):
        if env:
            monkeypatch.setenv("LUMA_ALLOW_INSECURE_HTTP", env)
        with pytest.raises(SystemExit):
            main([*args, "get", "abc", "--base-url", lan])
    assert checked == [lan, lan]


# -- 2. the live view ---------------------------------------------------------------------


def terminal(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    console = Console(
        file=out, width=width, height=HEIGHT, force_terminal=True, color_system="standard"
    )
    return console, out


def screen_of(text: str, width: int) -> list[str]:
    """What a WIDTHx24 terminal shows after ``text``."""
    return terminal_after(text, width)[0]


def terminal_after(text: str, width: int) -> tuple[list[str], int]:
    """The screen after ``text``, and how many lines scrolled off its top."""
    screen = pyte.HistoryScreen(width, HEIGHT, history=100_000)
    screen.set_mode(pyte.modes.LNM)  # a tty turns \n into \r\n
    pyte.Stream(screen).feed(text)
    return [line.rstrip() for line in screen.display], len(screen.history.top)


def change(task_id: str, state: str, elapsed: float = 0.0, *, video: bool = False) -> StateChange:
    url = f"http://localhost:1234/videos/{task_id}.mp4?download=1&signature=" + "x" * 100
    task = Task(task_id, TaskState(state), video=Video(url) if video else None)
    return StateChange(task_id, None, state, task, elapsed, 1)


def table_lines(reporter: Reporter, console: Console) -> list[str]:
    with console.capture() as captured:
        console.print(reporter.table())
    return plain(captured.get()).splitlines()


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)


def ids(count: int) -> list[str]:
    return [f"{n:08x}-77e5-481a-b015-48313946f33b" for n in range(count)]


@pytest.mark.parametrize("width", [60, 80, 200])
def test_live_view_one_row_per_task_within_the_width(width: int) -> None:
    console, out = terminal(width)
    reporter = Reporter(as_json=False, console=console)
    assert reporter.live
    tasks = ids(5)
    for task_id in tasks:
        reporter.change(change(task_id, "pending"))
    for task_id in tasks:
        reporter.change(change(task_id, "processing", 3.0))
    for task_id in tasks:
        reporter.change(change(task_id, "completed", 9.0, video=True))
    lines = table_lines(reporter, console)
    assert all(cell_len(line) <= width for line in lines)
    shown = screen_of(out.getvalue(), width)
    for task_id in tasks:
        rows = [line for line in shown if line.startswith(task_id[:8])]
        assert len(rows) == 1, (task_id, shown)
        assert "completed" in rows[0]
    reporter.close()
    # The full links, once, after the view ended.
    text = plain(out.getvalue())
    for task_id in tasks:
        assert text.count(f"{task_id}  http://localhost:1234/videos/{task_id}.mp4") == 1


@pytest.mark.parametrize("width", [60, 80, 200])
def test_live_view_with_more_tasks_than_lines_shows_a_summary(width: int) -> None:
    console, out = terminal(width)
    reporter = Reporter(as_json=False, console=console)
    tasks = ids(45)
    for n, task_id in enumerate(tasks):
        reporter.change(change(task_id, "completed" if n < 25 else "processing", video=n < 25))
    shown = [line for line in screen_of(out.getvalue(), width) if line]
    assert len(shown) < HEIGHT
    summary = [line for line in shown if line.startswith("+")]
    assert len(summary) == 1
    assert "more" in summary[0]
    assert "completed" in summary[0]
    assert "processing" in summary[0]
    rows = [line for line in shown if line[:8] in {t[:8] for t in tasks}]
    assert len(rows) == len({row[:8] for row in rows})  # one row per task
    assert tasks[-1][:8] in {row[:8] for row in rows}  # the most recent are shown
    hidden = int(summary[0].split()[0].lstrip("+"))
    assert hidden + len(rows) == len(tasks)
    lines = table_lines(reporter, console)
    assert all(cell_len(line) <= width for line in lines)
    assert terminal_after(out.getvalue(), width)[1] == 0  # redrawn in place, nothing scrolled


def test_live_view_ticks_every_second_between_changes() -> None:
    console, out = terminal(80)

    async def scenario() -> None:
        reporter = Reporter(as_json=False, console=console)
        reporter.change(change("t-1", "pending"))
        async with reporter.ticking():
            await _clock.sleep(3.5)
        assert "3.0s" in "\n".join(screen_of(out.getvalue(), 80))
        reporter.close()

    with virtual_time():
        asyncio.run(scenario())


@pytest.mark.parametrize("width", [60, 80, 200])
def test_demo_screen_is_clean(width: int) -> None:
    console, out = terminal(width)
    with virtual_time():
        assert asyncio.run(demo(console=console, time_scale=0.1)) == 0
    shown = screen_of(out.getvalue(), width)
    text = "\n".join(shown)
    assert "generate -> task" in text
    assert "-> task" in text.split("generate -> task", 1)[1]  # the extension, not overwritten
    rows = [line for line in shown if re.match(r"^[0-9a-f]{8}-", line) and "completed" in line]
    assert len(rows) == 2, shown  # one row per task
    assert len({row[:8] for row in rows}) == 2
    assert all(cell_len(line) <= width for line in table_lines_of_text(out.getvalue()))


def table_lines_of_text(text: str) -> list[str]:
    """Every line the table drew (the link lines after it may wrap on purpose)."""
    lines = plain(text).replace("\r", "\n").split("\n")
    return [line for line in lines if "completed" in line or "pending" in line]


@pytest.mark.parametrize("width", [60, 80, 200])
def test_watch_and_batch_render_live_at_every_width(
    emu: LumaEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    width: int,
) -> None:
    parent = finished_parent(emu, capsys)
    consoles: list[io.StringIO] = []

    def make_console(_out: object) -> Console:
        console, out = terminal(width)
        consoles.append(out)
        return console

    monkeypatch.setattr("luma_async._cli_view.make_console", make_console)
    source = tmp_path / "r.jsonl"
    source.write_text(
        "\n".join(json.dumps({"task_id": parent, "user_prompt": f"s{i}"}) for i in range(30))
    )
    assert main(["batch", str(source), "--no-journal", "--concurrency", "30"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(results) == 30
    text = consoles[-1].getvalue()
    shown = screen_of(text[: text.rindex("\x1b[?25h")], width)  # the last frame, before the links
    assert sum(line.startswith("+") and "more" in line for line in shown) == 1, shown
    rows = [line for line in shown if re.match(r"^[0-9a-f]{8}-", line)]
    assert len(rows) == len({row[:8] for row in rows})
    assert all(cell_len(line) <= width for line in table_lines_of_text(consoles[-1].getvalue()))

    some = [r["task_id"] for r in results[:3]]
    assert main(["watch", *some]) == 0
    shown = screen_of(consoles[-1].getvalue(), width)
    rows = [line for line in shown if re.match(r"^[0-9a-f]{8}-", line) and "completed" in line]
    assert len(rows) == 3


def test_piped_output_stays_plain_lines(
    emu: LumaEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = finished_parent(emu, capsys)
    assert main(["watch", parent]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    assert parent in out


# -- 3. watch follows every task to its end ------------------------------------------------


def test_watch_follows_every_task_and_exits_with_the_highest_code(
    emu: LumaEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    created = []
    for prompt in ("first", "[fail] second", "third"):
        assert main(["generate", prompt]) == 0
        created.append(capsys.readouterr().out.split()[0])
    for task_id in created[1:]:
        emu.set_durations(task_id, pending=0.5)
    a, b, c = created
    code = main(["watch", b, a, c, a, "--json"])
    captured = capsys.readouterr()
    assert code == EXIT_CODES["task failed"]
    changes = [json.loads(line) for line in captured.out.splitlines()]
    final = {ch["task_id"]: ch["state"] for ch in changes}
    assert final == {a: "completed", b: "failed", c: "completed"}
    firsts = [ch["task_id"] for ch in changes if ch["previous"] is None]
    assert sorted(firsts) == sorted([a, b, c])  # an id given twice is shown once
    assert b in captured.err
    assert_one_line_error(captured.err)


# -- 4. no traceback for any expected failure ----------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["generate", ""],
        ["generate", "x", "--aspect-ratio", "7:5"],
        ["extend", "not an id", "x"],
        ["extend", PARENT, "x", "--timeout", "-1"],
        ["get", "no-such-task"],
        ["get", "a b"],
        ["watch", "no-such-task"],
        ["watch", "no-such-task", "--timeout", "inf"],
        ["batch", "/no/such/file.jsonl"],
        ["download", "no-such-task", "{tmp}"],
        ["download", "no-such-task", "{tmp}/missing/dir/x.mp4"],
        ["emulator", "--time-scale", "0"],
        ["emulator", "--dialect", "klingon"],
        ["demo", "--time-scale", "-1"],
        ["journal", "list", "{tmp}/missing.sqlite"],
        ["journal", "resolve", "{tmp}/missing.sqlite", "k", "--not-created"],
        ["journal", "resolve", "{tmp}/missing.sqlite", "k"],
        ["no-such-command"],
    ],
)
def test_every_command_fails_with_one_line_and_no_traceback(
    emu: LumaEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code = main([arg.format(tmp=tmp_path) for arg in args])
    assert code in set(EXIT_CODES.values()) - {0}
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "PosixPath" not in err
    assert emu.created == []


def free_port_in_use() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "luma_async", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_emulator_on_a_busy_port_says_so_in_one_line() -> None:
    with free_port_in_use() as busy:
        port = busy.getsockname()[1]
        proc = run_cli("emulator", "--port", str(port))
    assert proc.returncode == EXIT_CODES["usage"]
    assert "Traceback" not in proc.stderr
    assert f"127.0.0.1:{port}" in proc.stderr
    assert "--port" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# -- 5. CSV from spreadsheets --------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_with_a_bom_and_any_delimiter(
    emu: LumaEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], delimiter: str
) -> None:
    parent = finished_parent(emu, capsys)
    source = tmp_path / "sheet.csv"
    rows = [["task_id", "user_prompt"], [parent, "one, with a comma"], [parent, "two"]]
    source.write_bytes(
        b"\xef\xbb\xbf"
        + "\r\n".join(
            delimiter.join(f'"{cell}"' if "," in cell else cell for cell in row) for row in rows
        ).encode()
    )
    assert main(["batch", str(source), "--no-journal"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["user_prompt"] for r in results} == {"one, with a comma", "two"}


# -- 7. the journal from the command line --------------------------------------------------


def test_journal_list_and_resolve_settle_an_uncertain_request(
    emu: LumaEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = finished_parent(emu, capsys)
    source = tmp_path / "r.jsonl"
    source.write_text(json.dumps({"task_id": parent, "user_prompt": "lost"}) + "\n")
    book = tmp_path / "run.sqlite"
    emu.inject("extend", status=500, after_processing=True)
    code = main(["batch", str(source), "--journal", str(book)])
    assert code == EXIT_CODES["submission uncertain"]
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    with Journal(book) as journal:
        (entry,) = journal.uncertain()
    key = entry.key
    assert line["key"] == key  # the result line names the journal key...
    assert f"journal resolve {book} {key}" in line["error"]  # ...and how to settle it
    assert "Journal.resolve" not in line["error"]

    assert main(["journal", "list", str(book)]) == 0
    out = capsys.readouterr().out
    assert key in out
    assert "uncertain" in out
    assert main(["journal", "list", str(book), "--json", "--state", "uncertain"]) == 0
    (listed,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert listed["key"] == key

    (created,) = set(emu.created) - {parent}
    assert main(["journal", "resolve", str(book), key, "--task-id", created]) == 0
    capsys.readouterr()
    before = len(emu.created)
    assert main(["batch", str(source), "--journal", str(book)]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["task_id"] == created
    assert line["key"] == key
    assert len(emu.created) == before  # followed, not paid again

    assert main(["journal", "resolve", str(book), key, "--not-created"]) == EXIT_CODES["usage"]
    assert "no uncertain request" in capsys.readouterr().err


def test_journal_list_refuses_a_state_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "run.sqlite"
    Journal(book).close()
    assert main(["journal", "list", str(book), "--state", "done"]) == EXIT_CODES["usage"]
    err = capsys.readouterr().err
    assert "must be one of submitting, submitted, finished, failed, uncertain, rejected" in err
    assert_one_line_error(err)


def test_journal_resolve_not_created_submits_again(
    emu: LumaEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "run.sqlite"
    request = ExtendRequest(PARENT, "never sent")
    with Journal(book) as journal:
        key = journal.key_for(request)
        writer_of(journal).claim(key, request)
        writer_of(journal).uncertain(key, "cut off")
    assert main(["journal", "resolve", str(book), key, "--not-created"]) == 0
    with Journal(book) as journal:
        entry = journal.get(key)
    assert entry is not None
    assert entry.state == "rejected"
    assert emu.created == []


# -- 12. smaller things --------------------------------------------------------------------


def test_get_of_a_failed_task_shows_its_reason(
    emu: LumaEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "[fail] doomed", "--wait"]) == EXIT_CODES["task failed"]
    task_id = capsys.readouterr().out.split()[0]
    assert main(["get", task_id]) == 0
    out = capsys.readouterr().out
    assert "failed" in out
    assert "reason:" in out


def test_a_timeout_names_the_flag_and_the_command_to_go_on(
    emu: LumaEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "slow"]) == 0
    task_id = capsys.readouterr().out.split()[0]
    emu.set_durations(task_id, pending=10_000)
    assert main(["watch", task_id, "--timeout", "0.2"]) == EXIT_CODES["timeout"]
    err = capsys.readouterr().err
    assert "--timeout" in err
    assert f"luma-async watch {task_id}" in err
    assert "PollPolicy" not in err
    assert_one_line_error(err)


def test_json_has_one_failure_field(emu: LumaEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "[fail] doomed", "--wait", "--json"]) == EXIT_CODES["task failed"]
    *_, last = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert last["state"] == "failed"
    assert last["task"]["failure_reason"]
    assert "fail_reason" not in last["task"]
    assert main(["get", last["task_id"], "--json"]) == 0
    task = json.loads(capsys.readouterr().out)
    assert task["failure_reason"] == last["task"]["failure_reason"]
    assert "fail_reason" not in task


def test_a_closed_stdout_ends_quietly(
    emu: LumaEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = finished_parent(emu, capsys)

    class ClosedPipe(io.StringIO):
        def write(self, _text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["get", parent]) == 0
    assert main(["watch", parent, "--json"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_emulator_options_have_help_and_choices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--dialect", "--envelope", "--task-shape", "--fail-marker", "--time-scale"):
        assert flag in out
    assert "gateway" in out
    options = [line for line in out.splitlines() if line.strip().startswith("--")]
    assert all(len(line.split(None, 1)) == 2 for line in options), "every option has help"
