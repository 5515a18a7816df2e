"""Publishing accepted notifications to Pub/Sub, against the real Pub/Sub emulator."""

from __future__ import annotations

import json
import time
import uuid

import functions_framework
import pytest

from channelkit.channel import Channel, Notification
from channelkit.dispatch import Dispatcher, clear_handler_cache
from channelkit.errors import PublishError
from channelkit.store import open_store
from channelkit.testing.harness import notification_headers
from support.pubsub_testing import PROJECT, pubsub, pull_all, topic  # noqa: F401 - fixtures
from support.webhook_testing import SOURCE, new_channel

TOKEN = "tok-PubSub-Secret-11aa"


def sample():
    channel = Channel(
        "web_hook",
        "chan-ps",
        TOKEN,
        "https://hook.example/",
        expiration=2_000_000_000_000,
        resource_id="res-ps",
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id="sub-ps",
        status="active",
    )
    notification = Notification(
        12,
        "update",
        "https://www.googleapis.com/drive/v3/files/F",
        "res-ps",
        channel_id="chan-ps",
        token=TOKEN,
        changed=("content", "properties"),
        body=b"",
    )
    return notification, channel


def test_one_message_per_notification_with_data_and_attributes(pubsub, topic):
    _, subscriber = pubsub
    topic_path, sub_path = topic
    notification, channel = sample()

    Dispatcher(topic=topic_path).dispatch(notification, channel)

    [message] = pull_all(subscriber, sub_path, 1)
    data = json.loads(message.data)
    assert data["channelId"] == "chan-ps" and data["messageNumber"] == 12
    assert data["state"] == "update" and data["changed"] == ["content", "properties"]
    assert data["resourceId"] == "res-ps" and data["subscriptionId"] == "sub-ps"
    assert data["api"] == "drive" and data["method"] == "files.watch"
    assert data["methodParams"] == {"fileId": "F"}
    assert dict(message.attributes) == {
        "type": "notification",
        "channelId": "chan-ps",
        "messageNumber": "12",
        "state": "update",
        "subscriptionId": "sub-ps",
    }
    assert TOKEN not in message.data.decode() and TOKEN not in str(dict(message.attributes))


def test_a_missing_topic_is_a_publish_error_within_the_timeout(pubsub):
    publisher, _ = pubsub
    missing = publisher.topic_path(PROJECT, f"missing-{uuid.uuid4().hex[:8]}")
    notification, channel = sample()
    started = time.monotonic()
    with pytest.raises(PublishError):
        Dispatcher(topic=missing, publish_timeout=3).dispatch(notification, channel)
    assert time.monotonic() - started < 10


def test_the_webhook_publishes_each_accepted_notification_once(firestore_env, pubsub, topic, monkeypatch):
    _, subscriber = pubsub
    topic_path, sub_path = topic
    monkeypatch.setenv("CHANNELKIT_PUBSUB_TOPIC", topic_path)
    clear_handler_cache()
    client = functions_framework.create_app(target="webhook", source=str(SOURCE)).test_client()
    store = open_store("firestore", timeout=30)
    channel = new_channel(token=TOKEN)
    store.create(channel)

    for number in (1, 5, 5, 9):  # 5 twice: a duplicate, published once
        headers = notification_headers(channel, number, "sync" if number == 1 else "update")
        assert client.post("/", headers=headers).status_code == 200
    assert client.post("/", headers=notification_headers(channel, 6, Channel_Token="x")).status_code == 403

    messages = pull_all(subscriber, sub_path, 3)
    assert sorted(int(m.attributes["messageNumber"]) for m in messages) == [1, 5, 9]
    assert {m.attributes["subscriptionId"] for m in messages} == {channel.subscription_id}
    assert all(TOKEN not in m.data.decode() for m in messages)


def test_a_failed_publish_is_503_and_the_retry_publishes(firestore_env, pubsub, monkeypatch):
    publisher, subscriber = pubsub
    suffix = uuid.uuid4().hex[:10]
    topic_path = publisher.topic_path(PROJECT, f"late-{suffix}")
    monkeypatch.setenv("CHANNELKIT_PUBSUB_TOPIC", topic_path)
    clear_handler_cache()
    client = functions_framework.create_app(target="webhook", source=str(SOURCE)).test_client()
    store = open_store("firestore", timeout=30)
    channel = new_channel()
    store.create(channel)
    headers = notification_headers(channel, 3)

    assert client.post("/", headers=headers).status_code == 503  # the topic does not exist yet
    publisher.create_topic(name=topic_path, timeout=30)
    sub_path = subscriber.subscription_path(PROJECT, f"late-app-{suffix}")
    subscriber.create_subscription(name=sub_path, topic=topic_path, timeout=30)
    assert client.post("/", headers=headers).status_code == 200  # the claim was released
    assert client.post("/", headers=headers).status_code == 200  # a duplicate now

    [message] = pull_all(subscriber, sub_path, 1)
    assert message.attributes["messageNumber"] == "3"
