"""The webhook's notification clock: ``lastNotificationAt`` written at most once per interval per subscription.

The tests use a one-minute interval; the webhook's own comes from ``CHANNELKIT_QUIET_AFTER``.
"""

from __future__ import annotations

import datetime
import sys
import threading

import pytest

from channelkit.channel import Channel
from channelkit.config import Settings
from channelkit.errors import StoreUnavailable, TokenMismatchError
from channelkit.receive import HeardClock, Receiver
from channelkit.store import open_store
from channelkit.subscription import Subscription
from channelkit.testing.harness import notification_headers

UTC = datetime.UTC
NOW_MS = 1_900_000_000_000
MINUTE = 60_000


class NoteRecorder:
    """The one store method HeardClock calls; records each write, or fails while ``down``."""

    def __init__(self):
        self.writes: list[tuple[str, int]] = []
        self.down = False

    def note_notification(self, subscription_id: str, now_ms: int) -> bool:
        if self.down:
            raise StoreUnavailable("Firestore failed: ServiceUnavailable")
        self.writes.append((subscription_id, now_ms))
        return True


def test_at_most_one_write_a_minute_per_subscription():
    store = NoteRecorder()
    heard = HeardClock(store, MINUTE)  # type: ignore[arg-type]
    for offset in (0, 1, 30_000, MINUTE - 1):
        heard.note("sub-a", NOW_MS + offset)
    assert store.writes == [("sub-a", NOW_MS)]


def test_a_minute_after_the_last_write_it_writes_again():
    store = NoteRecorder()
    heard = HeardClock(store, MINUTE)  # type: ignore[arg-type]
    heard.note("sub-a", NOW_MS)
    heard.note("sub-a", NOW_MS + MINUTE)
    heard.note("sub-a", NOW_MS + MINUTE + 59_999)
    heard.note("sub-a", NOW_MS + 3 * MINUTE)
    assert store.writes == [("sub-a", NOW_MS), ("sub-a", NOW_MS + MINUTE), ("sub-a", NOW_MS + 3 * MINUTE)]


def test_each_subscription_has_its_own_minute():
    store = NoteRecorder()
    heard = HeardClock(store, MINUTE)  # type: ignore[arg-type]
    heard.note("sub-a", NOW_MS)
    heard.note("sub-b", NOW_MS + 1)
    heard.note("sub-a", NOW_MS + 2)
    heard.note("sub-b", NOW_MS + 3)
    assert store.writes == [("sub-a", NOW_MS), ("sub-b", NOW_MS + 1)]


def test_a_store_failure_is_logged_and_never_raised(log_lines):
    store = NoteRecorder()
    store.down = True
    heard = HeardClock(store, MINUTE)  # type: ignore[arg-type]

    heard.note("sub-a", NOW_MS)  # does not raise

    [line] = [x for x in log_lines() if x.get("message") == "lastNotificationAt not written"]
    assert line["severity"] == "WARNING" and line["subscriptionId"] == "sub-a"
    assert "ServiceUnavailable" in line["error"]
    store.down = False
    heard.note("sub-a", NOW_MS + MINUTE)
    assert store.writes == [("sub-a", NOW_MS + MINUTE)]


def test_a_full_memory_starts_over_and_keeps_writing():
    store = NoteRecorder()
    heard = HeardClock(store, MINUTE)  # type: ignore[arg-type]
    heard.SIZE = 3
    for i in range(4):
        heard.note(f"sub-{i}", NOW_MS)
    heard.note("sub-0", NOW_MS + 1)  # forgotten when the memory started over: one extra write
    assert [w[0] for w in store.writes] == ["sub-0", "sub-1", "sub-2", "sub-3", "sub-0"]


