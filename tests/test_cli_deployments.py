"""Issue 10: ``luma-async usage`` and the emulator's deployment profiles from the command line
and the pytest marker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from luma_async._cli import EXIT_CODES, main
from luma_async.testing import LumaEmulator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[LumaEmulator]:
    with LumaEmulator.in_thread(time_scale=0.002, credit_limit=300) as emulator:
        monkeypatch.setenv("LUMA_API_KEY", emulator.api_key)
        monkeypatch.setenv("LUMA_BASE_URL", emulator.base_url)
        yield emulator


def test_usage_command(emu: LumaEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage"]) == 0
    out = capsys.readouterr().out
    assert "available: 300" in out
    assert "used: 0" in out
    assert "plan: emulated" in out
    assert main(["usage", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == 300


def test_usage_command_with_an_expired_upstream_account(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with LumaEmulator.in_thread(upstream_expired=True) as emulator:
        monkeypatch.setenv("LUMA_API_KEY", emulator.api_key)
        monkeypatch.setenv("LUMA_BASE_URL", emulator.base_url)
        assert main(["usage"]) == EXIT_CODES["API or transport error"]
    err = capsys.readouterr().err
    assert "your API key was accepted" in err


@pytest.mark.luma_emulator(
    task_shape="official", batch_route="nested", media="top", unrouted="html", time_scale=0.01
)
def test_the_marker_selects_a_deployment_profile(luma_emulator: LumaEmulator) -> None:
    assert luma_emulator.task_shape == "official"
    assert luma_emulator.batch_route == "nested"
    assert luma_emulator.media == "top"
    assert luma_emulator.unrouted == "html"


def test_emulator_command_serves_a_profile() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "luma_async", "emulator", "--port", str(port)]
    command += ["--task-shape", "official", "--batch-route", "html", "--dialect", "gateway"]
    command += ["--unrouted", "html", "--media", "top", "--upstream-expired"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode() if proc.stdout else ""
        assert f"LUMA_BASE_URL=http://127.0.0.1:{port}" in line

        async def probe() -> tuple[int, str, int, bytes]:
            headers = {"Authorization": "Bearer emulator-key"}
            async with aiohttp.ClientSession() as client:
                async with client.get(f"http://127.0.0.1:{port}/no/such/page") as page:
                    kind, status = page.content_type, page.status
                async with client.get(
                    f"http://127.0.0.1:{port}/luma/generations/x", headers=headers
                ) as response:
                    return status, kind, response.status, await response.read()

        status, kind, auth_status, body = asyncio.run(probe())
        assert (status, kind) == (200, "text/html")  # new-api's page for unrouted paths
        assert auth_status == 401
        assert b"Not authenticated" in body
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == EXIT_CODES["interrupted"]
