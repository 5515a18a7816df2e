"""The subscription half of the store contract, run unchanged against every backend.

Firestore runs on the real emulator; SQLite on a file in tmp_path (``support.store_backends``).
"""

from __future__ import annotations

import datetime
import threading
import uuid

import pytest

from channelkit.channel import Channel
from channelkit.errors import (
    InvalidTransitionError,
    SubscriptionExistsError,
    SubscriptionNotFoundError,
)
from channelkit.lifecycle import transition
from channelkit.migrate import MigrationSummary, migrate
from channelkit.subscription import Event, Reason, State, Subscription
from support.store_backends import store  # noqa: F401 - the fixture, over every backend

UTC = datetime.UTC
NOW = 1_900_000_000_000  # ms
MINUTE = 60_000
HOUR = 3_600_000


def make(state: State = State.ACTIVE, *, created_at: int = NOW - 10 * HOUR, **fields) -> Subscription:
    values: dict = dict(
        id="sub-" + uuid.uuid4().hex[:8],
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F", "supportsAllDrives": True},
        address="https://hook.example/webhook",
        channel_id="chan-" + uuid.uuid4().hex[:8],
        state=state.value,
        since=NOW - HOUR,
        created_at=created_at,
    )
    if state is State.SUSPENDED:
        values.update(reason=Reason.PERMISSION_DENIED.value, detail="AuthError: HTTP 403")
    values.update(fields)
    return Subscription(**values)


def raw(store, subscription_id: str):
    """The stored record and its version, as the backend keeps them."""
    return store._doc_read("subscriptions", subscription_id)


