"""End to end: the simulator plays Google, the CLI subscribes, a real functions-framework
server runs the webhook, and the app's handler sees every message exactly once.

The simulator injects duplicate and reordered deliveries; the handler fails the
first attempt of every odd message number, so those are answered 503 and
delivered again by the simulator's retries, as Google would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from channelkit.testing.harness import notification_headers, post, wait_until
from channelkit.testing.simulator import CANCELLED, DELIVERED, FAILED, RETRY, Simulator

CACHE_TTL = 1.0  # seconds the webhook caches a channel lookup

WATCHES = {
    "drive-files": (
        ["drive", "v3", "files.watch", "--param", "fileId=F1"],
        [
            {"state": "update", "changed": ["content"]},
            {"state": "update", "changed": ["properties"]},
            {"state": "trash"},
            {"state": "untrash"},
            {"state": "update"},
            {"state": "remove"},
        ],
    ),
    "directory-users": (
        ["admin", "directory_v1", "users.watch", "--param", "customer=my_customer"],
        [
            {"state": "add"},
            {"state": "update"},
            {"state": "makeAdmin"},
            {"state": "delete"},
            {"state": "undelete"},
            {"state": "update"},
        ],
    ),
}


@pytest.fixture
def sim():
    # sync_before_response: Google's sync may arrive before watch returns, while the
    # channel is still pending; the simulator makes that happen every time.
    with Simulator(
        sync_before_response=True, seed=7, retry_base=0.01, max_attempts=6, delivery_timeout=15
    ) as simulator:
        yield simulator


@pytest.fixture
def cli(firestore_env, sim):
    env = dict(os.environ, CHANNELKIT_API_ROOT=sim.url, CHANNELKIT_API_RETRIES="0")

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "channelkit", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run


@pytest.mark.parametrize("kind", sorted(WATCHES))
def test_every_message_reaches_the_handler_exactly_once(kind, sim, cli, webhook_server, recording, store):
    watch_args, changes = WATCHES[kind]
    server = webhook_server(RECORDING_HANDLER_FAIL_FIRST="odd", CHANNELKIT_CACHE_TTL=CACHE_TTL)

    channel_id = cli("watch", *watch_args, "--address", server.url).strip()

    channel = store.get(channel_id)
    assert channel.status == "active"
    assert channel.resource_id == sim.channel(channel_id).resource_id
    sync_calls = [c for c in recording.ok() if c["state"] == "sync"]
    assert [c["messageNumber"] for c in sync_calls] == [1]
    # The sync came while the channel was pending: the webhook taught it its resource id.
    assert sync_calls[0]["channelResourceId"] == channel.resource_id

    sim.duplicate_next(2)
    for change in changes[:2]:
        sim.change_channel_resource(channel_id, **change)
    sim.reorder_next(3)
    for change in changes[2:5]:
        sim.change_channel_resource(channel_id, **change)
    sim.duplicate_next(1)
    sim.change_channel_resource(channel_id, **changes[5])
    sim.wait_idle(timeout=60)

    attempts = [d for d in sim.deliveries if d.channel_id == channel_id]
    sent = sorted({d.message_number for d in attempts})
    assert len(sent) == 1 + len(changes)
    assert not [d for d in attempts if d.outcome in (FAILED, CANCELLED)]
    assert {d.message_number for d in attempts if d.outcome == DELIVERED} == set(sent)
    # The faults really happened: 503s retried, duplicates answered 200, an out-of-order batch.
    assert any(d.outcome == RETRY and d.status == 503 for d in attempts)
    assert any(d.duplicate and d.outcome == DELIVERED for d in attempts)

    handled = recording.ok_numbers(channel_id)
    assert sorted(handled) == sent  # every message, sync included, exactly once
    assert handled != sorted(handled)  # ... though not in order
    assert {c["state"] for c in recording.ok()} >= {"sync"} | {c["state"] for c in changes}

    # Stopping with the CLI: Google sends nothing more, and once the webhook's channel
    # cache has turned over (CHANNELKIT_CACHE_TTL), a late delivery is refused with 410.
    cli("stop", channel_id)
    stopped_at = time.monotonic()
    assert sim.channel(channel_id).stopped
    assert sim.change_channel_resource(channel_id, **changes[0]) == {}
    late = notification_headers(store.get(channel_id), sent[-1] + 6)
    wait_until(
        lambda: post(server.url, late)[0] == 410,
        timeout=10,
        interval=0.1,
        message="the stop to take effect",
    )
    assert time.monotonic() - stopped_at < CACHE_TTL + 3
    assert sorted(n for n in recording.ok_numbers(channel_id) if n in sent) == sent
