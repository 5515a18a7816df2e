"""Regressions the change-feed state machine and the ``feeds`` reliability scenario found.

A store remembers the record it last read or wrote, so that a compare-and-set can
skip its read; another thread (or instance) may have made that memory stale.
A change that *refuses* on the remembered record must be decided again on a fresh
read: a sync whose store remembered the record from before its lease was taken
used to fail its own cursor save with ``SyncLeaseLostError`` after the handler had
returned, leaving the lease held and offering the returned batch again later.
"""

from channelkit.errors import SyncLeaseLostError
from channelkit.store import open_store
from channelkit.subscribe import subscribe
from channelkit.sync_lease import Acquired, SyncLease

ADDRESS = "https://hooks.example.com/regressions"  # not loopback: the simulator sends nothing


def drive_changes(store, google):
    channel = subscribe(
        "drive", "v3", "changes.watch", address=ADDRESS, store=store, google=google, sync=True
    )
    return channel.subscription_id


def test_a_change_refused_on_a_remembered_record_is_decided_again_on_a_fresh_read(store, google):
    sid = drive_changes(store, google)
    assert store.get_subscription(sid).sync_owner is None  # remembered by ``store``: no lease
    other = open_store()
    try:
        other.change_subscription(sid, lambda s: s.copy(sync_owner="holder"))  # written elsewhere
    finally:
        other.close()

    def only_for_the_holder(current):
        if current.sync_owner != "holder":
            raise SyncLeaseLostError("not the holder")
        return current.copy(cursor="next")

    written = store.change_subscription(sid, only_for_the_holder)
    assert written.cursor == "next" and store.get_subscription(sid).cursor == "next"


def test_a_sync_saves_its_cursor_though_its_store_remembers_the_record_from_before_its_lease(
    store, google, clock
):
    sid = drive_changes(store, google)
    store.get_subscription(sid)  # a read from before the lease, remembered
    other = open_store()
    try:
        taken = SyncLease(other, sid, "sync-1", lease_ms=60_000, clock_ms=lambda: int(clock() * 1000))
        assert taken.acquire()[0] is Acquired.TAKEN
    finally:
        other.close()
    holder = SyncLease(store, sid, "sync-1", lease_ms=60_000, clock_ms=lambda: int(clock() * 1000))
    assert holder.save("after-the-page").cursor == "after-the-page"
    assert holder.finish() is False  # and it lets go
    assert store.get_subscription(sid).sync_owner is None
