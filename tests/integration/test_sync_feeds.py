"""The sync engine against the simulator through googleapiclient, the store on the Firestore emulator.

Each guarantee of the change feeds is a test here: nothing lost across pages,
a returned batch never offered again, a raised one offered again from the same
cursor, one sync at a time with bursts coalesced, full resyncs, and Google's
refusals judged as renewal's.
"""

import pytest

from channelkit.change_sink import ChangeSink
from channelkit.errors import UnsupportedFeedError
from channelkit.reactivate import reactivate
from channelkit.subscribe import subscribe
from channelkit.sync import DONE, FAILED, HANDLER_FAILED, HELD, INACTIVE, LEASE_LOST, OUT_OF_TIME, sync
from channelkit.sync_lease import SyncLease
from channelkit.testing.harness import LoopbackReceiver


class Handler:
    """Records each batch; ``fail_on`` lists the calls (1-based) that raise instead."""

    def __init__(self, fail_on=()):
        self.batches, self.calls, self.fail_on = [], 0, set(fail_on)

    def __call__(self, batch, subscription):
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError(f"handler failure {self.calls}")
        self.batches.append(batch)

    def items(self):
        return [item for batch in self.batches for item in batch.items]


@pytest.fixture
def hook():
    with LoopbackReceiver(lambda headers, body: 200) as receiver:
        yield receiver


@pytest.fixture
def make(store, google, hook, simulator):
    def make_subscription(api, version, method, params, **options):
        channel = subscribe(
            api,
            version,
            method,
            address=hook.url,
            params=params,
            store=store,
            google=google,
            sync=True,
            **options,
        )
        return store.get_subscription(channel.subscription_id)

    return make_subscription


def run(store, google, subscription_id, handler, **options):
    return sync(subscription_id, store=store, google=google, sink=ChangeSink(handler=handler), **options)


def file_ids(items):
    return [item["fileId"] for item in items]


def test_drive_start_token_is_taken_before_watch_and_every_change_arrives_once_across_pages(
    store, google, simulator, make
):
    simulator.drive.create_file("before")  # before the subscription: not a change of its feed
    subscription = make("drive", "v3", "changes.watch", {})
    start = simulator.drive.start_page_token()
    assert subscription.sync and subscription.cursor == start
    channel = store.get(subscription.channel_id)
    assert channel.sync and channel.method_params["pageToken"] == start
    simulator.max_page_size = 3
    made = [simulator.drive.create_file(f"f{i}")["id"] for i in range(7)]
    handler = Handler()
    result = run(store, google, subscription.id, handler)
    assert result.outcome == DONE and result.items == 7 and result.batches == 3
    assert file_ids(handler.items()) == made
    assert all(len(b.items) <= 3 and not b.resync for b in handler.batches)
    assert store.get_subscription(subscription.id).cursor == simulator.drive.start_page_token()
    again = Handler()
    assert run(store, google, subscription.id, again).batches == 0  # nothing new: nothing offered


def test_a_raised_batch_is_offered_again_from_the_same_cursor_and_a_returned_one_never(
    store, google, simulator, make
):
    subscription = make("drive", "v3", "changes.watch", {})
    simulator.max_page_size = 2
    made = [simulator.drive.create_file(f"f{i}")["id"] for i in range(5)]
    handler = Handler(fail_on={2})
    first = run(store, google, subscription.id, handler)
    assert first.outcome == HANDLER_FAILED and "handler failure 2" in first.error
    assert file_ids(handler.items()) == made[:2]
    stored = store.get_subscription(subscription.id)
    assert stored.sync_owner is None  # the lease is let go
    second = run(store, google, subscription.id, handler)
    assert second.outcome == DONE
    assert handler.batches[1].cursor == stored.cursor  # offered again where it stopped
    assert file_ids(handler.items()) == made  # each change once, in order


def test_a_crashed_holders_lease_lapses_and_the_next_sync_resumes_from_the_saved_cursor(
    store, google, simulator, make, clock
):
    subscription = make("drive", "v3", "changes.watch", {})
    made = [simulator.drive.create_file(f"f{i}")["id"] for i in range(3)]
    now_ms = int(clock() * 1000)
    crashed = SyncLease(store, subscription.id, "crashed", lease_ms=60_000, clock_ms=lambda: now_ms)
    crashed.acquire()
    handler = Handler()
    assert run(store, google, subscription.id, handler, clock=clock).outcome == HELD
    simulator.clock.advance(61)
    assert run(store, google, subscription.id, handler, clock=clock).outcome == DONE
    assert file_ids(handler.items()) == made


