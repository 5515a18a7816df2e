"""The sync lease's rules, on records alone: one holder, a mark instead of a second sync, a lapse."""

import pytest

from channelkit.errors import SyncLeaseLostError
from channelkit.subscription import Subscription, from_record, to_record
from channelkit.sync_lease import KEEP, finish, release, save, take

LEASE = 60_000


def sub(**fields):
    return Subscription(id="S", api="drive", version="v3", method="changes.watch", sync=True, **fields)


def test_a_free_lease_is_taken_and_clears_an_old_mark():
    taken = take(sub(sync_again=True), "a", now_ms=1000, lease_ms=LEASE)
    assert (taken.sync_owner, taken.sync_until, taken.sync_again) == ("a", 1000 + LEASE, False)


def test_a_held_lease_gets_a_mark_once_then_no_write():
    held = sub(sync_owner="a", sync_until=5000)
    marked = take(held, "b", now_ms=1000, lease_ms=LEASE)
    assert marked.sync_again and marked.sync_owner == "a"
    assert take(marked, "c", now_ms=1001, lease_ms=LEASE) is None  # already marked: nothing to write


def test_a_lapsed_lease_is_taken_by_the_next_sync():
    lapsed = sub(sync_owner="crashed", sync_until=5000)
    assert take(lapsed, "b", now_ms=5000, lease_ms=LEASE).sync_owner == "b"


def test_no_lease_on_a_subscription_without_sync_or_not_active():
    assert take(sub(state="suspended"), "a", now_ms=0, lease_ms=LEASE) is None
    plain = Subscription(id="S")
    assert take(plain, "a", now_ms=0, lease_ms=LEASE) is None


def test_saving_moves_the_cursor_and_extends_only_for_the_holder():
    mine = sub(sync_owner="a", sync_until=2000, cursor="1")
    saved = save(mine, "a", "2", now_ms=1500, lease_ms=LEASE)
    assert saved.cursor == "2" and saved.sync_until == 1500 + LEASE
    with pytest.raises(SyncLeaseLostError):
        save(sub(sync_owner="b", sync_until=9000), "a", "2", now_ms=1500, lease_ms=LEASE)


def test_finish_makes_one_more_pass_when_marked_else_lets_go():
    again = finish(sub(sync_owner="a", sync_until=2000, sync_again=True), "a", now_ms=1500, lease_ms=LEASE)
    assert again.sync_owner == "a" and not again.sync_again and again.last_sync_at == 1500
    done = finish(sub(sync_owner="a", sync_until=2000), "a", now_ms=1600, lease_ms=LEASE)
    assert done.sync_owner is None and done.sync_until is None and done.last_sync_at == 1600
    with pytest.raises(SyncLeaseLostError):
        finish(sub(sync_owner="b"), "a", now_ms=0, lease_ms=LEASE)


def test_release_lets_go_only_of_ones_own_lease():
    assert release(sub(sync_owner="b"), "a", now_ms=0) is None
    gone = release(sub(sync_owner="a", sync_until=9, sync_again=True), "a", now_ms=5)
    assert (gone.sync_owner, gone.sync_until, gone.sync_again, gone.last_sync_at) == (None, None, False, 5)


def test_the_record_keeps_the_feed_fields_and_omits_false_flags():
    record = to_record(sub(cursor="C", sync_owner="a", sync_until=7, sync_again=True, last_sync_at=3))
    assert {
        k: record[k] for k in ("sync", "cursor", "syncOwner", "syncUntil", "syncAgain", "lastSyncAt")
    } == {
        "sync": True,
        "cursor": "C",
        "syncOwner": "a",
        "syncUntil": 7,
        "syncAgain": True,
        "lastSyncAt": 3,
    }
    assert from_record(record).sync_again is True
    plain = to_record(Subscription(id="P"))
    assert "sync" not in plain and "syncAgain" not in plain
    assert from_record(plain).sync is False


def test_finish_saves_the_last_pages_cursor_in_the_same_write_and_keeps_it_otherwise():
    held = sub(sync_owner="a", sync_until=2000, cursor="c1")
    assert finish(held, "a", now_ms=1500, lease_ms=LEASE, cursor="c2").cursor == "c2"
    assert finish(held, "a", now_ms=1500, lease_ms=LEASE, cursor=KEEP).cursor == "c1"
    assert finish(held, "a", now_ms=1500, lease_ms=LEASE).cursor == "c1"
    marked = sub(sync_owner="a", sync_until=2000, sync_again=True, cursor="c1")
    again = finish(marked, "a", now_ms=1500, lease_ms=LEASE, cursor="c2")
    assert (again.cursor, again.sync_owner, again.sync_again) == ("c2", "a", False)
