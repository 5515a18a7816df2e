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

Firestore operations are counted in this process (``bench/opcount``) over each
run, and split by where they happen: each renewal step (``RenewalStep``), the
listing of the due channels, the events left over, and the run record with the
health line (``renewal.run._report``, where the version has one); the rest (the
pending-stop and sweep queries) is the run's own. Per renewed channel are the
steps' operations divided by the channels renewed.

A subscription record (issue 12) is stored for each channel at setup, as
``subscribe`` writes it (``--subscriptions stored``, the steady state), or not
(``missing``: the first run after an upgrade, which creates them as it renews).
A version without subscription records ignores the option.

    .venv/bin/python -m bench.bench_renewal            # 1,000 channels
    .venv/bin/python -m bench.bench_renewal --n 10000  # the full run

Another version's library is measured side by side by ``--before REF``: the
same benchmark (same sizes, same emulator, first) runs in a child process on
the ``lib`` of git REF (``git archive``, put first on ``PYTHONPATH``; this venv),
and the table shows both, with the ratio of renewals per second. E.g.
``python -m bench.bench_renewal --before main`` (``python -m bench --only
renewal --before main`` in the whole benchmark).

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
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._support import cpu_seconds
from bench.opcount import sitecustomize as opcount
from channelkit import config
from channelkit.channel import Channel, new_token
from channelkit.google_api import GoogleApi
from channelkit.renewal import renew_due, renewer, steps
from channelkit.renewal import run as run_module
from channelkit.store import ACTIVE, STOPPED
from channelkit.store.firestore import FirestoreStore
from channelkit.testing.emulators import Emulator, reset_firestore
from channelkit.testing.harness import post, stop_process_group

PROJECT = "channelkit-bench"
SERIAL_SAMPLE = 200
SETUP_WORKERS = 32
ADDRESS = "https://bench.invalid/webhook"  # not on this machine: the simulator sends nothing
HOUR_MS = 3_600_000
LIFETIME_MS = 24 * HOUR_MS
#: Scope labels of the operations a run does outside the renewal steps.
DUE_LISTING = "due listing"
LEFTOVER_EVENTS = "events left over"
RUN_REPORT = "run record + health"
STEP = "step:"

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


def subscription_writer() -> Callable[[FirestoreStore, Channel, int], None] | None:
    """What ``subscribe`` writes once a watch succeeds: the subscription record (None: no such
    record in this version of channelkit)."""
    try:
        from channelkit.subscribe import subscription_for
    except ImportError:
        return None

    def write(store: FirestoreStore, channel: Channel, now_ms: int) -> None:
        store.create_subscription(subscription_for(channel, now_ms))

    return write


def create_channels(
    store: FirestoreStore,
    google: GoogleApi,
    count: int,
    label: str,
    progress: Progress,
    *,
    with_subscriptions: bool = False,
) -> list[Channel]:
    """``count`` subscriptions: live at the simulator (one watch each), stored ``active``, due;
    with their subscription records if ``with_subscriptions`` and this version has them."""
    now_ms = int(time.time() * 1000)
    # Watched a day ago (Drive's longest files.watch) with an hour left: due, and each successor
    # asks for a day again. (Channels of an hour would put every successor inside
    # CHANNELKIT_EXPIRING_WARN, and the run's health check would read them all as expiring.)
    created_at = datetime.datetime.fromtimestamp((now_ms + HOUR_MS - LIFETIME_MS) / 1000, tz=datetime.UTC)
    done = [0]
    lock = threading.Lock()
    write_subscription = subscription_writer() if with_subscriptions else None

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
        if write_subscription is not None:
            write_subscription(store, channel, now_ms)
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


# --- counting a run's Firestore operations --------------------------------------------


def _scoped(function: Callable, label: str) -> Callable:
    def counted(*args: Any, **kwargs: Any) -> Any:
        with opcount.scope(label):
            return function(*args, **kwargs)

    return counted


