"""Renewal benchmark: the real renewal run against the same run with parallelism 1.

N channels (1,000 by default) are stored ``active`` in the Firestore emulator,
live at the push simulator and due for renewal; the simulator (a separate
process, as Google is) adds ``latency_ms`` to every ``watch`` and
``channels.stop``. ``channelkit.renewal.renew_due`` then renews them all with
its default bounded parallelism (``CHANNELKIT_RENEW_CONCURRENCY``), through
google-api-python-client pointed at the simulator (``CHANNELKIT_API_ROOT``).

The baseline is the very same run with parallelism 1. Over all N it would take
minutes, so it runs on a fixed sample (200 channels, in a collection of its own,
in the same run, same emulator, same simulator) and the two are compared per
channel: ``speedup = renewals_per_second / serial_rate``.

After each run the result is verified, on the store and at the simulator: every
subscription has exactly one ``active`` channel, its successor, created by
exactly one successful ``watch``; every original channel is ``stopped`` in the
store (no stop left pending) and stopped at the simulator; nothing else exists.

    .venv/bin/python -m bench.bench_renewal            # 1,000 channels
    .venv/bin/python -m bench.bench_renewal --n 10000  # the full run

A private Firestore emulator is started unless ``FIRESTORE_EMULATOR_HOST`` is set.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import datetime
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from channelkit import config
from channelkit.channel import Channel, new_token
from channelkit.google_api import GoogleApi
from channelkit.renewal import renew_due
from channelkit.store import ACTIVE, STOPPED
from channelkit.store.firestore import FirestoreStore
from channelkit.testing.emulators import Emulator, reset_firestore
from channelkit.testing.harness import post, stop_process_group

PROJECT = "channelkit-bench"
SERIAL_SAMPLE = 200
SETUP_WORKERS = 32
ADDRESS = "https://bench.invalid/webhook"  # not on this machine: the simulator sends nothing
HOUR_MS = 3_600_000

Progress = Callable[[str], None]


# --- the simulator, in a process of its own ------------------------------------------


class SimulatorProcess:
    """``python -m channelkit.testing.simulator`` on a free port, controlled over HTTP."""

    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.process: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> SimulatorProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "channelkit.testing.simulator",
                "--port",
                "0",
                "--latency",
                str(self.latency),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.__exit__()
            raise RuntimeError("the simulator did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None:
            stop_process_group(self.process, timeout=5)
            self.process = None

    def control(self, method: str, name: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"}
        status, answer = post(self.url + "_simulator/" + name, headers, data, method=method, timeout=120)
        if status >= 400:
            raise RuntimeError(f"the simulator's {method} {name} answered {status}: {answer[:300]!r}")
        return json.loads(answer or b"null")

    def set_latency(self, seconds: float) -> None:
        self.control("POST", "config", {"latency": seconds})

    def channels(self) -> list[dict]:
        return self.control("GET", "channels?all=1")["channels"]


@contextlib.contextmanager
def firestore_emulator(progress: Progress) -> Iterator[str]:
    """host:port of the emulator: ``FIRESTORE_EMULATOR_HOST``, or a private one started here."""
    external = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if external:
        yield external
        return
    progress("starting a private Firestore emulator")
    emulator = Emulator("firestore").start()
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host_port
    try:
        yield emulator.host_port
    finally:
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        emulator.stop()


# --- setup and verification ----------------------------------------------------------


def create_channels(
    store: FirestoreStore, google: GoogleApi, count: int, label: str, progress: Progress
) -> list[Channel]:
    """``count`` subscriptions: live at the simulator (one watch each), stored ``active``, due."""
    now_ms = int(time.time() * 1000)
    created_at = datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.UTC)
    done = [0]
    lock = threading.Lock()

    def one(i: int) -> Channel:
        channel = Channel(
            "web_hook",
            str(uuid.uuid4()),
            new_token(),
            ADDRESS,
            expiration=now_ms + HOUR_MS,  # due: within CHANNELKIT_RENEW_BEFORE (3 h)
            api="drive",
            version="v3",
            method="files.watch",
            method_params={"fileId": f"{label}-{i}"},
            subscription_id=str(uuid.uuid4()),
            status=ACTIVE,
            created_at=created_at,
        )
        channel.update(google.watch("drive", "v3", "files.watch", channel.method_params, channel.body()))
        store.create(channel)
        with lock:
            done[0] += 1
            if done[0] % 1000 == 0:
                progress(f"setup {label}: {done[0]}/{count} channels live and stored")
        return channel

    with concurrent.futures.ThreadPoolExecutor(SETUP_WORKERS) as pool:
        return list(pool.map(one, range(count)))


def verify(
    store: FirestoreStore,
    originals: list[Channel],
    sim_channels: dict[str, dict],
    renewed_calls: collections.Counter,
) -> list[str]:
    """Every subscription renewed exactly once; [] when so, else the problems found."""
    problems: list[str] = []
    stored = collections.defaultdict(list)
    for channel in store.list():
        stored[channel.subscription_id].append(channel)
    sim_by_file = collections.defaultdict(list)
    for info in sim_channels.values():
        sim_by_file[info["resource"]["params"].get("fileId")].append(info)
    if len(stored) != len(originals):
        problems.append(f"{len(stored)} subscriptions stored, {len(originals)} created")
    for old in originals:
        mine = stored.get(old.subscription_id, [])
        active = [c for c in mine if c.status == ACTIVE]
        others = [c for c in mine if c.id != old.id]
        current = next((c for c in mine if c.id == old.id), None)
        at_google = sim_by_file.get(old.method_params["fileId"], [])
        if len(active) != 1 or len(others) != 1 or active[0].id != others[0].id:
            problems.append(f"{old.subscription_id}: {len(active)} active, {len(others)} successors")
            continue
        new = active[0]
        if (
            new.renews != old.id
            or current is None
            or current.status != STOPPED
            or current.renewed_by != new.id
            or current.stop_pending
        ):
            problems.append(
                f"{old.id}: not retired to its successor ({current.status if current else 'missing'})"
            )
        live = [i["id"] for i in at_google if i["live"]]
        if live != [new.id] or len(at_google) != 2:
            problems.append(f"{old.id}: live at the simulator {live}, {len(at_google)} channels made")
        if renewed_calls[new.id] != 1:
            problems.append(f"{new.id}: renewed notification sent {renewed_calls[new.id]} times")
    return problems


# --- one measured run ----------------------------------------------------------------


def measure(
    store: FirestoreStore, root: str, concurrency: int | None, progress: Progress, label: str, total: int
) -> tuple[float, Any, collections.Counter]:
    renewed_calls: collections.Counter = collections.Counter()
    calls_lock = threading.Lock()
    step = max(1, total // 10)

    def dispatcher(notification, channel) -> None:  # the app's catch-up hook: count it
        with calls_lock:
            renewed_calls[channel.id] += 1

    def report(done: int, of: int) -> None:
        if done % step == 0 or done == of:
            progress(f"{label}: renewed {done}/{of}")

    # A fresh store and client, as a new renew function instance has: nothing
    # learned during the setup helps the run, and building them is part of it.
    store = FirestoreStore(project=PROJECT, collection=store.collection_name)
    google = GoogleApi(root=root)
    started = time.perf_counter()
    try:
        summary = renew_due(
            store=store, google=google, dispatcher=dispatcher, concurrency=concurrency, progress=report
        )
        return time.perf_counter() - started, summary, renewed_calls
    finally:
        store.close()


def run(
    n: int = 1000,
    *,
    latency_ms: float = 20,
    progress: Progress | None = None,
    serial_sample: int = SERIAL_SAMPLE,
    concurrency: int | None = None,
) -> dict:
    """Renew ``n`` due channels with the default parallelism and ``serial_sample`` with 1.

    Returns the figures as a dict (see the module docstring); ``all_renewed``
    is True only if both runs verified clean.
    """
    progress = progress or (lambda message: None)
    sample = min(serial_sample, n)
    workers = config.renew_concurrency(concurrency)
    with firestore_emulator(progress) as host, SimulatorProcess() as sim:
        reset_firestore(host, PROJECT)
        tag = uuid.uuid4().hex[:8]
        serial_store = FirestoreStore(project=PROJECT, collection=f"bench-serial-{tag}")
        parallel_store = FirestoreStore(project=PROJECT, collection=f"bench-parallel-{tag}")
        try:
            setup_google = GoogleApi(root=sim.url)
            progress(f"setup: {sample} + {n} channels (watch at the simulator, store active)")
            serial_channels = create_channels(serial_store, setup_google, sample, "serial", progress)
            parallel_channels = create_channels(parallel_store, setup_google, n, "parallel", progress)
            sim.set_latency(latency_ms / 1000)

            progress(f"baseline: {sample} renewals with parallelism 1")
            serial_seconds, serial_summary, serial_calls = measure(
                serial_store, sim.url, 1, progress, "parallelism 1", sample
            )
            progress(f"channelkit: {n} renewals with parallelism {workers}")
            seconds, summary, calls = measure(
                parallel_store, sim.url, workers, progress, f"parallelism {workers}", n
            )

            sim.set_latency(0)
            progress("verifying: store and simulator")
            sim_channels = {c["id"]: c for c in sim.channels()}
            serial_problems = verify(serial_store, serial_channels, sim_channels, serial_calls)
            problems = verify(parallel_store, parallel_channels, sim_channels, calls)
        finally:
            serial_store.close()
            parallel_store.close()
        with contextlib.suppress(Exception):
            reset_firestore(host, PROJECT)
    rate = n / seconds
    serial_rate = sample / serial_seconds
    return {
        "n": n,
        "latency_ms": latency_ms,
        "concurrency": workers,
        "seconds": round(seconds, 3),
        "renewals_per_second": round(rate, 1),
        "serial_sample": sample,
        "serial_seconds": round(serial_seconds, 3),
        "serial_rate": round(serial_rate, 2),
        "speedup": round(rate / serial_rate, 2),
        "projected_seconds_10000": round(10_000 / rate, 1),
        "summary": {k: v for k, v in summary.to_json().items() if k != "details"},
        "serial_summary": {k: v for k, v in serial_summary.to_json().items() if k != "details"},
        "problems": (serial_problems + problems)[:20],
        "all_renewed": not serial_problems and not problems,
    }


def table(result: dict) -> str:
    rows = [
        ("channels renewed", f"{result['n']:,}"),
        ("simulator latency per watch/stop", f"{result['latency_ms']:g} ms"),
        (
            f"channelkit, parallelism {result['concurrency']}",
            f"{result['seconds']:.2f} s  ({result['renewals_per_second']:.1f}/s)",
        ),
        (
            f"parallelism 1, sample of {result['serial_sample']}",
            f"{result['serial_seconds']:.2f} s  ({result['serial_rate']:.2f}/s)",
        ),
        ("speedup (per-channel rates)", f"{result['speedup']:.1f}x  (target >= 10x)"),
        ("10,000 renewals at this rate", f"{result['projected_seconds_10000']:.0f} s  (target < 120 s)"),
        ("every channel renewed exactly once", "yes" if result["all_renewed"] else "NO"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if result["serial_sample"] < result["n"]:
        lines.append(
            f"(the parallelism-1 baseline ran on a sample of {result['serial_sample']} "
            f"channels in the same run; the speedup compares per-channel rates)"
        )
    for problem in result["problems"]:
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_renewal", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="channels to renew (default 1000)")
    parser.add_argument("--latency-ms", type=float, default=20, help="simulator latency per call")
    parser.add_argument("--serial-sample", type=int, default=SERIAL_SAMPLE)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="parallelism of the measured run (default CHANNELKIT_RENEW_CONCURRENCY)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    result = run(
        args.n,
        latency_ms=args.latency_ms,
        progress=progress,
        serial_sample=args.serial_sample,
        concurrency=args.concurrency,
    )
    print(table(result))
    if args.json:
        print(json.dumps(result, indent=2))
    return 0 if result["all_renewed"] else 1


if __name__ == "__main__":
    sys.exit(main())
