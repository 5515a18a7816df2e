"""The webhook through functions-framework's test client, on the Firestore emulator.

Every row of the status table (docs/design.md, "Webhook responses"), duplicates,
a failing handler and its retry, a misconfigured handler, settings resolved once
per instance, and a Firestore outage with recovery.
"""

from __future__ import annotations

import json
import time

import pytest

from channelkit.store import ClaimOutcome, open_store
from channelkit.testing.harness import notification_headers, wait_until
from support.webhook_testing import new_channel

ALLOWED = {200, 400, 403, 404, 405, 410, 413, 503}


def post(client, headers, body=b"", method="POST"):
    response = client.open("/", method=method, headers=headers, data=body)
    assert response.status_code in ALLOWED, response.status_code
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and len(text) < 100
    return response


def test_an_accepted_notification_reaches_the_handler_once(client, store, recording):
    channel = new_channel()
    store.create(channel)
    response = post(client, notification_headers(channel, 1, "sync"))
    assert response.status_code == 200
    [call] = recording.calls()
    assert call["ok"] and call["messageNumber"] == 1 and call["state"] == "sync"
    assert call["channelId"] == channel.id and call["subscriptionId"] == channel.subscription_id


def test_a_duplicate_delivery_is_200_without_a_second_call(client, store, recording):
    channel = new_channel()
    store.create(channel)
    headers = notification_headers(channel, 42, "update", Changed="content, properties")
    statuses = [post(client, headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert recording.ok_numbers() == [42]
    assert recording.calls()[0]["changed"] == ["content", "properties"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_anything_but_post_is_405(client, store, recording, method):
    channel = new_channel()
    store.create(channel)
    response = post(client, notification_headers(channel, 1), method=method)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert recording.calls() == []


@pytest.mark.parametrize(
    "override",
    [
        {"Channel_ID": None},
        {"Message_Number": None},
        {"Resource_ID": None},
        {"Resource_State": None},
        {"Resource_URI": None},
        {"Message_Number": "0"},
        {"Message_Number": "-5"},
        {"Message_Number": "two"},
        {"Message_Number": "99999999999999999999"},
        {"Message_Number": " "},
    ],
)
def test_missing_headers_and_bad_message_numbers_are_400(client, store, recording, override):
    channel = new_channel()
    store.create(channel)
    assert post(client, notification_headers(channel, 1, **override)).status_code == 400
    assert recording.calls() == []


@pytest.mark.parametrize(
    "override", [{"Channel_Token": None}, {"Channel_Token": "wrong"}, {"Resource_ID": "res-other"}]
)
def test_a_wrong_token_or_resource_id_is_403(client, store, recording, override):
    channel = new_channel()
    store.create(channel)
    assert post(client, notification_headers(channel, 1, **override)).status_code == 403
    assert recording.calls() == []


def test_an_unknown_channel_is_404(client, store, recording):
    stranger = new_channel()  # never stored
    assert post(client, notification_headers(stranger, 1)).status_code == 404
    for odd_id in ("a/b", "__x__", "x" * 65):
        headers = notification_headers(stranger, 1, Channel_ID=odd_id)
        assert post(client, headers).status_code == 404
    assert recording.calls() == []


@pytest.mark.parametrize("status", ["stopped", "failed"])
def test_a_stopped_or_failed_channel_is_410(client, store, recording, status):
    channel = new_channel(status=status)
    store.create(channel)
    assert post(client, notification_headers(channel, 1)).status_code == 410
    assert recording.calls() == []


def test_an_expired_channel_is_410_after_the_grace(make_app, store, recording):
    client = make_app(CHANNELKIT_GRACE=30)
    now_ms = int(time.time() * 1000)
    recent = new_channel(expiration_ms=now_ms - 10_000)  # 10 s ago: inside the grace
    old = new_channel(expiration_ms=now_ms - 60_000)
    store.create(recent)
    store.create(old)
    assert post(client, notification_headers(recent, 1)).status_code == 200
    assert post(client, notification_headers(old, 1)).status_code == 410
    assert [c["channelId"] for c in recording.ok()] == [recent.id]


def test_a_body_over_the_limit_is_413(make_app, store, recording):
    client = make_app(CHANNELKIT_MAX_BODY=100)
    channel = new_channel()
    store.create(channel)
    assert post(client, notification_headers(channel, 1), b"x" * 101).status_code == 413
    assert post(client, notification_headers(channel, 2), b"x" * 100).status_code == 200
    assert recording.ok_numbers() == [2]


def test_a_message_in_progress_elsewhere_is_503(client, store, recording):
    channel = new_channel()
    store.create(channel)
    claim = store.claim_message(channel.id, 5, now_ms=int(time.time() * 1000), timeout_seconds=600)
    assert claim.outcome is ClaimOutcome.CLAIMED  # another instance is on it
    assert post(client, notification_headers(channel, 5)).status_code == 503
    store.release_message(claim)  # that instance failed and let go: Google's retry works
    assert post(client, notification_headers(channel, 5)).status_code == 200
    assert recording.ok_numbers() == [5]


def test_a_failing_handler_is_503_and_the_retry_is_processed_exactly_once(
    client, store, recording, monkeypatch
):
    monkeypatch.setenv("RECORDING_HANDLER_FAIL_FIRST", "*")
    channel = new_channel()
    store.create(channel)
    headers = notification_headers(channel, 9)
    assert post(client, headers).status_code == 503
    assert post(client, headers).status_code == 200
    assert post(client, headers).status_code == 200
    assert [c["ok"] for c in recording.calls()] == [False, True]


def test_a_pending_channel_learns_its_resource_id(client, store, recording):
    channel = new_channel(status="pending", resource_id="", expiration_ms=0)
    store.create(channel)
    headers = notification_headers(channel, 1, "sync", Resource_ID="res-from-google")
    assert post(client, headers).status_code == 200
    assert store.get(channel.id).resource_id == "res-from-google"
    assert recording.calls()[0]["channelResourceId"] == "res-from-google"
    forged = notification_headers(channel, 2, Resource_ID="res-forged")
    assert post(client, forged).status_code == 403


def test_a_misconfigured_handler_is_503_with_one_loud_log_line(make_app, store, capsys):
    client = make_app(CHANNELKIT_HANDLER="no_such_package.handlers:handle")
    channel = new_channel()
    store.create(channel)
    statuses = [post(client, notification_headers(channel, n)).status_code for n in (1, 2, 3)]
    assert statuses == [503, 503, 503]
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    loud = [l for l in lines if l["severity"] == "CRITICAL"]
    assert len(loud) == 1 and "no_such_package.handlers" in loud[0]["message"]
    # Nothing was claimed: once fixed, the same messages are processed.
    assert store.claim_message(channel.id, 1, now_ms=0, timeout_seconds=1).claimed


def test_a_bad_setting_is_503_never_500_and_reported_once(make_app, store, recording, capsys):
    client = make_app(CHANNELKIT_MAX_BODY="lots", CHANNELKIT_HANDLER=None)
    channel = new_channel()
    store.create(channel)
    assert [post(client, notification_headers(channel, n)).status_code for n in (1, 2)] == [503, 503]
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    assert [l["severity"] for l in lines].count("CRITICAL") == 1
    assert "CHANNELKIT_MAX_BODY" in next(l for l in lines if l["severity"] == "CRITICAL")["message"]
    assert [l["outcome"] for l in lines if l["severity"] != "CRITICAL"] == ["config_error"] * 2


def test_settings_are_resolved_at_the_first_request_and_kept(make_app, store, recording, monkeypatch):
    client = make_app(CHANNELKIT_MAX_BODY=100)
    channel = new_channel()
    store.create(channel)
    assert post(client, notification_headers(channel, 1), b"x" * 100).status_code == 200
    monkeypatch.setenv("CHANNELKIT_MAX_BODY", "10")  # the instance keeps what it resolved
    assert post(client, notification_headers(channel, 2), b"x" * 100).status_code == 200
    assert post(client, notification_headers(channel, 3), b"x" * 101).status_code == 413
    assert recording.ok_numbers() == [1, 2]


def test_a_bad_setting_once_fixed_is_resolved_at_the_next_request(make_app, store, recording, monkeypatch):
    client = make_app(CHANNELKIT_GRACE="a while")
    channel = new_channel()
    store.create(channel)
    assert post(client, notification_headers(channel, 1)).status_code == 503
    monkeypatch.setenv("CHANNELKIT_GRACE", "30")
    assert post(client, notification_headers(channel, 1)).status_code == 200
    assert recording.ok_numbers() == [1]


def test_corrupt_stored_data_is_503_without_a_traceback(client, store, recording, capsys):
    channel = new_channel()
    store.create(channel)
    # Write a record the library cannot read (expiration must be a number).
    store.client.collection("channels").document(channel.id).update({"expiration": "soon"})
    response = post(client, notification_headers(channel, 1))
    assert response.status_code == 503
    out = capsys.readouterr().out
    assert '"outcome":"error"' in out and "stack_trace" in out  # logged for the developer
    assert recording.calls() == []


def test_no_token_ever_appears_in_responses_or_logs(client, store, recording, capsys, monkeypatch):
    monkeypatch.setenv("RECORDING_HANDLER_FAIL_FIRST", "2")
    channel = new_channel(token="tok-VerySecret-7d41a0")
    store.create(channel)
    bodies = []
    for headers in (
        notification_headers(channel, 1),
        notification_headers(channel, 1),
        notification_headers(channel, 2),
        notification_headers(channel, 2),
        notification_headers(channel, 3, Channel_Token="tok-VerySecret-7d41a0-wrong"),
        notification_headers(channel, 4, Resource_ID="other"),
        notification_headers(channel, 5, Message_Number="x"),
        notification_headers(new_channel(token="tok-VerySecret-7d41a0"), 1),
    ):
        response = post(client, headers, b'{"kind":"drive#changes"}')
        bodies.append(response.get_data(as_text=True) + str(dict(response.headers)))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert '"outcome":"accepted"' in output  # the logs were captured
    for text in [*bodies, output]:
        assert "VerySecret" not in text


# --- Firestore outage -------------------------------------------------------------------------

BOUND = 1.0  # CHANNELKIT_STORE_TIMEOUT during the outage test


def test_a_firestore_outage_is_503_within_the_bound_then_recovers_losing_nothing(
    private_emulator, app_factory, recording
):
    seed = open_store("firestore", timeout=30)  # the first call to a cold emulator is slow
    channel = new_channel()
    seed.create(channel)
    client = app_factory(CHANNELKIT_STORE_TIMEOUT=BOUND, CHANNELKIT_CACHE_TTL=0)
    assert post(client, notification_headers(channel, 1, "sync")).status_code == 200

    private_emulator.stop()
    started = time.monotonic()
    assert post(client, notification_headers(channel, 2)).status_code == 503
    assert time.monotonic() - started < BOUND * 6
    assert recording.ok_numbers() == [1]

    private_emulator.start()  # same port, empty database: put the channel back
    open_store("firestore", timeout=30).create(channel)
    # Google retries the 503 with backoff until it is accepted.
    wait_until(
        lambda: post(client, notification_headers(channel, 2)).status_code == 200,
        timeout=30,
        interval=0.2,
        message="the webhook to recover",
    )
    assert post(client, notification_headers(channel, 2)).status_code == 200  # now a duplicate
    assert recording.ok_numbers() == [1, 2]
