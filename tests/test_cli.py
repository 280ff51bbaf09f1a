"""The luma-async command line, run in-process against an emulator thread (real time)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from luma_async import InputError, PollPolicy
from luma_async._cli import EXIT_CODES, main, read_requests
from luma_async.testing import LumaEmulator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[LumaEmulator]:
    with LumaEmulator.in_thread(time_scale=0.002) as emulator:
        monkeypatch.setenv("LUMA_API_KEY", emulator.api_key)
        monkeypatch.setenv("LUMA_BASE_URL", emulator.base_url)
        yield emulator


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's default poll policy, made quick for an emulator running 500x fast."""
    fast = PollPolicy(interval=0.02, max_interval=0.05, jitter=0.01, timeout=30)
    monkeypatch.setattr("luma_async._cli_commands.PollPolicy", lambda *a, **k: fast)


def completed_task(emu: LumaEmulator, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["generate", "root clip", "--wait", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return str(lines[0]["id"])


def test_demo_runs_the_whole_flow(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--time-scale", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "generate -> task" in out
    assert "extend " in out
    assert "processing -> completed" in out or "pending -> completed" in out
    assert "done: http://localhost:" in out


def test_generate_wait_json_then_get(emu: LumaEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "a fox", "--aspect-ratio", "16:9", "--wait", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    first, changes = lines[0], lines[1:]
    assert first["state"] == "pending"
    assert changes[-1]["state"] == "completed"
    assert changes[-1]["task"]["video"]["url"].startswith(emu.video_base_url)
    assert main(["get", first["id"]]) == 0
    assert "completed  video:" in capsys.readouterr().out


def test_extend_and_watch_plain_lines(
    emu: LumaEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = completed_task(emu, capsys)
    assert main(["extend", parent, "more fox", "--expand-prompt"]) == 0
    new_id = capsys.readouterr().out.split()[0]
    assert emu.tasks[new_id].parent_id == parent
    assert emu.tasks[new_id].request["expand_prompt"] is True
    assert main(["watch", new_id]) == 0
    out = capsys.readouterr().out
    assert new_id in out
    assert "completed" in out


def test_exit_codes(emu: LumaEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "x [fail]", "--wait"]) == EXIT_CODES["task failed"]
    assert main(["generate", ""]) == EXIT_CODES["usage"]
    assert main(["--api-key", "wrong", "get", "abc"]) == EXIT_CODES["API or transport error"]
    emu.inject("generate", status=500, after_processing=True)
    assert main(["generate", "x"]) == EXIT_CODES["submission uncertain"]
    assert main(["no-such-command"]) == EXIT_CODES["usage"]
    err = capsys.readouterr().err
    assert "uncertain" in err
    assert emu.api_key not in err


def test_timeout_exit_code(
    emu: LumaEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "slow"]) == 0
    task_id = capsys.readouterr().out.split()[0]
    emu.set_durations(task_id, pending=10_000)
    quick = PollPolicy(interval=0.01, max_interval=0.02, jitter=0, timeout=0.2)
    monkeypatch.setattr("luma_async._cli_commands.PollPolicy", lambda *a, **k: quick)
    assert main(["watch", task_id, "--timeout", "0.2"]) == EXIT_CODES["timeout"]


def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    commands = ["generate", "extend", "get", "watch", "batch", "download", "emulator", "demo"]
    for command in commands:
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "Example: luma-async " + command in out, command
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out


def test_batch_jsonl_with_journal_and_downloads(
    emu: LumaEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = completed_task(emu, capsys)
    source = tmp_path / "requests.jsonl"
    source.write_text(
        "\n".join(json.dumps({"task_id": parent, "user_prompt": f"step {i}"}) for i in range(5))
        + "\n"
        + json.dumps({"task_id": parent, "prompt": "[fail] broken"})
        + "\n"
    )
    out_file = tmp_path / "results.jsonl"
    videos = tmp_path / "videos"
    videos.mkdir()
    code = main(
        [
            "batch",
            str(source),
            "--concurrency",
            "2",
            "--output",
            str(out_file),
            "--download-to",
            str(videos),
        ]
    )
    assert code == EXIT_CODES["task failed"]
    results = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(results) == 6
    assert sum(r["ok"] for r in results) == 5
    assert all(Path(r["path"]).exists() for r in results if r["ok"])
    journal = source.with_name("requests.jsonl.journal.sqlite")
    assert journal.exists()
    created = len(emu.created)
    # Run again with the same journal: results come back, nothing is submitted twice.
    assert main(["batch", str(source), "--output", str(out_file)]) == EXIT_CODES["task failed"]
    assert len(emu.created) == created
    assert len(out_file.read_text().splitlines()) == 6


def test_batch_csv_to_stdout(
    emu: LumaEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = completed_task(emu, capsys)
    source = tmp_path / "requests.csv"
    source.write_text(f"task_id,user_prompt,expand_prompt\n{parent},one,true\n{parent},two,\n")
    assert main(["batch", str(source), "--no-journal", "--json"]) == 0
    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert {r["user_prompt"] for r in results} == {"one", "two"}
    changes = [json.loads(line) for line in captured.err.splitlines()]
    assert {c["state"] for c in changes} >= {"pending", "completed"}
    assert not list(tmp_path.glob("*.sqlite"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"task_id": "abc", "user_prompt": ""}\n', "bad.jsonl:1"),
        ("bad.jsonl", "not json\n", "not JSON"),
        ("bad.jsonl", "[1, 2]\n", "JSON object"),
        ("bad.jsonl", '{"task_id": "a b", "user_prompt": "x"}\n', "not a task id"),
        ("bad.jsonl", '{"task_id": "abc", "user_prompt": "x", "colour": "red"}\n', "unknown field"),
        ("bad.jsonl", "\n\n", "no requests"),
        ("bad.csv", "", "empty"),
        ("bad.csv", "task_id,user_prompt\nabc,x,extra\n", "more values"),
        ("bad.csv", "task_id,user_prompt,expand_prompt\nabc,x,maybe\n", "expand_prompt"),
    ],
)
def test_bad_request_files_fail_before_any_request(
    emu: LumaEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    message: str,
) -> None:
    source = tmp_path / name
    source.write_text(content)
    assert main(["batch", str(source)]) == EXIT_CODES["usage"]
    assert message in capsys.readouterr().err
    assert emu.requests == []


def test_read_requests_rejects_unreadable_files(tmp_path: Path) -> None:
    broken = tmp_path / "binary.jsonl"
    broken.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="cannot read"):
        read_requests(broken)


def test_download_command(
    emu: LumaEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = completed_task(emu, capsys)
    assert main(["download", parent, str(tmp_path), "--no-watermark"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.read_bytes() == emu.video_bytes
    assert main(["generate", "unfinished"]) == 0
    unfinished = capsys.readouterr().out.split()[0]
    emu.set_durations(unfinished, pending=10_000)
    assert main(["download", unfinished, str(tmp_path)]) == EXIT_CODES["usage"]


def test_ctrl_c_lists_the_submitted_tasks(tmp_path: Path) -> None:
    with LumaEmulator.in_thread(time_scale=0.05) as emu:
        env = {
            **os.environ,
            "LUMA_API_KEY": emu.api_key,
            "LUMA_BASE_URL": emu.base_url,
            "PYTHONPATH": str(ROOT),
        }
        parent_proc = subprocess.run(
            [sys.executable, "-m", "luma_async", "generate", "root", "--wait", "--json"],
            env=env,
            capture_output=True,
            timeout=60,
            check=True,
        )
        parent = json.loads(parent_proc.stdout.decode().splitlines()[0])["id"]
        # The extensions stay pending while the batch is interrupted: a task finishing in
        # the same instant would race the interrupt in ways this test does not measure.
        emu.pending_seconds = 10_000
        emu.estimate_wait = False  # and are polled at the policy's pace, not the estimate's
        source = tmp_path / "r.jsonl"
        source.write_text(
            "\n".join(json.dumps({"task_id": parent, "user_prompt": f"s{i}"}) for i in range(30))
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "luma_async", "batch", str(source), "--concurrency", "4"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        # Interrupt once some submissions have been answered and are being followed.
        while time.monotonic() < deadline and not (
            len(emu.created) >= 4
            # polls of the new tasks, not of the parent that the first command followed
            and sum(emu.gets_for(t) for t in set(emu.created) - {parent}) + emu.count("tasks") >= 1
        ):
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        created = set(emu.created) - {parent}
        prompt_of = {task_id: emu.tasks[task_id].prompt for task_id in created}
    assert proc.returncode == EXIT_CODES["interrupted"]
    text = err.decode()
    assert "still running" in text
    assert "to resume, run the same command again" in text  # and how to go on
    assert "Traceback" not in text
    running = {
        line.split()[0] for line in text.splitlines() if line.startswith("  ") and "extends" in line
    }
    cut_off = {line.strip().strip("'") for line in text.splitlines() if line.startswith("  '")}
    finished = {json.loads(line)["task_id"] for line in out.decode().splitlines()}
    assert running
    assert running <= created
    # Every paid task is accounted for: its result was printed, it is listed as still
    # running, or its request is listed as cut off while being submitted.
    for task_id in created:
        assert task_id in finished | running or prompt_of[task_id] in cut_off, (task_id, text)


def test_emulator_command_serves_until_interrupted() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "luma_async", "emulator", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline().decode() if proc.stdout else ""
        assert f"LUMA_BASE_URL=http://127.0.0.1:{port}" in line

        async def probe() -> int:
            async with (
                aiohttp.ClientSession() as client,
                client.get(
                    f"http://127.0.0.1:{port}/luma/generations/x",
                    headers={"Authorization": "Bearer emulator-key"},
                ) as response,
            ):
                return response.status

        assert asyncio.run(probe()) == 404
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == EXIT_CODES["interrupted"]
