"""Change feeds under faults: every change reaches the app once, whatever happens to notifications.

Real parts: the Firestore emulator (google-cloud-firestore), the push simulator
playing Drive (reached through google-api-python-client: ``changes.list`` pages
of at most ``PAGE`` changes), and the webhook core (``channelkit.receive.Receiver``
syncing inline, ``channelkit.inline_sync``) behind a local HTTP server.

Subscriptions are Drive ``changes.watch`` with ``--sync``, one shared drive
each. In rounds, files are created and updated on random drives (the change
log in the simulator); each change is announced by one notification, sent to
the webhook by concurrent senders that retry 5xx as Google does, with 5% of
notifications dropped (never sent) and 5% sent twice (one of them at the same
moment as the other). The app's change handler raises on 5% of its calls (the
sync stops, the batch is offered again by a later pass). In each round a few
syncs are killed mid-page: a sync run by hand dies (a ``BaseException`` nothing
catches) either once Google answered ``changes.list`` or inside the handler,
before it returned; its lease is left behind and lapses when the scenario moves
the clock past it. At the end, an hour later on the simulator's clock, the
renewal run's backstop (``run_backstop``) syncs what no notification did, then
each subscription is synced by hand until a pass ends ``done``.

``sent``: changes made; ``accepted``: notifications answered 2xx;
``handler_calls``: calls of the change handler (failed ones included);
``lost``: changes of a drive's log after its first cursor that no returned
batch carried; ``doubled``: changes carried by more than one returned batch;
``out_of_order``: subscriptions whose returned batches, concatenated, are not
exactly their drive's log; ``status_5xx``: 5xx answers of the webhook: only
503 "in progress" to a notification sent twice at once, while its twin runs (a
sync never changes the answer: no 5xx for any other notification).
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.reliability.common import (
    Delivery,
    RetryPolicy,
    deliver_all,
    new_project,
    open_firestore,
    result,
    say,
    shared_firestore,
)
from channelkit.change_sink import ChangeSink
from channelkit.google_api import GoogleApi
from channelkit.inline_sync import InlineSync
from channelkit.receive import Receiver
from channelkit.renewal.backstop import run_backstop
from channelkit.subscribe import subscribe
from channelkit.sync import DONE, sync
from channelkit.testing.harness import LoopbackReceiver, judged_by, notification_headers
from channelkit.testing.simulator import Simulator

SCENARIO = "feeds"
LEASE = 120  # seconds of the simulator's clock
PAGE = 10  # changes per changes.list page
ADDRESS = "https://feeds.invalid/webhook"  # not loopback: the simulator sends nothing, the senders do
SIZES = {
    "small": {"subscriptions": 10, "changes": 400, "rounds": 4, "kills": 1},
    "full": {"subscriptions": 100, "changes": 20_000, "rounds": 20, "kills": 2},
}
DROP, DUPLICATE, FAIL = 0.05, 0.05, 0.05


class Killed(BaseException):
    """A sync's process died: no ``except Exception`` runs."""


