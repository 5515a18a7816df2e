"""The renew-worker function under functions-framework (CloudEvent), two processes, pushed to by
the real Pub/Sub emulator: a renewal run fans out, the workers renew, each subscription once.

The emulator pushes each subscription to one URL; ``PushRelay`` plays Cloud Run's load
balancer in front of the two worker processes (or the emulator pushes every shard to both,
the worst case for exactly once). The workers renew against the simulator (real time) and
the Firestore emulator, and tell the recording handler of each ``renewed`` event.
"""

from __future__ import annotations

import collections
import datetime
import os
import pathlib
import signal
import time
import uuid

import pytest

from channelkit.google_api import GoogleApi
from channelkit.renewal import renew_due
from channelkit.renewal.fanout import ShardPublisher
from channelkit.subscribe import subscribe
from channelkit.testing.harness import FunctionsFrameworkProcess, PushRelay, wait_until
from support.pubsub_testing import PROJECT, pubsub  # noqa: F401 - fixtures
from support.webhook_testing import HANDLER, TESTS

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "functions" / "renew_worker.py"
HOUR = 3600
DAY = 24 * HOUR
RENEW_BEFORE = 3 * HOUR
SHARD = 5


@pytest.fixture
def google(simulator):
    return GoogleApi(root=simulator.url, retries=0)


@pytest.fixture
def workers(firestore_env, pubsub_env, simulator, recording, tmp_path):
    """``workers(n, **env)``: n renew_worker processes (CloudEvent), ready; stopped after the test."""
    started: list[FunctionsFrameworkProcess] = []

    def start(n: int = 2, **extra: str) -> list[FunctionsFrameworkProcess]:
        env = dict(os.environ)
        env.update(
            CHANNELKIT_API_ROOT=simulator.url,
            CHANNELKIT_API_RETRIES="0",
            CHANNELKIT_RENEW_BEFORE=str(RENEW_BEFORE),
            CHANNELKIT_HANDLER=HANDLER,
            RECORDING_HANDLER_FILE=str(recording.path),
            PYTHONPATH=os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH", "")) if p),
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
            **extra,
        )
        for _ in range(n):
            worker = FunctionsFrameworkProcess(
                "renew_worker",
                SOURCE,
                env=env,
                log_path=tmp_path / f"worker-{len(started)}.log",
                cwd=ROOT,
                signature_type="cloudevent",
            )
            started.append(worker)
        for worker in started[-n:]:
            worker.start()
        return [w.wait_ready() for w in started[-n:]]

    yield start
    for worker in started:
        worker.stop()


def subscriptions(store, google, n):
    """``n`` subscriptions watched 23 hours ago for a day (as Drive grants): an hour left, due;
    their successors ask for a day again, so they are not."""
    made = [
        subscribe(
            "drive",
            "v3",
            "files.watch",
            address="https://hooks.example.com/w",  # not on this machine: nothing is delivered
            params={"fileId": f"F{i}"},
            ttl=HOUR,
            store=store,
            google=google,
        )
        for i in range(n)
    ]
    for channel in made:
        assert channel.created_at is not None
        store.update(channel.id, created_at=channel.created_at - datetime.timedelta(hours=23))
    return made


def fan_out(store, google, topic_path):
    """A run that renews nothing itself: every due subscription goes out in shards of ``SHARD``."""
    summary = renew_due(
        store=store,
        google=google,
        publisher=ShardPublisher(topic_path),
        renew_inline=0,
        shard_size=SHARD,
        renew_before=RENEW_BEFORE,
    ).to_json()
    assert summary["renewed"] == 0
    return summary["published"]


def push_topic(pubsub, *endpoints):
    """A new topic with one push subscription per endpoint (a minute to answer each push)."""
    publisher, subscriber = pubsub
    suffix = uuid.uuid4().hex[:10]
    topic_path = publisher.topic_path(PROJECT, f"renew-{suffix}")
    publisher.create_topic(name=topic_path, timeout=30)
    for i, endpoint in enumerate(endpoints):
        subscriber.create_subscription(
            name=subscriber.subscription_path(PROJECT, f"renew-worker-{suffix}-{i}"),
            topic=topic_path,
            push_config={"push_endpoint": endpoint},
            ack_deadline_seconds=60,
            timeout=30,
        )
    return topic_path


def renewed(store, channels) -> int:
    """How many of the original channels were retired to a successor."""
    return sum(1 for c in channels if store.get(c.id).renewed_by)


