"""Webhook throughput and latency under concurrent load, against three baselines.

Every function is served the same way (functions-framework, gunicorn, one
worker) against the same Firestore emulator and identical channel documents,
and loaded by wrk with valid notifications, each with its own message number.
Rounds interleave the targets (each round in a rotated order), so drift on a
shared machine hits all of them alike; ratios are taken per round and their
median reported. Firestore operations are counted inside each server process
(``bench/opcount``) over the measured windows only.

    .venv/bin/python -m bench.webhook_load [--seconds 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench._support import BENCH, ROOT, firestore_emulator, median, progress, progress_done, webhook_process
from channelkit.channel import Channel
from channelkit.testing.harness import FunctionsFrameworkProcess, notification_headers, post

#: name -> (source, label in the table)
TARGETS = {
    "channelkit": (ROOT / "functions" / "webhook.py", "channelkit webhook"),
    "bare": (BENCH / "baselines" / "bare.py", "(a) bare function, returns 200"),
    "user_dedupe": (BENCH / "baselines" / "user_dedupe.py", "(b) user handler + dedupe transaction"),
    "claim_floor": (BENCH / "baselines" / "claim_floor.py", "(c) claim floor: create + mark done"),
    "user_plain": (BENCH / "baselines" / "user_plain.py", "(d) user handler, no dedupe"),
}
TOKEN = "bench-token-" + "t" * 32


def bench_channel(prefix: str, i: int) -> Channel:
    """Channel ``i`` of those ``seed_channels(prefix, ...)`` stores (load.lua sends the same fields)."""
    return load_channel(f"{prefix}-{i:03d}", TOKEN, i, f"sub-{prefix}-{i}")


def load_channel(channel_id: str, token: str, i: int, subscription_id: str) -> Channel:
    """An active Drive file channel whose resource fields are the ones load.lua sends for channel ``i``."""
    return Channel(
        "web_hook",
        channel_id,
        token,
        "https://example.com/webhook",
        expiration=int(time.time() * 1000) + 30 * 24 * 3600 * 1000,
        resource_id=f"res-{i}",
        resource_uri=f"https://www.googleapis.com/drive/v3/files/F{i}?alt=json",
        status="active",
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": f"F{i}"},
        subscription_id=subscription_id,
    )


def seed_channels(prefix: str, count: int) -> None:
    """``count`` active channels ``prefix-000``..., stored as channelkit stores them, each with
    its subscription record as ``subscribe`` writes it (where this version has them)."""
    from channelkit.store import open_store

    try:
        from channelkit.subscribe import subscription_for
    except ImportError:  # a version before subscription records
        subscription_for = None
    store = open_store("firestore", timeout=30)
    try:
        for i in range(count):
            channel = bench_channel(prefix, i)
            store.create(channel)
            if subscription_for is not None:
                store.create_subscription(subscription_for(channel, int(time.time() * 1000)))
    finally:
        store.close()


def run_wrk(
    url: str, prefix: str, base: int, seconds: float, connections: int, channels: int, threads: int = 2
) -> dict:
    env = dict(
        os.environ, BENCH_PREFIX=prefix, BENCH_CHANNELS=str(channels), BENCH_BASE=str(base), BENCH_TOKEN=TOKEN
    )
    done = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "30s",
            "-s",
            str(BENCH / "load.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = next(l for l in done.stdout.splitlines() if l.startswith("JSON "))
    result = json.loads(line[5:])
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout"))
    result["ok"] = result["requests"] - result["status"] - result["read"]
    result["rps"] = result["ok"] / (result["duration_us"] / 1e6)
    return result


def prime(url: str, prefix: str, channels: int, base: int) -> None:
    """One notification per channel, so every server starts measured rounds warm."""
    for i in range(channels):
        headers = notification_headers(bench_channel(prefix, i), base + i, "sync")
        status, _ = post(url, headers, timeout=60)
        if status != 200:
            raise RuntimeError(f"priming {prefix}-{i:03d} answered {status}")


def _settled_counts(path: Path, timeout: float = 10.0) -> dict:
    """The counts once the server has finished the requests still in flight."""
    deadline = time.monotonic() + timeout
    last = _counts(path)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = _counts(path)
        if now == last:
            return now
        last = now
    return last


def _counts(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _per(totals: dict, key: str) -> float | None:
    served = totals.get("requests", 0)
    return totals.get(key, 0) / served if served else None


def run(
    *,
    seconds: float = 8,
    rounds: int = 5,
    connections: int = 16,
    channels: int = 100,
    warmup: float = 3,
    targets=tuple(TARGETS),
) -> dict:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="channelkit-bench-"))
    servers: dict[str, FunctionsFrameworkProcess] = {}
    samples: dict[str, list[dict]] = {name: [] for name in targets}
    tag = uuid.uuid4().hex[:6]
    prefixes = {name: f"{name}-{tag}" for name in targets}
    with firestore_emulator():
        progress("webhook: seeding channels ...")
        for name in targets:
            seed_channels(prefixes[name], channels)
        try:
            for name in targets:
                source, _ = TARGETS[name]
                env = {
                    "PYTHONPATH": os.pathsep.join([str(BENCH / "opcount"), str(BENCH / "baselines")]),
                    "BENCH_OPCOUNT_FILE": str(work / f"{name}.ops.json"),
                    "CHANNELKIT_HANDLER": "noop_handler:handle",
                }
                servers[name] = webhook_process(source, env, work / f"{name}.log").start()
            for server in servers.values():
                server.wait_ready()
            run_id = 1
            for name in targets:
                progress(f"webhook: priming {name} (one notification per channel) ...")
                prime(servers[name].url, prefixes[name], channels, run_id * 10**10)
                run_id += 1
            for name in targets:  # warm each: connections, caches, the emulator's indexes
                progress(f"webhook: warming {name} ...")
                run_wrk(servers[name].url, prefixes[name], run_id * 10**10, warmup, connections, channels)
                run_id += 1
            for round_no in range(rounds):
                order = list(targets[round_no % len(targets) :]) + list(targets[: round_no % len(targets)])
                for name in order:
                    progress(
                        f"webhook: round {round_no + 1}/{rounds}: {name} ({seconds:g} s, "
                        f"{connections} connections)"
                    )
                    path = work / f"{name}.ops.json"
                    before = _settled_counts(path)
                    sample = run_wrk(
                        servers[name].url, prefixes[name], run_id * 10**10, seconds, connections, channels
                    )
                    run_id += 1
                    after = _settled_counts(path)
                    sample["ops"] = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
                    samples[name].append(sample)
        finally:
            for server in servers.values():
                server.stop()
    shutil.rmtree(work)  # its logs and counts; kept when the run failed
    progress_done()
    summary = {}
    for name in targets:
        total_ok = sum(s["ok"] for s in samples[name])
        totals: dict[str, int] = {}
        for s in samples[name]:
            for key, value in s["ops"].items():
                totals[key] = totals.get(key, 0) + value
        summary[name] = {
            "label": TARGETS[name][1],
            "rps": median([s["rps"] for s in samples[name]]),
            "p50_ms": median([s["p50_us"] / 1000 for s in samples[name]]),
            "p99_ms": median([s["p99_us"] / 1000 for s in samples[name]]),
            "non_2xx": sum(s["status"] for s in samples[name]),
            "socket_errors": sum(s["errors"] for s in samples[name]),
            "accepted": total_ok,
            # Both counted inside the server over the same windows (wrk's own count misses
            # the requests still in flight when it stops).
            "served": totals.get("requests", 0),
            "writes_per_notification": _per(totals, "writes"),
            "reads_per_notification": _per(totals, "reads"),
            "writes_per_notification_by_collection": {
                key.split(":", 1)[1]: _per(totals, key) for key in totals if key.startswith("writes_in:")
            },
            "rpcs": totals,
        }

    def paired(a: str, b: str, key: str) -> float | None:
        if a not in samples or b not in samples:
            return None
        return median([x[key] / y[key] for x, y in zip(samples[a], samples[b]) if y[key]])

    ratios = {
        "throughput_vs_user_dedupe": paired("channelkit", "user_dedupe", "rps"),
        "throughput_vs_claim_floor": paired("channelkit", "claim_floor", "rps"),
        "p99_vs_claim_floor": paired("channelkit", "claim_floor", "p99_us"),
        "claim_floor_vs_user_plain": paired("claim_floor", "user_plain", "rps"),
        "user_dedupe_vs_user_plain": paired("user_dedupe", "user_plain", "rps"),
        "channelkit_vs_bare": paired("channelkit", "bare", "rps"),
    }
    shutil.rmtree(work, ignore_errors=True)
    return {
        "settings": {
            "seconds": seconds,
            "rounds": rounds,
            "connections": connections,
            "channels": channels,
            "server": "functions-framework (gunicorn, 1 worker, "
            f"{os.environ.get('THREADS') or (os.cpu_count() or 1) * 4} threads)",
        },
        "targets": summary,
        "ratios": ratios,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    result = run(seconds=args.seconds, rounds=args.rounds, connections=args.connections)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
