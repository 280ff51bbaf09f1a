"""The emulator's pure parts, called directly (no server), and the shape of its package.

``tasks.py``/``shapes.py`` say what each deployment writes, ``faults.py`` what a fault
answers; here they are values in, values out.  The package imports nothing of the client
library, and serves forever in exactly one place.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from luma_async.testing import LumaEmulator
from luma_async.testing._emulator import EmulatorThread, serve
from luma_async.testing._emulator.faults import Fault, FaultQueue, fault_reply
from luma_async.testing._emulator.shapes import (
    UPSTREAM_UNAUTHENTICATED_BODY,
    Deployment,
    Reply,
    field_error,
    gateway_row,
)
from luma_async.testing._emulator.tasks import EmulatedTask

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "luma_async" / "testing" / "_emulator"
VIDEO = "http://cdn.test/videos/t1.mp4"
IMAGES = "http://cdn.test"


def make_task(**changes: Any) -> EmulatedTask:
    fields: dict[str, Any] = {
        "id": "t1",
        "prompt": "a fox",
        "kind": "generate",
        "request": {"user_prompt": "a fox", "loop": True},
        "created_at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "created_clock": 0.0,
        "pending_seconds": 2.0,
        "processing_seconds": 8.0,
    }
    fields.update(changes)
    return EmulatedTask(**fields)


def render(deployment: Deployment, task: EmulatedTask, elapsed: float) -> dict[str, Any]:
    return deployment.task(task, elapsed=elapsed, linked=True, video_url=VIDEO, image_base=IMAGES)


# -- a task over time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "state"),
    [
        (0.0, "pending"),
        (1.99, "pending"),
        (2.0, "processing"),
        (9.99, "processing"),
        (10.0, "completed"),
    ],
)
def test_a_task_moves_through_its_states_by_emulated_seconds(elapsed: float, state: str) -> None:
    assert make_task().state_at(elapsed) == state


def test_a_failing_task_fails_when_it_would_complete_or_at_fail_at() -> None:
    assert make_task(fail_reason="no").state_at(10.0) == "failed"
    assert make_task(fail_reason="no").state_at(5.0) == "processing"
    assert make_task(fail_at=3.0).state_at(3.0) == "failed"
    assert make_task(fail_at=3.0).state_at(2.5) == "processing"


# -- task shapes and media -----------------------------------------------------------------------


def test_the_classic_shape_links_media_only_once_completed() -> None:
    running = render(Deployment(), make_task(), 5.0)
    assert (running["state"], running["video"], running["thumbnail"]) == ("processing", None, None)
    assert running["estimate_wait_seconds"] == 5.0
    assert "fail_reason" not in running
    done = render(Deployment(), make_task(aspect_ratio="9:16"), 10.0)
    assert done["video"] == {
        "url": VIDEO,
        "width": 752,
        "height": 1360,
        "thumbnail": "http://cdn.test/images/t1/thumbnail.png",
        "download_url": VIDEO + "?download=1",
    }
    assert done["last_frame"]["url"] == "http://cdn.test/images/t1/last_frame.png"
    assert done["estimate_wait_seconds"] is None
    held = Deployment().task(
        make_task(), elapsed=10.0, linked=False, video_url=VIDEO, image_base=""
    )
    assert (held["state"], held["video"]) == ("completed", None)


def test_estimates_are_real_seconds_and_can_be_left_out() -> None:
    assert render(Deployment(time_scale=0.5), make_task(), 4.0)["estimate_wait_seconds"] == 3.0
    assert (
        render(Deployment(estimate_wait=False), make_task(), 4.0)["estimate_wait_seconds"] is None
    )


def test_the_artifact_shape_keeps_the_request_and_a_raw_video() -> None:
    body = render(Deployment(task_shape="artifact"), make_task(fail_reason="refused"), 10.0)
    assert (body["state"], body["failure_reason"], body["video"]) == ("failed", "refused", None)
    assert body["request"] == {"prompt": "a fox", "aspect_ratio": "16:9", "loop": True}
    assert body["artifact"]["created_at"] == "0001-01-01T00:00:00Z"
    done = render(Deployment(task_shape="artifact"), make_task(video_seconds=10.0), 10.0)
    assert done["video_raw"] == {
        "url": VIDEO + "?raw=1",
        "width": 1360,
        "height": 752,
        "duration": 10.0,
    }
    assert done["artifact"]["video"] is done["video"]
    assert done["artifact"]["created_at"] == "2026-01-02T03:04:15.000000Z"
    assert render(Deployment(task_shape="artifact"), make_task(), 0.0)["queue_state"] == "queued"


def test_the_official_shape_speaks_lumas_own_states() -> None:
    official = Deployment(task_shape="official", media="top")  # media leaves it alone
    assert render(official, make_task(), 0.0)["state"] == "queued"
    assert render(official, make_task(), 3.0)["state"] == "dreaming"
    done = render(official, make_task(request={"model_name": "ray-flash-2"}), 10.0)
    assert done["assets"]["video"] == VIDEO
    assert done["model"] == "ray-flash-2"
    assert "thumbnail" not in done


@pytest.mark.parametrize("shape", ["classic", "artifact"])
def test_media_are_in_exactly_one_place(shape: Any) -> None:
    thumb = "http://cdn.test/images/t1/thumbnail.png"
    video = render(Deployment(task_shape=shape, media="video"), make_task(), 10.0)
    assert "thumbnail" not in video
    inner = video["video"]["thumbnail"]
    assert (inner if shape == "classic" else inner["url"]) == thumb
    assert video["video_raw"]["url"] == VIDEO + "?raw=1"
    top = render(Deployment(task_shape=shape, media="top"), make_task(), 10.0)
    assert (top["thumbnail"]["url"], top["video"]["thumbnail"]) == (thumb, None)
    artifact = render(Deployment(task_shape=shape, media="artifact"), make_task(), 10.0)
    assert "thumbnail" not in artifact
    assert artifact["artifact"]["thumbnail"]["url"] == thumb
    assert artifact["artifact"]["last_frame"]["url"].endswith("/last_frame.png")


# -- envelopes, dialects, batch answers ----------------------------------------------------------


def test_envelopes_wrap_tasks_and_objects() -> None:
    assert Deployment().wrap({"id": 1}) == {"id": 1}
    assert Deployment(envelope="list").wrap({"id": 1}) == [{"id": 1}]
    wrapped = Deployment(envelope="wrapped")
    assert wrapped.wrap({"id": 1}) == {"code": "success", "message": "", "data": {"id": 1}}
    assert Deployment(envelope="list").wrap_object({"id": 1}) == {"id": 1}
    assert wrapped.wrap_object({"id": 1})["data"] == {"id": 1}


def test_each_dialect_writes_its_errors() -> None:
    proxy, gateway = Deployment(), Deployment(dialect="gateway")
    assert proxy.error(401, "no").decoded() == {"detail": {"reason": "no", "code": 1}}
    assert proxy.not_found("t9") == Reply(404, b'{"detail":"Not found"}')
    assert gateway.error(401, "no").decoded()["error"]["type"] == "invalid_request_error"
    assert gateway.not_found("t9").status == 400
    assert gateway.not_found("t9").decoded()["code"] == "task_not_exist"
    assert gateway.error(503, "down").decoded()["code"] == "upstream_error"
    assert gateway.error(403, "poor").decoded()["code"] == "quota_not_enough"
    assert proxy.upstream_unauthenticated().body == UPSTREAM_UNAUTHENTICATED_BODY
    assert gateway.upstream_unauthenticated().body == b'{"detail":"Not authenticated"}'


def test_batch_answers_list_wrapped_and_nested() -> None:
    task = make_task(kind="extend")
    rows = [(task, "processing", {"id": "t1"}, 13917)]
    assert Deployment().batch([(task, "processing", {"id": "t1"}, 1)], nested=False) == [
        {"id": "t1"}
    ]
    wrapped = Deployment(envelope="wrapped").batch(rows, nested=False)
    assert wrapped["data"] == [{"id": "t1", "status": "IN_PROGRESS"}]
    nested = Deployment().batch([(task, "completed", {"id": "t1"}, 13917)], nested=True)
    row = nested["data"][0]
    assert (row["id"], row["task_id"], row["action"], row["status"]) == (
        13917,
        "t1",
        "LUMA_EXTEND",
        "SUCCESS",
    )
    assert row["data"] == {"id": "t1"}
    failed = gateway_row(make_task(fail_reason="no"), "failed", {}, 1)
    assert (failed["status"], failed["fail_reason"], failed["progress"]) == (
        "FAILURE",
        "no",
        "100%",
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"user_prompt": "a fox"}, None),
        ({"user_prompt": " "}, "user_prompt is required: a non-empty string"),
        ({"user_prompt": "a", "loop": None}, "loop must be left out, not null"),
        ({"user_prompt": "a", "duration": 1.5}, "duration must be a str or int"),
        ({"user_prompt": "a", "image_url": "ftp://x"}, "image_url is not an http(s) URL"),
        ({"user_prompt": "a", "notify_hook": "data:image/png;base64,AA=="}, "notify_hook is not"),
        ({"user_prompt": "a", "image_url": "data:image/png;base64,AA=="}, None),
    ],
)
def test_request_fields_are_checked(body: dict[str, Any], problem: str | None) -> None:
    from luma_async.testing._emulator.shapes import GENERATE_FIELDS  # noqa: PLC0415

    found = field_error(body, GENERATE_FIELDS)
    assert found == problem if problem is None else (found or "").startswith(problem)


# -- faults --------------------------------------------------------------------------------------


def test_faults_are_taken_in_order_and_counted_down() -> None:
    queue = FaultQueue()
    first = queue.add(Fault("get", 2, status=500))
    anything = queue.add(Fault("*", 1, drop=True))
    assert queue.take("get") is first
    assert queue.take("extend") is anything  # the first fault for the route, "*" included
    assert queue.take("get") is first
    assert (queue.take("get"), queue.pending()) == (None, [])
    with pytest.raises(ValueError, match="unknown route"):
        queue.add(Fault("nope", 1))
    with pytest.raises(ValueError, match="at least 1"):
        queue.add(Fault("get", 0))


def test_what_a_fault_answers() -> None:
    gateway = Deployment(dialect="gateway")
    corrupt = fault_reply(Fault("get", 1, body="not json"), gateway)
    assert (corrupt.status, corrupt.content_type, corrupt.body) == (200, "text/plain", b"not json")
    assert fault_reply(Fault("get", 1, body=b"[1]"), gateway).content_type == "application/json"
    limited = fault_reply(Fault("get", 1, retry_after=7.9, headers={"X-A": "b"}), gateway)
    assert (limited.status, dict(limited.headers)) == (429, {"Retry-After": "7", "X-A": "b"})
    assert limited.decoded()["code"] == "rate_limit_exceeded"
    page = fault_reply(Fault("get", 1, html=True), gateway)
    assert (page.status, page.content_type, page.charset) == (502, "text/html", "utf-8")
    assert b"<center><h1>502 Bad Gateway</h1></center>" in page.body
    assert fault_reply(Fault("get", 1, status=503), Deployment()).decoded() == {
        "detail": "Service Unavailable"
    }
    assert not Fault("get", 1, delay=1.0).answers


# -- the package ---------------------------------------------------------------------------------


def test_no_module_of_the_emulator_is_long_and_the_pure_ones_use_no_aiohttp() -> None:
    for module in PACKAGE.glob("*.py"):
        assert len(module.read_text().splitlines()) <= 400, module.name
    for name in ("tasks.py", "shapes.py", "faults.py", "state.py"):
        tree = ast.parse((PACKAGE / name).read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        runtime = {m for m in imported if m.split(".")[0] == "aiohttp"}
        if name == "state.py":  # only for annotations, under TYPE_CHECKING
            assert "if TYPE_CHECKING:" in (PACKAGE / name).read_text()
            continue
        assert not runtime, (name, runtime)


def test_the_emulator_imports_nothing_of_the_client_library() -> None:
    """Loaded without ``luma_async/__init__`` and with every client module blocked, the
    emulator still imports, serves and answers; only ``_clock`` of the library is used."""
    script = textwrap.dedent(
        f"""
        import asyncio, importlib.abc, sys, types
        package = types.ModuleType("luma_async")
        package.__path__ = [{str(ROOT / "luma_async")!r}]
        sys.modules["luma_async"] = package

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                inside = name.startswith(("luma_async.testing", "luma_async._clock"))
                if name.startswith("luma_async.") and not inside:
                    raise ImportError("the emulator imported " + name)
                return None

        sys.meta_path.insert(0, Block())
        import aiohttp
        from luma_async.testing import LumaEmulator

        async def main():
            async with LumaEmulator(dialect="gateway") as emu, aiohttp.ClientSession() as http:
                headers = {{"Authorization": "Bearer " + emu.api_key}}
                body = {{"user_prompt": "a fox", "notify_hook": emu.base_url + "/hook"}}
                async with http.post(emu.base_url + "/luma/generations", json=body,
                                     headers=headers) as response:
                    assert response.status == 200, response.status
                    task = await response.json()
                async with http.get(emu.base_url + "/luma/generations/" + task["id"],
                                    headers=headers) as response:
                    assert response.status == 200, response.status
                await asyncio.sleep(0.05)

        asyncio.run(main())
        print(" ".join(sorted(m for m in sys.modules if m.startswith("luma_async"))))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert {m for m in loaded if not m.startswith("luma_async.testing")} == {
        "luma_async",
        "luma_async._clock",
    }