def test_threads_of_one_receiver_racing_on_one_subscription_write_once():
    # Without a lock, two threads may both find no write in the last minute: switching
    # threads as often as possible makes that window show (about once in a hundred bursts).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(300):
            store = NoteRecorder()
            heard = HeardClock(store, MINUTE)  # type: ignore[arg-type]
            barrier = threading.Barrier(8)

            def burst(heard=heard, barrier=barrier):
                barrier.wait()
                heard.note("sub-a", NOW_MS)

            threads = [threading.Thread(target=burst) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert store.writes == [("sub-a", NOW_MS)]
    finally:
        sys.setswitchinterval(interval)


# --- through the Receiver, on the SQLite store ----------------------------------------------


class Clock:
    def __init__(self, now_ms: int):
        self.now = now_ms / 1000

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sqlite_store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path}/channels.db")
    yield s
    s.close()


def live_channel(store, subscription_id: str | None = "sub-1") -> Channel:
    channel = Channel(
        "web_hook",
        "chan-1",
        "tok-Heard-7",
        "https://hook.example/webhook",
        expiration=NOW_MS + 3_600_000,
        resource_id="res-1",
        resource_uri="https://www.googleapis.com/drive/v3/files/F",
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id=subscription_id,
        status="active",
        created_at=datetime.datetime.fromtimestamp(NOW_MS / 1000 - 60, UTC),
    )
    store.create(channel)
    return channel


def test_an_accepted_notification_sets_the_subscriptions_last_notification(sqlite_store):
    channel = live_channel(sqlite_store)
    sqlite_store.create_subscription(Subscription(id="sub-1", channel_id=channel.id, since=NOW_MS - MINUTE))
    clock = Clock(NOW_MS)
    receiver = Receiver(
        store=sqlite_store,
        dispatcher=lambda n, c: None,
        clock=clock,
        grace=60,
        claim_timeout=30,
        settings=Settings(quiet_after=4 * 60),  # "quiet" after 4 minutes: heard once a minute
    )

    receiver.receive("POST", notification_headers(channel, 1, "sync"), b"")
    assert sqlite_store.get_subscription("sub-1").last_notification_at is None  # a sync proves no change

    clock.now += 1
    receiver.receive("POST", notification_headers(channel, 2), b"")
    assert sqlite_store.get_subscription("sub-1").last_notification_at == NOW_MS + 1000

    clock.now += 30
    receiver.receive("POST", notification_headers(channel, 3), b"")
    assert sqlite_store.get_subscription("sub-1").last_notification_at == NOW_MS + 1000  # within the minute

    clock.now += 30
    receiver.receive("POST", notification_headers(channel, 4), b"")
    assert sqlite_store.get_subscription("sub-1").last_notification_at == NOW_MS + 61_000


def test_a_rejected_notification_is_not_heard(sqlite_store):
    channel = live_channel(sqlite_store)
    sqlite_store.create_subscription(Subscription(id="sub-1", channel_id=channel.id, since=NOW_MS - MINUTE))
    receiver = Receiver(store=sqlite_store, dispatcher=lambda n, c: None, clock=Clock(NOW_MS), grace=60)

    with pytest.raises(TokenMismatchError):
        receiver.receive("POST", notification_headers(channel, 1, Channel_Token="wrong"), b"")

    assert sqlite_store.get_subscription("sub-1").last_notification_at is None


def test_a_deployment_not_migrated_yet_accepts_notifications_without_a_record(sqlite_store):
    channel = live_channel(sqlite_store)
    calls = []
    receiver = Receiver(store=sqlite_store, dispatcher=lambda n, c: calls.append(n), clock=Clock(NOW_MS))

    assert receiver.receive("POST", notification_headers(channel, 2), b"").accepted

    assert len(calls) == 1 and sqlite_store.find_subscription("sub-1") is None


def test_the_webhooks_interval_is_a_quarter_of_quiet_after_at_most_ten_minutes():
    assert HeardClock.interval_for(86_400) == 10 * MINUTE  # the default quiet_after: a day
    assert HeardClock.interval_for(600) == 150_000
    assert HeardClock.interval_for(1) == 1_000
    store = open_store("sqlite:///:memory:")
    assert Receiver(store=store, dispatcher=lambda n, c: None).heard.every_ms == 10 * MINUTE
