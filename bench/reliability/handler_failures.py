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

import random
import time

from bench.reliability import common
from bench.reliability.load_duplicates import deliver_through_webhook

SIZES = {
    "small": {"messages": 600, "channels": 20},
    "full": {"messages": 5_000, "channels": 100},
}
FAIL_RATE = 0.10


def run(size: str, *, progress=None) -> dict:
    name = "handler_failures"
    started = time.monotonic()
    _, _, figures, unexpected, _ = deliver_through_webhook(
        name,
        SIZES[size],
        random.Random(11),
        env={"RELIABILITY_FAIL_RATE": str(FAIL_RATE)},
        seed=2,
        progress=progress,
        describe=f"handler failing {FAIL_RATE:.0%} of calls",
    )
    failures = figures["handler_failures"]
    share = failures / figures["handler_calls"] if figures["handler_calls"] else 0.0
    ok = (
        figures["status_500"] == 0
        and figures["overlapping"] == 0
        and figures["gave_up"] == 0
        and figures["unexpected_calls"] == 0
        and unexpected == 0
        and figures["status_5xx"] >= failures
        and 0.04 <= share <= 0.2
    )
    notes = (
        f"{figures['messages']} messages; handler raised on {failures} of "
        f"{figures['handler_calls']} calls ({share:.1%}), each answered 503 and retried; "
        f"other 5xx: 503 'in progress' for concurrent duplicates; {figures['status_500']} × 500; "
        f"overlapping calls {figures['overlapping']}; senders gave up {figures['gave_up']}; "
        f"webhook unexpected errors {unexpected}"
    )
    return common.result(
        name,
        figures,
        ok=ok,
        notes=notes,
        seconds=time.monotonic() - started,
        failure_share=round(share, 4),
        webhook_unexpected_errors=unexpected,
    )
