"""functions/renew_worker.py in-process (functions-framework's test client): how it maps a
CloudEvent's outcome to what Pub/Sub does next. 2xx acknowledges; anything else redelivers."""

from __future__ import annotations

import base64
import json
import pathlib
import sys

import pytest
from functions_framework import create_app

from channelkit.google_api import GoogleApi
from channelkit.subscribe import subscribe
from channelkit.testing.harness import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "functions" / "renew_worker.py"
HOUR = 3600


def push_body(data: bytes) -> dict:
    """A Pub/Sub push, as the emulator or a push subscription sends it."""
    return {
        "message": {"data": base64.b64encode(data).decode(), "messageId": "1", "attributes": {}},
        "subscription": "projects/channelkit-test/subscriptions/renew-worker",
    }


@pytest.fixture
def worker(firestore_env, simulator, monkeypatch):
    """A fresh renew_worker app (new module state); the environment restored after the test."""
    monkeypatch.setenv("CHANNELKIT_API_ROOT", simulator.url)
    monkeypatch.setenv("CHANNELKIT_API_RETRIES", "0")
    monkeypatch.delenv("CHANNELKIT_HANDLER", raising=False)
    monkeypatch.delenv("CHANNELKIT_PUBSUB_TOPIC", raising=False)
    # create_app sets these two in os.environ: set here, they are restored after the test (a
    # signature type left at "cloudevent" would turn every later create_app into an event function).
    monkeypatch.setenv("FUNCTION_NAME", "renew_worker")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "cloudevent")

    def make():
        sys.modules.pop("main", None)
        return create_app(
            target="renew_worker", source=str(SOURCE), signature_type="cloudevent"
        ).test_client()

    yield make
    sys.modules.pop("main", None)


def subscribed_shard(store, simulator, file_id: str) -> tuple:
    """A Drive file subscribed through the simulator, and a shard naming its subscription."""
    channel = subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://hooks.example.com/w",
        params={"fileId": file_id},
        ttl=HOUR,
        google=GoogleApi(root=simulator.url, retries=0),
        store=store,
    )
    return channel, {"v": 1, "subscriptions": [channel.subscription_id], "listedAt": 2**50, "run": "renew-t"}


def test_a_shard_is_renewed_and_acknowledged(worker, store, simulator):
    channel, shard = subscribed_shard(store, simulator, "A")
    response = worker().post("/", json=push_body(json.dumps(shard).encode()))
    assert response.status_code == 200
    assert store.get(channel.id).status == "stopped" and store.get(channel.id).renewed_by


@pytest.mark.parametrize(
    ("variable", "broken"),
    [
        ("CHANNELKIT_HANDLER", "no_such_module_anywhere:handle"),
        ("CHANNELKIT_PUBSUB_TOPIC", "topics/not-a-full-name"),
    ],
)
def test_a_broken_handler_or_topic_does_not_stop_a_shard(
    worker, store, simulator, monkeypatch, variable, broken
):
    # Settings skip the dispatch variables (renewal_collaborators): the dispatcher logs and is None.
    monkeypatch.setenv(variable, broken)
    channel, shard = subscribed_shard(store, simulator, "B")
    assert worker().post("/", json=push_body(json.dumps(shard).encode())).status_code == 200
    assert store.get(channel.id).renewed_by


def test_a_malformed_shard_is_acknowledged_not_redelivered(worker, caplog):
    response = worker().post("/", json=push_body(b'{"v": 1, "subscriptions": "nope"}'))
    assert response.status_code == 200
    assert "renewal shard dropped: malformed" in caplog.text


def test_a_store_outage_fails_the_event_so_pub_sub_redelivers(worker, monkeypatch):
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("CHANNELKIT_STORE_TIMEOUT", "0.5")
    shard = {"v": 1, "subscriptions": ["s1"], "listedAt": 1, "run": "renew-t"}
    response = worker().post("/", json=push_body(json.dumps(shard).encode()))
    assert response.status_code == 500
