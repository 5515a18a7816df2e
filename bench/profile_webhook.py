"""Where a notification's Python time goes, channelkit's webhook against the claim floor (c).

Each target is served as in ``python -m bench`` (functions-framework, gunicorn,
one worker, the same Firestore emulator and channels) and loaded by wrk while
py-spy samples the worker, recording only the thread that holds the GIL: a
sample is Python running. Time per notification = samples / rate / requests
served. Each sample's innermost frame is sorted into a layer by the file it
belongs to, so the table says which layer spends the time.

Before sampling, both servers are loaded in interleaved unsampled windows
(``--cpu-rounds``), and the CPU each server's processes spent (utime + stime of
its process group: Python, gRPC's own threads, the kernel on its behalf) is
divided by the notifications it served: py-spy's overhead is not in that figure.

    .venv/bin/python -m bench.profile_webhook [--seconds 10] [--rate 997] [--top 25] [--cpu-rounds 3]

Needs ``wrk`` and ``py-spy`` (``pip install py-spy``; not a runtime dependency).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench._support import (
    BENCH,
    cpu_seconds,
    firestore_emulator,
    median,
    progress,
    progress_done,
    webhook_process,
)
from bench.webhook_load import TARGETS, _settled_counts, prime, run_wrk, seed_channels

#: (layer, substring of the frame's file): the first match names the layer of a sample.
LAYERS = (
    ("channelkit: functions/webhook.py", "functions/webhook.py"),
    ("channelkit: claims + store", "channelkit/store/"),
    ("channelkit: logs", "channelkit/logs.py"),
    ("channelkit: receive, judge, parse, deliver", "channelkit/"),
    ("floor: its handler", "claim_floor.py"),
    ("floor: its handler", "_firestore.py"),
    ("bench: op counter", "sitecustomize.py"),
    ("firestore client", "firestore_v1/"),
    ("firestore client", "cloud/_helpers"),
    ("api_core: retry, timeout, errors", "api_core/"),
    ("protobuf / proto-plus", "proto/"),
    ("protobuf / proto-plus", "protobuf/"),
    ("grpc (python side)", "grpc/"),
    ("logging + json", "logging/"),
    ("logging + json", "json/"),
    ("werkzeug / flask / functions-framework", "werkzeug/"),
    ("werkzeug / flask / functions-framework", "flask/"),
    ("werkzeug / flask / functions-framework", "functions_framework/"),
    ("gunicorn", "gunicorn/"),
)


def layer_of(frame: str) -> str:
    for name, needle in LAYERS:
        if needle in frame:
            return name
    return "stdlib and other"


def layer_of_stack(frames: list[str]) -> str:
    """The layer of the innermost frame that is not plain stdlib: who spent the time.

    py-spy's first frame names the process (``process 123:"... --source=functions/webhook.py"``):
    it is no code of any layer, so a sample with nothing else but stdlib is "stdlib and other".
    """
    for frame in reversed(frames):
        if frame.startswith("process "):
            continue
        layer = layer_of(frame)
        if layer != "stdlib and other":
            return layer
    return "stdlib and other"


def parse_raw(path: Path) -> tuple[collections.Counter, collections.Counter, int]:
    """Samples per layer and per innermost function, from py-spy's raw (collapsed) output."""
    layers: collections.Counter = collections.Counter()
    functions: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        layers[layer_of_stack(frames)] += int(count_text)
        functions[frames[-1]] += int(count_text)
        total += int(count_text)
    return layers, functions, total


def _start(name: str, channels: int, work: Path):
    """Target ``name`` served as in ``python -m bench``, seeded, primed and warm: (server, prefix)."""
    source, _ = TARGETS[name]
    prefix = f"{name}-{uuid.uuid4().hex[:6]}"
    seed_channels(prefix, channels)
    env = {
        "PYTHONPATH": os.pathsep.join([str(BENCH / "opcount"), str(BENCH / "baselines")]),
        "BENCH_OPCOUNT_FILE": str(work / f"{name}.ops.json"),
        "CHANNELKIT_HANDLER": "noop_handler:handle",
    }
    server = webhook_process(source, env, work / f"{name}.log").start()
    server.wait_ready()
    return server, prefix


def cpu_round(
    name: str, server, prefix: str, base: int, seconds: float, connections: int, channels: int, work: Path
):
    """One window under wrk, not sampled: the server's CPU (every process and thread of it:
    Python, gRPC's own threads, the kernel on its behalf) per notification it served."""
    before = _settled_counts(work / f"{name}.ops.json")
    cpu_before = cpu_seconds(server.process.pid)
    sample = run_wrk(server.url, prefix, base, seconds, connections, channels)
    cpu_after = cpu_seconds(server.process.pid)
    after = _settled_counts(work / f"{name}.ops.json")
    served = after.get("requests", 0) - before.get("requests", 0)
    return {
        "rps": sample["rps"],
        "p99_ms": sample["p99_us"] / 1000,
        "cpu_us": (cpu_after - cpu_before) * 1e6 / served if served else float("nan"),
    }


