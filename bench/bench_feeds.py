"""Change-feed benchmark: channelkit's sync against a hand-written ``changes.list`` loop, side by side.

The simulator runs in a process of its own (as Google is) and adds ``latency_ms``
to every API call; the store is the Firestore emulator; both sides call Drive
through google-api-python-client. Each round makes two shared drives with the
same number of changes (``changes``; pages of ``page_size``):

* **channelkit**: a ``--sync`` Drive ``changes.watch`` subscription on one,
  synced by ``channelkit.sync.sync`` with a no-op change handler: the sync
  lease taken, each page handed over and its cursor saved with the lease
  checked, the lease let go;
* **baseline**: what a careful app writes by hand on the other: ``changes.list``
  from its page token, the (no-op) handler, the next token saved to a Firestore
  document after every page (``set``, no lease, no check), until
  ``newStartPageToken``.

The two alternate, their order rotated per round; the throughput ratio is the
median of the per-round ratios (changes handed over per second).

Firestore operations are counted in this process (``bench/opcount``) per side:
writes per page of changes, and how they split (cursor saves, the lease).

Then a burst: ``burst`` changes on one subscription, each announced by its own
notification, all sent at once (16 senders) to the webhook core
(``channelkit.receive.Receiver`` syncing inline, in this process behind a local
HTTP server): how many sync passes they cost, and the Firestore writes per
notification (the notification's claim and done, and the sync's). And one at a
time: ``single`` changes each announced and synced before the next.

    .venv/bin/python -m bench.bench_feeds            # 2,000 changes x 3 rounds, a burst of 1,000
    .venv/bin/python -m bench.bench_feeds --quick

A private Firestore emulator is started unless ``FIRESTORE_EMULATOR_HOST`` is set.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bench.bench_renewal import PROJECT, SimulatorProcess, firestore_emulator
from bench.opcount import sitecustomize as opcount
from bench.reliability.common import Delivery, RetryPolicy, deliver_all
from channelkit import sync as sync_module
from channelkit.change_sink import ChangeSink
from channelkit.google_api import GoogleApi
from channelkit.inline_sync import InlineSync
from channelkit.receive import Receiver
from channelkit.store.firestore import FirestoreStore
from channelkit.subscribe import subscribe
from channelkit.testing.emulators import reset_firestore
from channelkit.testing.harness import LoopbackReceiver, judged_by, notification_headers

ADDRESS = "https://bench.invalid/webhook"  # not loopback: the simulator sends nothing, we do
LEASE = 120
CHANNELKIT, BASELINE, BURST, SINGLE = "channelkit sync", "hand-written loop", "burst", "one at a time"

Progress = Callable[[str], None]


def noop(*args: Any) -> None:
    """The app's change handler: does nothing."""


def _writes(ops: dict) -> dict:
    by = {k[len("writes_in:") :]: v for k, v in ops.items() if k.startswith("writes_in:")}
    return {"writes": ops.get("writes", 0), "reads": ops.get("reads", 0), "by_collection": by}


