"""Subscription lifecycle: renewal cycles where Google refuses some subscriptions for good.

Real parts, as in ``renewal_chaos``: the Firestore emulator, the push simulator
playing Google on its own clock (reached through google-api-python-client), and
the webhook core (``channelkit.receive.Receiver``) behind a local HTTP server;
``renew_due`` reads the simulator's clock and hands every notification of
message number 0 (a lifecycle event) to the same recording dispatcher as the
webhook's real ones.

The subscriptions watch distinct resources (Drive files, and every fourth a
calendar's events), each at an address of its own, through ``subscribe``. Each
is given a role at the start; at a chosen cycle, every role but ``healthy``
gets a standing refusal of its resource (of its address, for ``endpoint``) at
the simulator, lifted a few runs later or never:

===============  =========================  ===================  ==============================
role             refusal                    lifted               expected end
===============  =========================  ===================  ==============================
permission       ``permission`` (403)       never                suspended PERMISSION_DENIED,
                                                                 after 3 refused runs
revoked          ``unauthorized`` (401)     never                suspended CREDENTIALS_INVALID
not_found        ``not_found`` (404)        never                suspended RESOURCE_GONE
gone             ``gone`` (410)             never                suspended RESOURCE_GONE
endpoint         ``webhook_unauthorized``   never                suspended ENDPOINT_UNAUTHORIZED
                 (on its address)
expired          ``backend`` (503)          never                expired (one ``expiring`` on
                                                                 the way)
permission_blip  ``permission``             after 2 runs         active (the count starts over)
outage           ``backend``                after 3 runs         active
long_outage      ``backend``                after 4 runs         active, one ``expiring`` first
healthy          none                       -                    active
===============  =========================  ===================  ==============================

A cycle is five renewal runs, at 2 h, 1 h 49, 1 h 38, 30 min and 10 min before
the channels renewed at the previous cycle's first run expire (the renewal
window is 3 h, ``expiring`` is sent within 1 h). Refusals begin at a cycle's
first run. Transient faults come at random: at the first run, the next few
``watch`` calls fail (``fail_next`` 503/500/429, ``refuse_next`` rate_limit /
too_many / backend) and the next few ``stop`` calls too; at the first two runs
a few healthy resources get a standing transient refusal (``backend``,
``rate_limit``, ``too_many``), lifted one run later at most. One-off faults a
run did not use are dropped before the next (standing refusals kept): left
over, they would meet the refused resources, the only ones due at later runs,
and a revoked permission's three counted runs could outlast its channel (it
would then end ``expired``, rightly, but not as its role says). Half of the
resources change after the first run (old and new channels may both be live),
every one at the end of the cycle; a gone resource stops changing once gone.
The app's handler fails (raises) on 5 % of the lifecycle events, and on the
first delivery of each transition event (suspended, expired, expiring) of
half the subscriptions that get one: channelkit keeps each in its
subscription's outbox and a later run delivers it again.

The checks, at the end (after a last clean run):

* every subscription is in its role's state, with its reason;
* an active one has exactly one active channel in the store, and it is the one
  live at the simulator (exactly one); a suspended or expired one has no live
  channel, no ``pending`` one, and nothing live at Google without a record;
* each subscription's app got exactly one event for its final transition
  (``suspended`` with the record's reason, or ``expired``), the ``expiring``
  events its role implies, none else, and one ``renewed`` per renewal (counting
  the deliveries the handler completed, after the failed ones were retried);
  no outbox holds an event;
* the refused watch calls of each refused resource: 3 for a revoked permission,
  1 for an immediate reason; no ``watch`` of a resource after its final
  transition (no retry storm);
* lost = doubled = 0: every change of a resource whose subscription was
  meant to be served (ends active, or not refused yet) reached a live channel
  and the app; every notification the simulator sent (a suspended
  subscription's old channel serves until it ends) was handled once, no
  (channel, message number) twice. Changes of a suspended or expired
  subscription that no channel carried are counted as ``unserved``.

``sent`` counts changes, ``accepted`` the webhook's 2xx answers (sync messages
included), ``handler_calls`` the completed handler calls for changes,
``status_5xx`` the webhook's 5xx answers.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.reliability.common import new_project, open_firestore, say, shared_firestore
from bench.reliability.renewal_chaos import Webhook
from channelkit.events import SYNTHETIC_MESSAGE_NUMBER
from channelkit.google_api import GoogleApi
from channelkit.health import check_health
from channelkit.receive import Receiver
from channelkit.renewal import renew_due
from channelkit.store import ACTIVE, PENDING
from channelkit.subscribe import subscribe
from channelkit.subscription import Event, Reason, State
from channelkit.testing.simulator import Resource, Simulator

SCENARIO = "lifecycle"
HOUR = 3600
DAY = 24 * HOUR
LEASE = 600
SUSPEND_AFTER = 3
EXPIRING_WARN = HOUR
RENEW_BEFORE = 3 * HOUR
SIZES = {"small": (40, 6), "full": (500, 20)}  # subscriptions, cycles
#: The default seed: the same roles, faults and changes on every run.
SEED = 20261212
#: A cycle's runs, in seconds after its first one (at 2 h before the channels expire).
RUN_OFFSETS = (0, 11 * 60, 22 * 60, 90 * 60, 110 * 60)
WATCH_FAILURES = (503, 500, 429)  # fail_next
WATCH_REFUSALS = ("rate_limit", "too_many", "backend")  # refuse_next: transient, named
STOP_FAILURES = (503, 500, 403)
TRANSIENT_STANDING = ("backend", "rate_limit", "too_many")
#: Share of lifecycle event deliveries the app's handler fails (each is delivered again later).
EVENT_FAIL_RATE = 0.05


@dataclasses.dataclass(frozen=True)
class Role:
    """What happens to a subscription and how it must end."""

    name: str
    share: float  #: of the subscriptions (at least one each)
    refusal: str | None = None  #: the standing refusal injected at its cycle's first run
    lifted_before: int | None = None  #: the run (0-based, same cycle) before which it is lifted
    state: str = State.ACTIVE.value
    reason: str | None = None
    refused: tuple[int, int] = (0, 0)  #: bounds on its refused watch calls (the refusal's name)
    expiring: int = 0  #: ``expiring`` events it must get
    changes_when_refused: bool = True  #: a gone resource no longer changes


SUSPENDED, EXPIRED = State.SUSPENDED.value, State.EXPIRED.value
GONE = Reason.RESOURCE_GONE.value
ROLES = (
    Role(
        "permission",
        0.04,
        "permission",
        state=SUSPENDED,
        reason=Reason.PERMISSION_DENIED.value,
        refused=(3, 3),
    ),
    Role(
        "revoked",
        0.03,
        "unauthorized",
        state=SUSPENDED,
        reason=Reason.CREDENTIALS_INVALID.value,
        refused=(1, 1),
    ),
    Role(
        "not_found",
        0.016,
        "not_found",
        state=SUSPENDED,
        reason=GONE,
        refused=(1, 1),
        changes_when_refused=False,
    ),
    Role("gone", 0.014, "gone", state=SUSPENDED, reason=GONE, refused=(1, 1), changes_when_refused=False),
    Role(
        "endpoint",
        0.02,
        "webhook_unauthorized",
        state=SUSPENDED,
        reason=Reason.ENDPOINT_UNAUTHORIZED.value,
        refused=(1, 1),
    ),
    Role("expired", 0.03, "backend", state=EXPIRED, refused=(4, 20), expiring=1),
    Role("permission_blip", 0.02, "permission", lifted_before=2, refused=(1, 2)),
    Role("outage", 0.02, "backend", lifted_before=3, refused=(2, 12)),
    Role("long_outage", 0.02, "backend", lifted_before=4, refused=(3, 16), expiring=1),
)
HEALTHY = Role("healthy", 0.0)


@dataclasses.dataclass
class Sub:
    """One subscription of the scenario: its resource, address, role and refusal cycle."""

    index: int
    api: str
    kind: str
    params: dict[str, str]
    address: str
    role: Role = HEALTHY
    cycle: int | None = None  #: when its refusal begins
    id: str = ""

    @property
    def resource(self) -> Resource:
        return Resource.of(self.api, self.kind, **self.params)

    @property
    def match(self) -> dict[str, str]:
        """What its standing refusal matches: its address (endpoint), else its resource."""
        return {"address": self.address} if self.role.refusal == "webhook_unauthorized" else self.params

    def refused_by(self, cycle: int) -> bool:
        return self.cycle is not None and cycle >= self.cycle


@dataclasses.dataclass
class Change:
    sub: Sub
    sent: dict[str, int]  #: {channel id: message number} the simulator queued
    must_reach: bool  #: its subscription was meant to be served


class AppFailure(Exception):
    """The app's handler failed on a lifecycle event: channelkit must deliver it again later."""


