"""A burst of notifications through the Receiver on the Firestore emulator: one subscription write.

The store's own write primitives are counted (they still run against the
emulator), and the subscription document's update time shows when it was written.
"""

from __future__ import annotations

import collections
import datetime
import uuid

import pytest

from channelkit.channel import Channel
from channelkit.config import Settings
from channelkit.receive import Receiver
from channelkit.subscription import Subscription
from channelkit.testing.harness import notification_headers

UTC = datetime.UTC
NOW_MS = 1_900_000_000_000
MINUTE = 60_000
BURST = 12

#: Every primitive that writes: channels, messages, and (``_doc_*``, by kind) the records beside them.
WRITES = (
    "_insert",
    "_compare_and_set",
    "_insert_message",
    "_update_message",
    "_mark_message_done",
    "_delete_message",
    "_doc_insert",
    "_doc_replace",
    "_doc_delete",
    "_doc_touch",
    "_doc_write",
)


class Clock:
    def __init__(self, now_ms: int):
        self.now = now_ms / 1000

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def writes(store, monkeypatch):
    """How often each write primitive of ``store`` is called from now on (the calls go through).

    ``_doc_*`` calls are counted by kind: ``_doc_touch:subscriptions``.
    """
    counts: collections.Counter = collections.Counter()
    for name in WRITES:
        real = getattr(store, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            counts[f"{_name}:{args[0]}" if _name.startswith("_doc_") else _name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return counts


def live_channel(store, subscription_id: str | None) -> Channel:
    channel = Channel(
        "web_hook",
        str(uuid.uuid4()),
        "tok-" + uuid.uuid4().hex,
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


def burst(receiver: Receiver, clock: Clock, channel: Channel, numbers) -> None:
    for number in numbers:
        assert receiver.receive("POST", notification_headers(channel, number), b"").accepted
        clock.now += 1  # a notification a second: the whole burst within one minute


def test_a_burst_for_one_subscription_writes_its_record_once(store, writes):
    # A control channel without a subscription: what the claims cost without the clock.
    control = live_channel(store, subscription_id=None)
    channel = live_channel(store, subscription_id="sub-burst")
    store.create_subscription(Subscription(id="sub-burst", channel_id=channel.id, since=NOW_MS - MINUTE))
    _, created = store._doc_read("subscriptions", "sub-burst")
    clock = Clock(NOW_MS)
    delivered = []
    receiver = Receiver(
        store=store, dispatcher=lambda n, c: delivered.append(n), clock=clock, grace=60, claim_timeout=30
    )
    writes.clear()

    burst(receiver, clock, control, range(1, BURST + 1))
    control_writes = dict(writes)
    writes.clear()

    burst(receiver, clock, channel, [1])
    _, first = store._doc_read("subscriptions", "sub-burst")
    burst(receiver, clock, channel, range(2, BURST + 1))
    _, last = store._doc_read("subscriptions", "sub-burst")

    assert len(delivered) == 2 * BURST
    assert first != created and last == first  # written by the first notification, never again
    assert store.get_subscription("sub-burst").last_notification_at == NOW_MS + BURST * 1000
    assert writes == {"_insert_message": BURST, "_mark_message_done": BURST, "_doc_touch:subscriptions": 1}
    assert control_writes == {"_insert_message": BURST, "_mark_message_done": BURST}
    assert all(store._read_message(channel.id, n)[0]["status"] == "done" for n in range(1, BURST + 1))


def test_a_minute_later_the_next_notification_writes_again(store, writes):
    channel = live_channel(store, subscription_id="sub-later")
    store.create_subscription(Subscription(id="sub-later", channel_id=channel.id, since=NOW_MS - MINUTE))
    clock = Clock(NOW_MS)
    receiver = Receiver(
        store=store,
        dispatcher=lambda n, c: None,
        clock=clock,
        grace=60,
        claim_timeout=30,
        settings=Settings(quiet_after=4 * 60),  # "quiet" after 4 minutes: heard once a minute
    )

    burst(receiver, clock, channel, range(1, 4))
    clock.now = (NOW_MS + MINUTE) / 1000
    burst(receiver, clock, channel, range(4, 7))

    assert writes["_doc_touch:subscriptions"] == 2
    assert store.get_subscription("sub-later").last_notification_at == NOW_MS + MINUTE
