"""The README's Python examples run, against the emulator on virtual time."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from luma_async import LumaSession, PollPolicy
from luma_async.testing import LumaEmulator, virtual_time

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_its_three_examples() -> None:
    blocks = python_blocks()
    assert len(blocks) == 3
    assert "luma.extend(" in blocks[0]
    assert "extend_many(" in blocks[1]
    assert "LumaEmulator()" in blocks[2]


def run_with_emulator(monkeypatch: pytest.MonkeyPatch, scenario: Any) -> Any:
    async def main() -> Any:
        async with LumaEmulator() as emu:
            monkeypatch.setenv("LUMA_API_KEY", emu.api_key)
            monkeypatch.setenv("LUMA_BASE_URL", emu.base_url)
            policy = PollPolicy(interval=1, max_interval=5, jitter=0)
            async with LumaSession(emu.api_key, base_url=emu.base_url, poll=policy) as luma:
                parent = await luma.wait((await luma.generate("root")).id)
            return await scenario(emu, parent.id)

    with virtual_time():
        return asyncio.run(main())


def test_first_example_extends_and_follows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = python_blocks()[0]
    code = code[: code.rindex("asyncio.run(")]  # the example's own call uses a made-up id
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)

    async def scenario(emu: LumaEmulator, parent: str) -> str:
        await namespace["main"](parent)
        return emu.video_base_url

    video_base_url = run_with_emulator(monkeypatch, scenario)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pending")
    assert lines[-2].startswith("completed")
    assert lines[-1].startswith(video_base_url)


def test_batch_example_extends_all(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the example's journal lands here
    namespace: dict[str, Any] = {}
    exec(compile(python_blocks()[1], "README.md", "exec"), namespace)

    async def scenario(emu: LumaEmulator, parent: str) -> LumaEmulator:
        await namespace["extend_all"]({parent: "the camera pulls back"})
        return emu

    emu = run_with_emulator(monkeypatch, scenario)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("ok")
    assert (tmp_path / "extend.sqlite").exists()
    assert emu.creations_by_prompt()["the camera pulls back"] == 1


def test_emulator_example_is_a_passing_test() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(python_blocks()[2], "README.md", "exec"), namespace)
    asyncio.run(namespace["test_my_extension_flow"]())
