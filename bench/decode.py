"""Task decoding alone: ``task_from_json`` per task shape, against a floor.

``python -m bench.decode [--rounds N] [--count N] [--against REV]``

Each shape is one realistic body as a deployment sends it (the emulator's renderings of a
completed task in the classic, artifact ("later") and official shapes, the classic one in the
list and ``{"code", "data"}`` envelopes and as a gateway row, and a pending task).  Per shape:

* **floor**: ``json.loads`` of the body's bytes plus a dict lookup of the fields a client
  needs (id, state, created_at, the video's URL), what a hand-written raw client pays;
* **decode**: ``task_from_json`` of the already parsed body (what luma-async adds);
* **ratio**: (``json.loads`` + decode) / floor.

``--against REV`` also loads ``luma_async/_convert.py`` as it was at git revision ``REV`` and
times it in the same rounds, alternating old and new (the order swaps every round), so a
loaded machine's drift hits both alike.  Every figure is the median over the rounds.

``--against REV --throughput N`` then runs the throughput benchmark's GETs (N per round, 32
in flight, against :mod:`bench.server`) with three clients in rotating order: raw aiohttp,
``LumaSession.get()`` as it is, and ``LumaSession.get()`` decoding with REV's decoder.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench import throughput
from bench.client import Control
from bench.server import running_server
from bench.stats import format_table, median, ratio
from luma_async import _session
from luma_async._convert import task_from_json

Decode = Callable[[Any], Any]

_ID = "2c3f9a6e-0b7d-4d1e-9f51-6a0d3c8e7b21"
_CDN = "https://storage.cdn-luma.com"
_CREATED = "2026-11-25T20:57:01.123456Z"


def _image(kind: str) -> dict[str, Any]:
    return {"url": f"{_CDN}/images/{_ID}/{kind}.png", "width": 1360, "height": 752}


def _classic() -> dict[str, Any]:
    url = f"{_CDN}/videos/{_ID}.mp4"
    return {
        "id": _ID,
        "prompt": "a lighthouse at dusk, waves",
        "state": "completed",
        "created_at": _CREATED,
        "video": {
            "url": url,
            "width": 1360,
            "height": 752,
            "thumbnail": _image("thumbnail")["url"],
            "download_url": f"{url}?download=1",
        },
        "liked": None,
        "estimate_wait_seconds": None,
        "thumbnail": _image("thumbnail"),
        "last_frame": _image("last_frame"),
    }


def _artifact() -> dict[str, Any]:
    url = f"{_CDN}/videos/{_ID}.mp4"
    video = {"url": url, "width": 1360, "height": 752, "thumbnail": _image("thumbnail")}
    raw = {"url": f"{url}?raw=1", "width": 1360, "height": 752, "duration": 5.041667}
    return {
        "id": _ID,
        "state": "completed",
        "queue_state": None,
        "created_at": _CREATED,
        "batch_id": "b-7f1c",
        "liked": None,
        "estimate_wait_seconds": None,
        "failure_reason": None,
        "request": {"prompt": "a lighthouse at dusk, waves", "aspect_ratio": "16:9"},
        "video": video,
        "video_raw": raw,
        "thumbnail": _image("thumbnail"),
        "last_frame": _image("last_frame"),
        "artifact": {
            "video": video,
            "thumbnail": _image("thumbnail"),
            "video_raw": raw,
            "last_frame": _image("last_frame"),
            "created_at": "2026-11-25T20:57:09.123456Z",
        },
    }


def _official() -> dict[str, Any]:
    return {
        "id": _ID,
        "generation_type": "video",
        "state": "completed",
        "failure_reason": None,
        "created_at": _CREATED,
        "assets": {
            "video": f"{_CDN}/videos/{_ID}.mp4",
            "image": _image("thumbnail")["url"],
            "progress_video": None,
        },
        "model": "ray-2",
        "request": {"prompt": "a lighthouse at dusk, waves", "aspect_ratio": "16:9"},
        "version": "emulated",
    }


def _pending() -> dict[str, Any]:
    body = _classic()
    body.update(state="pending", video=None, thumbnail=None, last_frame=None)
    body["estimate_wait_seconds"] = 12.5
    return body


def _gateway() -> dict[str, Any]:
    return {
        "id": 13918,
        "task_id": _ID,
        "platform": "luma_free",
        "action": "LUMA_EXTEND",
        "status": "SUCCESS",
        "fail_reason": "",
        "submit_time": 1719819313,
        "start_time": 1719819323,
        "finish_time": 1719819400,
        "progress": "100%",
        "data": _classic(),
    }


#: The bodies timed, by shape.
SHAPES: dict[str, Callable[[], Any]] = {
    "classic": _classic,
    "artifact": _artifact,
    "official": _official,
    "wrapped": lambda: {"code": "success", "message": "", "data": _classic()},
    "list": lambda: [_classic()],
    "gateway row": _gateway,
    "pending": _pending,
}


def _lookup(data: Any) -> tuple[Any, ...]:
    """The floor's field reads: what a hand-written client reads of a task."""
    if type(data) is list:
        data = data[0]
    if "task_id" in data or "id" not in data:
        data = data["data"]
    video = data.get("video") or data.get("artifact", {}).get("video") or data.get("assets")
    url = video.get("url") if type(video) is dict else None
    return data["id"], data["state"], data.get("created_at"), url


def _floor(raw: bytes) -> tuple[Any, ...]:
    return _lookup(json.loads(raw))