def test_a_burst_while_a_sync_runs_leaves_one_mark_and_costs_one_more_pass(
    store, google, simulator, make, clock
):
    subscription = make("drive", "v3", "changes.watch", {})
    holder = SyncLease(
        store, subscription.id, "holder", lease_ms=600_000, clock_ms=lambda: int(clock() * 1000)
    )
    holder.acquire()
    writes = []
    replace = store._doc_replace

    def counting(*args, **kwargs):
        writes.append(args[:2])
        return replace(*args, **kwargs)

    store._doc_replace = counting
    outcomes = {run(store, google, subscription.id, Handler(), clock=clock).outcome for _ in range(200)}
    store._doc_replace = replace
    assert outcomes == {HELD}
    assert len(writes) == 1  # the mark, written once for the whole burst
    assert holder.finish() is True  # one more pass
    assert holder.finish() is False  # then it lets go


def test_drive_invalid_page_token_resyncs_from_a_fresh_start_token_over_the_same_corpus(
    store, google, simulator, make
):
    subscription = make("drive", "v3", "changes.watch", {})
    simulator.max_page_size = 2
    kept = [simulator.drive.create_file(f"f{i}")["id"] for i in range(3)]
    handler = Handler()
    run(store, google, subscription.id, handler)
    simulator.drive.remove_file(kept[0])
    simulator.drive.expire_page_tokens()
    result = run(store, google, subscription.id, handler := Handler())
    assert result.outcome == DONE and result.resyncs == 1
    resync = [b for b in handler.batches if b.resync]
    assert resync and resync[-1].resync_complete and not any(b.resync_complete for b in resync[:-1])
    assert sorted(file_ids(i for b in resync for i in b.items)) == sorted(
        kept[1:]
    )  # what exists, no tombstone
    assert all(b is resync[i] for i, b in enumerate(handler.batches[: len(resync)]))  # resync first
    later = simulator.drive.create_file("after")["id"]
    after = Handler()
    run(store, google, subscription.id, after)
    assert file_ids(after.items()) == [later] and not any(b.resync for b in after.batches)


def test_calendar_events_first_cursor_then_changes_with_deletions_as_cancelled(
    store, google, simulator, make
):
    simulator.calendar.insert_event("cal", event_id="old")
    subscription = make("calendar", "v3", "events.watch", {"calendarId": "cal", "singleEvents": True})
    assert subscription.cursor  # listed to the end at subscribe time; nothing delivered
    simulator.max_page_size = 1
    simulator.calendar.insert_event("cal", event_id="new1")
    simulator.calendar.delete_event("cal", "old")
    handler = Handler()
    assert run(store, google, subscription.id, handler).outcome == DONE
    assert [(e["id"], e["status"]) for e in handler.items()] == [("new1", "confirmed"), ("old", "cancelled")]
    listed = [c for c in simulator.calls if c.operation == "calendar.events.list"]
    assert listed and all(c.query.get("singleEvents") == "true" for c in listed)  # one query shape throughout
    assert "syncToken" not in listed[0].query and all("syncToken" in c.query for c in listed[1:])


def test_calendar_410_full_sync_required_delivers_a_resync_ending_with_resync_complete(
    store, google, simulator, make
):
    simulator.calendar.insert_event("cal", event_id="a")
    subscription = make("calendar", "v3", "events.watch", {"calendarId": "cal"})
    simulator.calendar.insert_event("cal", event_id="b")
    simulator.calendar.expire_sync_tokens("cal")
    simulator.max_page_size = 1
    handler = Handler()
    result = run(store, google, subscription.id, handler)
    assert result.outcome == DONE and result.resyncs == 1
    assert all(b.resync for b in handler.batches)
    assert handler.batches[-1].resync_complete
    assert sorted(e["id"] for e in handler.items()) == ["a", "b"]
    simulator.calendar.insert_event("cal", event_id="c")
    after = Handler()
    run(store, google, subscription.id, after)
    assert [e["id"] for e in after.items()] == ["c"] and not after.batches[0].resync


def test_initial_delivers_what_exists_as_one_resync(store, google, simulator, make):
    simulator.calendar.insert_event("cal", event_id="a")
    simulator.calendar.insert_event("cal", event_id="b")
    subscription = make("calendar", "v3", "events.watch", {"calendarId": "cal"}, initial=True)
    handler = Handler()
    run(store, google, subscription.id, handler)
    assert [e["id"] for e in handler.items()] == ["a", "b"]
    assert handler.batches[-1].resync and handler.batches[-1].resync_complete


