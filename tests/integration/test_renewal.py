"""Renewal against the Firestore emulator and the simulator, on the simulator's clock.

Time moves by advancing the simulator's clock; the renewer, the subscriber and
the webhook harness all read that clock, so a test can cross days of
expirations without sleeping.
"""

from __future__ import annotations

import threading
import urllib.request

import pytest

from channelkit import renewal
from channelkit.google_api import GoogleApi
from channelkit.reactivate import reactivate
from channelkit.subscribe import subscribe
from channelkit.testing.simulator import Resource

HOUR = 3600
DAY = 24 * HOUR
LEASE = 600


class Crash(BaseException):
    """A process dying mid-step: not an error any code path catches."""


def active_per_subscription(store):
    counts = {}
    for c in store.list(status="active"):
        counts[c.subscription_id] = counts.get(c.subscription_id, 0) + 1
    return counts


def assert_converged(store, simulator):
    """Exactly one active channel per live subscription; Google's live set equals ours."""
    assert set(active_per_subscription(store).values()) <= {1}
    live = {c.id for c in simulator.live_channels()}
    ours = {c.id for c in store.list(status="active")}
    assert live == ours, (live, ours)
    assert not store.list(status="pending")


def test_near_expiry_is_renewed_and_far_is_not(store, simulator, watch, run, handler):
    near = watch("F1", ttl=HOUR)
    far = watch("F2", ttl=DAY)
    summary = run(renew_before=3 * HOUR)
    assert summary.to_json()["renewed"] == 1
    [pair] = summary.renewed
    assert pair["old"] == near.id
    new = store.get(pair["new"])
    old = store.get(near.id)
    assert (old.status, old.renewed_by, new.renews) == ("stopped", new.id, near.id)
    assert new.status == "active" and new.subscription_id == near.subscription_id
    assert (new.token, new.address, new.method_params) == (near.token, near.address, near.method_params)
    assert new.resource_id == near.resource_id and new.expiration > near.expiration
    assert store.get(far.id).status == "active"
    assert {c.id for c in simulator.live_channels()} == {new.id, far.id}
    assert_converged(store, simulator)
    renewed = [(n, c) for n, c in handler.calls if n.state == "renewed"]
    assert len(renewed) == 1 and renewed[0][1].id == new.id and renewed[0][0].channel_id == new.id


def test_overlap_both_channels_accepted_then_old_gone_after_grace(
    store, simulator, watch, google, run, hook, handler
):
    old = watch("F1", ttl=HOUR)
    simulator.wait_for_deliveries(1, channel_id=old.id)

    class ChangeBeforeStop(GoogleApi):
        """While both channels are live at Google, the file changes once."""

        def stop(self, api, version, channel_id, resource_id, **kwargs):
            simulator.change("drive", "files", fileId="F1", state="update", changed=["content"])
            simulator.wait_idle()
            super().stop(api, version, channel_id, resource_id, **kwargs)

    summary = run(google=ChangeBeforeStop(root=simulator.url, retries=0), renew_before=3 * HOUR)
    new_id = summary.renewed[0]["new"]
    updates = [(c, s) for c, n, s in hook.statuses if n > 1]
    assert sorted(c for c, _ in updates) == sorted([old.id, new_id])
    assert {s for _, s in updates} == {200}
    assert sorted(n.channel_id for n in (n for n, _ in handler.calls) if n.state == "update") == sorted(
        [old.id, new_id]
    )

    def deliver_on_old(number):
        request = urllib.request.Request(
            hook.url,
            method="POST",
            data=b"",
            headers={
                "X-Goog-Channel-ID": old.id,
                "X-Goog-Channel-Token": old.token,
                "X-Goog-Message-Number": str(number),
                "X-Goog-Resource-ID": old.resource_id,
                "X-Goog-Resource-State": "update",
                "X-Goog-Resource-URI": old.resource_uri,
            },
        )
        try:
            return urllib.request.urlopen(request, timeout=10).status
        except urllib.error.HTTPError as exc:
            return exc.code

    simulator.clock.advance(30)  # inside the 60 s grace: a late in-flight delivery is taken
    assert deliver_on_old(500) == 200
    simulator.clock.advance(60)  # past the grace
    assert deliver_on_old(600) == 410