class Recorder:
    """The app's handler: real notifications by (channel id, number); lifecycle events in order.

    It fails (raises, records nothing) on a share ``fail_rate`` of the lifecycle
    events, chosen by its own seeded generator, and on the first delivery of
    each ``suspended``/``expired``/``expiring`` event of the subscriptions in
    ``fail_first``: those stay in their outbox, and a later renewal run delivers
    them again (for a suspended or expired subscription, whose channel is no
    longer renewed, only the run's sweep of left-over events can).
    """

    def __init__(self, seed: int, fail_rate: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.calls: collections.Counter = collections.Counter()
        self.states: collections.Counter = collections.Counter()
        self.events: list[dict[str, Any]] = []
        self.failed: collections.Counter = collections.Counter()  # by event
        self.fail_rate = fail_rate
        self.fail_first: set[str] = set()
        self._failed_once: set[tuple[str, str, str]] = set()
        self._rng = random.Random(seed)

    def _fails(self, notification: Any, channel: Any) -> bool:
        key = (channel.subscription_id, notification.state, notification.channel_id)
        if (
            notification.state != Event.RENEWED.value
            and channel.subscription_id in self.fail_first
            and key not in self._failed_once
        ):
            self._failed_once.add(key)
            return True
        return self._rng.random() < self.fail_rate

    def __call__(self, notification: Any, channel: Any) -> None:
        with self.lock:
            if notification.message_number == SYNTHETIC_MESSAGE_NUMBER:
                if self._fails(notification, channel):
                    self.failed[notification.state] += 1
                    raise AppFailure(f"the app failed on {notification.state}")
                self.events.append(
                    {
                        "subscription": channel.subscription_id,
                        "event": notification.state,
                        "reason": notification.reason,
                        "channel": notification.channel_id,
                    }
                )
            else:
                self.calls[(notification.channel_id, notification.message_number)] += 1
                self.states[notification.state] += 1

    dispatch = __call__


def assign_roles(subs: list[Sub], cycles: int, rng: random.Random) -> None:
    """Give each role its share of the subscriptions and each one its refusal cycle.

    Refusals begin no later than three cycles before the end, so that a held
    channel has ended at Google by then and an expired one has been judged.
    """
    pool = list(subs)
    rng.shuffle(pool)
    refusal_cycles = list(range(1, max(2, cycles - 2)))
    for role in ROLES:
        size = max(1, round(role.share * len(subs)))
        members, pool = pool[:size], pool[size:]
        offset = rng.randrange(len(refusal_cycles))
        for j, sub in enumerate(members):
            sub.role, sub.cycle = role, refusal_cycles[(offset + j) % len(refusal_cycles)]


def run(size: str, *, progress: Callable[[str], None] | None = None, seed: int | None = None) -> dict:
    """Run the scenario at ``small`` or ``full`` size; the figures as a dict."""
    count, cycles = SIZES[size]
    seed = SEED if seed is None else seed
    rng = random.Random(seed)
    started = time.monotonic()
    firestore = shared_firestore()
    project = new_project(SCENARIO)
    store = open_firestore(firestore, project)
    recorder = Recorder(seed, EVENT_FAIL_RATE)
    changes: list[Change] = []
    summaries: collections.Counter = collections.Counter()
    runs = 0
    left_unused: collections.Counter = collections.Counter()
    spent: collections.Counter = collections.Counter()  # seconds per phase
    with Simulator(seed=seed, max_attempts=10, retry_base=0.05) as sim:
        sim.clock.freeze()  # only the scenario moves time

        def clock() -> float:
            return sim.clock.now_ms() / 1000

        receiver = Receiver(store=store, dispatcher=recorder, clock=clock)
        with Webhook(receiver) as hook:
            google = GoogleApi(root=sim.url, retries=1)
            subs = [
                Sub(i, "calendar", "events", {"calendarId": f"cal-{i}"}, f"{hook.url}/{i}")
                if i % 4 == 3
                else Sub(i, "drive", "files", {"fileId": f"F{i}"}, f"{hook.url}/{i}")
                for i in range(count)
            ]
            assign_roles(subs, cycles, rng)
            say(progress, f"{SCENARIO}: {count} subscriptions, {cycles} cycles, seed {seed}")

            def make(sub: Sub) -> None:
                channel = subscribe(
                    sub.api,
                    "v3",
                    f"{sub.kind}.watch",
                    address=sub.address,
                    params=sub.params,
                    ttl=DAY,
                    store=store,
                    google=google,
                    clock=clock,
                )
                sub.id = channel.subscription_id or ""

            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                list(pool.map(make, subs))
            sim.wait_idle(timeout=300)
            spent["subscribe"] += time.monotonic() - t0
            by_id = {sub.id: sub for sub in subs}
            # Half the subscriptions that will hear of a transition: its first delivery fails.
            told = [sub for sub in subs if sub.role.state != State.ACTIVE.value or sub.role.expiring]
            recorder.fail_first = {sub.id for sub in rng.sample(told, k=max(1, len(told) // 2))}

            def renewal() -> None:
                nonlocal runs
                runs += 1
                t0 = time.monotonic()
                summary = renew_due(
                    store=store,
                    google=google,
                    dispatcher=recorder,
                    clock=clock,
                    renew_before=RENEW_BEFORE,
                    lease_seconds=LEASE,
                    suspend_after=SUSPEND_AFTER,
                    expiring_warn=EXPIRING_WARN,
                    concurrency=8,
                )
                for kind, value in summary.to_json().items():
                    if isinstance(value, int) and kind != "durationMs":
                        summaries[kind] += value
                # One-off faults this run did not meet must not land on the next one's
                # calls (clear_faults lifts the standing refusals too: put them back).
                standing = sim.refusals()
                for operation, n in sim.clear_faults().items():
                    left_unused[operation] += n
                for s in standing:
                    sim.refuse(s.refusal.name, dict(s.match), operation=s.operation, status=s.refusal.status)
                spent["renewal"] += time.monotonic() - t0

            def change(batch: list[Sub], cycle: int) -> None:
                t0 = time.monotonic()
                for sub in batch:
                    if sub.refused_by(cycle) and not sub.role.changes_when_refused:
                        continue
                    if sub.api == "drive":
                        sent = sim.change("drive", "files", state="update", changed=["content"], **sub.params)
                    else:
                        sent = sim.change("calendar", "events", state="exists", **sub.params)
                    must_reach = sub.role.state == State.ACTIVE.value or not sub.refused_by(cycle)
                    changes.append(Change(sub, sent, must_reach))
                t1 = time.monotonic()
                spent["change"] += t1 - t0
                sim.wait_idle(timeout=600)
                spent["delivery"] += time.monotonic() - t1

            healthy = [s for s in subs if s.role is HEALTHY]
            for cycle in range(cycles):
                # To 2 h before the channels renewed at the last cycle's first run expire.
                sim.clock.advance(DAY - 2 * HOUR - (RUN_OFFSETS[-1] if cycle else 0))
                flaky = rng.sample(healthy, k=min(len(healthy), max(1, count // 50)))
                for step, offset in enumerate(RUN_OFFSETS):
                    if step:
                        sim.clock.advance(offset - RUN_OFFSETS[step - 1])
                    for sub in subs:
                        if sub.cycle == cycle and sub.role.lifted_before == step:
                            sim.unrefuse(sub.role.refusal, sub.match)
                    if step == 0:
                        for sub in subs:
                            if sub.cycle == cycle and sub.role.refusal:
                                sim.refuse(sub.role.refusal, sub.match)
                        for status in rng.sample(WATCH_FAILURES, k=rng.randint(1, 2)):
                            sim.fail_next("watch", status=status, count=rng.randint(1, 3))
                        sim.refuse_next(rng.choice(WATCH_REFUSALS), count=rng.randint(1, 2))
                        for status in rng.sample(STOP_FAILURES, k=rng.randint(1, 2)):
                            sim.fail_next("stop", status=status, count=rng.randint(1, 3))
                        for sub in flaky:
                            sim.refuse(rng.choice(TRANSIENT_STANDING), sub.params)
                    if step in (1, 2):
                        for sub in flaky[: len(flaky) // 2] if step == 1 else flaky:
                            sim.unrefuse(None, sub.params)
                    renewal()
                    if step == 0:
                        change(rng.sample(subs, k=max(1, count // 2)), cycle)
                change(subs, cycle)
                say(progress, f"{SCENARIO}: cycle {cycle + 1}/{cycles} done ({runs} runs)")
            sim.clock.advance(LEASE + 1)
            recorder.fail_rate = 0.0
            renewal()  # a last clean run: stops left pending, events left over
            sim.wait_idle(timeout=600)
            now_ms = sim.clock.now_ms()

            # --- the checks ---------------------------------------------------------
            problems: list[str] = []
            channels = store.list()
            live = collections.defaultdict(list)
            for info in sim.live_channels():
                live[info.resource].append(info.id)
            ours = {c.id for c in channels if c.status == ACTIVE and not c.held}
            orphans = sorted({i for ids in live.values() for i in ids} - ours)
            not_live = sorted(ours - {i for ids in live.values() for i in ids})
            pending = [c.id for c in channels if c.status == PENDING]
            events = collections.defaultdict(collections.Counter)
            for e in recorder.events:
                events[e["subscription"]][e["event"]] += 1
            foreign_events = [e for e in recorder.events if e["subscription"] not in by_id]
            watches: dict[Resource, list] = collections.defaultdict(list)
            for call in sim.calls:
                if call.operation and call.operation.endswith(".watch") and call.resource is not None:
                    watches[call.resource].append(call)
            watch_statuses = collections.Counter(c.status for calls in watches.values() for c in calls)
            finals: collections.Counter = collections.Counter()
            refused_calls: dict[str, list[int]] = collections.defaultdict(list)
            late_watches = 0
            wrong_state: list[str] = []
            wrong_events: list[str] = []
            wrong_channels: list[str] = []
            for sub in subs:
                role = sub.role
                record = store.get_subscription(sub.id)
                finals[(record.state, record.reason)] += 1
                if (record.state, record.reason) != (role.state, role.reason):
                    wrong_state.append(f"{sub.index}:{role.name}->{record.state}/{record.reason}")
                mine = [c for c in channels if c.subscription_id == sub.id]
                active = [c.id for c in mine if c.status == ACTIVE and not c.held]
                held = [c.id for c in mine if c.status == ACTIVE and c.held]
                serving = live.get(sub.resource, [])
                # A suspended subscription keeps its last channel, held (out of renewal),
                # unless its resource is gone: that one is failed, as is an expired one's.
                want_held = int(role.state == SUSPENDED and role.reason != Reason.RESOURCE_GONE.value)
                if role.state == State.ACTIVE.value:
                    if active != serving or len(active) != 1 or record.channel_id != active[0] or held:
                        wrong_channels.append(f"{sub.index}: store {active}, held {held}, live {serving}")
                elif active or serving or len(held) != want_held:
                    wrong_channels.append(
                        f"{sub.index} ({role.name}): store {active}, held {held}, live {serving}"
                    )
                got = events[sub.id]
                want = collections.Counter(
                    {
                        Event.SUSPENDED.value: int(role.state == SUSPENDED),
                        Event.EXPIRED.value: int(role.state == EXPIRED),
                        Event.EXPIRING.value: role.expiring,
                    }
                )
                unexpected = {k: v for k, v in got.items() if k != Event.RENEWED.value and v != want[k]}
                missing = {k: v for k, v in want.items() if v and got[k] != v}
                if unexpected or missing:
                    wrong_events.append(f"{sub.index} ({role.name}): {dict(got)}")
                reasons = {
                    e["reason"]
                    for e in recorder.events
                    if e["subscription"] == sub.id and e["event"] == Event.SUSPENDED.value
                }
                if role.state == SUSPENDED and reasons != {role.reason}:
                    wrong_events.append(f"{sub.index} ({role.name}): suspended with {reasons}")
                calls = watches[sub.resource]
                if role.refusal:
                    n = sum(1 for c in calls if c.refusal == role.refusal)
                    refused_calls[role.name].append(n)
                    low, high = role.refused
                    if not low <= n <= high:
                        problems.append(f"{sub.index} ({role.name}): {n} refused watch calls")
                if record.state != State.ACTIVE.value:
                    late = sum(1 for c in calls if c.time_ms > (record.since or 0))
                    late_watches += late
            outbox = store.list_subscriptions(events_pending=True)
            renewed_events = sum(1 for e in recorder.events if e["event"] == Event.RENEWED.value)
            handled = recorder.calls
            lost_gap = sum(1 for c in changes if c.must_reach and not c.sent)
            lost_unhandled = sum(1 for c in changes if c.sent and not any(handled[k] for k in c.sent.items()))
            lost = lost_gap + lost_unhandled
            doubled = sum(1 for n in handled.values() if n > 1)
            unserved = sum(1 for c in changes if not c.must_reach and not c.sent)
            overlap = sum(1 for c in changes if sum(handled[k] > 0 for k in c.sent.items()) > 1)
            handler_calls = sum(handled[k] for c in changes for k in c.sent.items())
            statuses = hook.statuses
            accepted = sum(v for s, v in statuses.items() if 200 <= s < 300)
            five_xx = sum(v for s, v in statuses.items() if s >= 500)
            health = check_health(
                store, now_ms=now_ms, expiring_warn=EXPIRING_WARN, quiet_after=DAY, renew_before=RENEW_BEFORE
            )
    store.close()
    expected = collections.Counter(sub.role.state for sub in subs)
    health_counts = {k: v for k, v in health.counts.items() if v}
    if health_counts != dict(expected):
        problems.append(f"health counts {health_counts}, expected {dict(expected)}")
    if renewed_events != summaries["renewed"]:
        problems.append(f"{renewed_events} renewed events for {summaries['renewed']} renewals")
    for label, found in (
        ("in the wrong state", wrong_state),
        ("with the wrong events", wrong_events),
        ("with the wrong channels", wrong_channels),
    ):
        if found:
            problems.append(f"{len(found)} subscriptions {label}: {', '.join(found[:5])}")
    for label, n in (
        ("orphans at Google", len(orphans)),
        ("active channels not live at Google", len(not_live)),
        ("pending channels", len(pending)),
        ("events left in an outbox", len(outbox)),
        ("events for unknown subscriptions", len(foreign_events)),
        ("watch calls after a final transition", late_watches),
    ):
        if n:
            problems.append(f"{n} {label}")
    ok = not problems and lost == 0 and doubled == 0
    final_states = {
        f"{state}" + (f"/{reason}" if reason else ""): n for (state, reason), n in sorted(finals.items())
    }
    event_counts = collections.Counter(e["event"] for e in recorder.events)
    notes = (
        f"{count} subscriptions x {cycles} cycles, seed {seed}, {runs} renewal runs, outcomes "
        f"{dict(summaries)}; end: {final_states}; events {dict(event_counts)}; refused watch calls "
        f"per role {{{', '.join(f'{k}: {min(v)}-{max(v)}' for k, v in refused_calls.items())}}}; "
        f"event deliveries failed by the app (delivered again later) {dict(recorder.failed)}; "
        f"{late_watches} watches after a final transition; {len(orphans)} orphans; "
        f"{unserved} changes of ended subscriptions unserved; {overlap} changes on two overlapping "
        f"channels" + (f"; PROBLEMS: {'; '.join(problems)}" if problems else "")
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
        "subscriptions": count,
        "cycles": cycles,
        "seed": seed,
        "renewal_runs": runs,
        "final_states": final_states,
        "events": dict(event_counts),
        "renewals": summaries["renewed"],
        "renewed_events": renewed_events,
        "failed_event_deliveries": dict(recorder.failed),
        "refused_calls": {k: [min(v), max(v)] for k, v in refused_calls.items()},
        "late_watches": late_watches,
        "orphans": len(orphans),
        "not_live": len(not_live),
        "pending": len(pending),
        "outbox": len(outbox),
        "unserved": unserved,
        "lost_gaps": lost_gap,
        "overlap_deliveries": overlap,
        "problems": problems,
        "details": {
            "roles": dict(collections.Counter(sub.role.name for sub in subs)),
            "outcomes": dict(summaries),
            "health": health_counts,
            "webhook_statuses": {str(k): v for k, v in sorted(statuses.items())},
            "watch_statuses": {str(k): v for k, v in sorted(watch_statuses.items())},
            "handler_states": dict(recorder.states),
            "one_off_faults_unused": dict(left_unused),
            "seconds_spent": {k: round(v, 1) for k, v in spent.items()},
            "wrong_state": wrong_state[:10],
            "wrong_events": wrong_events[:10],
            "wrong_channels": wrong_channels[:10],
            "orphans": orphans[:10],
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
