"""Load with duplicates: every message handled exactly once.

full: 10,000 notifications over 100 channels (stored active, with tokens), 20%
re-delivered as exact duplicates — half of them at the same moment as the
original (two senders released together by a barrier), half later in the run —
sent by 16 concurrent senders that retry 5xx like Google. The webhook runs under
functions-framework with 2 worker processes (two "instances": separate caches and
store clients, one shared Firestore emulator).

Check: every sent message has exactly one successful handler call (lost = none,
doubled = more than one), no handler calls for the same message ran at the same
time, no 500, no sender gave up.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time

from bench.reliability import common

SIZES = {
    "small": {"messages": 1200, "channels": 50},
    "full": {"messages": 10_000, "channels": 100},
}
DUPLICATE_SHARE = 0.20
SENDERS = 16


def build(
    channels,
    messages: int,
    rng: random.Random,
    *,
    duplicate_share: float = DUPLICATE_SHARE,
    concurrent_share: float = 0.5,
) -> tuple[list[common.Delivery], set]:
    """The deliveries (originals, concurrent twins, later re-deliveries) and the message keys."""
    per_channel = messages // len(channels)
    originals = []
    for channel in channels:
        for i, n in enumerate(common.message_numbers(rng, per_channel)):
            originals.append(
                common.Delivery(
                    common.notification_headers(
                        channel, n, "sync" if i == 0 else rng.choice(("update", "add", "remove", "trash"))
                    ),
                    key=(channel.id, n),
                )
            )
    rng.shuffle(originals)
    expected = {d.key for d in originals}
    dup_count = int(len(originals) * duplicate_share)
    chosen = rng.sample(range(len(originals)), dup_count)
    split = int(dup_count * concurrent_share)
    concurrent, later = set(chosen[:split]), chosen[split:]
    placed: list[tuple[float, common.Delivery]] = []
    for index, d in enumerate(originals):
        placed.append((index, d))
        if index in concurrent:
            twin = common.Delivery(dict(d.headers), key=d.key)
            d.together = twin.together = threading.Barrier(2)
            placed.append((index + 0.1, twin))  # adjacent: the next free sender takes it at once
    for index in later:  # a later re-delivery, after the original has (most likely) been handled
        d = originals[index]
        placed.append(
            (
                rng.uniform(index + SENDERS * 4, len(originals) + SENDERS * 4),
                common.Delivery(dict(d.headers), key=d.key),
            )
        )
    placed.sort(key=lambda pair: pair[0])
    items = [d for _, d in placed]
    return items, expected


def deliver_through_webhook(
    name: str, spec: dict, rng: random.Random, *, env: dict[str, str], seed: int, progress, describe: str
) -> tuple[list, dict, dict, int, float]:
    """Seed channels on the shared emulator, send ``build``'s deliveries to a real webhook.

    Returns (items, expected, figures of ``common.account``, the webhook's
    unexpected errors, seconds spent sending).
    """
    firestore = common.shared_firestore()
    project = common.new_project(name)
    common.say(progress, f"{name}: seeding {spec['channels']} channels in {project}")
    channels = common.seed_channels(firestore, project, spec["channels"])
    items, expected = build(channels, spec["messages"], rng)
    record = tempfile.NamedTemporaryFile(prefix="reliability-calls-", suffix=".jsonl", delete=False).name
    server = common.WebhookServer(firestore=firestore, project=project, record=record, env=env)
    try:
        server.wait_ready()
        common.say(progress, f"{name}: {len(items)} requests ({len(expected)} messages), {describe}")
        t0 = time.monotonic()
        common.deliver_all(server.url, items, senders=SENDERS, progress=progress, label=name, seed=seed)
        send_seconds = time.monotonic() - t0
        figures = common.account(items, record, expected=expected)
        unexpected = server.unexpected_errors()
    finally:
        server.stop()
    os.unlink(record)
    return items, expected, figures, unexpected, send_seconds


def run(size: str, *, progress=None) -> dict:
    name = "load_duplicates"
    started = time.monotonic()
    items, _, figures, unexpected, send_seconds = deliver_through_webhook(
        name,
        SIZES[size],
        random.Random(7),
        env={"RELIABILITY_DELAY": "0.005"},
        seed=1,
        progress=progress,
        describe=f"from {SENDERS} senders",
    )
    ok = (
        figures["status_500"] == 0
        and figures["overlapping"] == 0
        and figures["gave_up"] == 0
        and figures["unexpected_calls"] == 0
        and unexpected == 0
    )
    notes = (
        f"{figures['messages']} messages, {len(items) - figures['messages']} duplicate deliveries "
        f"(half concurrent with the original); {figures['attempts']} HTTP requests incl. retries; "
        f"5xx are 503 'in progress' answers to concurrent duplicates (retried); "
        f"{figures['status_500']} × 500; overlapping calls {figures['overlapping']}; "
        f"senders gave up {figures['gave_up']}; webhook unexpected errors {unexpected}; "
        f"{len(items) / send_seconds:.0f} req/s"
    )
    return common.result(
        name,
        figures,
        ok=ok,
        notes=notes,
        seconds=time.monotonic() - started,
        send_seconds=round(send_seconds, 1),
        webhook_unexpected_errors=unexpected,
    )
