"""Renewal chaos: subscriptions kept alive through many renewal cycles, with faults and crashes.

Real parts: the Firestore emulator (google-cloud-firestore), the push simulator
playing Google (reached through google-api-python-client), and the webhook
core (``channelkit.receive.Receiver``) behind a local HTTP server, every one of
them judging time on the simulator's clock, so that days pass in seconds.

Each cycle:

1. the clock moves to two hours before the channels expire (inside the 3 h
   renewal window);
2. Google misbehaves: the next few ``watch`` and ``channels.stop`` calls fail
   (503, 500, 429 — transient, retried — or 403 — credentials: kept for the next run);
3. a renewal run dies at a random step: the process "crashes" (a ``BaseException``
   no code catches) at one store or Google call of the flow — the commit of the
   lease with the pending successor, watch, the commit of the successor active
   with the old channel retired and ``renewed`` recorded, old stopped at Google,
   the commit of the stop with the event delivered (and the single writes of
   the other branches) — either before the call or just after it landed; once dead, every
   further call of that run dies too (all its threads);
4. half of the subscriptions' resources change while things are half done;
5. 11 minutes later (the crashed run's lease has lapsed) a second run, which may
   crash too; 11 minutes later a third, clean run;
6. every resource changes once more.

At the end a last clean run (past the lease) finishes pending stops and sweeps
abandoned channels; then the checks:

* exactly one ``active`` channel per subscription in the store, no ``pending`` one;
* the simulator's live channels are exactly the store's active ones (no orphan);
* every change reached the app: for each change of a resource, the handler
  completed at least one of the notifications Google sent for it (lost = none
  completed: a gap), and no notification (channel, message number) was
  completed twice (doubled). While an old and a new channel overlap, Google
  sends one change on both; those are counted as ``overlap_deliveries``, not
  as doubles: the design wants overlap, never a gap.

``sent`` counts changes (one per resource per change call), ``accepted`` the
notifications the webhook answered 2xx, ``handler_calls`` the completed calls
for changes, ``status_5xx`` the 5xx answers of the webhook.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.reliability.common import new_project, open_firestore, say, shared_firestore
from channelkit.google_api import GoogleApi
from channelkit.receive import Receiver
from channelkit.renewal import renew_due
from channelkit.store import ACTIVE, PENDING
from channelkit.subscribe import subscribe
from channelkit.testing.harness import LoopbackReceiver, judged_by
from channelkit.testing.simulator import Simulator

SCENARIO = "renewal_chaos"
HOUR = 3600
DAY = 24 * HOUR
LEASE = 600
RUN_GAP = 11 * 60  # between runs of one cycle: longer than the lease
SIZES = {"small": (20, 5), "full": (500, 20)}  # subscriptions, cycles
#: The steps of the renewal flow where a run may die (store or Google calls).
STORE_STEPS = ("write_together", "claim_lease", "create", "update", "release_lease", "find", "get", "list")
GOOGLE_STEPS = ("watch", "stop")
WATCH_FAULTS = (503, 500, 429, 403)
STOP_FAULTS = (503, 500, 403)


class Crash(BaseException):
    """The renewal process died: not an error any code path catches."""


class Chaos:
    """Decides, call by call, when one renewal run dies (at most once per run).

    ``arm(step, nth)``: the run dies at the ``nth`` call of ``step`` (a store
    method or ``watch``/``stop``), before it or just after it landed (at random).
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.lock = threading.Lock()
        self.seen: collections.Counter = collections.Counter()
        self.target: tuple[str, int] | None = None
        self.after = False
        self.dead = False
        self.crashes: collections.Counter = collections.Counter()

    def arm(self, target: tuple[str, int] | None) -> None:
        with self.lock:
            self.seen, self.target, self.dead = collections.Counter(), target, False
            self.after = self.rng.random() < 0.5

    def before(self, step: str) -> bool:
        """Raise if the run is dead or dies now; True if it must die just after this call."""
        with self.lock:
            if self.dead:
                raise Crash(f"{step}: the process is gone")
            self.seen[step] += 1
            if self.target != (step, self.seen[step]):
                return False
            self.dead = True
            self.crashes[(step, "after" if self.after else "before")] += 1
            if not self.after:
                raise Crash(f"died before {step}")
            return True

    def call(self, step: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        die_after = self.before(step)
        result = fn(*args, **kwargs)
        if die_after:
            raise Crash(f"died after {step}")
        return result


class CrashingStore:
    """The real store, with the renewal run's calls going through ``Chaos``."""

    def __init__(self, store: Any, chaos: Chaos):
        self._store, self._chaos = store, chaos

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if name not in STORE_STEPS:
            return real
        return lambda *args, **kwargs: self._chaos.call(name, real, *args, **kwargs)


class CrashingGoogle(GoogleApi):
    """GoogleApi on the simulator, with watch and stop going through ``Chaos``."""

    def __init__(self, chaos: Chaos, **options: Any):
        super().__init__(**options)
        self._chaos = chaos

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        return self._chaos.call("watch", super().watch, *args, **kwargs)

    def stop(self, *args: Any, **kwargs: Any) -> Any:
        return self._chaos.call("stop", super().stop, *args, **kwargs)


class Recorder:
    """The app's handler: every completed call, by (channel id, message number)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls: collections.Counter = collections.Counter()
        self.states: collections.Counter = collections.Counter()

    def __call__(self, notification: Any, channel: Any) -> None:
        with self.lock:
            self.calls[(notification.channel_id, notification.message_number)] += 1
            self.states[notification.state] += 1

    dispatch = __call__


class Webhook(LoopbackReceiver):
    """``channelkit.receive.Receiver`` behind a local HTTP server (the webhook function's core),
    its answers counted."""

    def __init__(self, receiver: Receiver):
        self.statuses: collections.Counter = collections.Counter()
        counting = threading.Lock()
        judge = judged_by(receiver)

        def answer(headers: Any, body: bytes) -> int:
            status = judge(headers, body)
            with counting:
                self.statuses[status] += 1
            return status

        super().__init__(answer)


def run(size: str, *, progress: Callable[[str], None] | None = None, seed: int | None = None) -> dict:
    """Run the scenario at ``small`` or ``full`` size; the figures as a dict."""
    subscriptions, cycles = SIZES[size]
    rng = random.Random(seed)
    started = time.monotonic()
    firestore = shared_firestore()
    project = new_project(SCENARIO)
    store = open_firestore(firestore, project)
    chaos = Chaos(rng)
    recorder = Recorder()
    changes: list[dict[str, int]] = []  # one per resource change: {channel id: message number}
    runs = crashed_runs = 0
    summaries: collections.Counter = collections.Counter()
    with Simulator(seed=seed, max_attempts=10, retry_base=0.05) as sim:
        sim.clock.freeze()  # only the scenario moves time

        def clock() -> float:
            return sim.clock.now_ms() / 1000

        receiver = Receiver(store=store, dispatcher=recorder, clock=clock)
        with Webhook(receiver) as hook:
            google = GoogleApi(root=sim.url, retries=1)
            say(progress, f"{SCENARIO}: {subscriptions} subscriptions")
            files = [f"chaos-{i}" for i in range(subscriptions)]
            subs = {}
            for file_id in files:
                channel = subscribe(
                    "drive",
                    "v3",
                    "files.watch",
                    address=hook.url,
                    params={"fileId": file_id},
                    ttl=DAY,
                    store=store,
                    google=google,
                    clock=clock,
                )
                subs[channel.subscription_id] = file_id
            sim.wait_idle(timeout=120)

            def renewal(crash_at: tuple[str, int] | None, faults: bool) -> None:
                nonlocal runs, crashed_runs
                runs += 1
                if faults:
                    for status in rng.sample(WATCH_FAULTS, k=rng.randint(1, 3)):
                        sim.fail_next("watch", status=status, count=rng.randint(1, 3))
                    for status in rng.sample(STOP_FAULTS, k=rng.randint(1, 2)):
                        sim.fail_next("stop", status=status, count=rng.randint(1, 3))
                chaos.arm(crash_at)
                run_google = CrashingGoogle(chaos, root=sim.url, retries=1)
                try:
                    summary = renew_due(
                        store=CrashingStore(store, chaos),
                        google=run_google,
                        dispatcher=recorder,
                        clock=clock,
                        lease_seconds=LEASE,
                        concurrency=8,
                    )
                    for kind, value in summary.to_json().items():
                        if isinstance(value, int) and kind != "durationMs":
                            summaries[kind] += value
                except Crash:
                    crashed_runs += 1
                sim.clear_faults()  # faults this run did not meet must not leak into the next step

            def change(file_ids: list[str]) -> None:
                for file_id in file_ids:
                    changes.append(
                        sim.change("drive", "files", fileId=file_id, state="update", changed=["content"])
                    )
                sim.wait_idle(timeout=600)

            def crash_point() -> tuple[str, int]:
                # The steps of one renewal: the commits (lease + successor; successor active,
                # renewed recorded, old retired; stop + event delivered), watch, old stopped at
                # Google; and the single writes of the other branches (failures, stops, sweep).
                step = rng.choice(
                    ("write_together", "write_together", "watch", "write_together", "stop", "update")
                )
                return step, rng.randint(1, subscriptions * (3 if step == "write_together" else 1))

            for cycle in range(cycles):
                sim.clock.advance(DAY - 2 * HOUR - 2 * RUN_GAP)
                renewal(crash_point(), faults=True)
                change(rng.sample(files, k=max(1, subscriptions // 2)))
                sim.clock.advance(RUN_GAP)
                renewal(crash_point() if rng.random() < 0.5 else None, faults=True)
                sim.clock.advance(RUN_GAP)
                renewal(None, faults=False)
                change(files)
                say(
                    progress,
                    f"{SCENARIO}: cycle {cycle + 1}/{cycles} done ({crashed_runs} runs crashed so far)",
                )
            sim.clock.advance(LEASE + 1)  # abandoned channels are past their lease: swept
            renewal(None, faults=False)
            renewal(None, faults=False)
            sim.wait_idle(timeout=600)

            # --- the checks ---------------------------------------------------------
            stored = store.list()
            active = collections.Counter(c.subscription_id for c in stored if c.status == ACTIVE)
            pending = [c.id for c in stored if c.status == PENDING]
            wrong = [s for s in subs if active[s] != 1]
            live = {c.id for c in sim.live_channels()}
            ours = {c.id for c in stored if c.status == ACTIVE}
            orphans = sorted(live - ours)
            not_live = sorted(ours - live)
            handled = recorder.calls
            lost = sum(1 for sent in changes if not any(handled[k] for k in sent.items()))
            doubled = sum(1 for sent in changes for k in sent.items() if handled[k] > 1)
            overlap = sum(1 for sent in changes if sum(handled[k] > 0 for k in sent.items()) > 1)
            handler_calls = sum(handled[k] for sent in changes for k in sent.items())
            statuses = hook.statuses
            accepted = sum(v for s, v in statuses.items() if 200 <= s < 300)
            five_xx = sum(v for s, v in statuses.items() if s >= 500)
            watch_calls = collections.Counter(
                c.status for c in sim.calls if c.operation == "drive.files.watch"
            )
    store.close()
    ok = not wrong and not pending and not orphans and not not_live and lost == 0 and doubled == 0
    notes = (
        f"{subscriptions} subscriptions x {cycles} cycles, {runs} renewal runs "
        f"({crashed_runs} crashed mid-run), {sum(summaries.values())} outcomes "
        f"{dict(summaries)}; end: {len(ours)} active, {len(live)} live at the simulator, "
        f"{len(orphans)} orphans, {len(wrong)} subscriptions without exactly one active, "
        f"{len(pending)} pending; {overlap} changes delivered on two overlapping channels"
    )
    return {
        "scenario": SCENARIO,
        "sent": len(changes),
        "accepted": accepted,
        "handler_calls": handler_calls,
        "lost": lost,
        "doubled": doubled,
        "status_5xx": five_xx,
        "ok": ok,
        "notes": notes,
        "seconds": round(time.monotonic() - started, 1),
        "subscriptions": subscriptions,
        "cycles": cycles,
        "live_channels": len(live),
        "active_channels": len(ours),
        "orphans": len(orphans),
        "not_live": len(not_live),
        "without_one_active": len(wrong),
        "pending": len(pending),
        "renewal_runs": runs,
        "crashed_runs": crashed_runs,
        "overlap_deliveries": overlap,
        "details": {
            "crashes": {f"{s} ({w})": n for (s, w), n in sorted(chaos.crashes.items())},
            "outcomes": dict(summaries),
            "webhook_statuses": {str(k): v for k, v in sorted(statuses.items())},
            "watch_statuses": {str(k): v for k, v in sorted(watch_calls.items())},
            "handler_states": dict(recorder.states),
            "orphans": orphans[:10],
            "subscriptions_without_one_active": wrong[:10],
        },
    }


if __name__ == "__main__":
    import json
    import sys

    result = run(
        sys.argv[1] if len(sys.argv) > 1 else "small",
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(json.dumps(result, indent=2))
