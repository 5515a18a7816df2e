"""Lifecycle events: the outbox a transition filled, delivered in order, at least once.

The store runs on every backend (``support.store_backends``); the Pub/Sub test
publishes to the real Pub/Sub emulator.
"""

from __future__ import annotations

import datetime
import json
import uuid

from channelkit.channel import Channel
from channelkit.dispatch import Dispatcher
from channelkit.events import SYNTHETIC_MESSAGE_NUMBER, deliver_events, deliver_pending, event_notification
from channelkit.lifecycle import transition
from channelkit.subscription import Event, Reason, Subscription
from support.pubsub_testing import pubsub, pull_all, topic  # noqa: F401 - fixtures
from support.store_backends import store  # noqa: F401 - the fixture, over every backend

UTC = datetime.UTC
NOW = 1_900_000_000_000  # ms
MINUTE = 60_000
HOUR = 3_600_000
RESOURCE_URI = "https://www.googleapis.com/drive/v3/files/F?alt=json"


class Recorder:
    """A dispatcher: records (notification, channel); raises on the calls listed in ``fail_on``."""

    def __init__(self, fail_on=()):
        self.calls: list[tuple] = []
        self.attempts = 0
        self.fail_on = set(fail_on)

    def __call__(self, notification, channel):
        self.attempts += 1
        if self.attempts in self.fail_on:
            raise RuntimeError("the app's handler broke")
        self.calls.append((notification, channel))

    @property
    def states(self):
        return [n.state for n, _ in self.calls]


def stored_channel(store, cid: str, subscription_id: str, resource_id: str) -> Channel:
    channel = Channel(
        "web_hook",
        cid,
        "tok-" + uuid.uuid4().hex,
        "https://hook.example/webhook",
        expiration=NOW + 24 * HOUR,
        resource_id=resource_id,
        resource_uri=RESOURCE_URI,
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id=subscription_id,
        status="active",
        created_at=datetime.datetime.fromtimestamp(NOW / 1000 - 3600, tz=UTC),
    )
    store.create(channel)
    return channel


def with_events(store, *events: tuple[Event, int], sub_id: str | None = None) -> Subscription:
    """A stored subscription (and its channel) whose outbox holds ``events``, each at its time."""
    sub_id = sub_id or "sub-" + uuid.uuid4().hex[:8]
    channel = stored_channel(store, f"{sub_id}-chan", sub_id, f"res-{sub_id}")
    sub = Subscription(
        id=sub_id,
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        address=channel.address,
        channel_id=channel.id,
        since=NOW - 2 * HOUR,
        created_at=NOW - 2 * HOUR,
    )
    for event, at in events:
        reason = Reason.PERMISSION_DENIED if event is Event.SUSPENDED else None
        sub = transition(sub, event, now_ms=at, reason=reason)
    store.create_subscription(sub)
    return sub


LIFE = (
    (Event.EXPIRING, NOW - 30 * MINUTE),
    (Event.SUSPENDED, NOW - 20 * MINUTE),
    (Event.REACTIVATED, NOW - 10 * MINUTE),
)


def test_events_are_delivered_in_order_and_leave_the_outbox(store):
    sub = with_events(store, *LIFE)
    recorder = Recorder()

    assert deliver_events(store, recorder, sub.id) == 3

    assert recorder.states == ["expiring", "suspended", "reactivated"]
    assert [n.reason for n, _ in recorder.calls] == [None, "PERMISSION_DENIED", None]
    assert store.get_subscription(sub.id).events == []
    assert store.list_subscriptions(events_pending=True) == []
    assert deliver_events(store, recorder, sub.id) == 0 and len(recorder.calls) == 3


def test_a_failed_delivery_keeps_that_event_and_the_ones_after_it(store):
    sub = with_events(store, *LIFE)
    broken = Recorder(fail_on={2})  # the app fails on the second event

    assert deliver_events(store, broken, sub.id) == 1

    assert broken.states == ["expiring"]
    kept = store.get_subscription(sub.id).events
    assert [e["event"] for e in kept] == ["suspended", "reactivated"]
    assert kept == sub.events[1:]
    assert [s.id for s in store.list_subscriptions(events_pending=True)] == [sub.id]

    working = Recorder()
    assert deliver_events(store, working, sub.id) == 2
    assert working.states == ["suspended", "reactivated"]
    assert store.get_subscription(sub.id).events == []


def test_recorded_before_leaves_younger_events_to_the_actor_that_recorded_them(store):
    sub = with_events(store, (Event.EXPIRING, NOW - 30 * MINUTE), (Event.EXPIRED, NOW - MINUTE))
    recorder = Recorder()

    assert deliver_events(store, recorder, sub.id, recorded_before_ms=NOW - 10 * MINUTE) == 1

    assert recorder.states == ["expiring"]
    assert [e["event"] for e in store.get_subscription(sub.id).events] == ["expired"]
    assert deliver_events(store, recorder, sub.id, recorded_before_ms=NOW) == 1
    assert recorder.states == ["expiring", "expired"]


