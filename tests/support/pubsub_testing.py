"""Pub/Sub emulator fixtures: a publisher and subscriber, a fresh topic, and pulling what arrived."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from channelkit.testing.harness import wait_until

PROJECT = "channelkit-test"


@pytest.fixture
def pubsub(pubsub_env):
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    yield publisher, subscriber
    subscriber.close()


@pytest.fixture
def topic(pubsub):
    """A new topic with one subscription: (topic path, subscription path)."""
    publisher, subscriber = pubsub
    suffix = uuid.uuid4().hex[:10]
    topic_path = publisher.topic_path(PROJECT, f"notifications-{suffix}")
    sub_path = subscriber.subscription_path(PROJECT, f"app-{suffix}")
    publisher.create_topic(name=topic_path, timeout=30)
    subscriber.create_subscription(name=sub_path, topic=topic_path, timeout=30)
    return topic_path, sub_path


def pull_all(subscriber, sub_path, expected: int, timeout: float = 15.0):
    """Pull (and ack) until ``expected`` messages arrived; then make sure no more come."""
    messages = []

    def pulled_enough() -> bool:
        response = subscriber.pull(
            subscription=sub_path, max_messages=10, return_immediately=True, timeout=10
        )
        if response.received_messages:
            subscriber.acknowledge(
                subscription=sub_path, ack_ids=[m.ack_id for m in response.received_messages]
            )
            messages.extend(m.message for m in response.received_messages)
        return len(messages) >= expected

    with contextlib.suppress(TimeoutError):  # fewer than expected: the caller's assertion says so
        wait_until(pulled_enough, timeout, 0.05, f"{expected} messages on {sub_path}")
    extra = subscriber.pull(subscription=sub_path, max_messages=10, return_immediately=True, timeout=10)
    return messages + [m.message for m in extra.received_messages]
