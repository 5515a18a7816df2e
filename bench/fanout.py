"""Fan-out benchmark: renew-worker processes renewing published shards, 2 workers against 1.

Each round stores N due subscriptions for each side (live at the push
simulator, which adds ``latency_ms`` to every ``watch`` and ``stop``; records
as ``subscribe`` writes them), then, per side, a renewal run that renews
nothing itself (``renew_inline=0``) publishes them all in shards to a topic of
the Pub/Sub emulator; a push subscription delivers the shards through
``PushRelay`` (Cloud Run's load balancer, played here) to the side's worker
processes: ``functions/renew_worker.py`` under functions-framework
(CloudEvent, gunicorn as deployed). A side's time runs from the publish to the
last shard acknowledged. Both sides use the same emulators and simulator, in
alternating order per round, after a warm-up shard per process (imports and
clients are built on the first event); the ratio is the median of per-round
ratios.

On a 2-core machine the emulators, the simulator and the workers share the
cores, so the speed-up of a second worker is bounded by what is left: the
Firestore emulator's CPU share (its process group's CPU time over the wall
time and cores) is reported beside it. Correctness: for every subscription,
how many successors were made (renewed once, twice, or missed), from the store.

    .venv/bin/python -m bench.fanout --n 400 --rounds 2
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._support import cpu_seconds
from bench.bench_renewal import SimulatorProcess, create_channels
from channelkit.google_api import GoogleApi
from channelkit.renewal import renew_due
from channelkit.renewal.fanout import ShardPublisher
from channelkit.store import ACTIVE
from channelkit.store.firestore import FirestoreStore
from channelkit.testing.emulators import Emulator, reset_firestore
from channelkit.testing.harness import FunctionsFrameworkProcess, PushRelay, wait_until

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "functions" / "renew_worker.py"
PROJECT = "channelkit-bench"
Progress = Callable[[str], None]


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


@contextlib.contextmanager
def emulators(progress: Progress) -> Iterator[tuple[str, str, int | None]]:
    """(firestore host, pubsub host, the Firestore emulator's process group or None when external)."""
    saved = {k: os.environ.get(k) for k in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")}
    started: list[Emulator] = []
    try:
        hosts = {}
        for kind, variable in (("firestore", "FIRESTORE_EMULATOR_HOST"), ("pubsub", "PUBSUB_EMULATOR_HOST")):
            if saved[variable]:
                hosts[kind] = saved[variable]
                continue
            progress(f"starting a private {kind} emulator")
            emulator = Emulator(kind).start()
            started.append(emulator)
            os.environ[variable] = hosts[kind] = emulator.host_port
        firestore = next((e for e in started if e.kind == "firestore"), None)
        process = getattr(firestore, "_process", None)
        yield hosts["firestore"], hosts["pubsub"], process.pid if process is not None else None
    finally:
        for emulator in started:
            emulator.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def count_renewals(store: FirestoreStore, originals: list) -> dict[str, int]:
    """Per subscription: renewed once (one active successor), twice (more made), missed (none)."""
    made: collections.Counter = collections.Counter()
    active: collections.Counter = collections.Counter()
    for channel in store.list():
        if channel.renews:
            made[channel.subscription_id] += 1
            if channel.status == ACTIVE:
                active[channel.subscription_id] += 1
    counts = {"once": 0, "twice": 0, "missed": 0}
    for old in originals:
        sid = old.subscription_id
        if made[sid] == 0:
            counts["missed"] += 1
        elif made[sid] == 1 and active[sid] == 1:
            counts["once"] += 1
        else:
            counts["twice"] += 1
    return counts


class Side:
    """One configuration: ``workers`` renew_worker processes behind a relay, on a collection of its own."""

    def __init__(self, workers: int, sim_url: str, log_dir: Path, tag: str):
        self.workers = workers
        self.collection = f"fanout-{workers}w-{tag}"
        env = dict(os.environ)
        env.update(
            GOOGLE_CLOUD_PROJECT=PROJECT,
            CHANNELKIT_COLLECTION=self.collection,
            CHANNELKIT_API_ROOT=sim_url,
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
            # One shard at a time per process, as a Cloud Run instance at concurrency 1 takes one
            # event: a second worker is a second instance. Within a shard, 32 renewals at a time.
            WORKERS="1",
            THREADS="1",
        )
        env.pop("CHANNELKIT_HANDLER", None)
        env.pop("CHANNELKIT_PUBSUB_TOPIC", None)
        self.processes = [
            FunctionsFrameworkProcess(
                "renew_worker",
                SOURCE,
                env=env,
                log_path=log_dir / f"worker-{workers}w-{i}.log",
                cwd=ROOT,
                signature_type="cloudevent",
            )
            for i in range(workers)
        ]
        self.relay = PushRelay([p.url for p in self.processes])

    def __enter__(self) -> Side:
        for process in self.processes:
            process.start()
        for process in self.processes:
            process.wait_ready()
        self.relay.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.relay.stop()
        for process in self.processes:
            process.stop()


def measure(
    side: Side,
    n: int,
    shard_size: int,
    latency: float,
    sim: SimulatorProcess,
    fs_pgid: int | None,
    progress: Progress,
) -> dict:
    """Store n due subscriptions, publish them all, wait for every shard; the figures."""
    from google.cloud import pubsub_v1

    store = FirestoreStore(project=PROJECT, collection=side.collection)
    try:
        sim.set_latency(0)
        originals = create_channels(
            store, GoogleApi(root=sim.url), n, side.collection, progress, with_subscriptions=True
        )
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        suffix = uuid.uuid4().hex[:8]
        topic = publisher.topic_path(PROJECT, f"renew-{suffix}")
        publisher.create_topic(name=topic, timeout=30)
        subscriber.create_subscription(
            name=subscriber.subscription_path(PROJECT, f"renew-worker-{suffix}"),
            topic=topic,
            push_config={"push_endpoint": side.relay.url},
            ack_deadline_seconds=600,
            timeout=30,
        )
        subscriber.close()
        sim.set_latency(latency)
        delivered_before = sum(side.relay.delivered.values())
        shards = -(-n // shard_size)
        cpu_before = cpu_seconds(fs_pgid) if fs_pgid else None
        busy_before, total_before = machine_cpu()
        started = time.perf_counter()
        summary = renew_due(
            store=store,
            google=GoogleApi(root=sim.url),
            publisher=ShardPublisher(topic, publisher=publisher),
            renew_inline=0,
            shard_size=shard_size,
        ).to_json()
        wait_until(
            lambda: sum(side.relay.delivered.values()) - delivered_before >= shards,
            1800,
            0.05,
            f"{shards} shards acknowledged",
        )
        seconds = time.perf_counter() - started
        busy_after, total_after = machine_cpu()
        cpu = (cpu_seconds(fs_pgid) - cpu_before) if fs_pgid and cpu_before is not None else None
        sim.set_latency(0)
        counts = count_renewals(store, originals)
    finally:
        store.close()
    cores = os.cpu_count() or 1
    return {
        "workers": side.workers,
        "n": n,
        "published": summary["published"],
        "seconds": round(seconds, 3),
        "renewals_per_second": round(n / seconds, 1),
        "firestore_emulator_cpu_share": None if cpu is None else round(cpu / (seconds * cores), 3),
        # Everything on the machine (other jobs too): near 1.0, a second worker has no core left.
        "machine_cpu_busy": round((busy_after - busy_before) / max(1, total_after - total_before), 3),
        "failed_deliveries": sum(side.relay.failed.values()),
        **counts,
    }


def run(
    n: int = 400,
    *,
    rounds: int = 2,
    shard_size: int = 50,
    latency_ms: float = 20,
    progress: Progress | None = None,
) -> dict:
    """``rounds`` of (1 worker, 2 workers) in alternating order, ``n`` subscriptions each."""
    progress = progress or (lambda message: None)
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"channelkit-bench-fanout-{uuid.uuid4().hex[:6]}"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[int, list[dict]] = {1: [], 2: []}
    with emulators(progress) as (fs_host, _ps_host, fs_pgid), SimulatorProcess() as sim:
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", PROJECT)
        reset_firestore(fs_host, PROJECT)
        tag = uuid.uuid4().hex[:6]
        with Side(1, sim.url, log_dir, tag) as one, Side(2, sim.url, log_dir, tag) as two:
            for side in (one, two):  # warm every process (imports, clients) outside the measurement
                progress(f"fanout: warming {side.workers} worker(s)")
                measure(side, 2 * side.workers, 1, latency_ms / 1000, sim, fs_pgid, progress)
            for r in range(rounds):
                order = (one, two) if r % 2 == 0 else (two, one)
                for side in order:
                    progress(f"fanout round {r + 1}/{rounds}: {side.workers} worker(s), {n} subscriptions")
                    results[side.workers].append(
                        measure(side, n, shard_size, latency_ms / 1000, sim, fs_pgid, progress)
                    )
        with contextlib.suppress(Exception):
            reset_firestore(fs_host, PROJECT)
    ratios = [
        b["renewals_per_second"] / a["renewals_per_second"]
        for a, b in zip(results[1], results[2], strict=True)
    ]
    one_rate = statistics.median(r["renewals_per_second"] for r in results[1])
    two_rate = statistics.median(r["renewals_per_second"] for r in results[2])
    shares = [r["firestore_emulator_cpu_share"] for r in results[1] + results[2]]

    def total(key: str, workers: int) -> int:
        return sum(r[key] for r in results[workers])

    return {
        "n": n,
        "rounds": rounds,
        "shard_size": shard_size,
        "latency_ms": latency_ms,
        "cores": os.cpu_count(),
        "one_worker_rate": one_rate,
        "two_workers_rate": two_rate,
        "speedup": round(statistics.median(ratios), 2),
        "firestore_emulator_cpu_share_one": statistics.median(
            r["firestore_emulator_cpu_share"] or 0 for r in results[1]
        )
        if shares[0] is not None
        else None,
        "firestore_emulator_cpu_share_two": statistics.median(
            r["firestore_emulator_cpu_share"] or 0 for r in results[2]
        )
        if shares[0] is not None
        else None,
        "machine_cpu_busy_one": statistics.median(r["machine_cpu_busy"] for r in results[1]),
        "machine_cpu_busy_two": statistics.median(r["machine_cpu_busy"] for r in results[2]),
        "renewed_once": total("once", 1) + total("once", 2),
        "renewed_twice": total("twice", 1) + total("twice", 2),
        "missed": total("missed", 1) + total("missed", 2),
        "failed_deliveries": total("failed_deliveries", 1) + total("failed_deliveries", 2),
        "rounds_detail": results,
        "all_renewed_once": total("twice", 1) + total("twice", 2) + total("missed", 1) + total("missed", 2)
        == 0,
    }


def table(result: dict) -> str:
    share = result["firestore_emulator_cpu_share_one"]
    rows = [
        (
            "subscriptions per side and round",
            f"{result['n']:,} ({result['rounds']} rounds, shards of {result['shard_size']})",
        ),
        ("simulator latency per watch/stop", f"{result['latency_ms']:g} ms"),
        ("1 worker", f"{result['one_worker_rate']:.1f} renewals/s"),
        ("2 workers", f"{result['two_workers_rate']:.1f} renewals/s"),
        ("speed-up (median of per-round ratios)", f"{result['speedup']:.2f}x"),
        (
            "Firestore emulator CPU share (1 / 2 workers)",
            "n/a (external emulator)"
            if share is None
            else f"{share:.0%} / {result['firestore_emulator_cpu_share_two']:.0%} of {result['cores']} cores",
        ),
        (
            "machine CPU busy (1 / 2 workers)",
            f"{result['machine_cpu_busy_one']:.0%} / {result['machine_cpu_busy_two']:.0%}",
        ),
        (
            "renewed once / twice / missed",
            f"{result['renewed_once']} / {result['renewed_twice']} / {result['missed']}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=400, help="subscriptions per side and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    began = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", file=sys.stderr, flush=True)

    result = run(
        args.n, rounds=args.rounds, shard_size=args.shard_size, latency_ms=args.latency_ms, progress=progress
    )
    print(table(result))
    if args.json:
        print(json.dumps(result, indent=2))
    return 0 if result["all_renewed_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
