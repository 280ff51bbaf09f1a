"""Issue 10, item 8: every deployment profile of the emulator, with default session settings.

Each cell (dialect x envelope x task shape x batch route answer) runs the three flows users
rely on: generate -> extend -> wait, ``watch_many`` over 20 tasks, and ``extend_many`` with a
journal and ``download_to``.  Every task must finish, and nothing may be paid twice.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from luma_async import ExtendRequest, LumaSession
from luma_async.testing import LumaEmulator, VirtualClock
from luma_async.testing._emulator import BATCH_ROUTES

pytestmark = pytest.mark.asyncio

DIALECTS = ("proxy", "gateway")
ENVELOPES = ("bare", "list", "wrapped")
SHAPES = ("classic", "artifact", "official")
PROFILES = list(itertools.product(DIALECTS, ENVELOPES, SHAPES, BATCH_ROUTES))


def _profile_id(profile: tuple[str, str, str, str]) -> str:
    return "-".join(profile)


async def _flows(emu: LumaEmulator, luma: LumaSession, tmp_path: Path) -> None:
    # 1. generate -> extend -> wait
    first = await luma.generate("a fox in snow")
    done = await luma.wait(first.id, first=first)
    assert done.video is not None
    assert done.id == first.id
    extension = await luma.extend(done.id, "the fox runs")
    finished = await luma.wait(extension.id, first=extension)
    assert finished.video is not None
    assert finished.id == extension.id

    # 2. watch_many over 20 tasks
    tasks = [await luma.generate(f"clip {i}") for i in range(20)]
    ids = {t.id for t in tasks}
    last: dict[str, object] = {}
    async for change in luma.watch_many(ids):
        assert change.task.id == change.task_id
        last[change.task_id] = change.task
    assert set(last) == ids
    assert all(getattr(task, "video", None) is not None for task in last.values())

    # 3. extend_many with a journal and download_to
    folder = tmp_path / "videos"
    folder.mkdir()
    requests = [ExtendRequest(t.id, f"more of clip {i}") for i, t in enumerate(tasks[:6])]
    results = [
        r
        async for r in luma.extend_many(
            requests, journal=tmp_path / "journal.sqlite", download_to=folder
        )
    ]
    assert len(results) == len(requests)
    for result in results:
        assert result.ok, result.error
        assert result.task is not None
        assert result.task.video is not None
        assert result.path is not None
        assert result.path.stat().st_size == len(emu.video_bytes)

    # nothing paid twice
    paid = emu.creations_by_prompt()
    assert max(paid.values()) == 1
    assert sum(paid.values()) == 1 + 1 + 20 + len(requests)


@pytest.mark.parametrize("profile", PROFILES, ids=_profile_id)
async def test_every_profile_finishes_every_task(
    vclock: VirtualClock, tmp_path: Path, profile: tuple[str, str, str, str]
) -> None:
    dialect, envelope, shape, batch_route = profile
    async with (
        LumaEmulator(
            dialect=dialect,  # type: ignore[arg-type]
            envelope=envelope,  # type: ignore[arg-type]
            task_shape=shape,  # type: ignore[arg-type]
            batch_route=batch_route,
            unrouted="html" if dialect == "gateway" else "404",
        ) as emu,
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,  # default settings
    ):
        await asyncio.wait_for(_flows(emu, luma, tmp_path), timeout=60)
        if batch_route in ("list", "nested"):
            assert emu.count("tasks") > 0
        else:  # not offered: asked once, then one GET per task
            assert emu.count("tasks") == 1


@pytest.mark.parametrize("media", ["video", "top", "artifact"])
@pytest.mark.parametrize("shape", ["classic", "artifact"])
async def test_every_media_place_finishes_with_stills(
    vclock: VirtualClock, tmp_path: Path, media: str, shape: str
) -> None:
    async with (
        LumaEmulator(task_shape=shape, media=media) as emu,  # type: ignore[arg-type]
        LumaSession(emu.api_key, base_url=emu.base_url) as luma,
    ):
        first = await luma.generate("a fox in snow")
        done = await luma.wait(first.id, first=first)
        assert done.video is not None
        assert done.video.thumbnail is not None
        assert done.video.thumbnail.endswith("/thumbnail.png")
        assert done.last_frame is not None
        assert done.last_frame.url.endswith("/last_frame.png")
        assert done.video_raw is not None
        assert done.video_raw.duration == 5.0
        path = await luma.download(done, tmp_path)
        assert path.stat().st_size == len(emu.video_bytes)