def test_two_runs_started_together_renew_each_subscription_once(store, simulator, watch, run):
    channels = [watch(f"F{i}", ttl=HOUR) for i in range(6)]
    results = [None, None]
    barrier = threading.Barrier(2)

    def go(i):
        barrier.wait()
        results[i] = run(renew_before=3 * HOUR)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    renewed = [p["old"] for r in results for p in r.renewed]
    assert sorted(renewed) == sorted(c.id for c in channels)
    watch_calls = [c for c in simulator.calls if c.operation == "drive.files.watch" and c.status == 200]
    assert len(watch_calls) == 12  # 6 subscribes + exactly 6 renewals
    assert_converged(store, simulator)


def test_watch_404_marks_the_subscription_failed_without_retry_loop(store, simulator, watch, run):
    old = watch("F1", ttl=HOUR)
    simulator.fail_next("watch", status=404, message="File not found: F1")
    summary = run(renew_before=3 * HOUR)
    assert summary.to_json()["failed"] == 1
    failed = store.get(old.id)
    assert failed.status == "failed" and "404" in failed.last_error
    assert simulator.channel(old.id).live  # left to expire, not stopped
    calls = len(simulator.calls)
    assert run(renew_before=3 * HOUR).to_json()["renewed"] == 0
    assert len(simulator.calls) == calls  # no retry loop
    assert [c.id for c in simulator.live_channels()] == [old.id]


def test_a_403_keeps_the_old_channel_and_is_retried_next_run(store, simulator, watch, run):
    old = watch("F1", ttl=HOUR)
    simulator.fail_next("watch", status=403)
    summary = run(renew_before=3 * HOUR)
    assert summary.to_json()["skipped"] == 1 and summary.to_json()["renewed"] == 0
    kept = store.get(old.id)
    assert kept.status == "active" and "403" in kept.last_error
    assert store.get_subscription(old.subscription_id).failures == 1
    assert [c.id for c in simulator.live_channels()] == [old.id]
    summary = run(renew_before=3 * HOUR)
    assert summary.to_json()["renewed"] == 1
    assert store.get_subscription(old.subscription_id).failures == 0
    assert_converged(store, simulator)


def test_a_401_suspends_at_once_and_keeps_the_old_channel_serving(store, simulator, watch, run):
    old = watch("F1", ttl=HOUR)
    simulator.fail_next("watch", status=401)
    summary = run(renew_before=3 * HOUR)
    assert summary.to_json()["suspended"] == 1 and summary.to_json()["renewed"] == 0
    kept = store.get(old.id)
    assert kept.status == "active" and kept.held and "401" in kept.last_error
    subscription = store.get_subscription(old.subscription_id)
    assert (subscription.state, subscription.reason) == ("suspended", "CREDENTIALS_INVALID")
    assert [c.id for c in simulator.live_channels()] == [old.id]  # still delivering until it ends
    watches = len([c for c in simulator.calls if c.operation.endswith(".watch")])
    assert run(renew_before=3 * HOUR).to_json()["renewed"] == 0
    assert len([c for c in simulator.calls if c.operation.endswith(".watch")]) == watches


def test_permission_revoked_on_one_file_suspends_it_after_three_runs_until_reactivated(
    store, simulator, watch, run, google
):
    old, other = watch("F1", ttl=HOUR), watch("F2", ttl=HOUR)
    simulator.refuse("permission", {"fileId": "F1"})  # every watch of F1 is refused until lifted
    first = run(renew_before=3 * HOUR)
    assert [p["old"] for p in first.renewed] == [other.id]
    assert run(renew_before=3 * HOUR).to_json()["skipped"] == 1
    third = run(renew_before=3 * HOUR)  # CHANNELKIT_SUSPEND_AFTER = 3 consecutive failed runs
    assert [(s["id"], s["reason"]) for s in third.suspended] == [(old.id, "PERMISSION_DENIED")]
    run(renew_before=3 * HOUR)
    f1 = Resource.of("drive", "files", fileId="F1")
    refused = [c for c in simulator.calls if c.resource == f1 and c.refusal == "permission"]
    assert [c.status for c in refused] == [403, 403, 403]  # one try per run, none once suspended
    kept = store.get(old.id)
    assert kept.status == "active" and "403 insufficientPermissions" in kept.last_error
    assert simulator.channel(old.id).live
    assert simulator.unrefuse("permission") == 1  # permission restored
    assert old.id not in [p["old"] for p in run(renew_before=3 * HOUR).renewed]  # suspended: left alone
    new = reactivate(old.subscription_id, store=store, google=google, dispatcher=lambda n, c: None)
    assert store.get_subscription(old.subscription_id).state == "active"
    assert store.get(old.id).status == "stopped" and store.get(new.id).status == "active"
    assert_converged(store, simulator)


