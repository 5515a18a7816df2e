"""Batches published to Pub/Sub (the real emulator), beside the change handler."""

from __future__ import annotations

import json

from channelkit.change_sink import ChangeSink
from channelkit.subscribe import subscribe
from channelkit.sync import DONE, HANDLER_FAILED, sync
from support.pubsub_testing import pubsub, pull_all, topic  # noqa: F401 - fixtures


def watch_changes(store, google):
    """A --sync subscription to the simulator's Drive changes."""
    return subscribe(
        "drive",
        "v3",
        "changes.watch",
        address="https://hooks.example.com/h",
        store=store,
        google=google,
        sync=True,
    )


def test_each_batch_is_published_with_its_attributes_then_handed_to_the_handler(
    store,
    google,
    simulator,
    pubsub,
    topic,
):
    _, subscriber = pubsub
    topic_path, sub_path = topic
    channel = watch_changes(store, google)
    simulator.max_page_size = 2
    made = [simulator.drive.create_file(f"f{i}")["id"] for i in range(3)]
    seen = []
    sink = ChangeSink(handler=lambda batch, subscription: seen.append(batch), topic=topic_path)
    assert sync(channel.subscription_id, store=store, google=google, sink=sink).outcome == DONE
    messages = pull_all(subscriber, sub_path, expected=2)
    assert len(messages) == 2 and len(seen) == 2
    for message, batch in zip(sorted(messages, key=lambda m: json.loads(m.data)["cursor"]), seen):
        assert dict(message.attributes) == {
            "type": "changes",
            "subscriptionId": channel.subscription_id,
            "resync": "false",
            "resyncComplete": "false",
        }
        data = json.loads(message.data)
        assert data["items"] == batch.items and data["cursor"] == batch.cursor
        assert (data["api"], data["method"]) == ("drive", "changes.watch")
    assert [c["fileId"] for batch in seen for c in batch.items] == made


def test_a_topic_alone_is_enough_and_a_raising_handler_is_offered_again(
    store,
    google,
    simulator,
    pubsub,
    topic,
):
    _, subscriber = pubsub
    topic_path, sub_path = topic
    channel = watch_changes(store, google)
    simulator.drive.create_file("only")
    published_only = ChangeSink(topic=topic_path)
    assert sync(channel.subscription_id, store=store, google=google, sink=published_only).outcome == DONE
    assert len(pull_all(subscriber, sub_path, expected=1)) == 1
    simulator.drive.create_file("second")

    def refuse(batch, subscription):
        raise RuntimeError("not now")

    failing = ChangeSink(handler=refuse, topic=topic_path)
    assert sync(channel.subscription_id, store=store, google=google, sink=failing).outcome == HANDLER_FAILED
    again = ChangeSink(topic=topic_path)
    assert sync(channel.subscription_id, store=store, google=google, sink=again).outcome == DONE
    # Published before the handler raised, and again when offered again: at least once on Pub/Sub.
    assert len(pull_all(subscriber, sub_path, expected=2)) == 2