def assert_each_renewed_once(store, simulator, recording, channels, *, strict=True):
    """Each subscription: its channel retired to one active successor, the only one live at Google.

    ``strict``: no other channel was ever made for it (no second watch) and the app heard
    ``renewed`` once; after a crash, one more may exist, abandoned (failed, stopped)."""
    made = collections.Counter(dict(c.resource.params).get("fileId") for c in simulator.channels())
    heard = collections.Counter(c["subscriptionId"] for c in recording.ok() if c["state"] == "renewed")
    for old in channels:
        mine = store.list(subscription_id=old.subscription_id)
        [active] = [c for c in mine if c.status == "active"]
        retired = store.get(old.id)
        assert active.renews == old.id and retired.renewed_by == active.id
        assert retired.status == "stopped" and not retired.stop_pending
        assert {c.status for c in mine if c.id not in (old.id, active.id)} <= {"failed"}
        if strict:
            assert len(mine) == 2 and made[old.method_params["fileId"]] == 2
            assert heard[old.subscription_id] == 1
        else:
            assert heard[old.subscription_id] >= 1
    assert {c.id for c in simulator.live_channels()} == {c.id for c in store.list(status="active")}
    assert not store.list(status="pending")


def test_two_workers_share_the_shards_and_renew_each_subscription_once(
    store, google, simulator, recording, workers, pubsub
):
    first, second = workers(2)
    channels = subscriptions(store, google, 20)
    with PushRelay([first.url, second.url]) as relay:
        topic_path = push_topic(pubsub, relay.url)
        assert fan_out(store, google, topic_path) == 20
        wait_until(lambda: renewed(store, channels) == 20, 120, 0.2, "every subscription renewed")
        wait_until(lambda: sum(relay.delivered.values()) >= 20 // SHARD, 60, 0.2, "every shard acknowledged")
    assert_each_renewed_once(store, simulator, recording, channels)
    assert relay.delivered[first.url] >= 1 and relay.delivered[second.url] >= 1  # both took shards


def test_every_shard_pushed_to_both_workers_still_renews_each_once(
    store, google, simulator, recording, workers, pubsub
):
    first, second = workers(2)
    channels = subscriptions(store, google, 20)
    topic_path = push_topic(pubsub, first.url, second.url)  # each worker gets every shard
    assert fan_out(store, google, topic_path) == 20

    def both_done() -> bool:
        return all(w.output().count("renewal shard finished") >= 20 // SHARD for w in (first, second))

    wait_until(both_done, 120, 0.2, "both workers through every shard")
    assert_each_renewed_once(store, simulator, recording, channels)


def test_a_worker_killed_mid_shard_converges_on_redelivery_and_the_next_run(
    store, google, simulator, recording, workers, pubsub
):
    simulator.latency = 0.2  # each watch and stop: a shard takes a few seconds
    # One renewal at a time in a shard: a shard of 5 takes seconds, so the kill lands inside one.
    first, second = workers(2, CHANNELKIT_RENEW_CONCURRENCY="1", CHANNELKIT_RENEW_LEASE="5")
    channels = subscriptions(store, google, 20)
    with PushRelay([first.url, second.url]) as relay:
        topic_path = push_topic(pubsub, relay.url)
        assert fan_out(store, google, topic_path) == 20
        assert first.process is not None
        group = first.process.pid

        def first_renewed_one() -> bool:
            return any(_group_of(c["pid"]) == group for c in recording.ok() if c["state"] == "renewed")

        wait_until(first_renewed_one, 60, 0.05, "the first worker to renew a subscription")
        os.killpg(group, signal.SIGKILL)  # mid-shard: its other subscriptions are claimed or not begun
        wait_until(lambda: relay.failed[first.url] >= 1, 30, 0.05, "the cut-off delivery")
        # Pub/Sub redelivers the cut-off shard; the relay sends it to the live worker, which skips
        # what the dead one still holds and renews the rest.
        wait_until(
            lambda: relay.delivered[second.url] + relay.delivered[first.url] >= 20 // SHARD,
            120,
            0.2,
            "every shard acknowledged",
        )
    simulator.latency = 0
    # The next run, once the dead worker's leases lapse, finishes what it left.
    wait_until(lambda: not _leased(store), 60, 0.5, "the dead worker's leases to lapse")
    renew_due(store=store, google=google, renew_before=RENEW_BEFORE)
    assert_each_renewed_once(store, simulator, recording, channels, strict=False)


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _leased(store) -> list:
    now_ms = int(time.time() * 1000)
    return [c for c in store.list(status="active") if c.lease_owner and (c.lease_until or 0) > now_ms]