def race(n: int, fn):
    """Run ``fn(i)`` on n threads started together; (results, errors) by thread."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def all_read_first(n: int, change):
    """``change`` for n racing threads, each of whose first reads happens before any write.

    Every thread's first call waits at a barrier after its read, so all n read
    the same version and all but one lose the compare-and-set: the retries are
    what is tested. ``calls`` counts the calls (the reads).
    """
    barrier = threading.Barrier(n)
    local = threading.local()
    calls: list[int] = []
    lock = threading.Lock()

    def racing(i):
        def wrapped(current: Subscription):
            with lock:
                calls.append(i)
            if not getattr(local, "waited", False):
                local.waited = True
                barrier.wait()
            return change(i, current)

        return wrapped

    return racing, calls


# --- create, read ---------------------------------------------------------------------


def test_create_then_get_round_trips_every_field(store):
    sub = make(
        failures=2,
        last_failure_at=NOW - MINUTE,
        last_notification_at=NOW - 2 * MINUTE,
        expiring_for="chan-0",
        detail="TransientApiError: HTTP 503",
        events=[{"id": "e1", "event": "expiring", "at": NOW - HOUR, "channelId": "chan-0"}],
        cursor="c-7",
        credentials="cred-ref",
    )
    store.create_subscription(sub)
    assert store.get_subscription(sub.id) == sub
    assert store.find_subscription(sub.id) == sub


def test_create_is_create_only(store):
    sub = make()
    store.create_subscription(sub)
    with pytest.raises(SubscriptionExistsError):
        store.create_subscription(sub.copy(address="https://other.example/"))
    assert store.get_subscription(sub.id).address == "https://hook.example/webhook"
    with pytest.raises(ValueError):
        store.create_subscription(make(id=""))


def test_get_unknown_raises_and_find_returns_none(store):
    with pytest.raises(SubscriptionNotFoundError):
        store.get_subscription("sub-nope")
    with pytest.raises(KeyError):  # SubscriptionNotFoundError is a KeyError too
        store.get_subscription("sub-nope")
    assert store.find_subscription("sub-nope") is None
    with pytest.raises(SubscriptionNotFoundError):
        store.change_subscription("sub-nope", lambda s: s.copy(detail="x"))
    assert store.count_subscriptions() == 0


@pytest.mark.parametrize("subscription_id", ["a/b+c=d", "__reserved__", "x" * 64])
def test_every_id_a_channel_may_have_can_be_a_subscription_id(store, subscription_id):
    sub = make(id=subscription_id)
    store.create_subscription(sub)
    assert store.get_subscription(subscription_id) == sub
    changed = store.change_subscription(subscription_id, lambda s: s.copy(detail="changed"))
    assert changed is not None and store.get_subscription(subscription_id).detail == "changed"
    assert store.note_notification(subscription_id, NOW)
    assert [s.id for s in store.list_subscriptions()] == [subscription_id]


# --- change by compare-and-set --------------------------------------------------------


def test_change_writes_what_the_change_returns(store):
    sub = make()
    store.create_subscription(sub)
    written = store.change_subscription(
        sub.id, lambda s: transition(s, Event.SUSPENDED, now_ms=NOW, reason=Reason.OTHER, detail="HTTP 400")
    )
    assert written is not None and written.state == "suspended"
    assert store.get_subscription(sub.id) == written
    assert [e["event"] for e in written.events] == ["suspended"]


def test_a_change_that_returns_none_or_raises_writes_nothing(store):
    sub = make(State.STOPPED)
    store.create_subscription(sub)
    _, version = raw(store, sub.id)
    assert store.change_subscription(sub.id, lambda s: None) is None
    with pytest.raises(InvalidTransitionError):
        store.change_subscription(sub.id, lambda s: transition(s, Event.RENEWED, now_ms=NOW))
    assert raw(store, sub.id)[1] == version
    assert store.get_subscription(sub.id) == sub


def test_fields_a_change_clears_are_removed_from_the_record(store):
    sub = make(
        detail="x",
        expiring_for="chan-0",
        events=[{"id": "e1", "event": "expiring", "at": NOW, "channelId": "chan-0"}],
    )
    store.create_subscription(sub)
    store.change_subscription(sub.id, lambda s: s.copy(detail=None, expiring_for=None, events=[]))
    record, _ = raw(store, sub.id)
    assert not {"detail", "expiringFor", "events", "eventsPending"} & set(record)
    assert store.get_subscription(sub.id) == sub.copy(detail=None, expiring_for=None, events=[])


def test_of_two_racing_suspensions_exactly_one_wins(store):
    sub = make()
    store.create_subscription(sub)
    reasons = [Reason.PERMISSION_DENIED, Reason.CREDENTIALS_INVALID]

    def suspend(i, current):
        return transition(current, Event.SUSPENDED, now_ms=NOW + i, reason=reasons[i])

    racing, calls = all_read_first(2, suspend)
    results, errors = race(2, lambda i: store.change_subscription(sub.id, racing(i)))

    [winner] = [i for i in range(2) if results[i] is not None]
    loser = 1 - winner
    assert isinstance(errors[loser], InvalidTransitionError) and errors[winner] is None
    assert len(calls) == 3  # both read the active record; the loser read again and found it suspended
    stored = store.get_subscription(sub.id)
    assert stored == results[winner]
    assert (stored.state, stored.reason) == ("suspended", reasons[winner].value)
    assert [(e["event"], e["reason"]) for e in stored.events] == [("suspended", reasons[winner].value)]


def test_racing_changes_that_each_add_an_event_lose_no_update(store):
    sub = make()
    store.create_subscription(sub)
    n = 6

    def warn(i, current):
        return transition(current, Event.EXPIRING, now_ms=NOW + i, channel_id=f"chan-{i}")

    racing, calls = all_read_first(n, warn)
    results, errors = race(n, lambda i: store.change_subscription(sub.id, racing(i)))

    assert errors == [None] * n and all(r is not None for r in results)
    assert len(calls) > n  # they did collide: the losers read again
    stored = store.get_subscription(sub.id)
    assert sorted(e["channelId"] for e in stored.events) == [f"chan-{i}" for i in range(n)]
    assert len({e["id"] for e in stored.events}) == n
    assert stored.state == "active"
    assert [s.id for s in store.list_subscriptions(events_pending=True)] == [sub.id]


# --- queries and counts ---------------------------------------------------------------


def seed(store, *subscriptions: Subscription) -> None:
    for sub in subscriptions:
        store.create_subscription(sub)


def test_list_by_state_in_creation_order(store):
    a1 = make(created_at=NOW - 3 * HOUR)
    a2 = make(created_at=NOW - 5 * HOUR)
    s1 = make(State.SUSPENDED)
    e1 = make(State.EXPIRED)
    t1 = make(State.STOPPED)
    seed(store, a1, a2, s1, e1, t1)
    assert [s.id for s in store.list_subscriptions(state=State.ACTIVE)] == [a2.id, a1.id]
    assert [s.id for s in store.list_subscriptions(state="suspended")] == [s1.id]
    assert [s.id for s in store.list_subscriptions(state=State.EXPIRED)] == [e1.id]
    assert [s.id for s in store.list_subscriptions(state=State.STOPPED)] == [t1.id]
    assert {s.id for s in store.list_subscriptions()} == {a1.id, a2.id, s1.id, e1.id, t1.id}
    assert len(store.list_subscriptions(limit=2)) == 2


def test_count_by_state(store):
    seed(store, make(), make(), make(State.SUSPENDED), make(State.STOPPED))
    assert store.count_subscriptions() == 4
    assert store.count_subscriptions(state=State.ACTIVE) == 2
    assert store.count_subscriptions(state="suspended") == 1
    assert store.count_subscriptions(state=State.EXPIRED) == 0
    assert store.count_subscriptions(state=State.STOPPED) == 1


def test_list_events_pending_follows_the_outbox(store):
    waiting = make(events=[{"id": "e1", "event": "renewed", "at": NOW, "channelId": "c"}])
    quiet = make()
    seed(store, waiting, quiet)
    assert [s.id for s in store.list_subscriptions(events_pending=True)] == [waiting.id]
    store.change_subscription(
        quiet.id, lambda s: transition(s, Event.EXPIRED, now_ms=NOW, detail="renewal failed")
    )
    assert {s.id for s in store.list_subscriptions(events_pending=True)} == {waiting.id, quiet.id}
    store.change_subscription(waiting.id, lambda s: s.copy(events=[]))
    assert [s.id for s in store.list_subscriptions(events_pending=True)] == [quiet.id]


def test_list_heard_before_finds_quiet_active_subscriptions(store):
    quiet = make(since=NOW - 3 * HOUR)
    heard = make(since=NOW - 3 * HOUR, last_notification_at=NOW - MINUTE)
    new = make(since=NOW - MINUTE)
    suspended = make(State.SUSPENDED, since=NOW - 3 * HOUR)
    seed(store, quiet, heard, new, suspended)
    assert [s.id for s in store.list_subscriptions(heard_before=NOW - HOUR)] == [quiet.id]
    assert store.list_subscriptions(heard_before=NOW - 4 * HOUR) == []
    assert store.list_subscriptions(heard_before=NOW - 3 * HOUR)[0].id == quiet.id  # inclusive


def test_a_notification_makes_a_quiet_subscription_heard(store):
    quiet = make(since=NOW - 3 * HOUR)
    seed(store, quiet)
    assert store.note_notification(quiet.id, NOW)
    assert store.list_subscriptions(heard_before=NOW - HOUR) == []
    assert [s.id for s in store.list_subscriptions(heard_before=NOW)] == [quiet.id]


def test_heard_at_is_dropped_when_the_state_leaves_active(store):
    quiet = make(since=NOW - 3 * HOUR)
    noted = make(since=NOW - 3 * HOUR)
    seed(store, quiet, noted)
    store.note_notification(noted.id, NOW - 2 * HOUR)  # heardAt written by the blind write
    assert {s.id for s in store.list_subscriptions(heard_before=NOW - HOUR)} == {quiet.id, noted.id}
    for sub, event in ((quiet, Event.EXPIRED), (noted, Event.SUSPENDED)):
        store.change_subscription(
            sub.id,
            lambda s, event=event: transition(
                s, event, now_ms=NOW, reason=Reason.OTHER if event is Event.SUSPENDED else None
            ),
        )
    assert store.list_subscriptions(heard_before=NOW + HOUR) == []
    assert "heardAt" not in raw(store, noted.id)[0]
    # back to active: heard from when it became active again
    store.change_subscription(noted.id, lambda s: transition(s, Event.REACTIVATED, now_ms=NOW + MINUTE))
    assert [s.id for s in store.list_subscriptions(heard_before=NOW + MINUTE)] == [noted.id]
    assert store.list_subscriptions(heard_before=NOW) == []


# --- the notification clock and the run record ------------------------------------------


def test_note_notification_sets_last_notification_at_and_nothing_else(store):
    sub = make(last_notification_at=NOW - HOUR)
    seed(store, sub)
    assert store.note_notification(sub.id, NOW) is True
    assert store.get_subscription(sub.id) == sub.copy(last_notification_at=NOW)


def test_note_notification_without_a_record_creates_nothing(store):
    assert store.note_notification("sub-not-migrated", NOW) is False
    assert store.find_subscription("sub-not-migrated") is None
    assert store.count_subscriptions() == 0
    assert store.list_subscriptions(heard_before=NOW) == []


def test_record_run_keeps_the_latest_run_per_name(store):
    assert store.last_run("renewal") is None
    store.record_run("renewal", {"at": NOW, "renewed": 3, "failed": 1, "details": {"x": [1, 2]}})
    assert store.last_run("renewal") == {"at": NOW, "renewed": 3, "failed": 1, "details": {"x": [1, 2]}}
    store.record_run("renewal", {"at": NOW + HOUR, "renewed": 0})
    assert store.last_run("renewal") == {"at": NOW + HOUR, "renewed": 0}  # replaced, not merged
    store.record_run("other", {"at": 1})
    assert store.last_run("renewal") == {"at": NOW + HOUR, "renewed": 0}
    assert store.last_run("other") == {"at": 1}


# --- migration of what the previous version wrote ---------------------------------------

T0 = datetime.datetime(2030, 1, 1, tzinfo=UTC)
GONE = "ResourceGoneError: drive v3 files.watch: HTTP 404 notFound: File not found: F."


def old_channel(subscription_id, cid, status, *, hours=0, resource_id=None, **fields) -> Channel:
    """A channel document as the previous version wrote it (and this one still does)."""
    return Channel(
        "web_hook",
        f"{subscription_id}-{cid}",
        "tok",
        "https://hook.example/webhook",
        expiration=NOW + 24 * HOUR,
        params={"ttl": "86400"},
        resource_id=f"res-{cid}" if resource_id is None else resource_id,
        resource_uri="https://www.googleapis.com/drive/v3/files/F?alt=json",
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id=subscription_id,
        status=status,
        created_at=T0 + datetime.timedelta(hours=hours),
        **fields,
    )


def seed_previous_version(store) -> dict[str, list[Channel]]:
    """One subscription per case of ``migrate.from_channels``, as channels only."""
    groups = {
        "renewed-active": [
            old_channel("renewed-active", "c1", "stopped", renewed_by="renewed-active-c2", stopped_at=1),
            old_channel("renewed-active", "c2", "active", hours=1, renews="renewed-active-c1"),
        ],
        "gone": [
            old_channel("gone", "c1", "failed", last_error=GONE),
            old_channel("gone", "c2", "failed", hours=1, renews="gone-c1", last_error=GONE, resource_id=""),
        ],
        "stopped": [old_channel("stopped", "c1", "stopped", stopped_at=1)],
        "expired": [
            old_channel(
                "expired", "c1", "failed", last_error="expired, renewal failed: TransientApiError: 503"
            ),
            old_channel(
                "expired", "c2", "failed", hours=1, renews="expired-c1", last_error="TransientApiError: 503"
            ),
        ],
        "never-live": [
            old_channel("never-live", "c1", "failed", last_error="AuthError: HTTP 401", resource_id="")
        ],
    }
    for channels in groups.values():
        for c in channels:
            store.create(c)
    return groups


def test_migrate_writes_the_record_of_every_subscription_the_previous_version_left(store):
    seed_previous_version(store)
    assert store.count_subscriptions() == 0

    summary = migrate(store, now_ms=NOW)

    assert summary == MigrationSummary(created=4, existing=0, skipped=1)
    states = {s.id: (s.state, s.reason) for s in store.list_subscriptions()}
    assert states == {
        "renewed-active": ("active", None),
        "gone": ("suspended", "RESOURCE_GONE"),
        "stopped": ("stopped", None),
        "expired": ("expired", None),
    }
    assert store.find_subscription("never-live") is None
    active = store.get_subscription("renewed-active")
    assert (active.channel_id, active.since, active.created_at) == (
        "renewed-active-c2",
        NOW,
        int(T0.timestamp() * 1000),
    )
    assert store.get_subscription("gone").detail == GONE
    # nothing changed state: no event is sent
    assert all(s.events == [] for s in store.list_subscriptions())
    assert store.list_subscriptions(events_pending=True) == []
    # the channels themselves are left as they were
    assert store.get("renewed-active-c1").status == "stopped" and store.get("gone-c1").status == "failed"


def test_migrate_again_keeps_the_records_it_made(store):
    seed_previous_version(store)
    migrate(store, now_ms=NOW)
    store.change_subscription("renewed-active", lambda s: s.copy(detail="since changed"))

    again = migrate(store, now_ms=NOW + HOUR)

    assert again == MigrationSummary(created=0, existing=4, skipped=1)
    assert store.get_subscription("renewed-active").detail == "since changed"
    assert store.get_subscription("renewed-active").since == NOW
    assert store.count_subscriptions() == 4