@contextlib.contextmanager
def counted_by_part() -> Iterator[None]:
    """Count each renewal step, the due listing, the leftover events and the run report apart.

    Wraps, in this process only and for the block's duration, what this version of
    channelkit has of: ``Renewer.due``, each step's method (``Renewer._<step>``, as
    ``renew_channel`` finds it), and ``renewal.run``'s ``deliver_pending`` and ``_report``.
    """
    opcount.install()
    patches: list[tuple[Any, str, str]] = [(renewer.Renewer, "due", DUE_LISTING)]
    for step in steps.RenewalStep:
        patches.append((renewer.Renewer, "_" + step.name.lower(), STEP + step.name))
    patches += [(run_module, "deliver_pending", LEFTOVER_EVENTS), (run_module, "_report", RUN_REPORT)]
    saved = []
    for owner, name, label in patches:
        original = owner.__dict__.get(name)
        if original is not None:
            saved.append((owner, name, original))
            setattr(owner, name, _scoped(original, label))
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _difference(after: dict, before: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _kinds(ops: dict) -> dict:
    """Documents read and written, commits, queries, count aggregations, every RPC."""
    rpcs = sum(v for k, v in ops.items() if k.startswith("rpc_"))
    return {
        "reads": ops.get("reads", 0),
        "writes": ops.get("writes", 0),
        "commits": ops.get("rpc_commit", 0),
        "queries": ops.get("rpc_run_query", 0),
        "counts": ops.get("rpc_run_aggregation_query", 0),
        "rpcs": rpcs,
    }


def operations(before: dict, after: dict, renewed: int) -> dict:
    """What a run did between two ``opcount.snapshot()``s, by part, and per renewed channel."""
    total = _difference(after["total"], before["total"])
    parts = {
        label: _difference(ops, before["scopes"].get(label, {})) for label, ops in after["scopes"].items()
    }
    parts = {label: ops for label, ops in parts.items() if ops}
    step_ops: collections.Counter = collections.Counter()
    for label, ops in parts.items():
        if label.startswith(STEP):
            step_ops.update(ops)
    outside = collections.Counter(total)
    for ops in parts.values():
        outside.subtract(ops)
    fixed = {k: v for k, v in outside.items() if v}

    def per(ops: dict) -> dict:
        return {k: round(v / renewed, 3) if renewed else None for k, v in _kinds(ops).items()}

    return {
        "renewed": renewed,
        "total": _kinds(total),
        "per_channel": per(step_ops),
        "per_channel_by_step": {
            label[len(STEP) :]: per(ops) for label, ops in parts.items() if label.startswith(STEP)
        },
        "due_listing": _kinds(parts.get(DUE_LISTING, {})),
        "events_left_over": _kinds(parts.get(LEFTOVER_EVENTS, {})),
        "run_report": _kinds(parts.get(RUN_REPORT, {})),
        "run_other": _kinds(fixed),
        "whole_run_per_channel": per(total),
        "raw": total,
    }


# --- where the CPU goes ---------------------------------------------------------------


def _session_of(marker: str) -> int | None:
    """The session of the process whose command line holds ``marker`` (the emulator's gcloud)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if marker.encode() not in cmdline.read():
                    continue
            return os.getsid(int(entry))
        except OSError:
            continue
    return None


def cpu_snapshot(sim: SimulatorProcess, host: str) -> dict[str, float]:
    """CPU seconds so far of this process (all its threads), the simulator and the emulator."""
    times = os.times()
    found = {"channelkit (this process)": times.user + times.system}
    if sim.process is not None:
        found["simulator"] = cpu_seconds(sim.process.pid, of="session")
    emulator = _session_of(f"--host-port={host}")
    if emulator is not None:
        found["Firestore emulator"] = cpu_seconds(emulator, of="session")
    return found


def cpu_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict:
    """CPU seconds each part used over a run, and its share of the machine (wall x cores)."""
    used = {k: round(after[k] - before[k], 2) for k in after if k in before}
    capacity = seconds * (os.cpu_count() or 1)
    return {
        "seconds": used,
        "share_of_machine": {k: round(v / capacity, 3) for k, v in used.items()},
        "others": round(max(0.0, 1 - sum(used.values()) / capacity), 3),
        "load_average": round(os.getloadavg()[0], 1),
    }


# --- one measured run ----------------------------------------------------------------


def measure(
    store: FirestoreStore,
    sim: SimulatorProcess,
    host: str,
    concurrency: int | None,
    progress: Progress,
    label: str,
    total: int,
) -> tuple[float, Any, collections.Counter, dict, dict]:
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
    google = GoogleApi(root=sim.url)
    before = opcount.snapshot()
    cpu_before = cpu_snapshot(sim, host)
    started = time.perf_counter()
    try:
        summary = renew_due(
            store=store, google=google, dispatcher=dispatcher, concurrency=concurrency, progress=report
        )
        seconds = time.perf_counter() - started
    finally:
        store.close()
    cpu = cpu_used(cpu_before, cpu_snapshot(sim, host), seconds)
    renewed = summary.to_json().get("renewed", 0)
    return seconds, summary, renewed_calls, operations(before, opcount.snapshot(), renewed), cpu


def run_before(ref: str, options: list[str], progress: Progress) -> dict:
    """This benchmark on the ``lib`` of git ``ref``, in a child process; its result (see ``run``)."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", ref, "lib"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        output = os.path.join(tmp, "result.json")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(tmp, "lib"), str(root)])}
        progress(f"before: the same run on the library of {ref} (a child process)")
        child = subprocess.run(
            [sys.executable, "-m", "bench.bench_renewal", *options, "--result-file", output],
            env=env,
            cwd=root,
            stdout=subprocess.DEVNULL,
            check=False,
        )
        if not os.path.exists(output):
            raise RuntimeError(f"the benchmark on {ref} failed (exit {child.returncode})")
        with open(output) as answer:
            result = json.load(answer)
    result["ref"] = ref
    return result