def _time(step: Callable[[Any], object], argument: Any, count: int) -> float:
    """Microseconds per call of ``step(argument)``, over ``count`` calls."""
    start = time.perf_counter()
    for _ in range(count):
        step(argument)
    return (time.perf_counter() - start) / count * 1e6


def load_old(rev: str) -> Decode:
    """``task_from_json`` of ``luma_async/_convert.py`` as it was at git revision ``rev``."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{rev}:luma_async/_convert.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="bench-decode-"))
    path = folder / "old_convert.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("bench_old_convert", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    decode: Decode = module.task_from_json
    return decode


def _series(body: Any, ways: list[tuple[str, Decode]], rounds: int, count: int) -> dict[str, Any]:
    """One shape's timings: a warm-up round, then ``rounds`` rounds, the decoders alternating."""
    raw = json.dumps(body).encode()
    parsed = json.loads(raw)
    series: dict[str, list[float]] = {"loads": [], "floor": []}
    for _, decode in ways:
        _time(decode, parsed, count)
    for index in range(rounds):
        series["loads"].append(_time(json.loads, raw, count))
        series["floor"].append(_time(_floor, raw, count))
        for key, decode in ways if index % 2 == 0 else ways[::-1]:
            series.setdefault(key, []).append(_time(decode, parsed, count))
    figures = {key: median(values) for key, values in series.items()}
    paired = zip(series["loads"], series["new"], series["floor"], strict=True)
    figures["ratio"] = median((loads + new) / floor for loads, new, floor in paired)
    if "old" in series:
        pairs = zip(series["new"], series["old"], strict=True)
        figures["new_over_old"] = median(new / was for new, was in pairs)
    return figures


def run(*, rounds: int = 9, count: int = 3_000, old: Decode | None = None) -> dict[str, Any]:
    """Per shape: floor, decode (and old decode) in µs per task, medians over ``rounds``."""
    ways: list[tuple[str, Decode]] = [("new", task_from_json)]
    if old is not None:
        ways.append(("old", old))
    shapes = {}
    for name, make in SHAPES.items():
        body = make()
        if old is not None and old(copy.deepcopy(body)) != task_from_json(body):
            raise AssertionError(f"{name}: the old and new decoders disagree")
        shapes[name] = _series(body, ways, rounds, count)
    return {"rounds": rounds, "count": count, "shapes": shapes}


async def _throughput(base_url: str, api_key: str, old: Decode, rounds: int, count: int) -> Any:
    """Client CPU per GET (µs): raw aiohttp, luma-async, luma-async with the old decoder."""
    control = Control(base_url, api_key)
    (made,) = await control.create(1)  # completed at once: the full object, with its video
    new = task_from_json  # what _session imported
    names = vars(_session)  # the decoder the session calls, swapped per client
    async with AsyncExitStack() as stack:
        clients = await throughput._clients(stack, base_url, api_key, made["id"])  # noqa: SLF001
        ways = {
            "raw aiohttp": (clients[throughput.RAW], new),
            "luma-async": (clients[throughput.LUMA], new),
            "luma-async, old decoder": (clients[throughput.LUMA], old),
        }
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        for order in [["warm-up", *ways], *throughput.rotations(list(ways), rounds)]:
            for name in order:
                fetch, decode = ways.get(name, ways["luma-async, old decoder"])
                names["task_from_json"] = decode
                start = time.process_time()
                await throughput.burst(fetch, count, 32)
                if name in cpu:
                    cpu[name].append((time.process_time() - start) / count * 1e6)
        names["task_from_json"] = new
    await control.reset()
    raw = cpu["raw aiohttp"]
    return {name: (median(series), ratio(series, raw)) for name, series in cpu.items()}


def throughput_rows(figures: dict[str, tuple[float, float]]) -> list[list[str]]:
    return [[name, f"{us:.0f}", f"{over:.2f}x"] for name, (us, over) in figures.items()]


def rows(results: dict[str, Any]) -> list[list[str]]:
    table = []
    for name, f in results["shapes"].items():
        row = [name, f"{f['floor']:.2f}", f"{f['loads']:.2f}", f"{f['new']:.2f}"]
        row.append(f"{f['ratio']:.2f}x")
        if "old" in f:
            row += [f"{f['old']:.2f}", f"{f['new_over_old']:.2f}x"]
        table.append(row)
    return table


def header(results: dict[str, Any]) -> list[str]:
    head = ["shape", "floor us", "json.loads us", "decode us", "(loads+decode)/floor"]
    if any("old" in f for f in results["shapes"].values()):
        head += ["old decode us", "new/old"]
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--count", type=int, default=3_000, help="decodes per round and shape")
    parser.add_argument("--against", metavar="REV", help="also time _convert.py of git REV")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--throughput", type=int, metavar="N", help="GETs per round (--against)")
    args = parser.parse_args()
    old = load_old(args.against) if args.against else None
    results = run(rounds=args.rounds, count=args.count, old=old)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"{args.rounds} rounds x {args.count:,} decodes per shape; medians")
    print(format_table(rows(results), header(results)))
    if old is not None and args.throughput:
        with running_server() as server:
            url, key = server["base_url"], server["api_key"]
            figures = asyncio.run(_throughput(url, key, old, args.rounds, args.throughput))
        print(f"\nthroughput: {args.rounds} rounds x {args.throughput:,} GETs, 32 in flight")
        print(format_table(throughput_rows(figures), ["client", "CPU us per GET", "/ raw"]))


if __name__ == "__main__":
    main()