@pytest.mark.parametrize(
    ("method", "params", "change", "expected"),
    [
        (
            "acl.watch",
            {"calendarId": "cal"},
            lambda cal: cal.set_acl_rule("cal", "x@example.com", "reader"),
            "user:x@example.com",
        ),
        ("calendarList.watch", {}, lambda cal: cal.add_calendar("other"), "other"),
        ("settings.watch", {}, lambda cal: cal.set_setting("timezone", "Europe/Paris"), "timezone"),
    ],
)
def test_other_calendar_collections_deliver_their_items(
    store, google, simulator, make, method, params, change, expected
):
    simulator.calendar.add_calendar("cal")
    subscription = make("calendar", "v3", method, params)
    change(simulator.calendar)
    handler = Handler()
    assert run(store, google, subscription.id, handler).outcome == DONE
    assert [item["id"] for item in handler.items()] == [expected]


def test_drive_files_watch_hands_over_the_file_then_a_gone_file_suspends(store, google, simulator, make):
    made = simulator.drive.create_file("doc")
    subscription = make("drive", "v3", "files.watch", {"fileId": made["id"]})
    assert subscription.cursor is None
    handler = Handler()
    assert run(store, google, subscription.id, handler).outcome == DONE
    [batch] = handler.batches
    assert batch.items[0]["id"] == made["id"] and batch.cursor is None
    simulator.drive.remove_file(made["id"])
    result = run(store, google, subscription.id, handler)
    assert result.outcome == FAILED
    stored = store.get_subscription(subscription.id)
    assert (stored.state, stored.reason) == ("suspended", "RESOURCE_GONE")
    assert stored.events[-1]["event"] == "suspended"


def test_a_transient_failure_leaves_the_cursor_for_the_next_pass(store, google, simulator, make):
    subscription = make("drive", "v3", "changes.watch", {})
    made = simulator.drive.create_file("f")["id"]
    simulator.fail_next("read", status=503)
    handler = Handler()
    result = run(store, google, subscription.id, handler)
    assert result.outcome == FAILED and handler.batches == []
    stored = store.get_subscription(subscription.id)
    assert stored.state == "active" and stored.cursor == subscription.cursor and stored.sync_owner is None
    after = Handler()
    assert run(store, google, subscription.id, after).outcome == DONE
    assert file_ids(after.items()) == [made]


def test_a_method_without_a_feed_refuses_sync_before_anything_is_stored(store, google, hook):
    with pytest.raises(UnsupportedFeedError, match="no change feed"):
        subscribe(
            "admin",
            "directory_v1",
            "users.aliases.watch",
            address=hook.url,
            params={"userKey": "u"},
            store=store,
            google=google,
            sync=True,
        )
    assert store.list() == []


def test_the_budget_stops_between_pages_and_the_next_pass_goes_on(store, google, simulator, make):
    subscription = make("drive", "v3", "changes.watch", {})
    simulator.max_page_size = 1
    made = [simulator.drive.create_file(f"f{i}")["id"] for i in range(4)]
    ticks = iter(range(100))  # a monotonic clock that moves one second per look
    handler = Handler()
    first = run(store, google, subscription.id, handler, budget=2.5, monotonic=lambda: next(ticks))
    assert first.outcome == OUT_OF_TIME and 0 < len(handler.items()) < 4
    assert store.get_subscription(subscription.id).sync_owner is None
    assert run(store, google, subscription.id, handler).outcome == DONE
    assert file_ids(handler.items()) == made


def test_a_sync_whose_lease_was_taken_stops_without_saving(store, google, simulator, make, clock):
    subscription = make("drive", "v3", "changes.watch", {})
    simulator.drive.create_file("f")

    def steal(batch, sub):
        store.change_subscription(sub.id, lambda s: s.copy(sync_owner="thief"))

    result = run(store, google, subscription.id, steal)
    assert result.outcome == LEASE_LOST
    stored = store.get_subscription(subscription.id)
    assert stored.cursor == subscription.cursor and stored.sync_owner == "thief"


