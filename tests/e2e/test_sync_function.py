"""End to end, the deployed path of change feeds: the webhook requests syncs, the sync function runs them.

The webhook (functions-framework) has ``CHANNELKIT_SYNC_TOPIC`` set: after a
``--sync`` notification it publishes "sync subscription S" to the real Pub/Sub
emulator and answers. A push subscription on the emulator delivers each message
to the ``sync`` function (functions-framework, ``--signature-type=cloudevent``),
which syncs against the simulator and hands the changes to the recording change
handler. The webhook is given no way to reach Google: a sync it ran itself would fail.
"""

from __future__ import annotations

import base64
import json
import os
import uuid

import functions_framework
import pytest

from channelkit.testing.harness import free_port, wait_until
from channelkit.testing.simulator import RETRY
from support.pubsub_testing import PROJECT, pubsub, pull_all  # noqa: F401 - fixtures
from support.sync_testing import CHANGES, changes_file, cli, delivered, sim  # noqa: F401 - fixtures
from support.webhook_testing import SYNC_SOURCE, SyncFunctionProcess


def log_lines(output: str, message: str) -> list[dict]:
    """The JSON log lines whose message starts with ``message``."""
    found = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and str(record.get("message", "")).startswith(message):
            found.append(record)
    return found


@pytest.fixture
def sync_topic(pubsub):
    publisher, _ = pubsub
    path = publisher.topic_path(PROJECT, f"channelkit-sync-{uuid.uuid4().hex[:10]}")
    publisher.create_topic(name=path, timeout=30)
    yield path
    publisher.delete_topic(topic=path, timeout=30)


@pytest.fixture
def sync_env(sim, changes_file):
    """What the sync function needs: Google (the simulator) and the app's change handler."""
    return {
        "CHANNELKIT_API_ROOT": sim.url,
        "CHANNELKIT_API_RETRIES": "0",
        "CHANNELKIT_CHANGE_HANDLER": CHANGES,
        "RECORDING_CHANGES_FILE": str(changes_file),
    }


@pytest.fixture
def sync_function(firestore_env, pubsub, sync_topic, sync_env, tmp_path):
    """The sync function under functions-framework; the emulator pushes the topic's messages to it."""
    _, subscriber = pubsub
    with SyncFunctionProcess(sync_env, tmp_path / "sync.log") as process:
        push = subscriber.subscription_path(PROJECT, f"sync-push-{uuid.uuid4().hex[:10]}")
        subscriber.create_subscription(
            name=push, topic=sync_topic, push_config={"push_endpoint": process.url}, timeout=30
        )
        try:
            yield process
        finally:
            subscriber.delete_subscription(subscription=push, timeout=30)


@pytest.fixture
def hook_on(webhook_server, pubsub_env, changes_file):
    """``hook_on(topic)``: the webhook, requesting syncs on ``topic``; Google is a closed port for it."""

    def start(topic: str):
        return webhook_server(
            CHANNELKIT_SYNC_TOPIC=topic,
            CHANNELKIT_API_ROOT=f"http://127.0.0.1:{free_port()}/",
            CHANNELKIT_API_RETRIES="0",
            CHANNELKIT_CHANGE_HANDLER=CHANGES,
            RECORDING_CHANGES_FILE=str(changes_file),
        )

    return start


@pytest.fixture
def hook(hook_on, sync_topic):
    return hook_on(sync_topic)