def _difference(after: dict, before: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


@contextlib.contextmanager
def counted(label: str) -> Iterator[dict]:
    """The Firestore operations this thread does inside the block, by kind (filled in at its end)."""
    out: dict = {}
    before = opcount.snapshot()["scopes"].get(label, {})
    with opcount.scope(label):
        yield out
    out.update(_writes(_difference(opcount.snapshot()["scopes"].get(label, {}), before)))


class Passes:
    """Counts the sync passes (``SyncResult.passes``) of every ``channelkit.sync.sync`` call meanwhile."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.passes = self.calls = 0
        self.outcomes: collections.Counter = collections.Counter()

    @contextlib.contextmanager
    def counting(self) -> Iterator[Passes]:
        real = sync_module.sync

        def sync(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            with self.lock:
                self.calls += 1
                self.passes += result.passes
                self.outcomes[result.outcome] += 1
            return result

        sync_module.sync = sync  # InlineSync imports it at each call
        try:
            yield self
        finally:
            sync_module.sync = real


def make_changes(sim: SimulatorProcess, drive_id: str, count: int) -> None:
    for i in range(count):
        sim.control("POST", "drive/create_file", {"name": f"f{i}", "driveId": drive_id})


def sync_side(store: FirestoreStore, google: GoogleApi, subscription_id: str) -> tuple[float, int, dict]:
    """channelkit: one sync of the subscription; (seconds, changes handed over, Firestore ops)."""
    with counted(CHANNELKIT) as ops:
        started = time.perf_counter()
        result = sync_module.sync(
            subscription_id, store=store, google=google, sink=ChangeSink(handler=noop), lease=LEASE
        )
        seconds = time.perf_counter() - started
    ops["pages"], ops["passes"], ops["outcome"] = result.batches, result.passes, result.outcome
    return seconds, result.items, ops


def loop_side(
    drive: Any, firestore: Any, drive_id: str, token: str, page_size: int
) -> tuple[float, int, dict]:
    """The hand-written loop: ``changes.list`` page by page, the token saved after each page."""
    cursor = firestore.collection("bench-feeds-cursors").document(drive_id)
    items = pages = 0
    with counted(BASELINE) as ops:
        started = time.perf_counter()
        while True:
            answer = (
                drive.changes()
                .list(
                    pageToken=token,
                    pageSize=page_size,
                    driveId=drive_id,
                    supportsAllDrives=True,
                    includeItemsFromAllDrives=True,
                )
                .execute()
            )
            noop(answer.get("changes", []))
            items += len(answer.get("changes", []))
            pages += 1
            token = answer.get("nextPageToken") or answer["newStartPageToken"]
            cursor.set({"pageToken": token})
            if "newStartPageToken" in answer:
                break
        seconds = time.perf_counter() - started
    ops["pages"] = pages
    return seconds, items, ops


def _subscribe(store: FirestoreStore, google: GoogleApi, drive_id: str, page_size: int, address: str) -> Any:
    return subscribe(
        "drive",
        "v3",
        "changes.watch",
        address=address,
        params={"driveId": drive_id, "supportsAllDrives": True, "pageSize": page_size},
        ttl=86_400,
        store=store,
        google=google,
        sync=True,
    )


def throughput(store, google, sim, changes: int, rounds: int, page_size: int, progress: Progress) -> dict:
    import httplib2
    from google.cloud import firestore as gcf
    from googleapiclient.discovery import build

    drive = build(
        "drive",
        "v3",
        http=httplib2.Http(timeout=60),
        static_discovery=True,
        client_options={"api_endpoint": sim.url + "drive/v3/"},
    )
    client = gcf.Client(project=PROJECT)
    tag = uuid.uuid4().hex[:6]
    plans = []
    for r in range(rounds):
        ours, theirs = f"ck-{tag}-{r}", f"base-{tag}-{r}"
        progress(f"feeds: setup round {r + 1}/{rounds}: {changes} changes on each of two drives")
        subscription = _subscribe(store, google, ours, page_size, ADDRESS).subscription_id
        start = drive.changes().getStartPageToken(driveId=theirs, supportsAllDrives=True).execute()
        make_changes(sim, ours, changes)
        make_changes(sim, theirs, changes)
        plans.append((subscription, theirs, start["startPageToken"]))
    ratios, ck_runs, base_runs = [], [], []
    for r, (subscription, theirs, token) in enumerate(plans):
        progress(f"feeds: round {r + 1}/{rounds}, {'channelkit first' if r % 2 == 0 else 'baseline first'}")
        sides: dict[str, tuple[float, int, dict]] = {}
        order = ("ck", "base") if r % 2 == 0 else ("base", "ck")
        for side in order:
            if side == "ck":
                sides["ck"] = sync_side(store, google, subscription)
            else:
                sides["base"] = loop_side(drive, client, theirs, token, page_size)
        ck, base = sides["ck"], sides["base"]
        ck_runs.append({"seconds": ck[0], "items": ck[1], **ck[2]})
        base_runs.append({"seconds": base[0], "items": base[1], **base[2]})
        ratios.append((ck[1] / ck[0]) / (base[1] / base[0]))
    client.close()

    def rate(runs: list[dict]) -> float:
        return statistics.median(r["items"] / r["seconds"] for r in runs)

    def per_page(runs: list[dict]) -> dict:
        pages = sum(r["pages"] for r in runs)
        writes = sum(r["writes"] for r in runs)
        by: collections.Counter = collections.Counter()
        for run in runs:
            by.update(run["by_collection"])
        return {
            "pages": pages,
            "writes": writes,
            "writes_per_page": round(writes / pages, 4) if pages else None,
            "reads_per_page": round(sum(r["reads"] for r in runs) / pages, 4) if pages else None,
            "by_collection": dict(by),
        }

    return {
        "changes": changes,
        "rounds": rounds,
        "page_size": page_size,
        "channelkit_rate": round(rate(ck_runs), 1),
        "baseline_rate": round(rate(base_runs), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(x, 3) for x in ratios],
        "channelkit": per_page(ck_runs),
        "baseline": per_page(base_runs),
        "channelkit_runs": ck_runs,
        "baseline_runs": base_runs,
        "all_delivered": all(r["items"] == changes for r in ck_runs + base_runs),
        "passes_per_sync": sorted({r["passes"] for r in ck_runs}),
    }


class Webhook(LoopbackReceiver):
    """The webhook core (syncing inline) behind a local HTTP server; its Firestore ops counted apart."""

    def __init__(self, receiver: Receiver, label: str):
        self.statuses: collections.Counter = collections.Counter()
        self.label = label
        lock, judge = threading.Lock(), judged_by(receiver)

        def answer(headers: Any, body: bytes) -> int:
            with opcount.scope(self.label):
                status = judge(headers, body)
            with lock:
                self.statuses[status] += 1
            return status

        super().__init__(answer)


def notifications(store, google, sim, count: int, page_size: int, *, together: bool, progress) -> dict:
    """``count`` changes on one subscription, each announced by one notification: all at once
    (``together``) or one at a time (each after its change). Sync passes and writes per notification."""
    label = BURST if together else SINGLE
    drive_id = f"{'burst' if together else 'single'}-{uuid.uuid4().hex[:6]}"
    channel = _subscribe(store, google, drive_id, page_size, ADDRESS)
    delivered = collections.Counter()
    lock = threading.Lock()

    def handler(batch: Any, subscription: Any) -> None:
        with lock:
            delivered.update(c["fileId"] for c in batch.items)

    inline = InlineSync(store=store, sink=ChangeSink(handler=handler), budget=20, lease=LEASE, google=google)
    receiver = Receiver(store=store, dispatcher=noop, changes=inline)
    passes = Passes()
    before = opcount.snapshot()["scopes"].get(label, {})
    started = time.perf_counter()
    with Webhook(receiver, label) as hook, passes.counting():
        base = hook.url.rsplit("/", 1)[0]
        if together:
            make_changes(sim, drive_id, count)
            progress(f"feeds: a burst of {count} notifications on one subscription")
            items = [
                Delivery(notification_headers(channel, n + 2, "change"), key=(channel.id, n + 2))
                for n in range(count)
            ]
            deliver_all(base, items, senders=16, policy=RetryPolicy(deadline=120))
        else:
            progress(f"feeds: {count} notifications one at a time")
            items = []
            for n in range(count):
                make_changes(sim, drive_id, 1)
                item = Delivery(notification_headers(channel, n + 2, "change"), key=(channel.id, n + 2))
                deliver_all(base, [item], senders=1, policy=RetryPolicy(deadline=120))
                items.append(item)
        statuses = dict(hook.statuses)
    seconds = time.perf_counter() - started
    ops = _writes(_difference(opcount.snapshot()["scopes"].get(label, {}), before))
    by = ops["by_collection"]
    messages = sum(v for k, v in by.items() if k == "messages")
    sync_writes = ops["writes"] - messages
    return {
        "notifications": count,
        "seconds": round(seconds, 2),
        "statuses": {str(k): v for k, v in statuses.items()},
        "sync_calls": passes.calls,
        "sync_passes": passes.passes,
        "sync_outcomes": dict(passes.outcomes),
        "changes_delivered": sum(delivered.values()),
        "changes_delivered_once": sum(delivered.values()) == count
        and all(v == 1 for v in delivered.values()),
        "writes": ops["writes"],
        "writes_per_notification": round(ops["writes"] / count, 3),
        "claim_writes_per_notification": round(messages / count, 3),
        "sync_writes_per_notification": round(sync_writes / count, 3),
        "reads_per_notification": round(ops["reads"] / count, 3),
        "by_collection": by,
    }


def run(
    changes: int = 2000,
    rounds: int = 3,
    burst: int = 1000,
    single: int = 50,
    *,
    page_size: int = 100,
    latency_ms: float = 20,
    progress: Progress | None = None,
) -> dict:
    """The figures as a dict (see the module docstring)."""
    progress = progress or (lambda message: None)
    with firestore_emulator(progress) as host, SimulatorProcess() as sim:
        opcount.install()
        reset_firestore(host, PROJECT)
        store = FirestoreStore(project=PROJECT, collection=f"bench-feeds-{uuid.uuid4().hex[:8]}")
        try:
            google = GoogleApi(root=sim.url)
            sim.set_latency(latency_ms / 1000)  # every API call; the control calls making changes: none
            figures = throughput(store, google, sim, changes, rounds, page_size, progress)
            figures["burst"] = notifications(
                store, google, sim, burst, page_size, together=True, progress=progress
            )
            figures["single"] = notifications(
                store, google, sim, single, page_size, together=False, progress=progress
            )
            sim.set_latency(0)
        finally:
            store.close()
        with contextlib.suppress(Exception):
            reset_firestore(host, PROJECT)
    figures["latency_ms"] = latency_ms
    problems = []
    if not figures["all_delivered"]:
        problems.append("a side did not hand over every change")
    for name in ("burst", "single"):
        part = figures[name]
        if not part["changes_delivered_once"]:
            problems.append(f"{name}: {part['changes_delivered']} changes handed over, not each once")
        if set(part["statuses"]) != {"200"}:
            problems.append(f"{name}: webhook answered {part['statuses']}")
    figures["problems"] = problems
    return figures


def table(result: dict) -> str:
    ck, base, burst, single = result["channelkit"], result["baseline"], result["burst"], result["single"]
    rows = [
        (
            f"changes handed over per second (+{result['latency_ms']:g} ms per call)",
            f"{result['channelkit_rate']:.0f}/s vs {result['baseline_rate']:.0f}/s: "
            f"{result['ratio']:.2f}x (rounds {result['ratios']}; target >= 0.9x)",
        ),
        (
            "Firestore writes per page, channelkit",
            f"{ck['writes_per_page']} ({ck['writes']} for {ck['pages']} pages)",
        ),
        (
            "Firestore writes per page, hand-written",
            f"{base['writes_per_page']} ({base['writes']} for {base['pages']} pages)",
        ),
        (
            f"burst of {burst['notifications']} notifications: sync passes",
            f"{burst['sync_passes']} in {burst['sync_calls']} sync calls {burst['sync_outcomes']} (target <= 10)",
        ),
        (
            "  writes per notification",
            f"{burst['writes_per_notification']} = {burst['claim_writes_per_notification']} claim + "
            f"{burst['sync_writes_per_notification']} sync",
        ),
        (
            f"{single['notifications']} notifications one at a time: writes per notification",
            f"{single['writes_per_notification']} = {single['claim_writes_per_notification']} claim + "
            f"{single['sync_writes_per_notification']} sync",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [f"PROBLEM: {p}" for p in result["problems"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_feeds", description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--single", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    result = run(
        args.changes, args.rounds, args.burst, args.single, latency_ms=args.latency_ms, progress=progress
    )
    print(table(result))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