def test_deliver_pending_empties_every_old_enough_outbox(store):
    one = with_events(store, (Event.EXPIRING, NOW - 30 * MINUTE))
    two = with_events(store, (Event.SUSPENDED, NOW - 40 * MINUTE), (Event.REACTIVATED, NOW - 35 * MINUTE))
    young = with_events(store, (Event.EXPIRED, NOW - MINUTE))
    mixed = with_events(store, (Event.EXPIRING, NOW - 50 * MINUTE), (Event.EXPIRED, NOW - MINUTE))
    nothing = with_events(store)
    recorder = Recorder()

    assert deliver_pending(store, recorder, recorded_before_ms=NOW - 10 * MINUTE) == 4

    by_subscription = {}
    for n, c in recorder.calls:
        by_subscription.setdefault(c.subscription_id, []).append(n.state)
    assert by_subscription == {
        one.id: ["expiring"],
        two.id: ["suspended", "reactivated"],
        mixed.id: ["expiring"],
    }
    pending = {s.id: [e["event"] for e in s.events] for s in store.list_subscriptions(events_pending=True)}
    assert pending == {young.id: ["expired"], mixed.id: ["expired"]}
    assert nothing.id not in by_subscription


def test_deliver_pending_goes_on_past_a_subscription_whose_delivery_fails(store):
    subs = [with_events(store, (Event.EXPIRING, NOW - 30 * MINUTE)) for _ in range(3)]
    broken = Recorder(fail_on={1})  # whichever subscription comes first

    assert deliver_pending(store, broken, recorded_before_ms=NOW) == 2

    [left] = store.list_subscriptions(events_pending=True)
    assert left.id in {s.id for s in subs}
    assert {c.subscription_id for _, c in broken.calls} == {s.id for s in subs} - {left.id}
    assert deliver_pending(store, Recorder(), recorded_before_ms=NOW) == 1
    assert store.list_subscriptions(events_pending=True) == []


def test_without_a_dispatcher_the_events_wait_in_the_outbox(store):
    sub = with_events(store, *LIFE)

    assert deliver_events(store, None, sub.id) == 0
    assert deliver_pending(store, None, recorded_before_ms=NOW) == 0

    assert store.get_subscription(sub.id).events == sub.events
    assert deliver_events(store, Recorder(), sub.id) == 3


def test_deliver_events_of_an_unknown_subscription_delivers_nothing(store):
    recorder = Recorder()
    assert deliver_events(store, recorder, "sub-unknown") == 0
    assert recorder.calls == []


def test_the_synthetic_notification_carries_the_event_and_the_channels_resource(store):
    sub = with_events(store, (Event.SUSPENDED, NOW - 30 * MINUTE))
    channel = store.get(sub.channel_id)
    recorder = Recorder()

    deliver_events(store, recorder, sub.id)

    [(notification, given)] = recorder.calls
    assert notification.message_number == SYNTHETIC_MESSAGE_NUMBER == 0
    assert (notification.state, notification.reason) == ("suspended", "PERMISSION_DENIED")
    assert (notification.resource_id, notification.resource_uri) == (f"res-{sub.id}", RESOURCE_URI)
    assert notification.channel_id == channel.id
    assert notification.channel_expiration == channel.expires_at
    assert given == channel and given.subscription_id == sub.id
    assert notification.to_dict()["reason"] == "PERMISSION_DENIED"


def test_an_event_about_a_channel_no_longer_stored_still_names_its_subscription(store):
    sub = with_events(store)
    gone = transition(sub, Event.EXPIRED, now_ms=NOW - 30 * MINUTE, channel_id="chan-swept")
    store.change_subscription(sub.id, lambda s: gone)
    recorder = Recorder()

    assert deliver_events(store, recorder, sub.id) == 1

    [(notification, channel)] = recorder.calls
    assert (notification.state, notification.channel_id, notification.resource_id) == (
        "expired",
        "chan-swept",
        "",
    )
    assert (channel.id, channel.subscription_id, channel.method_params) == (
        "chan-swept",
        sub.id,
        {"fileId": "F"},
    )


def test_event_notification_without_a_channel():
    event = {"id": "e", "event": "stopped", "at": NOW, "channelId": "chan-9"}
    notification = event_notification(event, None)
    assert (notification.message_number, notification.state, notification.channel_id) == (
        0,
        "stopped",
        "chan-9",
    )
    assert (notification.resource_id, notification.resource_uri, notification.reason) == ("", "", None)


def test_a_lifecycle_event_is_published_with_its_type_and_reason(store, pubsub, topic):
    _, subscriber = pubsub
    topic_path, sub_path = topic
    sub = with_events(store, (Event.SUSPENDED, NOW - 30 * MINUTE))

    assert deliver_events(store, Dispatcher(topic=topic_path), sub.id) == 1

    [message] = pull_all(subscriber, sub_path, 1)
    assert dict(message.attributes) == {
        "type": "lifecycle",
        "channelId": sub.channel_id,
        "messageNumber": "0",
        "state": "suspended",
        "subscriptionId": sub.id,
        "reason": "PERMISSION_DENIED",
    }
    data = json.loads(message.data)
    assert (data["state"], data["reason"], data["messageNumber"]) == ("suspended", "PERMISSION_DENIED", 0)
    assert data["resourceId"] == f"res-{sub.id}" and data["subscriptionId"] == sub.id
    assert store.get_subscription(sub.id).events == []
