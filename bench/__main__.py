"""``python -m bench [--quick] [--check] [--json PATH] [--big N] [--profile DIR]``.

Runs every benchmark of issue 14, prints each figure beside its goal with a pass/miss mark,
then the details.  ``--check`` exits 1 when a goal is missed or was not measured (by hand
only, never in CI: timings depend on the machine).  The server runs in its own process
(:mod:`bench.server`); every many-waits client runs in a fresh one, so that its RSS is its own.
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

from bench import decode, import_time, latency, many_watches, profiling, throughput
from bench.goals import check_status, goals, table_rows
from bench.server import running_server
from bench.stats import fmt, format_table, machine

FULL: dict[str, Any] = {
    "rounds": 7,
    "per_round": 3_000,
    "watch_counts": (5_000, 10_000),
    "watch_rounds": 2,
    "big": 100_000,
    "latency": 40,
    "imports": 9,
    "decode": (9, 3_000),
}
QUICK: dict[str, Any] = {
    "rounds": 3,
    "per_round": 300,
    "watch_counts": (500,),
    "watch_rounds": 1,
    "big": 0,
    "latency": 10,
    "imports": 3,
    "decode": (3, 500),
}
#: How each many-waits process follows its tasks: (--client, batch refresh).
WAYS = (("raw", False), ("luma", False), ("luma", True))


#: The 100,000 waits take about half a minute to start on a 2-core machine, so their tasks
#: last longer than that (5 s queued, 40-42 s processing): each is followed while it runs.
BIG_PENDING, BIG_PROCESSING = 5.0, 40.0


def _watches(
    server: dict[str, str],
    count: int,
    *,
    client: str,
    batch: bool,
    durations: tuple[float, float] | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.many_watches", server["base_url"], server["api_key"]]
    command += ["--count", str(count), "--client", client] + ([] if batch else ["--no-batch"])
    if durations is not None:
        command += ["--pending", str(durations[0]), "--processing", str(durations[1])]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _all_watches(server: dict[str, str], counts: tuple[int, ...], rounds: int) -> list[Any]:
    runs = []
    for count in counts:
        for index in range(rounds):
            order = WAYS[index % len(WAYS) :] + WAYS[: index % len(WAYS)]
            for client, batch in order:
                print(f"   {count:,} waits, {client}, batch={batch}, round {index + 1}", flush=True)
                run = _watches(server, count, client=client, batch=batch)
                runs.append({**run, "round": index})
    return runs


def detail_rows(results: dict[str, Any]) -> list[list[str]]:
    """Every figure of the run that is not itself a goal, for reading beside the goals."""
    table: list[list[str]] = []
    decoding = results.get("decode")
    if decoding:
        label = f"0 task decoding, {decoding['rounds']} x {decoding['count']:,}"
        for shape, f in decoding["shapes"].items():
            table.append(
                [
                    label,
                    f"{shape}: decode / floor per task ((json.loads + decode) / floor)",
                    f"{f['new']:.1f} / {f['floor']:.1f} us ({f['ratio']:.2f}x)",
                ]
            )
    cost = results["throughput"]
    head = f"1 {cost['per_round']:,} GETs x{cost['concurrency']}, {cost['rounds']} rounds"
    for name, numbers in cost["clients"].items():
        table.append(
            [
                head,
                f"{name}: wall / client CPU per request",
                f"{fmt(numbers['wall_us'], 0)} us / {fmt(numbers['cpu_us'], 0)} us",
            ]
        )
        table.append(
            [
                head,
                f"{name} / raw aiohttp: wall, CPU",
                f"{numbers['wall_ratio_raw']:.2f}x, {numbers['cpu_ratio_raw']:.2f}x",
            ]
        )
    for group in results["followers"]:
        label = f"2 {group['count']:,} waits, {group['mode']}"
        ratio = group["cpu_ratio_raw"]
        table += [
            [label, "finished / errors", f"{group['finished']:,} / {group['error_count']}"],
            [
                label,
                "RSS growth per task / peak RSS",
                f"{fmt(group['rss_kb_per_task'], 1)} KB / {fmt(group['peak_rss_mb'], 0)} MB",
            ],
            [
                label,
                "client CPU per task (/ raw loop); per look",
                f"{fmt(group['cpu_ms_per_task'], 3)} ms"
                + ("" if ratio is None else f" ({ratio:.2f}x)")
                + f"; {fmt(group['cpu_ms_per_look'], 3)} ms",
            ],
            [
                label,
                "GETs + batch POSTs per task; looks",
                (
                    f"{group['gets_per_task']:.2f} + {group['batch_posts_per_task']:.3f};"
                    f" {group['looks_per_task']:.2f}"
                ),
            ],
            [
                label,
                "seen done after completion p50 / p95",
                f"{fmt(group['lag_p50_s'] * 1000, 0)} / {fmt(group['lag_p95_s'] * 1000, 0)} ms",
            ],
        ]
    big = results.get("big")
    if big:
        label = f"3 {big['count']:,} waits, batch refresh"
        table += [
            [label, "finished / errors", f"{big['finished']:,} / {big['error_count']}"],
            [
                label,
                "peak RSS (before) / growth per task",
                (
                    f"{fmt(big['peak_rss_mb'], 0)} MB ({fmt(big['rss_before_mb'], 0)} MB)"
                    f" / {fmt(big['rss_growth_kb_per_task'], 1)} KB"
                ),
            ],
            [
                label,
                "GETs + batch POSTs per task; looks (ideal)",
                (
                    f"{big['gets_per_task']:.3f} + {big['batch_posts_per_task']:.4f};"
                    f" {big['looks_per_task']:.2f} ({big['ideal_looks_per_task']})"
                ),
            ],
            [
                label,
                "client CPU per task / wall",
                f"{fmt(big['cpu_ms_per_task'], 3)} ms / {fmt(big['wall_s'], 1)} s",
            ],
            [
                label,
                "seen done after completion p50 / p95",
                f"{fmt(big['lag_p50_s'] * 1000, 0)} / {fmt(big['lag_p95_s'] * 1000, 0)} ms",
            ],
        ]
    for mode, numbers in results["latency"].items():
        if not isinstance(numbers, dict):
            continue
        interval = numbers["interval_ms"]
        table.append(
            [
                "4 detection latency",
                f"{mode}: p50 / p95 (p95 / interval {fmt(interval / 1000, 1)} s)",
                (
                    f"{fmt(numbers['p50_ms'], 0)} / {fmt(numbers['p95_ms'], 0)} ms"
                    f" ({numbers['p95_ms'] / interval:.2f})"
                ),
            ]
        )
    imports = results["import_time"]
    table.append(
        [
            "5 import",
            "python -c 'import aiohttp' / 'import luma_async' (median)",
            f"{fmt(imports['aiohttp_ms'], 0)} / {fmt(imports['luma_async_ms'], 0)} ms",
        ]
    )
    parts = ", ".join(f"{n} {fmt(v, 0)}" for n, v in imports["cumulative_ms"].items())
    table.append(["5 import", "-X importtime cumulative (ms)", parts])
    return table


def measure(size: dict[str, Any], profile: Path | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rounds, count = size["decode"]
    print(f"0. task decoding: {rounds} rounds of {count:,} per shape", flush=True)
    results["decode"] = decode.run(rounds=rounds, count=count)
    with running_server() as server:
        url, key = server["base_url"], server["api_key"]
        print(f"1. throughput: {size['rounds']} rounds of {size['per_round']:,} GETs", flush=True)
        results["throughput"] = asyncio.run(
            throughput.run(url, key, rounds=size["rounds"], per_round=size["per_round"])
        )
        print("2. concurrent waits ...", flush=True)
        runs = _all_watches(server, size["watch_counts"], size["watch_rounds"])
        results["watch_runs"] = runs
        results["followers"] = many_watches.summarise(runs)
        if size["big"]:
            print(f"3. {size['big']:,} waits with batch refresh ...", flush=True)
            results["big"] = _watches(
                server,
                size["big"],
                client="luma",
                batch=True,
                durations=(BIG_PENDING, BIG_PROCESSING),
            )
        print("4. detection latency ...", flush=True)
        results["latency"] = asyncio.run(latency.run(url, key, count=size["latency"], spread=3.0))
        if profile is not None:
            print("   profiling ...", flush=True)
            for path in profiling.run(url, key, profile, gets=3_000, watches=5_000):
                print(f"   wrote {path}")
    print("5. import time ...", flush=True)
    results["import_time"] = import_time.run(repeats=size["imports"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--big", type=int, help="tasks of the batch-refresh run (0: skip it)")
    parser.add_argument("--profile", type=Path, help="write cProfile/pyinstrument reports here")
    args = parser.parse_args()
    size = dict(QUICK if args.quick else FULL)
    if args.big is not None:
        size["big"] = args.big
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": args.quick,
        "size": size,
    }
    results |= measure(size, args.profile)
    found = goals(results)
    results["goals"] = [{"measure": g.measure, "value": g.value, "mark": g.mark} for g in found]
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print()
    print(f"{results['date']}  {results['machine']}")
    print(format_table(table_rows(found), ["goal", "measure", "this run", "goal", "mark"]))
    print()
    print(format_table(detail_rows(results), ["benchmark", "measure", "result"]))
    print(f"\n{sum(g.met for g in found)} of {len(found)} goals met.")
    if args.check:
        sys.exit(check_status(found))


if __name__ == "__main__":
    main()