def test_transient_failure_is_retried_within_the_run(store, simulator, watch, run, google):
    watch("F1", ttl=HOUR)
    simulator.fail_next("watch", status=503, count=1)
    summary = run(renew_before=3 * HOUR, google=GoogleApi(root=simulator.url, retries=2))
    assert summary.to_json()["renewed"] == 1
    assert_converged(store, simulator)


def test_transient_failure_after_retries_is_left_for_the_next_run(store, simulator, watch, run):
    old = watch("F1", ttl=HOUR)
    simulator.fail_next("watch", status=500, count=1)
    summary = run(renew_before=3 * HOUR)  # retries=0
    assert summary.to_json()["renewed"] == 0 and summary.to_json()["skipped"] == 1
    assert store.get(old.id).status == "active"
    assert [c.id for c in simulator.live_channels()] == [old.id]
    assert run(renew_before=3 * HOUR).to_json()["renewed"] == 1
    assert_converged(store, simulator)


def test_failed_stop_is_recorded_and_retried_next_run(store, simulator, watch, run):
    old = watch("F1", ttl=2 * HOUR)
    simulator.fail_next("stop", status=403)
    summary = run(renew_before=3 * HOUR)
    assert summary.to_json()["renewed"] == 1 and summary.to_json()["stopped"] == 0
    kept = store.get(old.id)
    assert kept.status == "stopped" and kept.stop_pending
    assert old.id in {c.id for c in simulator.live_channels()}
    summary = run(renew_before=HOUR)  # the successor (2 h) is not due: only the stop is left
    assert summary.stopped == [old.id] and summary.renewed == []
    assert not store.get(old.id).stop_pending
    assert_converged(store, simulator)


# --- crashes between steps ----------------------------------------------------------


def crash_once(monkeypatch, obj, name, *, after=False):
    """Make ``obj.name`` die once: before doing its work, or just after."""
    real = getattr(obj, name)
    state = {"armed": True}

    def dying(*args, **kwargs):
        if state["armed"] and not after:
            state["armed"] = False
            raise Crash(name)
        result = real(*args, **kwargs)
        if state["armed"]:
            state["armed"] = False
            raise Crash(name)
        return result

    monkeypatch.setattr(obj, name, dying)


@pytest.mark.parametrize(
    "step",
    [
        "lease and successor committed",  # died before watch
        "watch done",  # watch went through at Google, nothing recorded
        "renewal committed",  # successor active, renewed recorded, old retired: died before delivering
        "event delivered",  # died before stopping the old channel at Google
        "old stopped at Google",  # died before recording the stop and the delivered event
    ],
)
def test_a_crash_after_any_step_converges_on_the_next_run(
    store, simulator, watch, run, google, monkeypatch, step, handler
):
    old = watch("F1", ttl=HOUR)
    if step == "lease and successor committed":
        crash_once(monkeypatch, google, "watch")
    elif step == "watch done":
        crash_once(monkeypatch, google, "watch", after=True)
    elif step == "renewal committed":
        crash_once(monkeypatch, renewal.renewer, "dispatch_events")
    elif step == "event delivered":
        crash_once(monkeypatch, renewal.renewer, "stop_call")
    else:
        crash_once(monkeypatch, renewal.renewer, "stop_call", after=True)
    with pytest.raises(Crash):
        run(renew_before=3 * HOUR, concurrency=1)
    monkeypatch.undo()
    simulator.clock.advance(LEASE + 1)  # the crashed run's lease lapses
    run(renew_before=3 * HOUR)
    assert_converged(store, simulator)
    [active] = store.list(status="active")
    assert active.subscription_id == old.subscription_id and active.id != old.id
    assert store.get(old.id).status == "stopped"
    # The app heard of the renewal (at least once), whatever step the crash hit.
    assert "renewed" in handler.states()
    # Every channel Google ever had is recorded by us.
    recorded = {c.id for c in store.list()}
    assert {c.id for c in simulator.channels()} <= recorded


