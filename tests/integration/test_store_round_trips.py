"""The Firestore store's round-trip savings keep its guarantees (emulator).

* A change starts from the version the store itself last wrote instead of a
  read; when someone else wrote since, the precondition refuses it and the
  change is judged again on a fresh read.
* Large queries are paged, each page one call within the store's time bound,
  and a page boundary inside a run of equal sort keys loses and repeats nothing.
"""

from __future__ import annotations

import pytest

from channelkit.channel import Channel
from channelkit.errors import ChannelConflictError
from channelkit.store import firestore as firestore_store
from channelkit.store import open_store


def make(store, channel_id, **fields):
    fields.setdefault("status", "active")
    channel = Channel("web_hook", channel_id, "tok", "https://example.com/hook", **fields)
    store.create(channel)
    return channel


@pytest.fixture
def other(firestore_env):
    """A second store instance: another function instance writing the same documents."""
    s = open_store()
    yield s
    s.close()


def count_reads(store, monkeypatch):
    reads = []
    real = store._read

    def counting(channel_id):
        reads.append(channel_id)
        return real(channel_id)

    monkeypatch.setattr(store, "_read", counting)
    return reads


def test_a_change_after_our_own_write_needs_no_read(store, monkeypatch):
    make(store, "c1", expiration=1000)
    reads = count_reads(store, monkeypatch)
    store.update("c1", last_error="one")
    store.update("c1", expect_status="active", last_error="two")
    assert reads == []
    assert store.get("c1").last_error == "two"


def test_a_remembered_version_that_went_stale_is_refused_and_the_change_reread(store, other, monkeypatch):
    make(store, "c1", expiration=1000)
    other.update("c1", status="stopped", last_error="stopped elsewhere")
    reads = count_reads(store, monkeypatch)
    # Judged on what is stored now, not on what this instance remembers.
    with pytest.raises(ChannelConflictError):
        store.update("c1", expect_status="active", renewed_by="x")
    assert reads == ["c1"]
    stored = other.get("c1")
    assert (stored.status, stored.renewed_by, stored.last_error) == ("stopped", None, "stopped elsewhere")


def test_a_lease_taken_elsewhere_is_not_taken_again_on_a_remembered_record(store, other):
    make(store, "c1", expiration=1000)
    assert other.claim_lease("c1", "run-b", now_ms=0, lease_seconds=600) is not None
    assert store.claim_lease("c1", "run-a", now_ms=1, lease_seconds=600) is None
    assert other.get("c1").lease_owner == "run-b"


def test_a_decision_not_to_write_is_taken_on_a_fresh_read(store, other):
    make(store, "c1", expiration=1000)
    store.claim_lease("c1", "run-a", now_ms=0, lease_seconds=600)
    store.release_lease("c1", "run-a")  # remembered: no lease
    other.claim_lease("c1", "run-b", now_ms=0, lease_seconds=600)
    other.release_lease("c1", "run-b")
    # Remembered record says free, stored record too (other version): claimable.
    assert store.claim_lease("c1", "run-a", now_ms=1, lease_seconds=600) is not None
    # A field removed elsewhere is not brought back by a write on a stale record.
    other.update("c1", last_error="x")
    other.update("c1", last_error=None)
    store.update("c1", stop_pending=True)
    assert other.get("c1").last_error is None and other.get("c1").stop_pending


def test_large_queries_are_paged_without_losing_or_repeating(store, monkeypatch):
    monkeypatch.setattr(firestore_store, "QUERY_PAGE", 7)
    for i in range(30):  # renewAt repeats: page boundaries fall inside runs of equal keys
        make(store, f"c{i:02d}", expiration=1000 + i % 4, subscription_id="s" if i < 10 else "t")
    due = store.due_for_renewal(2000)
    assert sorted(c.id for c in due) == [f"c{i:02d}" for i in range(30)]
    assert [c.expiration for c in due] == sorted(c.expiration for c in due)
    assert len(store.due_for_renewal(1001)) == 16
    assert len(store.due_for_renewal(2000, limit=14)) == 14
    assert len(store.list()) == 30
    assert len(store.list(status="active", subscription_id="t")) == 20
