"""The sync lease on both store backends: of racing syncs exactly one takes it, the rest leave one mark."""

from __future__ import annotations

import concurrent.futures

from channelkit.subscription import Subscription
from channelkit.sync_lease import Acquired, SyncLease
from support.store_backends import store  # noqa: F401 - the fixture, once per backend


def lease(store, owner, now_ms=1_000):
    return SyncLease(store, "S", owner, lease_ms=60_000, clock_ms=lambda: now_ms)


def test_of_racing_syncs_one_takes_the_lease_and_the_others_leave_one_mark(store):
    store.create_subscription(
        Subscription(id="S", api="drive", version="v3", method="changes.watch", sync=True)
    )
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: lease(store, f"o{i}").acquire()[0], range(16)))
    assert outcomes.count(Acquired.TAKEN) == 1 and outcomes.count(Acquired.MARKED) == 15
    stored = store.get_subscription("S")
    assert stored.sync_again and stored.sync_owner
    holder = lease(store, stored.sync_owner)
    assert holder.save("cursor-2").cursor == "cursor-2"
    assert holder.finish() is True and holder.finish() is False
    after = store.get_subscription("S")
    assert after.sync_owner is None and after.cursor == "cursor-2" and after.last_sync_at == 1_000


def test_a_lapsed_lease_is_taken_over_and_a_plain_subscription_has_none(store):
    store.create_subscription(
        Subscription(id="S", api="drive", version="v3", method="changes.watch", sync=True)
    )
    assert lease(store, "crashed").acquire()[0] is Acquired.TAKEN
    assert lease(store, "next", now_ms=61_000).acquire()[0] is Acquired.TAKEN
    store.create_subscription(Subscription(id="P"))
    plain = SyncLease(store, "P", "x", lease_ms=1, clock_ms=lambda: 0)
    assert plain.acquire() == (Acquired.INACTIVE, None)
    assert store.list_subscriptions(sync=True)[0].id == "S"


def test_a_notification_finding_the_lease_held_and_marked_reads_the_record_once_and_writes_nothing(
    store, monkeypatch
):
    store.create_subscription(
        Subscription(id="S", api="drive", version="v3", method="changes.watch", sync=True)
    )
    assert lease(store, "holder").acquire()[0] is Acquired.TAKEN
    assert lease(store, "first").acquire()[0] is Acquired.MARKED
    reads, writes = [], []
    read, replace = store._doc_read, store._doc_replace
    monkeypatch.setattr(store, "_doc_read", lambda *a, **k: reads.append(a) or read(*a, **k))
    monkeypatch.setattr(store, "_doc_replace", lambda *a, **k: writes.append(a) or replace(*a, **k))
    assert lease(store, "second").acquire() == (Acquired.MARKED, None)
    assert (len(reads), len(writes)) == (1, 0)  # the decision not to write, on a fresh read
