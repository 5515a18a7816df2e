"""Renewal fan-out on the emulators: a run publishes shards to the real Pub/Sub emulator, and
``renew_shard`` renews them under the run's leases (Firestore emulator, simulator's clock).

Processes under functions-framework, pushed to by the emulator, are in
tests/e2e/test_renew_worker.py; here the worker's library function runs in this
process, so that a race and a crash can be placed exactly.
"""

from __future__ import annotations

import collections
import threading
import uuid

import pytest

from channelkit.errors import StoreUnavailable
from channelkit.renewal.fanout import Shard, ShardPublisher, parse_shard, renew_shard
from support.pubsub_testing import PROJECT, pubsub, pull_all, topic  # noqa: F401 - fixtures

HOUR = 3600
DAY = 24 * HOUR
LEASE = 600


class Crash(BaseException):
    """A worker dying mid-shard: not an error any code path catches."""


@pytest.fixture
def shard_of(clock):
    """A shard of these subscriptions, listed now (on the simulator's clock)."""

    def make(*subscription_ids):
        return Shard(tuple(subscription_ids), int(clock() * 1000), "renew-test")

    return make


@pytest.fixture
def shard_renewal(store, google, handler, clock):
    """``renew_shard`` as the worker calls it, on the simulator's clock."""

    def renew(shard, **options):
        options.setdefault("google", google)
        options.setdefault("dispatcher", handler)
        options.setdefault("renew_before", 3 * HOUR)
        options.setdefault("lease_seconds", LEASE)
        return renew_shard(shard, store=store, clock=clock, **options)

    return renew


def subscriptions(watch, simulator, n):
    """``n`` subscriptions of a day (as Drive grants), two hours from their end: due, and their
    successors (a day again) are not."""
    made = [watch(f"F{i}", ttl=DAY) for i in range(n)]
    simulator.clock.advance(DAY - 2 * HOUR)
    return made


def assert_each_renewed_once(store, simulator, channels, *, strict=True):
    """Each subscription: its old channel retired to exactly one successor, the only live one.

    ``strict``: and no other channel was ever made for it (no second watch); a crash
    may leave one more, abandoned (failed, stopped at Google)."""
    made = collections.Counter(dict(c.resource.params).get("fileId") for c in simulator.channels())
    for old in channels:
        mine = store.list(subscription_id=old.subscription_id)
        [active] = [c for c in mine if c.status == "active"]
        assert active.renews == old.id and store.get(old.id).renewed_by == active.id
        assert store.get(old.id).status == "stopped" and not store.get(old.id).stop_pending
        if strict:
            assert len(mine) == 2, [(c.id, c.status) for c in mine]
            assert made[old.method_params["fileId"]] == 2  # one watch to make it, one to renew it
        else:
            assert {c.status for c in mine if c.id not in (old.id, active.id)} <= {"failed"}
    live = {c.id for c in simulator.live_channels()}
    assert live == {c.id for c in store.list(status="active")}


def test_a_run_past_its_inline_limit_publishes_the_rest_in_shards(
    store, simulator, watch, run, pubsub, topic
):
    publisher, subscriber = pubsub
    topic_path, sub_path = topic
    channels = subscriptions(watch, simulator, 7)
    summary = run(
        renew_before=3 * HOUR, publisher=ShardPublisher(topic_path), renew_inline=2, shard_size=2
    ).to_json()
    assert (summary["renewed"], summary["published"], summary["deferred"]) == (2, 5, 0)
    # The soonest two were renewed by the run; the other five went out, each once, two to a shard.
    soonest = sorted(channels, key=lambda c: (c.expiration, c.id))
    assert {p["old"] for p in summary["details"]["renewed"]} == {c.id for c in soonest[:2]}
    rest = {c.subscription_id for c in soonest[2:]}
    shards = [parse_shard(m.data) for m in pull_all(subscriber, sub_path, expected=3)]
    assert sorted(len(s.subscriptions) for s in shards) == [1, 2, 2]
    published = [s for shard in shards for s in shard.subscriptions]
    assert sorted(published) == sorted(rest) == sorted(summary["details"]["published"])
    assert all(store.get(c.id).status == "active" for c in soonest[2:])  # left to the workers


def test_without_a_topic_the_run_renews_everything_itself(store, simulator, watch, run, monkeypatch):
    monkeypatch.delenv("CHANNELKIT_RENEW_TOPIC", raising=False)
    subscriptions(watch, simulator, 3)
    summary = run(renew_before=3 * HOUR, renew_inline=1).to_json()
    assert (summary["renewed"], summary["published"]) == (3, 0)


def test_shards_pub_sub_does_not_take_are_deferred_to_the_next_run(store, simulator, watch, run, pubsub):
    channels = subscriptions(watch, simulator, 3)
    missing = f"projects/{PROJECT}/topics/missing-{uuid.uuid4().hex[:8]}"
    summary = run(renew_before=3 * HOUR, publisher=ShardPublisher(missing, timeout=5), renew_inline=1)
    counts = summary.to_json()
    assert (counts["renewed"], counts["published"], counts["deferred"]) == (1, 0, 2)
    assert set(summary.deferred) == {c.id for c in sorted(channels, key=lambda c: (c.expiration, c.id))[1:]}
    assert {p["old"] for p in run(renew_before=3 * HOUR).renewed} == set(summary.deferred)