def profile(
    name: str,
    server,
    prefix: str,
    base: int,
    seconds: float,
    rate: int,
    connections: int,
    channels: int,
    work: Path,
) -> dict:
    raw = work / f"{name}.raw"
    before = _settled_counts(work / f"{name}.ops.json")
    spy = subprocess.Popen(
        [
            shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(server.process.pid),
            "--subprocesses",
            "--gil",
            "--rate",
            str(rate),
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sample = run_wrk(server.url, prefix, base, seconds, connections, channels)
    spy.wait(timeout=seconds + 60)
    after = _settled_counts(work / f"{name}.ops.json")
    served = after.get("requests", 0) - before.get("requests", 0)
    layers, functions, total = parse_raw(raw)
    per = 1e6 / rate / served if served else float("nan")
    return {
        "rps": sample["rps"],
        "served": served,
        "us_per_notification": total * per,
        "layers": {layer: count * per for layer, count in layers.most_common()},
        "functions": [(fn, count * per) for fn, count in functions.most_common(40)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=997)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cpu-rounds", type=int, default=3, help="unsampled windows per target, interleaved")
    parser.add_argument("--cpu-seconds", type=float, default=8)
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw stacks (NAME.raw) in this directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="channelkit-profile-"))
    names = ("channelkit", "claim_floor")
    results: dict = {}
    cpu: dict = {name: [] for name in names}
    servers: dict = {}
    with firestore_emulator():
        try:
            base = 10**10
            for name in names:
                progress(f"starting {name} ...")
                servers[name] = _start(name, args.channels, work)
                server, prefix = servers[name]
                prime(server.url, prefix, args.channels, base)
                run_wrk(server.url, prefix, 2 * base, 3, args.connections, args.channels)  # warm
            run = 3
            for round_no in range(args.cpu_rounds):
                for name in names if round_no % 2 == 0 else names[::-1]:
                    progress(
                        f"CPU round {round_no + 1}/{args.cpu_rounds}: {name} ({args.cpu_seconds:g} s) ..."
                    )
                    server, prefix = servers[name]
                    cpu[name].append(
                        cpu_round(
                            name,
                            server,
                            prefix,
                            run * base,
                            args.cpu_seconds,
                            args.connections,
                            args.channels,
                            work,
                        )
                    )
                    run += 1
            for name in names:
                progress(f"profiling {name} ({args.seconds:g} s under wrk, py-spy) ...")
                server, prefix = servers[name]
                results[name] = profile(
                    name,
                    server,
                    prefix,
                    run * base,
                    args.seconds,
                    args.rate,
                    args.connections,
                    args.channels,
                    work,
                )
                run += 1
        finally:
            for server, _ in servers.values():
                server.stop()
    progress_done()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        for raw in work.glob("*.raw"):
            shutil.copy(raw, args.keep / raw.name)
    shutil.rmtree(work, ignore_errors=True)
    kit, floor = results["channelkit"], results["claim_floor"]
    print("| layer | channelkit µs/notification | floor (c) µs/notification |")
    print("|---|---|---|")
    for layer in sorted(set(kit["layers"]) | set(floor["layers"]), key=lambda k: -kit["layers"].get(k, 0)):
        print(f"| {layer} | {kit['layers'].get(layer, 0):.0f} | {floor['layers'].get(layer, 0):.0f} |")
    print(
        f"| **total (GIL held)** | **{kit['us_per_notification']:.0f}** | **{floor['us_per_notification']:.0f}** |"
    )
    print(f"| throughput under wrk and py-spy (req/s) | {kit['rps']:.0f} | {floor['rps']:.0f} |")
    if args.cpu_rounds:
        ratios = [k["cpu_us"] / f["cpu_us"] for k, f in zip(cpu["channelkit"], cpu["claim_floor"])]
        rps = [k["rps"] / f["rps"] for k, f in zip(cpu["channelkit"], cpu["claim_floor"])]
        print(
            f"| server CPU µs/notification, unsampled (median of {args.cpu_rounds}) | "
            f"{median([r['cpu_us'] for r in cpu['channelkit']]):.0f} | "
            f"{median([r['cpu_us'] for r in cpu['claim_floor']]):.0f} |"
        )
        print(
            f"\nunsampled windows, medians of per-round ratios: CPU per notification {median(ratios):.3f}x the "
            f"floor's, throughput {median(rps):.3f}x"
        )
        for name in names:
            print(f"  {name}: " + ", ".join(f"{r['rps']:.0f}/s {r['cpu_us']:.0f} µs" for r in cpu[name]))
    for name in names:
        print(f"\n{name}: top innermost functions (µs/notification)")
        for fn, us in results[name]["functions"][: args.top]:
            print(f"  {us:7.1f}  {fn}")


if __name__ == "__main__":
    main()
