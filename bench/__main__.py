"""``python -m bench [--quick] [--json PATH] [--profile DIR]``: run every benchmark, print a table.

The server runs in its own process (:mod:`bench.server`); the many-watches client runs in
another, so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import import_time, latency, profiling, request_cost
from bench.server import running_server
from bench.stats import fmt, format_table, machine

FULL = {"rounds": 15, "per_round": 300, "watches": 10_000, "latency": 40, "imports": 9}
QUICK = {"rounds": 3, "per_round": 100, "watches": 1_000, "latency": 10, "imports": 3}


def _watches(server: dict[str, str], count: int, *, batch: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.many_watches", server["base_url"], server["api_key"]]
    command += ["--count", str(count)] + ([] if batch else ["--no-batch"])
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rows(results: dict[str, Any]) -> list[list[str]]:
    """The table of results: benchmark, measure, value, target."""
    table: list[list[str]] = []
    cost = results["request_cost"]
    for name, numbers in cost["clients"].items():
        target = "<= 1.10x" if name == "luma-async" else ""
        table.append(
            [
                "1 one GET",
                f"{name}: wall / CPU per request",
                f"{fmt(numbers['wall_us'], 0)} us / {fmt(numbers['cpu_us'], 0)} us",
                "",
            ]
        )
        if name != "raw aiohttp":
            table.append(
                [
                    "1 one GET",
                    f"{name} / raw aiohttp: wall, CPU (median ratio)",
                    f"{numbers['wall_ratio']:.2f}x, {numbers['cpu_ratio']:.2f}x",
                    target,
                ]
            )
    for watch in results["watches"]:
        label = f"2 {watch['count']:,} waits, " + (
            "batch refresh" if watch["batch"] else "GET only"
        )
        table += [
            [label, "finished / errors", f"{watch['finished']:,} / {len(watch['errors'])}", "all"],
            [
                label,
                "peak RSS (before watching)",
                f"{fmt(watch['peak_rss_mb'], 0)} MB ({fmt(watch['rss_before_mb'], 0)} MB)",
                "<= 150 MB",
            ],
            [label, "client CPU per task", f"{fmt(watch['cpu_ms_per_task'])} ms", ""],
            [
                label,
                "GETs + batch POSTs per task",
                f"{watch['gets_per_task']:.2f} + {watch['batch_posts_per_task']:.3f}",
                "",
            ],
            [
                label,
                "looks per task (ideal)",
                f"{watch['looks_per_task']:.2f} ({watch['ideal_looks_per_task']})",
                "",
            ],
            [
                label,
                "done after completion p50 / p95",
                f"{fmt(watch['lag_p50_s'] * 1000, 0)} / {fmt(watch['lag_p95_s'] * 1000, 0)} ms",
                "",
            ],
            [label, "wall time", f"{fmt(watch['wall_s'], 1)} s", ""],
        ]
    for mode, numbers in results["latency"].items():
        if mode == "count":
            continue
        table.append(
            [
                "3 detection latency",
                f"{mode}: p50 / p95",
                f"{fmt(numbers['p50_ms'], 0)} / {fmt(numbers['p95_ms'], 0)} ms",
                "",
            ]
        )
    imports = results["import_time"]
    table.append(
        [
            "4 import",
            "python -c 'import luma_async' minus bare python",
            f"{fmt(imports['wall_ms'], 0)} ms",
            "",
        ]
    )
    parts = ", ".join(f"{n} {fmt(v, 0)}" for n, v in imports["cumulative_ms"].items())
    table.append(["4 import", "-X importtime cumulative (ms)", parts, ""])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--profile", type=Path, help="write pyinstrument reports here")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": args.quick,
    }
    with running_server() as server:
        url, key = server["base_url"], server["api_key"]
        print("1. one request ...", flush=True)
        results["request_cost"] = asyncio.run(
            request_cost.run(url, key, rounds=size["rounds"], per_round=size["per_round"])
        )
        print(f"2. {size['watches']:,} watches ...", flush=True)
        results["watches"] = [
            _watches(server, size["watches"], batch=True),
            _watches(server, size["watches"], batch=False),
        ]
        print("3. detection latency ...", flush=True)
        results["latency"] = asyncio.run(latency.run(url, key, count=size["latency"], spread=3.0))
        if args.profile is not None:
            print("   profiling ...", flush=True)
            for path in profiling.run(url, key, args.profile, gets=2000, watches=2000):
                print(f"   wrote {path}")
    print("4. import time ...", flush=True)
    results["import_time"] = import_time.run(repeats=size["imports"])
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print()
    print(f"{results['date']}  {results['machine']}")
    print(format_table(rows(results), ["benchmark", "measure", "result", "target"]))


if __name__ == "__main__":
    main()
