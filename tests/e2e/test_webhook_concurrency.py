"""Concurrent deliveries against a real functions-framework server (2 worker processes).

Each worker process is its own "instance" with its own cache and store client;
only Firestore (the emulator) is shared, as on Cloud Functions.
"""

from __future__ import annotations

import threading

from channelkit.testing.harness import notification_headers, post, wait_until
from support.webhook_testing import new_channel

DELIVERIES = 24


def deliver_concurrently(url: str, requests: list[dict]) -> list[int]:
    """POST every header set at the same moment, one thread each; the statuses, in order."""
    barrier = threading.Barrier(len(requests))
    statuses: list[int | None] = [None] * len(requests)
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            statuses[i], _ = post(url, requests[i], b"")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return statuses  # type: ignore[return-value]


def retry_until_accepted(url: str, headers: dict, timeout: float = 20.0) -> None:
    """What Google does with a 503: send again (here without backoff) until a 2xx."""
    wait_until(lambda: post(url, headers, b"")[0] == 200, timeout, 0.05, "a 200 on retry")


def test_many_concurrent_deliveries_of_one_message_call_the_handler_once(webhook_server, store, recording):
    server = webhook_server(workers=2, RECORDING_HANDLER_DELAY="0.3")
    channel = new_channel()
    store.create(channel)
    headers = notification_headers(channel, 17, "update")

    statuses = deliver_concurrently(server.url, [headers] * DELIVERIES)

    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 1
    assert statuses.count(503) >= 1  # the handler was slow: the others found it in progress
    assert recording.ok_numbers() == [17]
    for status in statuses:
        if status == 503:
            retry_until_accepted(server.url, headers)
    assert recording.ok_numbers() == [17]
    assert "Traceback" not in server.output()


def test_concurrent_duplicates_of_many_messages_are_each_handled_once(webhook_server, store, recording):
    server = webhook_server(workers=2)
    channel = new_channel()
    store.create(channel)
    numbers = [1] + [10 * i + 3 for i in range(1, 15)]
    requests = [
        notification_headers(channel, n, "sync" if n == 1 else "update") for n in numbers for _ in range(2)
    ]

    statuses = deliver_concurrently(server.url, requests)

    assert set(statuses) <= {200, 503}, statuses
    for headers, status in zip(requests, statuses):
        if status == 503:
            retry_until_accepted(server.url, headers)
    assert sorted(recording.ok_numbers()) == numbers


def test_a_failing_handler_under_concurrency_still_ends_with_one_successful_call(
    webhook_server, store, recording
):
    server = webhook_server(workers=2, RECORDING_HANDLER_FAIL_FIRST="*", RECORDING_HANDLER_DELAY="0.1")
    channel = new_channel()
    store.create(channel)
    headers = notification_headers(channel, 5, "update")

    statuses = deliver_concurrently(server.url, [headers] * DELIVERIES)
    assert set(statuses) <= {200, 503}, statuses
    retry_until_accepted(server.url, headers)

    calls = [c for c in recording.calls() if c["messageNumber"] == 5]
    assert [c["ok"] for c in calls] == [False, True]
