"""channelkit.sync_requests: the "sync subscription S" message, read back, and what Pub/Sub does with it;
the webhook's side (``InlineSync`` with requests), and the one sync function both paths run."""

from __future__ import annotations

import base64
import json

import pytest

from channelkit import sync as sync_flow
from channelkit.channel import Channel, Notification
from channelkit.config import Settings
from channelkit.errors import (
    BadSyncRequestError,
    PublishError,
    StoreUnavailable,
    SubscriptionNotFoundError,
    SyncIncompleteError,
    UnsupportedFeedError,
)
from channelkit.inline_sync import InlineSync
from channelkit.sync_requests import (
    MAX_SUBSCRIPTION_ID,
    SyncRequests,
    load_sync_requests,
    request_attributes,
    request_payload,
    retried,
    run_requested,
    subscription_of,
)

TOPIC = "projects/p/topics/channelkit-sync"


def event_data(data: bytes | str | None, attributes: object = None) -> dict:
    """A Pub/Sub CloudEvent's data, as Eventarc (and functions-framework, from a push) gives it."""
    message: dict = {"messageId": "1", "publishTime": "2026-01-01T00:00:00Z"}
    if data is not None:
        message["data"] = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    if attributes is not None:
        message["attributes"] = attributes
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


def sent(subscription_id: str) -> dict:
    """The event data of the message ``SyncRequests`` publishes."""
    data = json.dumps(request_payload(subscription_id)).encode()
    return event_data(data, request_attributes(subscription_id))


# -- the message ------------------------------------------------------------------------------


def test_a_request_is_the_subscription_id_in_the_data_and_in_the_attributes():
    assert request_payload("s-1") == {"subscriptionId": "s-1"}
    assert request_attributes("s-1") == {"type": "sync", "subscriptionId": "s-1"}


@pytest.mark.parametrize("subscription_id", ["s-1", "0b6f3c1e-3a47-4c0e-9f4e-5e0c4a1b2c3d", "a/b", "é" * 10])
def test_what_is_published_is_read_back(subscription_id):
    assert subscription_of(sent(subscription_id)) == subscription_id


def test_attributes_are_optional_the_data_decides():
    assert subscription_of(event_data(b'{"subscriptionId": "s-1"}')) == "s-1"
    assert subscription_of(event_data(b'{"subscriptionId": "s-1", "more": 1}', {"other": "x"})) == "s-1"


@pytest.mark.parametrize(
    "data,reason",
    [
        (None, "not a Pub/Sub message"),
        ([], "not a Pub/Sub message"),
        ({"message": "x"}, "not a Pub/Sub message"),
        ({"subscription": "s"}, "not a Pub/Sub message"),
        (event_data(b'{"subscriptionId": "s"}', ["type"]), "attributes are not a map"),
        (event_data(b'{"subscriptionId": "s"}', {"type": "changes"}), "message type 'changes', not 'sync'"),
        (event_data(b'{"subscriptionId": "s"}', {"type": "notification"}), "not 'sync'"),
        (event_data(None), "not base64 of a JSON object"),
        (event_data(""), "not base64 of a JSON object"),
        (event_data("%%%not-base64"), "not base64 of a JSON object"),
        (event_data(b"not json"), "not base64 of a JSON object"),
        (event_data(b"\xff\xfe"), "not base64 of a JSON object"),
        (event_data(b"[1, 2]"), "no subscriptionId"),
        (event_data(b'"s-1"'), "no subscriptionId"),
        (event_data(b"{}"), "no subscriptionId"),
        (event_data(b'{"subscriptionId": ""}'), "no subscriptionId"),
        (event_data(b'{"subscriptionId": "   "}'), "no subscriptionId"),
        (event_data(b'{"subscriptionId": 7}'), "no subscriptionId"),
        (event_data(b'{"subscriptionId": null}'), "no subscriptionId"),
        (event_data(b'{"subscriptionId": "a\\nb"}'), "not a subscription id"),
        (
            event_data(json.dumps({"subscriptionId": "x" * (MAX_SUBSCRIPTION_ID + 1)}).encode()),
            "not a subscription id",
        ),
        (
            event_data(b'{"subscriptionId": "s-1"}', {"type": "sync", "subscriptionId": "s-2"}),
            "disagree",
        ),
    ],
)
def test_anything_else_is_a_bad_sync_request(data, reason):
    with pytest.raises(BadSyncRequestError, match=reason):
        subscription_of(data)


# -- publishing ------------------------------------------------------------------------------


class FakeFuture:
    def __init__(self, error: Exception | None = None):
        self.error = error

    def result(self, timeout=None):
        if self.error is not None:
            raise self.error
        return "message-id"


class FakePublisher:
    def __init__(self, error: Exception | None = None):
        self.published: list[tuple[str, bytes, dict]] = []
        self.error = error

    def publish(self, topic, data, retry=None, timeout=None, **attributes):
        self.published.append((topic, data, attributes))
        return FakeFuture(self.error)


def test_sync_requests_publish_the_message_to_the_topic():
    publisher = FakePublisher()
    SyncRequests(TOPIC, publisher=publisher).request("s-1")
    [(topic, data, attributes)] = publisher.published
    assert topic == TOPIC
    assert json.loads(data) == {"subscriptionId": "s-1"}
    assert attributes == {"type": "sync", "subscriptionId": "s-1"}
    assert subscription_of(event_data(data, attributes)) == "s-1"


def test_a_failed_publish_is_a_publish_error():
    requests = SyncRequests(TOPIC, publisher=FakePublisher(RuntimeError("pubsub down")))
    with pytest.raises(PublishError, match="pubsub down"):
        requests.request("s-1")


