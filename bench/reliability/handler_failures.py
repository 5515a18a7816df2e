"""A handler that fails 10% of its calls at random: every message ends handled exactly once.

The app handler raises on 10% of its calls, chosen at random in each worker
process (``RELIABILITY_FAIL_RATE=0.1``); the webhook answers 503 and releases the
message's claim; the senders retry 503 with backoff as Google does. Messages and
duplicates as in ``load_duplicates`` (20% re-delivered, half concurrently).

Check: every message has exactly one successful handler call (lost / doubled),
calls for one message never overlap, every injected failure was answered with a
5xx (so Google retried it), the failure share is near 10%, no 500, no sender gave up.
"""

from __future__ import annotations

import os
import random
import tempfile
import time

from bench.reliability import common
from bench.reliability.load_duplicates import SENDERS, build

SIZES = {
    "small": {"messages": 600, "channels": 20},
    "full": {"messages": 5_000, "channels": 100},
}
FAIL_RATE = 0.10


def run(size: str, *, progress=None) -> dict:
    name = "handler_failures"
    spec = SIZES[size]
    started = time.monotonic()
    rng = random.Random(11)
    firestore = common.shared_firestore()
    project = common.new_project(name)
    common.say(progress, f"{name}: seeding {spec['channels']} channels in {project}")
    channels = common.seed_channels(firestore, project, spec["channels"])
    items, expected = build(channels, spec["messages"], rng)
    record = tempfile.NamedTemporaryFile(prefix="reliability-calls-", suffix=".jsonl", delete=False).name
    server = common.WebhookServer(firestore=firestore, project=project, record=record,
                                  env={"RELIABILITY_FAIL_RATE": str(FAIL_RATE)})
    try:
        server.wait_ready()
        common.say(progress, f"{name}: {len(items)} requests ({len(expected)} messages), "
                             f"handler failing {FAIL_RATE:.0%} of calls")
        common.deliver_all(server.url, items, senders=SENDERS, progress=progress, label=name, seed=2)
        figures = common.account(items, record, expected=expected)
        unexpected = server.unexpected_errors()
    finally:
        server.stop()
    os.unlink(record)
    failures = figures["handler_failures"]
    share = failures / figures["handler_calls"] if figures["handler_calls"] else 0.0
    ok = (figures["status_500"] == 0 and figures["overlapping"] == 0 and figures["gave_up"] == 0
          and figures["unexpected_calls"] == 0 and unexpected == 0
          and figures["status_5xx"] >= failures and 0.04 <= share <= 0.2)
    notes = (f"{figures['messages']} messages; handler raised on {failures} of "
             f"{figures['handler_calls']} calls ({share:.1%}), each answered 503 and retried; "
             f"other 5xx: 503 'in progress' for concurrent duplicates; {figures['status_500']} × 500; "
             f"overlapping calls {figures['overlapping']}; senders gave up {figures['gave_up']}; "
             f"webhook unexpected errors {unexpected}")
    return common.result(name, figures, ok=ok, notes=notes, seconds=time.monotonic() - started,
                         failure_share=round(share, 4), webhook_unexpected_errors=unexpected)