def test_a_crashed_subscribe_is_swept(store, simulator, google, clock, hook, monkeypatch, run):
    crash_once(monkeypatch, google, "watch", after=True)
    with pytest.raises(Crash):
        subscribe(
            "drive",
            "v3",
            "files.watch",
            address=hook.url,
            params={"fileId": "F9"},
            store=store,
            google=google,
            clock=clock,
        )
    monkeypatch.undo()
    [pending] = store.list(status="pending")
    assert simulator.channel(pending.id).live
    # Its sync reached the webhook, which taught the pending channel its resource id.
    simulator.wait_for(lambda: store.get(pending.id).resource_id)
    simulator.clock.advance(LEASE + 1)
    summary = run()
    assert summary.to_json()["failed"] == 1
    assert store.get(pending.id).status == "failed"
    assert simulator.live_channels() == []


# --- scale and time ----------------------------------------------------------------


def test_parallelism_is_bounded(store, simulator, watch, run):
    for i in range(8):
        watch(f"F{i}", ttl=HOUR)
    simulator.latency = 0.05
    in_flight, peak, lock = [0], [0], threading.Lock()

    class Counting(GoogleApi):
        def watch(self, *args, **kwargs):
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            try:
                return super().watch(*args, **kwargs)
            finally:
                with lock:
                    in_flight[0] -= 1

    summary = run(renew_before=3 * HOUR, concurrency=3, google=Counting(root=simulator.url, retries=0))
    assert summary.to_json()["renewed"] == 8
    assert 1 < peak[0] <= 3


def test_a_run_past_its_budget_defers_the_rest(store, simulator, watch, run):
    for i in range(3):
        watch(f"F{i}", ttl=HOUR)
    summary = run(renew_before=3 * HOUR, budget_seconds=0)
    assert summary.to_json()["deferred"] == 3 and summary.to_json()["renewed"] == 0
    assert run(renew_before=3 * HOUR).to_json()["renewed"] == 3


def test_a_subscription_stays_served_across_30_renewal_cycles(store, simulator, watch, run, handler, hook):
    first = watch("F1", ttl=DAY)
    simulator.wait_for_deliveries(1, channel_id=first.id)
    sent = []
    for cycle in range(30):
        simulator.clock.advance(DAY - 2 * HOUR)  # inside the 3 h renewal window
        summary = run(renew_before=3 * HOUR)
        assert summary.to_json()["renewed"] == 1, (cycle, summary.to_json())
        live = simulator.live_channels()
        assert len(live) == 1, cycle
        [active] = store.list(status="active")
        assert live[0].id == active.id and active.subscription_id == first.subscription_id
        queued = simulator.change("drive", "files", fileId="F1", state="update", changed=["content"])
        sent.extend(queued.items())
        simulator.wait_idle()
    received = [(n.channel_id, n.message_number) for n, _ in handler.calls if n.state == "update"]
    assert sorted(received) == sorted(sent) and len(received) == 30
    assert handler.states().count("renewed") == 30
    assert handler.states().count("sync") == 31