def test_sync_requests_come_from_the_sync_topic_setting(monkeypatch):
    assert load_sync_requests(Settings()) is None
    assert load_sync_requests(Settings(sync_topic=TOPIC)).topic == TOPIC
    assert load_sync_requests() is None
    monkeypatch.setenv("CHANNELKIT_SYNC_TOPIC", TOPIC)
    assert load_sync_requests().topic == TOPIC


# -- what Pub/Sub does with a request: acknowledge (return) or redeliver (raise) -------------------


@pytest.mark.parametrize(
    "outcome,transient,again",
    [
        (sync_flow.DONE, False, False),
        (sync_flow.HELD, False, False),  # the holder makes one more pass
        (sync_flow.INACTIVE, False, False),
        (sync_flow.NOTHING, False, False),
        (sync_flow.LEASE_LOST, False, False),  # another sync holds the lease now
        (sync_flow.FAILED, False, False),  # a lasting refusal: the lifecycle has it
        (sync_flow.FAILED, True, True),  # 429, 5xx, a broken connection
        (sync_flow.HANDLER_FAILED, False, True),  # the batch is offered again
        (sync_flow.OUT_OF_TIME, False, True),  # the next pass goes on from the saved cursor
    ],
)
def test_which_outcomes_are_retried(outcome, transient, again):
    assert retried(sync_flow.SyncResult("s-1", outcome=outcome, transient=transient)) is again


@pytest.fixture
def fake_sync(monkeypatch):
    """``channelkit.sync.sync`` replaced: what it was called with, and what it answers or raises."""

    class Fake:
        def __init__(self):
            self.calls: list[tuple[str, dict]] = []
            self.answer: object = None

        def __call__(self, subscription_id, **parts):
            self.calls.append((subscription_id, parts))
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer or sync_flow.SyncResult(subscription_id)

    fake = Fake()
    monkeypatch.setattr(sync_flow, "sync", fake)
    return fake


def test_run_requested_runs_the_sync_and_returns_its_result(fake_sync):
    result = run_requested("s-1", budget=5, lease=10)
    assert result.outcome == sync_flow.DONE
    assert fake_sync.calls == [("s-1", {"budget": 5, "lease": 10})]


@pytest.mark.parametrize(
    "answer,raised",
    [
        (sync_flow.SyncResult("s-1", outcome=sync_flow.OUT_OF_TIME), SyncIncompleteError),
        (sync_flow.SyncResult("s-1", outcome=sync_flow.FAILED, transient=True), SyncIncompleteError),
        (StoreUnavailable("firestore down"), SyncIncompleteError),
        (SubscriptionNotFoundError("no subscription 's-1'"), BadSyncRequestError),
        (UnsupportedFeedError("not made with --sync"), BadSyncRequestError),
    ],
)
def test_run_requested_raises_what_pubsub_should_do(fake_sync, answer, raised):
    fake_sync.answer = answer
    with pytest.raises(raised):
        run_requested("s-1")


# -- the webhook's side: request instead of syncing, and never change the answer -------------------


def sync_channel(**fields) -> Channel:
    defaults = dict(
        api="drive",
        version="v3",
        method="changes.watch",
        method_params={"pageToken": "1"},
        subscription_id="s-1",
        sync=True,
    )
    defaults.update(fields)
    return Channel("web_hook", "chan-1", "tok", "https://h.example/", resource_id="r", **defaults)


def change(number: int = 7) -> Notification:
    return Notification(
        number, "change", "https://www.googleapis.com/drive/v3/changes", "r", channel_id="chan-1"
    )


class Sink:
    def __init__(self):
        self.batches: list = []

    def deliver(self, batch, subscription):
        self.batches.append(batch)


def inline(requests: SyncRequests | None = None) -> InlineSync:
    return InlineSync(store=object(), sink=Sink(), budget=20, lease=120, google=object(), requests=requests)


def test_with_requests_the_webhook_publishes_and_syncs_nothing_itself(fake_sync):
    publisher = FakePublisher()
    syncs = inline(SyncRequests(TOPIC, publisher=publisher))
    syncs.after_delivery(change(), sync_channel())
    assert [attributes for _, _, attributes in publisher.published] == [
        {"type": "sync", "subscriptionId": "s-1"}
    ]
    assert fake_sync.calls == []


@pytest.mark.parametrize(
    "notification,channel",
    [
        (Notification(1, "sync", "u", "r", channel_id="chan-1"), sync_channel()),  # proves no change
        (change(), sync_channel(sync=None)),  # not a --sync subscription
        (change(), sync_channel(subscription_id=None)),
        (change(), sync_channel(api="admin", version="directory_v1", method="users.watch", method_params={})),
    ],
)
def test_no_request_where_no_sync_would_run(fake_sync, notification, channel):
    publisher = FakePublisher()
    inline(SyncRequests(TOPIC, publisher=publisher)).after_delivery(notification, channel)
    assert publisher.published == [] and fake_sync.calls == []


def test_a_failed_request_is_logged_and_never_raised(log_lines):
    syncs = inline(SyncRequests(TOPIC, publisher=FakePublisher(RuntimeError("pubsub down"))))
    syncs.after_delivery(change(), sync_channel())  # no raise: the webhook's answer stands
    [line] = [line for line in log_lines() if "sync request not published" in line["message"]]
    assert line["severity"] == "ERROR" and line["subscriptionId"] == "s-1" and "pubsub down" in line["error"]


def test_both_paths_run_one_library_function(fake_sync):
    """Inline (in the webhook) and deployed (the sync function) both run ``channelkit.sync.sync``."""
    inline().after_delivery(change(), sync_channel())
    run_requested("s-1", budget=480)
    assert [subscription_id for subscription_id, _ in fake_sync.calls] == ["s-1", "s-1"]
