"""One contract for every ChannelStore backend, run unchanged against each.

Firestore runs on the real emulator; SQLite on a file in tmp_path.
"""

from __future__ import annotations

import datetime
import threading
import uuid

import pytest

from channelkit.channel import Channel
from channelkit.errors import (
    ChannelConflictError,
    ChannelExistsError,
    ChannelNotFoundError,
)
from channelkit.store import ClaimOutcome
from channelkit.store.batches import CHANNELS, ChangeChannel, ChangeSubscription, NewChannel, Write
from support.store_backends import message_store, store  # noqa: F401 - the fixtures, over every backend

UTC = datetime.UTC
NOW = 1_900_000_000_000  # ms
HOUR = 3_600_000


def make(status="active", expiration=NOW + 10 * HOUR, **fields) -> Channel:
    values = dict(
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id="sub-" + uuid.uuid4().hex[:8],
        status=status,
        created_at=datetime.datetime(2030, 1, 1, tzinfo=UTC),
    )
    values.update(fields)
    return Channel(
        "web_hook",
        str(uuid.uuid4()),
        "tok",
        "https://x.example/hook",
        expiration=expiration,
        params={"ttl": "60"},
        **values,
    )


def run_concurrently(n, fn):
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def worker(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


# --- channels ---------------------------------------------------------------------


def test_create_then_get_round_trips_every_field(store):
    c = make(resource_id="res-1", resource_uri="https://r", renews="old-1", last_error="x")
    store.create(c)
    got = store.get(c.id)
    assert got == c
    assert type(got.expiration) is int and got.created_at.tzinfo is not None


def test_create_is_create_only(store):
    c = make()
    store.create(c)
    with pytest.raises(ChannelExistsError):
        store.create(c.copy(address="https://other"))
    assert store.get(c.id).address == "https://x.example/hook"


def test_get_unknown_raises_and_find_returns_none(store):
    with pytest.raises(ChannelNotFoundError):
        store.get("nope")
    assert store.find("nope") is None


def test_update_changes_fields_and_none_removes_them(store):
    c = make(status="pending", last_error="boom")
    store.create(c)
    updated = store.update(c.id, status="active", resource_id="res-7", last_error=None)
    assert (updated.status, updated.resource_id, updated.last_error) == ("active", "res-7", None)
    assert store.get(c.id) == updated


def test_update_with_expected_status_refuses_other_statuses(store):
    c = make(status="stopped")
    store.create(c)
    with pytest.raises(ChannelConflictError):
        store.update(c.id, expect_status=("pending", "active"), status="active")
    assert store.get(c.id).status == "stopped"
    assert store.update(c.id, expect_status="stopped", last_error="e").last_error == "e"


def test_update_unknown_channel_raises(store):
    with pytest.raises(ChannelNotFoundError):
        store.update("nope", status="active")


def test_update_rejects_unknown_fields(store):
    c = make()
    store.create(c)
    with pytest.raises(ValueError):
        store.update(c.id, colour="red")


def test_list_filters_by_status_and_subscription(store):
    a, b, c = make(status="active"), make(status="stopped"), make(status="active")
    for ch in (a, b, c):
        store.create(ch)
    assert {x.id for x in store.list()} == {a.id, b.id, c.id}
    assert {x.id for x in store.list(status="active")} == {a.id, c.id}
    assert [x.id for x in store.list(subscription_id=b.subscription_id)] == [b.id]


def test_due_for_renewal_finds_only_active_channels_near_expiry(store):
    soon = make(expiration=NOW + 1 * HOUR)
    sooner = make(expiration=NOW + HOUR // 2)
    far = make(expiration=NOW + 48 * HOUR)
    pending = make(status="pending", expiration=NOW + HOUR)
    stopped = make(status="stopped", expiration=NOW + HOUR)
    for ch in (soon, sooner, far, pending, stopped):
        store.create(ch)
    due = store.due_for_renewal(NOW + 3 * HOUR)
    assert [c.id for c in due] == [sooner.id, soon.id]
    assert [c.id for c in store.due_for_renewal(NOW + 3 * HOUR, limit=1)] == [sooner.id]


def test_due_for_renewal_follows_status_changes(store):
    c = make(status="pending", expiration=NOW + HOUR)
    store.create(c)
    assert store.due_for_renewal(NOW + 3 * HOUR) == []
    store.update(c.id, status="active")
    assert [x.id for x in store.due_for_renewal(NOW + 3 * HOUR)] == [c.id]
    store.update(c.id, status="stopped")
    assert store.due_for_renewal(NOW + 3 * HOUR) == []


def test_pending_stops_lists_channels_marked_for_a_later_stop(store):
    a, b = make(status="stopped", stop_pending=True), make(status="stopped")
    store.create(a)
    store.create(b)
    assert [c.id for c in store.pending_stops()] == [a.id]
    store.update(a.id, stop_pending=None)
    assert store.pending_stops() == []


# --- renewal leases -----------------------------------------------------------------


def test_lease_is_exclusive_until_released_or_expired(store):
    c = make()
    store.create(c)
    mine = store.claim_lease(c.id, "run-a", now_ms=NOW, lease_seconds=60)
    assert mine is not None and mine.lease_owner == "run-a"
    assert store.claim_lease(c.id, "run-b", now_ms=NOW + 1000, lease_seconds=60) is None
    # expired lease may be taken
    taken = store.claim_lease(c.id, "run-b", now_ms=NOW + 61_000, lease_seconds=60)
    assert taken is not None and taken.lease_owner == "run-b"
    store.release_lease(c.id, "run-a")  # not the holder: no effect
    assert store.get(c.id).lease_owner == "run-b"
    store.release_lease(c.id, "run-b")
    assert store.get(c.id).lease_owner is None
    assert store.claim_lease(c.id, "run-c", now_ms=NOW + 62_000, lease_seconds=60) is not None


def test_lease_requires_the_expected_status(store):
    c = make(status="stopped")
    store.create(c)
    assert store.claim_lease(c.id, "run-a", now_ms=NOW, lease_seconds=60) is None
    assert store.claim_lease("missing", "run-a", now_ms=NOW, lease_seconds=60) is None


def test_concurrent_lease_claims_have_exactly_one_winner(store):
    c = make()
    store.create(c)
    results = run_concurrently(
        12, lambda i: store.claim_lease(c.id, f"run-{i}", now_ms=NOW, lease_seconds=60)
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert store.get(c.id).lease_owner == winners[0].lease_owner


# --- message claims -----------------------------------------------------------------


def test_message_claim_lifecycle(message_store):
    store = message_store
    c = make()
    store.create(c)
    first = store.claim_message(c.id, 7, now_ms=NOW, timeout_seconds=60)
    assert first.outcome is ClaimOutcome.CLAIMED
    assert store.claim_message(c.id, 7, now_ms=NOW, timeout_seconds=60).outcome is ClaimOutcome.IN_PROGRESS
    assert store.claim_message(c.id, 8, now_ms=NOW, timeout_seconds=60).outcome is ClaimOutcome.CLAIMED
    assert store.finish_message(first)
    assert store.claim_message(c.id, 7, now_ms=NOW, timeout_seconds=60).outcome is ClaimOutcome.DONE


def test_a_finished_message_keeps_its_claim_time_and_ttl(message_store):
    store = message_store
    c = make()
    store.create(c)
    claim = store.claim_message(c.id, 9, now_ms=NOW, timeout_seconds=60)
    claimed, _ = store._read_message(c.id, 9)
    assert store.finish_message(claim)
    done, _ = store._read_message(c.id, 9)
    assert done["status"] == "done" and claimed["status"] == "in_progress"
    for field in ("claimedAt", "expireAt", "claimId"):  # expireAt: Firestore TTL deletes it later
        assert done[field] == claimed[field], field


def test_a_claim_whose_version_changed_without_a_takeover_is_still_settled_by_its_owner(message_store):
    store = message_store
    # A restored record (the emulator's import rewrites update times) or an attempt of
    # ours that landed though its answer was lost: the claimId, not the version, decides.
    c = make()
    store.create(c)
    first = store.claim_message(c.id, 11, now_ms=NOW, timeout_seconds=60)
    assert store._update_message(c.id, 11, {"touched": True}, first.version) is not None
    assert store.finish_message(first)
    assert store._read_message(c.id, 11)[0]["status"] == "done"
    assert store.finish_message(first)  # again: already done by us
    second = store.claim_message(c.id, 12, now_ms=NOW, timeout_seconds=60)
    assert store._update_message(c.id, 12, {"touched": True}, second.version) is not None
    assert store.release_message(second)
    assert store._read_message(c.id, 12) is None


def test_a_taken_over_claim_is_neither_finished_nor_released_by_its_first_owner(message_store):
    store = message_store
    c = make()
    store.create(c)
    first = store.claim_message(c.id, 13, now_ms=NOW, timeout_seconds=60)
    second = store.claim_message(c.id, 13, now_ms=NOW + 61_000, timeout_seconds=60)
    assert second.claimed and second.claim_id != first.claim_id
    assert not store.finish_message(first) and not store.release_message(first)
    assert store._read_message(c.id, 13)[0]["status"] == "in_progress"
    assert store.finish_message(second)


def test_released_message_can_be_claimed_again(message_store):
    store = message_store
    c = make()
    store.create(c)
    claim = store.claim_message(c.id, 3, now_ms=NOW, timeout_seconds=60)
    assert store.release_message(claim)
    again = store.claim_message(c.id, 3, now_ms=NOW, timeout_seconds=60)
    assert again.outcome is ClaimOutcome.CLAIMED
    assert not store.release_message(claim)  # the old claim no longer owns it
    assert store.claim_message(c.id, 3, now_ms=NOW, timeout_seconds=60).outcome is ClaimOutcome.IN_PROGRESS


def test_abandoned_claim_is_taken_over_after_the_timeout(message_store):
    store = message_store
    c = make()
    store.create(c)
    crashed = store.claim_message(c.id, 5, now_ms=NOW, timeout_seconds=60)
    assert (
        store.claim_message(c.id, 5, now_ms=NOW + 59_000, timeout_seconds=60).outcome
        is ClaimOutcome.IN_PROGRESS
    )
    retry = store.claim_message(c.id, 5, now_ms=NOW + 61_000, timeout_seconds=60)
    assert retry.outcome is ClaimOutcome.CLAIMED
    # the crashed instance waking up cannot finish or release the new claim
    assert not store.finish_message(crashed)
    assert not store.release_message(crashed)
    assert store.finish_message(retry)
    assert store.claim_message(c.id, 5, now_ms=NOW + 63_000, timeout_seconds=60).outcome is ClaimOutcome.DONE


def test_finish_or_release_needs_a_claim(message_store):
    store = message_store
    c = make()
    store.create(c)
    store.claim_message(c.id, 1, now_ms=NOW, timeout_seconds=60)
    busy = store.claim_message(c.id, 1, now_ms=NOW, timeout_seconds=60)
    with pytest.raises(ValueError):
        store.finish_message(busy)


def test_concurrent_claims_of_one_message_have_exactly_one_winner(message_store):
    store = message_store
    c = make()
    store.create(c)
    results = run_concurrently(16, lambda i: store.claim_message(c.id, 42, now_ms=NOW, timeout_seconds=60))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    assert outcomes.count(ClaimOutcome.IN_PROGRESS) == 15


def test_message_records_carry_a_ttl_field(message_store):
    store = message_store
    c = make()
    store.create(c)
    claim = store.claim_message(c.id, 9, now_ms=NOW, timeout_seconds=60)
    record, _ = store._read_message(c.id, 9)
    assert record["status"] == "in_progress"
    assert record["expireAt"] > record["claimedAt"]
    store.finish_message(claim)
    assert store._read_message(c.id, 9)[0]["status"] == "done"


def test_channel_records_carry_a_ttl_field_long_after_expiry(store):
    c = make(expiration=NOW)
    store.create(c)
    record, _ = store._read(c.id)
    expiry = datetime.datetime.fromtimestamp(NOW / 1000, tz=UTC)
    assert record["expireAt"] >= expiry + datetime.timedelta(days=1)


@pytest.mark.parametrize("channel_id", ["a/b+c=d", "__reserved__", "_x_", "/lead", "x" * 64])
def test_every_channel_id_google_accepts_can_be_stored(store, channel_id):
    c = make().copy(id=channel_id)
    store.create(c)
    assert store.get(channel_id) == c
    assert store.update(channel_id, status="stopped").status == "stopped"
    claim = store.claim_message(channel_id, 1, now_ms=NOW, timeout_seconds=60)
    assert claim.claimed and store.finish_message(claim)
    assert [x.id for x in store.list()] == [channel_id]


def test_record_resource_sets_the_first_id_only(store):
    c = make(status="pending")
    store.create(c)
    first = store.record_resource(c.id, "res-A", "https://r/A")
    assert (first.resource_id, first.resource_uri) == ("res-A", "https://r/A")
    second = store.record_resource(c.id, "res-B", "https://r/B")
    assert (second.resource_id, second.resource_uri) == ("res-A", "https://r/A")
    assert store.get(c.id).resource_id == "res-A"


def test_record_resource_on_a_failed_channel_marks_it_for_a_stop(store):
    failed, active = make(status="failed"), make(status="active")
    store.create(failed)
    store.create(active)
    learned = store.record_resource(failed.id, "res-F")
    assert learned.resource_id == "res-F" and learned.stop_pending
    assert [c.id for c in store.pending_stops()] == [failed.id]
    assert store.record_resource(active.id, "res-X").resource_id == ""  # only pending/failed learn


def test_a_claim_whose_lost_first_write_had_landed_is_still_ours(message_store, monkeypatch):
    store = message_store
    c = make()
    store.create(c)
    real = store._insert_message

    def landed_then_retried(channel_id, number, record):
        real(channel_id, number, record)  # the first attempt landed; its answer was lost
        return real(channel_id, number, record)  # the retry finds it: "already exists"

    monkeypatch.setattr(store, "_insert_message", landed_then_retried)
    claim = store.claim_message(c.id, 4, now_ms=NOW, timeout_seconds=60)
    assert claim.outcome is ClaimOutcome.CLAIMED
    monkeypatch.undo()
    assert store.claim_message(c.id, 4, now_ms=NOW, timeout_seconds=60).outcome is ClaimOutcome.IN_PROGRESS
    assert store.finish_message(claim)


# --- writes committed together ------------------------------------------------------


def _with_subscription(store, channel):
    from channelkit.subscribe import subscription_for

    store.create(channel)
    subscription = subscription_for(channel, NOW)
    store.create_subscription(subscription)
    return subscription


def test_writes_together_land_together_and_return_what_was_written(store):
    old = make()
    _with_subscription(store, old)
    new = make(status="pending", subscription_id=old.subscription_id)
    written = store.write_together(
        NewChannel(new),
        ChangeChannel(old.id, lambda c: c.copy(lease_owner="me", lease_until=NOW + HOUR)),
        ChangeSubscription(old.subscription_id, lambda s: s.copy(channel_id=new.id)),
    )
    assert [type(v).__name__ for v in written] == ["Channel", "Channel", "Subscription"]
    assert store.get(new.id) == new
    assert store.get(old.id).lease_owner == "me" and written[1].lease_owner == "me"
    assert store.get_subscription(old.subscription_id).channel_id == new.id
    # What was written is remembered: the next change of each starts from it, and lands.
    assert store.update(old.id, lease_owner=None).lease_owner is None
    changed = store.change_subscription(old.subscription_id, lambda s: s.copy(channel_id=old.id))
    assert changed is not None and store.get_subscription(old.subscription_id).channel_id == old.id


def test_a_change_that_returns_none_is_left_out_and_the_others_land(store):
    a, b = make(), make()
    store.create(a)
    store.create(b)
    written = store.write_together(
        ChangeChannel(a.id, lambda c: None), ChangeChannel(b.id, lambda c: c.copy(last_error="x"))
    )
    assert written[0] is None and written[1].last_error == "x"
    assert store.get(a.id) == a and store.get(b.id).last_error == "x"


def test_a_refused_change_writes_nothing_of_the_commit(store):
    old = make()
    store.create(old)
    new = make(status="pending")

    def refuse(current):
        raise ChannelConflictError("no")

    with pytest.raises(ChannelConflictError):
        store.write_together(NewChannel(new), ChangeChannel(old.id, refuse))
    assert store.find(new.id) is None and store.get(old.id) == old


def test_a_taken_id_writes_nothing_of_the_commit(store):
    taken, other = make(), make()
    store.create(taken)
    store.create(other)
    with pytest.raises(ChannelExistsError):
        store.write_together(ChangeChannel(other.id, lambda c: c.copy(last_error="x")), NewChannel(taken))
    assert store.get(other.id) == other


def test_a_commit_with_one_stale_version_writes_nothing(store):
    """The backend's commit: a version precondition that fails refuses every write of it."""
    stale = make()
    store.create(stale)
    record, version = store._read(stale.id)
    store.update(stale.id, last_error="changed since")  # a new version
    new = make(status="pending")
    other = make()
    _with_subscription(store, other)
    sub_record, sub_version = store._doc_read("subscriptions", other.subscription_id)
    writes = [
        Write(CHANNELS, new.id, store._to_record(new)),
        Write("subscriptions", other.subscription_id, {**sub_record, "detail": "x"}, sub_version, sub_record),
        Write(CHANNELS, stale.id, {**record, "lastError": "lost"}, version, record),
    ]
    assert store._commit(writes) is None
    assert store.find(new.id) is None
    assert store.get(stale.id).last_error == "changed since"
    assert store.get_subscription(other.subscription_id).detail is None


def test_a_record_changed_since_it_was_remembered_is_read_again_and_judged_anew(store):
    old = make()
    store.create(old)
    store.write_together(ChangeChannel(old.id, lambda c: c.copy(last_error="here")))  # remembered
    elsewhere = open_second(store)
    elsewhere.update(old.id, last_error="elsewhere")  # this store's remembered version is stale
    seen = []

    def change(current):
        seen.append(current.last_error)
        return current.copy(lease_owner="me")

    new = make(status="pending")
    store.write_together(NewChannel(new), ChangeChannel(old.id, change))
    assert seen == ["here", "elsewhere"]
    got = store.get(old.id)
    assert (got.last_error, got.lease_owner) == ("elsewhere", "me") and store.get(new.id) == new
    elsewhere.close()


def test_concurrent_commits_over_the_same_records_lose_no_write(store):
    a = make(last_error="0")
    _with_subscription(store, a)

    def bump(i):
        return store.write_together(
            ChangeChannel(a.id, lambda c: c.copy(last_error=str(int(c.last_error) + 1))),
            ChangeSubscription(a.subscription_id, lambda s: s.copy(failures=s.failures + 1)),
        )

    run_concurrently(6, bump)
    assert store.get(a.id).last_error == "6"
    assert store.get_subscription(a.subscription_id).failures == 6


def test_a_due_listing_lets_the_lease_claim_skip_its_read(store):
    due = make(expiration=NOW + HOUR)
    store.create(due)
    fresh = open_second(store)  # remembers nothing of the create
    [listed] = fresh.due_for_renewal(NOW + 2 * HOUR)
    reads = count_reads(fresh)
    assert fresh.claim_lease(listed.id, "me", now_ms=NOW, lease_seconds=60).lease_owner == "me"
    assert reads == []
    # A listed version that went stale is refused at the write; the claim reads and judges anew.
    [listed] = fresh.due_for_renewal(NOW + 2 * HOUR)
    store.update(due.id, lease_owner="other", lease_until=NOW + HOUR)
    assert fresh.claim_lease(listed.id, "me", now_ms=NOW, lease_seconds=60) is None
    assert reads == [due.id]
    fresh.close()


def open_second(store):
    """Another store object on the same data (what another process or instance holds)."""
    from channelkit.store import open_store

    if hasattr(store, "path"):
        return open_store(f"sqlite:///{store.path}")
    return open_store("firestore", timeout=10, collection=store.collection_name)


def count_reads(store):
    reads = []
    real = store._read

    def counted(channel_id):
        reads.append(channel_id)
        return real(channel_id)

    store._read = counted
    return reads