def run(
    n: int = 1000,
    *,
    latency_ms: float = 20,
    progress: Progress | None = None,
    serial_sample: int = SERIAL_SAMPLE,
    concurrency: int | None = None,
    subscriptions: str = "stored",
    before: str | None = None,
) -> dict:
    """Renew ``n`` due channels with the default parallelism and ``serial_sample`` with 1.

    ``subscriptions``: ``stored`` (a record per subscription, as ``subscribe``
    writes it) or ``missing`` (none yet: the renewal creates them). Returns the
    figures as a dict (see the module docstring); ``all_renewed`` is True only
    if both runs verified clean. ``before``: a git ref whose library runs the
    same first (``run_before``); its result is under ``"before"``.
    """
    if subscriptions not in ("stored", "missing"):
        raise ValueError(f"subscriptions: 'stored' or 'missing', not {subscriptions!r}")
    progress = progress or (lambda message: None)
    sample = min(serial_sample, n)
    workers = config.renew_concurrency(concurrency)
    with_records = subscriptions == "stored"
    records = "none in this version" if subscription_writer() is None else subscriptions
    with firestore_emulator(progress) as host:
        earlier = None
        if before is not None:
            options = ["--n", str(n), "--latency-ms", str(latency_ms), "--serial-sample", str(serial_sample)]
            options += ["--subscriptions", subscriptions, "--concurrency", str(workers)]
            earlier = run_before(before, options, progress)
        result = _run_here(n, host, latency_ms, progress, sample, workers, with_records, records)
    if earlier is not None:
        result["before"] = earlier
        result["speedup_vs_before"] = round(result["renewals_per_second"] / earlier["renewals_per_second"], 2)
        result["serial_speedup_vs_before"] = round(result["serial_rate"] / earlier["serial_rate"], 2)
    return result


