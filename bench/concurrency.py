"""Webhook throughput per instance at Cloud Run concurrency 8, 16 and 80, side by side.

One server per level, each as deploy.sh deploys the webhook at that concurrency:
``functions/webhook.py`` under functions-framework, one gunicorn worker with
``THREADS`` = the concurrency, against one Firestore emulator and identical
channel documents. wrk loads each with as many connections as its concurrency
(what Cloud Run sends an instance that is full), with valid notifications, each
with its own message number. Rounds interleave the levels (each round in a
rotated order), so drift on a shared machine hits all of them alike.

Per level: accepted notifications per second, p50 and p99 latency (medians of
the rounds), and the CPU the server's processes spent per notification served
(utime + stime of its process group over the measured windows, divided by the
notifications it finished, counted inside the server by ``bench/opcount``).
One vCPU serves at most 1000 / (CPU ms per notification) notifications a
second, whatever the concurrency: that is the figure docs/scale.md sizes with.
The machine's busy cores over the same windows say how much the emulator and
wrk took beside the server (on a small machine they share its cores).

    .venv/bin/python -m bench --only concurrency
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from bench._support import BENCH, ROOT, cpu_seconds, firestore_emulator, median, progress, webhook_process
from bench.webhook_load import _settled_counts, prime, run_wrk, seed_channels
from channelkit.testing.harness import FunctionsFrameworkProcess

LEVELS = (8, 16, 80)
SOURCE = ROOT / "functions" / "webhook.py"
_TICK = os.sysconf("SC_CLK_TCK")


def group_peak_rss_mb(pgid: int) -> float:
    """The largest peak resident set (VmHWM) among the group's processes, in MB."""
    peak = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, IndexError, ValueError):
            continue
    return peak / 1024


def group_threads_setting(pgid: int) -> int | None:
    """``THREADS`` as the group's processes actually got it (what functions-framework's gunicorn
    reads for its thread count), when they all agree."""
    seen = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            pairs = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        seen.add(next((p[8:].decode() for p in pairs if p.startswith(b"THREADS=")), None))
    return int(seen.pop()) if len(seen) == 1 and None not in seen else None


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat: not idle or iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICK


def run(
    *,
    seconds: float = 8,
    rounds: int = 3,
    channels: int = 100,
    warmup: float = 2,
    levels: tuple[int, ...] = LEVELS,
) -> dict:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="channelkit-concurrency-"))
    tag = uuid.uuid4().hex[:6]
    prefixes = {c: f"conc{c}-{tag}" for c in levels}
    samples: dict[int, list[dict]] = {c: [] for c in levels}
    servers: dict[int, FunctionsFrameworkProcess] = {}
    with firestore_emulator():
        progress("concurrency: seeding channels ...")
        for c in levels:
            seed_channels(prefixes[c], channels)
        try:
            for c in levels:
                env = {
                    "PYTHONPATH": os.pathsep.join([str(BENCH / "opcount"), str(BENCH / "baselines")]),
                    "BENCH_OPCOUNT_FILE": str(work / f"c{c}.ops.json"),
                    "CHANNELKIT_HANDLER": "noop_handler:handle",
                    "WORKERS": "1",
                    "THREADS": str(c),
                }
                servers[c] = webhook_process(SOURCE, env, work / f"c{c}.log").start()
            for server in servers.values():
                server.wait_ready()
            run_id = 1
            for c in levels:
                progress(f"concurrency: priming and warming {c} ...")
                prime(servers[c].url, prefixes[c], channels, run_id * 10**10)
                run_wrk(servers[c].url, prefixes[c], (run_id + 1) * 10**10, warmup, c, channels)
                run_id += 2
            for round_no in range(rounds):
                shift = round_no % len(levels)
                for c in levels[shift:] + levels[:shift]:
                    progress(f"concurrency: round {round_no + 1}/{rounds}: {c} ({seconds:g} s)")
                    server = servers[c]
                    assert server.process is not None
                    path = work / f"c{c}.ops.json"
                    before = _settled_counts(path)
                    cpu0, busy0, wall0 = (
                        cpu_seconds(server.process.pid),
                        machine_busy_seconds(),
                        time.monotonic(),
                    )
                    sample = run_wrk(server.url, prefixes[c], run_id * 10**10, seconds, c, channels)
                    run_id += 1
                    after = _settled_counts(path)  # the requests still in flight finish first
                    cpu1, busy1, wall1 = (
                        cpu_seconds(server.process.pid),
                        machine_busy_seconds(),
                        time.monotonic(),
                    )
                    sample["served"] = after.get("requests", 0) - before.get("requests", 0)
                    sample["cpu_s"] = cpu1 - cpu0
                    sample["wall_s"] = wall1 - wall0
                    sample["machine_busy_s"] = busy1 - busy0
                    samples[c].append(sample)
            pgids = {c: servers[c].process.pid for c in levels if servers[c].process}
            peak_rss = {c: group_peak_rss_mb(pgid) for c, pgid in pgids.items()}
            threads = {c: group_threads_setting(pgid) for c, pgid in pgids.items()}
        finally:
            for server in servers.values():
                server.stop()
    shutil.rmtree(work, ignore_errors=True)
    summary = {}
    for c in levels:
        runs = samples[c]
        served = sum(s["served"] for s in runs)
        cpu = sum(s["cpu_s"] for s in runs)
        wall = sum(s["wall_s"] for s in runs)
        cpu_ms = cpu * 1000 / served if served else None
        summary[str(c)] = {
            "concurrency": c,
            "threads": threads.get(c),  # read back from the server's processes
            "connections": c,
            "rps": median([s["rps"] for s in runs]),
            "p50_ms": median([s["p50_us"] / 1000 for s in runs]),
            "p99_ms": median([s["p99_us"] / 1000 for s in runs]),
            "served": served,
            "cpu_ms_per_notification": cpu_ms,
            # What one vCPU could serve if the server were the only thing on it.
            "per_vcpu_ceiling_rps": 1000 / cpu_ms if cpu_ms else None,
            "server_cores": cpu / wall if wall else None,
            "machine_busy_cores": sum(s["machine_busy_s"] for s in runs) / wall if wall else None,
            "peak_rss_mb": peak_rss.get(c),
            "non_2xx": sum(s["status"] for s in runs),
            "socket_errors": sum(s["errors"] for s in runs),
        }
    base = str(levels[0])

    def paired(level: int, key: str) -> float | None:
        pairs = zip(samples[level], samples[levels[0]], strict=True)
        return median([x[key] / y[key] for x, y in pairs if y[key]])

    ratios = {
        f"{c}_vs_{base}": {"throughput": paired(c, "rps"), "p99": paired(c, "p99_us")} for c in levels[1:]
    }
    return {
        "settings": {
            "seconds": seconds,
            "rounds": rounds,
            "channels": channels,
            "levels": list(levels),
            "cores": os.cpu_count(),
            "server": "functions-framework (gunicorn, 1 worker, THREADS = concurrency)",
        },
        "levels": summary,
        "ratios": ratios,
    }