def test_the_webhook_requests_the_sync_and_the_sync_function_hands_each_change_over_once(
    sim, cli, hook, sync_function, sync_topic, pubsub, changes_file, store
):
    _, subscriber = pubsub
    observer = subscriber.subscription_path(PROJECT, f"observer-{uuid.uuid4().hex[:10]}")
    subscriber.create_subscription(name=observer, topic=sync_topic, timeout=30)
    channel_id = cli("watch", "drive", "v3", "changes.watch", "--address", hook.url, "--sync").stdout.strip()
    subscription_id = store.get(channel_id).subscription_id
    sim.max_page_size = 2
    made = [sim.drive.create_file(f"f{i}")["id"] for i in range(5)]
    wait_until(lambda: len(delivered(changes_file)) >= 5, timeout=60, interval=0.2, message="the changes")
    sim.wait_idle(timeout=60)

    assert [c["fileId"] for c in delivered(changes_file)] == made  # each once, in order
    attempts = [d for d in sim.deliveries if d.channel_id == channel_id]
    assert attempts and not [d for d in attempts if d.outcome == RETRY]  # every notification answered 2xx
    # The webhook only asked: one request per change notification, no sync of its own.
    requested = log_lines(hook.output(), "sync requested")
    assert requested and {r["subscriptionId"] for r in requested} == {subscription_id}
    assert not [line for line in hook.output().splitlines() if "inline sync" in line]
    messages = pull_all(subscriber, observer, expected=len(requested))
    assert len(messages) == len(requested)
    for message in messages:
        assert dict(message.attributes) == {"type": "sync", "subscriptionId": subscription_id}
        assert json.loads(message.data) == {"subscriptionId": subscription_id}

    # The sync function ran them: some synced, the others found the lease held (one more pass).
    def synced() -> int:
        return sum(r["items"] for r in log_lines(sync_function.output(), "sync done"))

    wait_until(lambda: synced() >= 5, timeout=30, interval=0.1, message="the sync function's log")
    assert synced() == 5
    assert {r["subscriptionId"] for r in log_lines(sync_function.output(), "sync ")} == {subscription_id}
    assert store.get_subscription(subscription_id).cursor == sim.drive.start_page_token()
    subscriber.delete_subscription(subscription=observer, timeout=30)


def test_a_malformed_message_is_acknowledged_and_a_transient_failure_is_retried(
    sim, cli, hook, sync_function, sync_topic, pubsub, changes_file
):
    publisher, _ = pubsub
    publisher.publish(sync_topic, b"not a sync request", type="sync").result(timeout=30)
    wait_until(
        lambda: log_lines(sync_function.output(), "sync request dropped"),
        timeout=30,
        interval=0.1,
        message="the malformed message dropped",
    )
    cli("watch", "drive", "v3", "changes.watch", "--address", hook.url, "--sync")
    sim.fail_next("read", status=500, count=1)  # Google's 5xx on the sync function's first listing
    made = sim.drive.create_file("once")["id"]
    wait_until(
        lambda: log_lines(sync_function.output(), "sync done"),
        timeout=60,
        interval=0.2,
        message="the change synced",
    )
    output = sync_function.output()

    assert [c["fileId"] for c in delivered(changes_file)] == [made]
    [retried] = log_lines(output, "sync incomplete: retried")  # raised: Pub/Sub redelivered it
    assert retried["outcome"] == "retry" and "failed" in retried["reason"]
    assert [r["items"] for r in log_lines(output, "sync done")] == [1]
    # The malformed message was answered 200 (acknowledged): the emulator redelivers a
    # refused push within a second or two, and the retried request above came and went since.
    [dropped] = log_lines(output, "sync request dropped")
    assert dropped["outcome"] == "bad_request" and "not base64 of a JSON object" in dropped["reason"]


def test_a_request_that_cannot_be_published_never_changes_the_answer(sim, cli, hook_on, changes_file):
    hook = hook_on(f"projects/{PROJECT}/topics/missing-{uuid.uuid4().hex[:10]}")
    channel_id = cli("watch", "drive", "v3", "changes.watch", "--address", hook.url, "--sync").stdout.strip()
    sim.drive.create_file("x")
    sim.wait_idle(timeout=60)
    attempts = [d for d in sim.deliveries if d.channel_id == channel_id]
    assert len(attempts) == 2 and not [d for d in attempts if d.outcome == RETRY]  # sync, change: 2xx
    [failed] = log_lines(hook.output(), "sync request not published")
    assert failed["severity"] == "ERROR" and "NotFound" in failed["error"]
    assert delivered(changes_file) == []  # left for the renewal run's backstop