def _run_here(
    n: int,
    host: str,
    latency_ms: float,
    progress: Progress,
    sample: int,
    workers: int,
    with_records: bool,
    records: str,
) -> dict:
    """The measured runs in this process, on the emulator at ``host`` (see ``run``)."""
    with SimulatorProcess() as sim, counted_by_part():
        reset_firestore(host, PROJECT)
        tag = uuid.uuid4().hex[:8]
        serial_store = FirestoreStore(project=PROJECT, collection=f"bench-serial-{tag}")
        parallel_store = FirestoreStore(project=PROJECT, collection=f"bench-parallel-{tag}")
        try:
            setup_google = GoogleApi(root=sim.url)
            progress(f"setup: {sample} + {n} channels (watch at the simulator, store active)")
            serial_channels = create_channels(
                serial_store, setup_google, sample, "serial", progress, with_subscriptions=with_records
            )
            parallel_channels = create_channels(
                parallel_store, setup_google, n, "parallel", progress, with_subscriptions=with_records
            )
            sim.set_latency(latency_ms / 1000)

            progress(f"baseline: {sample} renewals with parallelism 1")
            serial_seconds, serial_summary, serial_calls, serial_ops, _ = measure(
                serial_store, sim, host, 1, progress, "parallelism 1", sample
            )
            progress(f"channelkit: {n} renewals with parallelism {workers}")
            seconds, summary, calls, ops, cpu = measure(
                parallel_store, sim, host, workers, progress, f"parallelism {workers}", n
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
        "subscription_records": records,
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
        "operations": ops,
        "serial_operations": serial_ops,
        "cpu": cpu,
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
        ("10,000 renewals at this rate", f"{result['projected_seconds_10000']:.0f} s  (target < 60 s)"),
        ("every channel renewed exactly once", "yes" if result["all_renewed"] else "NO"),
        ("subscription records at the start", result["subscription_records"]),
    ]
    ops = result["operations"]

    def kinds(k: dict) -> str:
        return (
            f"{k['reads']:g} reads, {k['writes']:g} writes, {k['commits']:g} commits, "
            f"{k['queries']:g} queries, {k['counts']:g} counts, {k['rpcs']:g} RPCs"
        )

    rows += [
        ("Firestore per renewed channel", kinds(ops["per_channel"])),
        *((f"  {step.lower()}", kinds(k)) for step, k in ops["per_channel_by_step"].items()),
        ("per run: due listing", kinds(ops["due_listing"])),
        ("per run: events left over", kinds(ops["events_left_over"])),
        ("per run: run record + health", kinds(ops["run_report"])),
        ("per run: other (stops, sweep)", kinds(ops["run_other"])),
        ("whole run / channels renewed", kinds(ops["whole_run_per_channel"])),
    ]
    cpu = result.get("cpu")
    if cpu:
        parts = ", ".join(f"{k} {v:.0%}" for k, v in cpu["share_of_machine"].items())
        rows.append(
            (
                "CPU while renewing (share of the machine)",
                f"{parts}; idle or other processes {cpu['others']:.0%} (load average {cpu['load_average']:g})",
            )
        )
    earlier = result.get("before")
    if earlier:
        ref = earlier["ref"]
        rows += [
            (
                f"before ({ref}), parallelism {earlier['concurrency']}",
                f"{earlier['seconds']:.2f} s  ({earlier['renewals_per_second']:.1f}/s); "
                f"now {result['speedup_vs_before']:.2f}x that",
            ),
            (
                f"before ({ref}), parallelism 1",
                f"{earlier['serial_rate']:.2f}/s; now {result['serial_speedup_vs_before']:.2f}x that",
            ),
            (f"before ({ref}): speedup", f"{earlier['speedup']:.1f}x"),
            (f"before ({ref}): Firestore per renewed channel", kinds(earlier["operations"]["per_channel"])),
            *(
                (f"  {step.lower()}", kinds(k))
                for step, k in earlier["operations"]["per_channel_by_step"].items()
            ),
            (f"before ({ref}): verified", "yes" if earlier["all_renewed"] else "NO"),
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
    parser.add_argument(
        "--subscriptions",
        choices=("stored", "missing"),
        default="stored",
        help="subscription records at the start: stored (as subscribe writes them) or missing",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    parser.add_argument(
        "--before", metavar="REF", help="run the same first on the library of git REF (e.g. main)"
    )
    parser.add_argument("--result-file", help="write the result as JSON to this file")
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
        subscriptions=args.subscriptions,
        before=args.before,
    )
    print(table(result))
    if args.json:
        print(json.dumps(result, indent=2))
    if args.result_file:
        with open(args.result_file, "w") as out:
            json.dump(result, out)
    ok = result["all_renewed"] and result.get("before", {}).get("all_renewed", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