def test_renew_shard_renews_every_listed_due_subscription(
    store, simulator, watch, shard_of, shard_renewal, handler
):
    channels = subscriptions(watch, simulator, 4)
    summary = shard_renewal(shard_of(*(c.subscription_id for c in channels)))
    assert summary.to_json()["renewed"] == 4 and summary.to_json()["stopped"] == 4
    assert_each_renewed_once(store, simulator, channels)
    assert handler.states().count("renewed") == 4


def test_a_subscription_renewed_meanwhile_or_not_due_is_skipped(
    store, simulator, watch, run, shard_of, shard_renewal
):
    near, far = watch("F1", ttl=HOUR), watch("F2", ttl=DAY)
    shard = shard_of(near.subscription_id, far.subscription_id, "no-such-subscription")
    # A run got there first. Its successor lives an hour too (due again within the 3 h window),
    # but it was made after the shard was listed: a renewal made meanwhile.
    simulator.clock.advance(1)
    assert run(renew_before=3 * HOUR).to_json()["renewed"] == 1
    made = len(simulator.channels())
    summary = shard_renewal(shard).to_json()
    assert (summary["renewed"], summary["skipped"]) == (0, 3)
    assert len(simulator.channels()) == made  # no watch at all


def test_two_workers_on_the_same_shard_renew_each_subscription_once(
    store, simulator, watch, shard_of, shard_renewal, handler
):
    channels = subscriptions(watch, simulator, 12)
    shard = shard_of(*(c.subscription_id for c in channels))
    results, barrier = [], threading.Barrier(2)

    def worker():
        barrier.wait()
        results.append(shard_renewal(shard, concurrency=4).to_json())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["renewed"] for r in results) == 12
    assert sum(r["skipped"] for r in results) == 12  # each lost race is a skip, never a second watch
    assert_each_renewed_once(store, simulator, channels)
    assert handler.states().count("renewed") == 12


def test_a_worker_crash_mid_shard_converges_on_redelivery_and_the_next_run(
    store, simulator, watch, shard_of, shard_renewal, run, google, monkeypatch
):
    channels = subscriptions(watch, simulator, 6)
    shard = shard_of(*(c.subscription_id for c in channels))
    real_watch, calls = google.watch, [0]
    real_claim, real_together = store.claim_lease, store.write_together

    def watch_then_die(*args, **kwargs):  # the third watch goes through at Google, then the worker dies
        result = real_watch(*args, **kwargs)
        calls[0] += 1
        if calls[0] == 3:
            raise Crash("worker killed")
        return result

    def unless_dead(real):  # a dead worker claims (or writes) nothing more
        def write(*args, **kwargs):
            if calls[0] >= 3:
                raise Crash("worker killed")
            return real(*args, **kwargs)

        return write

    with monkeypatch.context() as patch:
        patch.setattr(google, "watch", watch_then_die)
        patch.setattr(store, "claim_lease", unless_dead(real_claim))
        patch.setattr(store, "write_together", unless_dead(real_together))
        with pytest.raises(Crash):
            shard_renewal(shard, concurrency=1)
    # Pub/Sub redelivers the shard at once: what the dead worker holds is skipped, the rest renewed.
    redelivered = shard_renewal(shard).to_json()
    assert redelivered["renewed"] == 6 - 3 and redelivered["skipped"] == 3
    simulator.clock.advance(LEASE + 1)  # the dead worker's lease lapses: the next run finishes its work
    assert run(renew_before=3 * HOUR).to_json()["renewed"] == 1
    assert_each_renewed_once(store, simulator, channels, strict=False)


def test_a_store_failure_for_one_subscription_fails_the_shard_after_the_others(
    store, simulator, watch, shard_of, shard_renewal, monkeypatch
):
    channels = subscriptions(watch, simulator, 3)
    shard = shard_of(*(c.subscription_id for c in channels))
    real_list = store.list

    def failing(**kwargs):
        if kwargs.get("subscription_id") == channels[1].subscription_id:
            raise StoreUnavailable("firestore timed out")
        return real_list(**kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(store, "list", failing)
        with pytest.raises(StoreUnavailable):  # the function fails: Pub/Sub redelivers the shard
            shard_renewal(shard)
    assert [store.get(c.id).status for c in channels] == ["stopped", "active", "stopped"]
    redelivered = shard_renewal(shard).to_json()
    assert (redelivered["renewed"], redelivered["skipped"]) == (1, 2)


def test_renewals_the_budget_leaves_unstarted_go_to_the_workers(store, simulator, watch, run, pubsub, topic):
    _, subscriber = pubsub
    topic_path, sub_path = topic
    channels = subscriptions(watch, simulator, 3)
    summary = run(renew_before=3 * HOUR, publisher=ShardPublisher(topic_path), budget_seconds=0).to_json()
    assert (summary["renewed"], summary["published"], summary["deferred"]) == (0, 3, 0)
    [message] = pull_all(subscriber, sub_path, expected=1)
    assert sorted(parse_shard(message.data).subscriptions) == sorted(c.subscription_id for c in channels)