class App:
    """The change handler: fails one call in 20 (``FAIL``; the 8th, 28th, ...), records what it returned from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.returned: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
        self.calls = self.failures = 0

    def __call__(self, batch: Any, subscription: Any) -> None:
        with self.lock:
            self.calls += 1
            if self.calls % round(1 / FAIL) == 8:
                self.failures += 1
                raise RuntimeError("the app failed this batch")
            self.returned[subscription.id].extend(change_key(c) for c in batch.items)


def change_key(change: dict[str, Any]) -> tuple[str, str]:
    return (change["fileId"], "removed" if change.get("removed") else change["file"]["version"])


class KilledAfterAnswer:
    """The Google client; its first ``changes.list`` answer kills the sync (the page is never handed over)."""

    def __init__(self, google: GoogleApi):
        self.google = google

    def call(self, *args: Any, **kwargs: Any) -> Any:
        answer = self.google.call(*args, **kwargs)
        if answer.get("changes"):
            raise Killed("killed once changes.list answered")
        return answer


def killed_in_handler(batch: Any, subscription: Any) -> None:
    raise Killed("killed inside the handler")


class Webhook(LoopbackReceiver):
    """The webhook core behind a local HTTP server, its answers counted."""

    def __init__(self, receiver: Receiver):
        self.statuses: collections.Counter = collections.Counter()
        lock, judge = threading.Lock(), judged_by(receiver)

        def answer(headers: Any, body: bytes) -> int:
            status = judge(headers, body)
            with lock:
                self.statuses[status] += 1
            return status

        super().__init__(answer)


def run(size: str, *, progress: Callable[[str], None] | None = None, seed: int = 13) -> dict:
    """Run the scenario at ``small`` or ``full`` size; the figures as a dict."""
    plan = SIZES[size]
    rng = random.Random(seed)
    started = time.monotonic()
    store = open_firestore(shared_firestore(), new_project(SCENARIO))
    app = App()
    items: list[Delivery] = []
    kills: collections.Counter = collections.Counter()
    dropped = duplicated = 0
    with Simulator(seed=seed, max_page_size=PAGE) as sim:
        sim.clock.freeze()  # only the scenario moves time

        def clock() -> float:
            return sim.clock.now_ms() / 1000

        google = GoogleApi(root=sim.url, retries=2)
        sink = ChangeSink(handler=app)
        inline = InlineSync(store=store, sink=sink, budget=20, lease=LEASE, google=google, clock=clock)
        receiver = Receiver(store=store, dispatcher=lambda n, c: None, clock=clock, changes=inline)
        with Webhook(receiver) as hook:
            say(progress, f"{SCENARIO}: {plan['subscriptions']} subscriptions")
            subs = []
            for i in range(plan["subscriptions"]):
                drive_id = f"drive-{i:03d}"
                channel = subscribe(
                    "drive",
                    "v3",
                    "changes.watch",
                    address=ADDRESS,
                    params={"driveId": drive_id, "supportsAllDrives": True},
                    ttl=7 * 86_400,
                    store=store,
                    google=google,
                    clock=clock,
                    sync=True,
                )
                first = store.get_subscription(channel.subscription_id).cursor
                subs.append({"drive": drive_id, "channel": channel, "first": first, "number": 1, "files": []})
            per_round = plan["changes"] // plan["rounds"]
            for round_number in range(plan["rounds"]):
                batch: list[Delivery] = []
                for _ in range(per_round):
                    sub = rng.choice(subs)
                    if sub["files"] and rng.random() < 0.4:
                        sim.drive.update_file(rng.choice(sub["files"]))
                    else:
                        sub["files"].append(sim.drive.create_file("f", drive_id=sub["drive"])["id"])
                    sub["number"] += rng.randint(1, 3)
                    headers = notification_headers(sub["channel"], sub["number"], "change")
                    key = (sub["channel"].id, sub["number"])
                    roll = rng.random()
                    if roll < DROP:
                        dropped += 1
                        continue
                    if roll < DROP + DUPLICATE:
                        duplicated += 1
                        together = threading.Barrier(2)
                        batch += [Delivery(headers, key=key, together=together) for _ in range(2)]
                    else:
                        batch.append(Delivery(headers, key=key))
                for sub in rng.sample(subs, plan["kills"]):  # a sync killed mid-page, its lease left behind
                    sub["files"].append(sim.drive.create_file("f", drive_id=sub["drive"])["id"])
                    how = rng.choice(["after the answer", "in the handler"])
                    try:
                        sync(
                            sub["channel"].subscription_id,
                            store=store,
                            google=KilledAfterAnswer(google) if how == "after the answer" else google,
                            sink=sink if how == "after the answer" else ChangeSink(handler=killed_in_handler),
                            clock=clock,
                            lease=LEASE,
                        )
                    except Killed:
                        kills[how] += 1
                items += batch
                deliver_all(
                    hook.url.rsplit("/", 1)[0],
                    batch,
                    senders=16,
                    policy=RetryPolicy(deadline=120),
                    progress=progress,
                    label=f"{SCENARIO} round {round_number + 1}/{plan['rounds']}",
                    seed=seed + round_number,
                )
                sim.clock.advance(LEASE + 1)  # the killed syncs' leases lapse
            say(progress, f"{SCENARIO}: an hour later, the renewal run's backstop")
            sim.clock.advance(3601)
            backstop = run_backstop(
                store,
                google,
                sink,
                dispatcher=lambda n, c: None,
                clock=clock,
                backstop_seconds=3600,
                budget_seconds=None,
                lease_seconds=LEASE,
            )
            unfinished = 0
            for sub in subs:
                for _ in range(50):  # the handler still fails 5% of its calls
                    outcome = sync(
                        sub["channel"].subscription_id,
                        store=store,
                        google=google,
                        sink=sink,
                        clock=clock,
                        lease=LEASE,
                    ).outcome
                    if outcome == DONE:
                        break
                else:
                    unfinished += 1
            logs = {
                sub["channel"].subscription_id: sim.drive.changes(sub["drive"], sub["first"]) for sub in subs
            }
            statuses = dict(hook.statuses)
    store.close()
    delivered: collections.Counter = collections.Counter()
    out_of_order = 0
    for sid, log in logs.items():
        keys = [change_key(c) for c in log]
        mine = app.returned.get(sid, [])
        delivered.update((sid, k) for k in mine)
        out_of_order += mine != keys
    expected = {(sid, change_key(c)) for sid, log in logs.items() for c in log}
    lost = sum(1 for k in expected if delivered[k] == 0)
    doubled = sum(1 for k, n in delivered.items() if n > 1)
    unexpected = sum(1 for k in delivered if k not in expected)
    status_5xx = sum(n for s, n in statuses.items() if s >= 500)
    twins = {d.key for d in items if d.together is not None}
    other_5xx = sum(1 for d in items if d.key not in twins for _, s in d.statuses if s is None or s >= 500)
    figures = {
        "sent": len(expected),
        "accepted": sum(n for s, n in statuses.items() if 200 <= s < 300),
        "handler_calls": app.calls,
        "lost": lost,
        "doubled": doubled,
        "status_5xx": status_5xx,
    }
    made = plan["rounds"] * (per_round + plan["kills"])
    ok = (
        out_of_order == 0
        and unexpected == 0
        and unfinished == 0
        and other_5xx == 0
        and statuses.get(500, 0) == 0
        and len(expected) == made
        and sum(kills.values()) == plan["rounds"] * plan["kills"]
        and app.failures > 0
    )
    notes = (
        f"{plan['subscriptions']} Drive changes.watch --sync subscriptions, {len(expected)} changes "
        f"(pages of {PAGE}); {dropped} notifications dropped, {duplicated} sent twice; handler raised on "
        f"{app.failures} of {app.calls} calls; {sum(kills.values())} syncs killed mid-page "
        f"({', '.join(f'{n} {how}' for how, n in sorted(kills.items()))}); backstop synced "
        f"{backstop['synced']}, {backstop['missed']} missed events; out of order {out_of_order}; "
        f"not done after 50 passes {unfinished}; webhook answers {statuses} (5xx other than to a twin: {other_5xx})"
    )
    return result(
        SCENARIO,
        figures | {"messages": len(expected)},
        ok=ok,
        notes=notes,
        seconds=time.monotonic() - started,
        subscriptions=plan["subscriptions"],
        dropped=dropped,
        duplicated=duplicated,
        handler_failures=app.failures,
        killed=dict(kills),
        backstop=backstop,
        out_of_order=out_of_order,
        unfinished=unfinished,
        webhook_statuses={str(k): v for k, v in statuses.items()},
        five_xx_not_twin=other_5xx,
    )