def test_a_401_while_listing_suspends_the_subscription_for_its_credentials(store, google, simulator, make):
    subscription = make("drive", "v3", "changes.watch", {})
    simulator.drive.create_file("f")
    simulator.fail_next("read", status=401)
    result = run(store, google, subscription.id, Handler())
    assert result.outcome == FAILED
    stored = store.get_subscription(subscription.id)
    assert (stored.state, stored.reason) == ("suspended", "CREDENTIALS_INVALID")
    assert run(store, google, subscription.id, Handler()).outcome == INACTIVE  # not synced until reactivated
    channel = reactivate(subscription.id, store=store, google=google)
    assert channel.sync  # the webhook syncs after the new channel's notifications too
    after = Handler()
    assert run(store, google, subscription.id, after).outcome == DONE and len(after.items()) == 1


def test_a_sync_costs_one_write_per_page_plus_taking_the_lease(store, google, simulator, make):
    subscription = make("drive", "v3", "changes.watch", {})
    simulator.max_page_size = 10
    for i in range(50):
        simulator.drive.create_file(f"f{i}")
    writes = []
    replace = store._doc_replace

    def counting(*args, **kwargs):
        writes.append(args[:2])
        return replace(*args, **kwargs)

    store._doc_replace = counting
    result = run(store, google, subscription.id, Handler())
    store._doc_replace = replace
    assert (result.batches, result.items) == (5, 50)
    # The lease taken, a cursor per page; the last page's goes with letting go of the lease.
    assert len(writes) == result.batches + 1
    stored = store.get_subscription(subscription.id)
    assert stored.cursor == simulator.drive.start_page_token() and stored.sync_owner is None


def test_a_notification_during_a_pass_costs_one_more_pass_after_a_settle_and_a_lone_one_none(
    store, google, simulator, make, clock
):
    subscription = make("drive", "v3", "changes.watch", {})
    simulator.drive.create_file("f")
    slept = []

    def notified_meanwhile(batch, sub):
        other = SyncLease(
            store, sub.id, "notification", lease_ms=60_000, clock_ms=lambda: int(clock() * 1000)
        )
        assert other.acquire()[0].value == "marked"

    marked = run(store, google, subscription.id, notified_meanwhile, clock=clock, sleep=slept.append)
    assert (marked.outcome, marked.passes, slept) == (DONE, 2, [1.0])
    slept.clear()
    simulator.drive.create_file("g")
    alone = run(store, google, subscription.id, Handler(), clock=clock, sleep=slept.append)
    assert (alone.outcome, alone.passes, slept) == (DONE, 1, [])


def test_each_further_marked_pass_settles_twice_as_long_up_to_the_cap(store, google, simulator, make, clock):
    subscription = make("drive", "v3", "changes.watch", {})
    simulator.drive.create_file("f")
    marks = iter(range(5))  # a notification during each of the next five passes

    def sleep(seconds):
        slept.append(seconds)
        if next(marks, None) is not None:  # the burst goes on: one more mark during this pass
            other = SyncLease(
                store, subscription.id, "n", lease_ms=60_000, clock_ms=lambda: int(clock() * 1000)
            )
            other.acquire()

    slept = []
    other = SyncLease(store, subscription.id, "n", lease_ms=60_000, clock_ms=lambda: int(clock() * 1000))
    first = {"done": False}

    def mark_once(batch, sub):
        if not first["done"]:
            first["done"] = True
            assert other.acquire()[0].value == "marked"

    result = run(store, google, subscription.id, mark_once, clock=clock, sleep=sleep)
    assert result.outcome == DONE
    assert slept == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]  # 1 s, then doubled, up to MAX_SETTLE
    assert result.passes == len(slept) + 1


def test_a_pass_owed_to_a_mark_lists_its_first_page_even_when_the_settle_spent_the_budget(
    store, google, simulator, make, clock
):
    subscription = make("drive", "v3", "changes.watch", {})
    simulator.drive.create_file("first")
    now = [0.0]
    handler = Handler()

    def during_the_pass(batch, sub):
        handler(batch, sub)
        if len(handler.batches) == 1:  # a notification, and its change, during the first pass
            simulator.drive.create_file("announced")
            marker = SyncLease(store, sub.id, "n", lease_ms=60_000, clock_ms=lambda: int(clock() * 1000))
            assert marker.acquire()[0].value == "marked"

    def sleep(seconds):
        now[0] += seconds

    result = run(
        store,
        google,
        subscription.id,
        during_the_pass,
        clock=clock,
        budget=0.5,
        monotonic=lambda: now[0],
        sleep=sleep,
    )
    assert result.outcome == DONE and result.passes == 2
    assert [c["file"]["name"] for c in handler.items()] == ["first", "announced"]
