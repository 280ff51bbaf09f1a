"""Tests of clipmaker.py: emulator, virtual time, fault injection and the pytest fixture."""

import asyncio

import pytest
from clipmaker import make_clip

from luma_async import PollPolicy, TaskFailedError
from luma_async.testing import LumaEmulator


# 1. The emulator in the test's own event loop, on virtual time: no real waiting at all.
@pytest.mark.asyncio
@pytest.mark.usefixtures("luma_virtual_time")  # yields the VirtualClock, if you need it
async def test_clip_is_extended(monkeypatch: pytest.MonkeyPatch) -> None:
    async with LumaEmulator() as emu:  # start it after virtual time, on the same clock
        monkeypatch.setenv("LUMA_BASE_URL", emu.base_url)
        monkeypatch.setenv("LUMA_API_KEY", emu.api_key)
        emu.inject("get", status=503, count=2)  # transient errors are ridden through
        url = await make_clip("a red fox in snow", extend_with="the fox jumps")
        assert url.startswith(emu.video_base_url)
    assert emu.count("generate") == 1
    assert emu.count("extend") == 1
    assert emu.creations_by_prompt()["the fox jumps"] == 1  # never submitted twice


@pytest.mark.asyncio
@pytest.mark.usefixtures("luma_virtual_time")
async def test_failed_task_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    async with LumaEmulator() as emu:  # a prompt containing "[fail]" makes the task fail
        monkeypatch.setenv("LUMA_BASE_URL", emu.base_url)
        monkeypatch.setenv("LUMA_API_KEY", emu.api_key)
        with pytest.raises(TaskFailedError, match="fail marker"):
            await make_clip("a fox [fail]")


# 2. The luma_emulator fixture: a background thread, so plain sync tests can use it too.
#    Options go in the marker; here tasks run 100 times faster than real time.
FAST = PollPolicy(interval=0.05, max_interval=0.1, jitter=0.0, timeout=30.0)


@pytest.mark.luma_emulator(time_scale=0.01, dialect="gateway", envelope="wrapped")
def test_with_the_fixture(monkeypatch: pytest.MonkeyPatch, luma_emulator: LumaEmulator) -> None:
    monkeypatch.setenv("LUMA_BASE_URL", luma_emulator.base_url)
    monkeypatch.setenv("LUMA_API_KEY", luma_emulator.api_key)
    url = asyncio.run(make_clip("a red fox in snow", poll=FAST))
    assert url.startswith(luma_emulator.video_base_url)
    assert luma_emulator.count("generate") == 1
