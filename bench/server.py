"""The benchmark server: a :class:`LumaEmulator` in its own process, plus bench-only routes.

``python -m bench.server`` prints one JSON line (``base_url``, ``api_key``) once it listens and
serves until SIGTERM/SIGINT.  On top of the emulator's API it answers:

``GET /dream-machine/v1/generations/{id}``
    the same task in the official Luma API's format, for the ``lumaai`` SDK;
``POST /bench/tasks`` ``{"count", "pending", "processing", "spread", "notify_hook"}``
    creates tasks directly (no paid-request checks), ``processing`` lengthened by a uniform
    random ``0..spread``; answers ``[{"id", "completes_at"}]``, ``completes_at`` on the
    machine's monotonic clock (``time.monotonic()`` is system-wide on Linux);
``GET /bench/stats``, ``POST /bench/reset``
    requests counted by route since the last reset; reset forgets records (and tasks when
    ``{"tasks": true}``).

The extra routes hang off the emulator's catch-all handler, so they pay the same recording
and dispatch as the API routes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from luma_async.testing import LumaEmulator
from luma_async.testing._emulator import RecordedRequest, _json_response

OFFICIAL_PREFIX = "/dream-machine/v1"
_OFFICIAL_STATES = {"pending": "queued", "processing": "dreaming"}


class BenchEmulator(LumaEmulator):
    async def _not_routed(
        self, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        path = request.path
        if request.method == "GET" and path.startswith(OFFICIAL_PREFIX + "/generations/"):
            return self._official(request, path.rsplit("/", 1)[1])
        if path == "/bench/tasks" and request.method == "POST":
            return await self._bench_tasks(request, record)
        if path == "/bench/stats":
            return _json_response(self._stats())
        if path == "/bench/reset" and request.method == "POST":
            body = await self._body(request, record)
            self.reset_records()
            if body.get("tasks"):
                self.tasks.clear()
            return _json_response({"ok": True})
        return await super()._not_routed(request, record)

    def _official(self, request: web.Request, task_id: str) -> web.StreamResponse:
        if not self._authorized(request):
            return self._error(401, "unauthorized secret token")
        task = self.tasks.get(task_id)
        if task is None:
            return self._error(404, f"generation {task_id} not found")
        body = self._render(task, read=True)
        video = body["video"]
        thumbnail = body["thumbnail"]
        official = {
            "id": body["id"],
            "generation_type": "video",
            "state": _OFFICIAL_STATES.get(body["state"], body["state"]),
            "failure_reason": body.get("fail_reason"),
            "created_at": body["created_at"],
            "assets": {
                "video": video["url"] if video else None,
                "image": thumbnail["url"] if thumbnail else None,
                "progress_video": None,
            },
            "model": "ray-2",
            "request": {
                "generation_type": "video",
                "prompt": body["prompt"],
                "aspect_ratio": task.aspect_ratio,
                "loop": False,
            },
        }
        return _json_response(official)

    async def _bench_tasks(self, request: web.Request, record: RecordedRequest) -> web.Response:
        body = await self._body(request, record)
        count = int(body.get("count", 1))
        pending = float(body.get("pending", 0.0))
        processing = float(body.get("processing", 0.0))
        spread = float(body.get("spread", 0.0))
        seed: dict[str, Any] = {"user_prompt": "a benchmark of many foxes"}
        if body.get("notify_hook"):
            seed["notify_hook"] = body["notify_hook"]
        made = []
        for _ in range(count):
            # durations first: _create notices the task for callbacks at once
            self.pending_seconds = pending
            self.processing_seconds = processing + random.uniform(0, spread)
            task = self._create(dict(seed), kind="generate", parent=None)
            total = task.pending_seconds + task.processing_seconds
            made.append(
                {"id": task.id, "completes_at": task.created_clock + total * self.time_scale}
            )
        return _json_response(made)

    def _stats(self) -> dict[str, int]:
        stats = {"get": 0, "tasks": 0, "batch_ids": 0, "official": 0, "other": 0}
        for r in self.requests:
            if r.route == "get":
                stats["get"] += 1
            elif r.route == "tasks":
                stats["tasks"] += 1
                ids = r.json.get("ids") if isinstance(r.json, dict) else None
                stats["batch_ids"] += len(ids) if isinstance(ids, list) else 0
            elif r.path.startswith(OFFICIAL_PREFIX):
                stats["official"] += 1
            else:
                stats["other"] += 1
        return stats


async def _serve(port: int) -> None:
    emulator = BenchEmulator(port=port, callback_attempts=1)
    await emulator.start()
    print(json.dumps({"base_url": emulator.base_url, "api_key": emulator.api_key}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.close()


@contextlib.contextmanager
def running_server(python: str = sys.executable) -> Iterator[dict[str, str]]:
    """Start ``python -m bench.server`` and yield its ``base_url`` and ``api_key``."""
    process = subprocess.Popen([python, "-m", "bench.server"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark server did not start")
        yield json.loads(line)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