class CountingEmulator(LumaEmulator):
    served = 0

    async def serve_forever(self, **kwargs: Any) -> None:  # type: ignore[override]
        type(self).served += 1
        await super().serve_forever(**kwargs)


def test_the_thread_runner_serves_through_serve_forever() -> None:
    CountingEmulator.served = 0
    with EmulatorThread(CountingEmulator()) as emu:
        assert emu.running
    assert (CountingEmulator.served, emu.running) == (1, False)


@pytest.mark.asyncio
async def test_serve_passes_its_options_and_ready_to_serve_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[LumaEmulator] = []
    monkeypatch.setattr("luma_async.testing._emulator.runner.LumaEmulator", CountingEmulator)
    CountingEmulator.served = 0
    server = asyncio.ensure_future(serve(port=0, ready=seen.append, envelope="list"))
    while not seen:
        await asyncio.sleep(0.01)
    assert (CountingEmulator.served, seen[0].envelope, seen[0].running) == (1, "list", True)
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    assert not seen[0].running


@pytest.mark.asyncio
async def test_serve_forever_closes_when_starting_fails() -> None:
    async with LumaEmulator() as busy:
        emu = LumaEmulator(port=busy.port)
        with pytest.raises(OSError):
            await emu.serve_forever(ready=lambda _: pytest.fail("never listened"))
        assert not emu.running