def table_rows(result: dict) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Rows for ``python -m bench``'s table: (measure, channelkit, baseline, ratio, target, met)."""
    levels = result["levels"]
    keys = list(levels)
    base = levels[keys[0]]
    out = []
    for key in keys:
        lv = levels[key]
        cpu = lv["cpu_ms_per_notification"]
        ratio = result["ratios"].get(f"{key}_vs_{keys[0]}")
        out.append(
            (
                f"webhook per instance, concurrency {key} (throughput, p99)",
                f"{lv['rps']:.0f}/s, p99 {lv['p99_ms']:.0f} ms",
                ""
                if key == keys[0]
                else f"concurrency {keys[0]}: {base['rps']:.0f}/s, p99 {base['p99_ms']:.0f} ms",
                "" if ratio is None else f"{ratio['throughput']:.2f}x / p99 {ratio['p99']:.2f}x",
                "(context)",
                None,
            )
        )
        out.append(
            (
                f"webhook CPU per notification, concurrency {key}",
                "n/a" if cpu is None else f"{cpu:.2f} ms ({lv['per_vcpu_ceiling_rps']:.0f}/s per vCPU)",
                f"server {lv['server_cores']:.2f} cores, machine {lv['machine_busy_cores']:.2f}",
                "",
                "(context)",
                None,
            )
        )
    return out


def markdown(result: dict) -> list[str]:
    s = result["settings"]
    lines = [
        "",
        f"Concurrency: one server per level ({s['server']}), wrk with as many connections as the "
        f"concurrency, {s['rounds']} interleaved rounds of {s['seconds']:g} s over {s['channels']} "
        f"channels each, one Firestore emulator, {s['cores']} cores shared by all; medians of the rounds. "
        "CPU per notification: the server's process group over the measured windows.",
        "",
        "| concurrency | notifications/s | p50 ms | p99 ms | CPU ms/notification | per vCPU ceiling /s "
        "| server cores | machine busy cores | peak RSS MB | non-2xx |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in result["levels"].values():
        cpu, ceiling = lv["cpu_ms_per_notification"], lv["per_vcpu_ceiling_rps"]
        lines.append(
            f"| {lv['concurrency']} | {lv['rps']:.0f} | {lv['p50_ms']:.1f} | {lv['p99_ms']:.1f} | "
            f"{'' if cpu is None else f'{cpu:.2f}'} | "
            f"{'' if ceiling is None else f'{ceiling:.0f}'} | "
            f"{lv['server_cores']:.2f} | {lv['machine_busy_cores']:.2f} | {lv['peak_rss_mb']:.0f} | "
            f"{lv['non_2xx']} |"
        )
    return lines


def problems(result: dict) -> list[str]:
    return [
        f"concurrency {key}: {lv['non_2xx']} non-2xx answers, {lv['socket_errors']} socket errors"
        for key, lv in result["levels"].items()
        if lv["non_2xx"] or lv["socket_errors"]
    ]


def main(argv=None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(run(seconds=args.seconds, rounds=args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