# -- what the function answers Pub/Sub's push: 2xx acknowledges, anything else is redelivered --------


def push_body(data: bytes, **attributes: str) -> dict:
    """A Pub/Sub push request, as the emulator (and a plain push subscription) sends it."""
    message = {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": "42"}
    return {"message": message, "subscription": f"projects/{PROJECT}/subscriptions/s"}


def request(subscription_id: str) -> dict:
    return push_body(json.dumps({"subscriptionId": subscription_id}).encode(), type="sync")


@pytest.fixture
def function_client(firestore_env, sync_env, monkeypatch):
    """``function_client(**env)``: the sync function in this process (new module state), its test client."""

    # functions-framework writes these into os.environ: restored after the test, or a later
    # functions-framework process (inheriting our environment) would serve a CloudEvent function.
    for name in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_TRIGGER_TYPE", "FUNCTION_NAME"):
        monkeypatch.setenv(name, os.environ.get(name, ""))

    def make(**env):
        for name, value in {**sync_env, **env}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        app = functions_framework.create_app(
            target="sync", source=str(SYNC_SOURCE), signature_type="cloudevent"
        )
        return app.test_client()

    return make


def test_the_function_acknowledges_what_no_retry_can_change(function_client, capfd):
    client = function_client()
    assert client.post("/", json=push_body(b"{}", type="sync")).status_code == 200
    assert client.post("/", json=push_body(b"[1]", type="sync")).status_code == 200
    assert client.post("/", json=request("no-such-subscription")).status_code == 200
    assert client.post("/", json=push_body(b'{"subscriptionId": "x"}', type="changes")).status_code == 200
    reasons = [r["reason"] for r in log_lines(capfd.readouterr().out, "sync request dropped")]
    assert reasons == [
        "message data has no subscriptionId",
        "message data has no subscriptionId",
        "no subscription 'no-such-subscription'",
        "message type 'changes', not 'sync'",
    ]


def test_the_function_has_a_transient_failure_redelivered_and_then_syncs(
    function_client, sim, cli, store, changes_file
):
    channel_id = cli(
        "watch", "drive", "v3", "changes.watch", "--address", "https://hooks.example.com/h", "--sync"
    ).stdout.strip()
    subscription_id = store.get(channel_id).subscription_id
    made = sim.drive.create_file("x")["id"]
    client = function_client()
    sim.fail_next("read", status=503, count=1)
    assert client.post("/", json=request(subscription_id)).status_code == 500  # redelivered
    assert delivered(changes_file) == []
    assert client.post("/", json=request(subscription_id)).status_code == 200
    assert [c["fileId"] for c in delivered(changes_file)] == [made]


def test_a_lasting_refusal_is_acknowledged_it_went_to_the_lifecycle(function_client, sim, cli, store):
    channel_id = cli(
        "watch", "drive", "v3", "changes.watch", "--address", "https://hooks.example.com/h", "--sync"
    ).stdout.strip()
    subscription_id = store.get(channel_id).subscription_id
    sim.drive.create_file("x")
    sim.fail_next("read", status=404, count=1)
    assert function_client().post("/", json=request(subscription_id)).status_code == 200
    subscription = store.get_subscription(subscription_id)
    assert (subscription.state, subscription.reason) == ("suspended", "RESOURCE_GONE")


def test_a_setting_that_cannot_work_is_reported_once_and_every_request_retried(function_client, capfd):
    client = function_client(CHANNELKIT_CHANGE_HANDLER=None)  # nowhere to hand changes to
    assert client.post("/", json=request("s")).status_code == 500
    assert client.post("/", json=request("s")).status_code == 500
    lines = log_lines(capfd.readouterr().out, "sync function misconfigured")
    assert [line["severity"] for line in lines] == ["CRITICAL", "ERROR"]
    assert "CHANNELKIT_CHANGE_HANDLER" in lines[0]["message"]