def test_progress_is_reported_for_every_due_channel(store, simulator, watch, run):
    for i in range(3):
        watch(f"F{i}", ttl=HOUR)
    seen = []
    run(renew_before=3 * HOUR, concurrency=1, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


# --- a run that stalls past its lease while another renews ------------------------------


def test_a_stalled_run_finishing_after_another_keeps_one_active_channel(
    store, simulator, watch, run, monkeypatch
):
    """A watched its successor, stalls past its lease before its commit; B abandons A's
    successor and renews; A's commit is refused, and A stops its successor at Google."""
    old = watch("F1", ttl=4 * HOUR)
    simulator.clock.advance(2 * HOUR)  # due now; a successor (4 h) will not be
    real_record = renewal.Renewer._record_renewal
    other = {}

    def stalled_record(self, r):
        if not other:
            other["started"] = True  # B itself records normally
            simulator.clock.advance(LEASE + 1)  # A's lease lapses while it stalls
            other["summary"] = run(renew_before=3 * HOUR)
        return real_record(self, r)

    monkeypatch.setattr(renewal.Renewer, "_record_renewal", stalled_record)
    first = run(renew_before=3 * HOUR)
    assert [p["old"] for p in other["summary"].renewed] == [old.id]
    assert first.renewed == [] and first.skipped[0]["reason"] == "stopped during renewal"
    assert_converged(store, simulator)
    assert store.get(old.id).renewed_by == other["summary"].renewed[0]["new"]


def test_a_slow_watch_overtaken_by_another_run_keeps_one_active_channel(
    store, simulator, watch, run, google, monkeypatch
):
    """A's watch is slow; B abandons A's pending successor, renews, and A backs off."""
    old = watch("F1", ttl=4 * HOUR)
    simulator.clock.advance(2 * HOUR)  # due now; a successor (4 h) will not be
    real_watch = google.watch
    other = {}

    def slow_watch(*args, **kwargs):
        response = real_watch(*args, **kwargs)
        if not other:
            simulator.clock.advance(LEASE + 1)
            monkeypatch.setattr(google, "watch", real_watch)
            other["summary"] = run(renew_before=3 * HOUR)
        return response

    monkeypatch.setattr(google, "watch", slow_watch)
    first = run(renew_before=3 * HOUR)
    assert [p["old"] for p in other["summary"].renewed] == [old.id]
    assert first.renewed == []
    assert_converged(store, simulator)


def test_renewals_come_before_retried_stops_and_the_sweep(store, simulator, watch, run, google):
    """A Google stop that keeps failing can never starve the renewal of live subscriptions."""
    from channelkit.errors import AuthError
    from channelkit.subscribe import stop

    leftover = watch("F0", ttl=DAY)
    simulator.fail_next("stop", status=403)
    with pytest.raises(AuthError):
        stop(leftover.id, store=store, google=google)
    assert store.get(leftover.id).stop_pending
    due = watch("F1", ttl=HOUR)
    calls_before = len(simulator.calls)
    summary = run(renew_before=3 * HOUR, concurrency=1)
    ops = [c.operation for c in simulator.calls[calls_before:]]
    assert ops[0] == "drive.files.watch"  # the renewal went first
    assert "drive.channels.stop" in ops
    assert summary.renewed[0]["old"] == due.id and leftover.id in summary.stopped


# --- round trips ----------------------------------------------------------------------


def test_a_clean_renewal_reads_its_subscription_once_and_commits_three_times(
    store, simulator, watch, google, handler, clock
):
    """Lease + successor; successor active + renewed + old retired; stop + event delivered."""
    import collections

    from channelkit.store import open_store

    channels = [watch(f"F{i}", ttl=HOUR) for i in range(3)]
    fresh = open_store()  # a new instance: nothing remembered of the subscribes
    calls: collections.Counter = collections.Counter()
    primitives = (
        "_read",
        "_doc_read",
        "_commit",
        "_insert",
        "_compare_and_set",
        "_doc_insert",
        "_doc_replace",
        "_doc_touch",
        "_doc_write",
    )
    for name in primitives:
        real = getattr(fresh, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            if threading.current_thread().name.startswith("renew"):  # the channels' work, not the run's
                calls[_name] += 1
            return _real(*args, **kwargs)

        setattr(fresh, name, counted)
    summary = renewal.renew_due(
        store=fresh,
        google=google,
        dispatcher=handler,
        clock=clock,
        lease_seconds=LEASE,
        renew_before=3 * HOUR,
    )
    fresh.close()
    assert len(summary.renewed) == len(channels) and len(summary.stopped) == len(channels)
    assert calls == {"_doc_read": 3, "_commit": 9}, calls
    assert_converged(store, simulator)
    assert sum(1 for n, _ in handler.calls if n.state == "renewed") == len(channels)
    assert all(not s.events for s in store.list_subscriptions())  # every event delivered and taken out
