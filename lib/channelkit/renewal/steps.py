"""The steps of renewing one channel, and which step may follow which.

New before old: the successor is live before the old channel is retired, so a
subscription is never without a live channel. A run that dies between any two
steps leaves its lease set, and the next run takes the branch that finishes
its work (see ``Renewer.renew_channel``)::

    CLAIM_LEASE ──┬── claimed ─▶ CHECK_SUBSCRIPTION
                  └── held by another run, or not active ─▶ DONE

    CHECK_SUBSCRIPTION ──┬── clean claim ─────────────────────────▶ MAKE_SUCCESSOR
                         ├── a crashed run's trace ─▶ FIND_SUCCESSOR ──┬── none ──▶ MAKE_SUCCESSOR
                         │                                             └── active ─▶ NOTIFY_RENEWED
                         ├── subscription suspended/expired/stopped: renewal held ─▶ RELEASE_LEASE
                         └── token sealed under a key this run lacks: left as is ─▶ RELEASE_LEASE

    MAKE_SUCCESSOR (stored pending) ─▶ WATCH ──┬── live, marked active ─▶ NOTIFY_RENEWED
                                               └── refused / stopped / Google failed ─▶ RELEASE_LEASE
                     (a refusal is recorded on the subscription first: counted,
                      suspended, expired or expiring, with its event)

    NOTIFY_RENEWED ─▶ RETIRE_OLD ──┬── marked stopped, lease released ─▶ STOP_OLD ─▶ DONE
                                   └── it left active meanwhile ─▶ RELEASE_LEASE ─▶ DONE

NOTIFY_RENEWED records ``renewed`` on the subscription (its event in the same
write) and delivers it before the old channel is retired: a crash in between
delivers it on the next run (at least once), never not at all.
"""

from __future__ import annotations

import enum

__all__ = [
    "NEXT_STEPS",
    "RenewalStep",
]


class RenewalStep(enum.Enum):
    """One step of renewing a channel."""

    CLAIM_LEASE = "claim the renewal lease"
    CHECK_SUBSCRIPTION = "read the subscription (made from the channel if missing); hold it if not active"
    FIND_SUCCESSOR = "look for a successor a crashed run left"
    MAKE_SUCCESSOR = "store a pending successor"
    WATCH = "watch the successor at Google and mark it active"
    NOTIFY_RENEWED = "record renewed on the subscription and deliver the event"
    RETIRE_OLD = "mark the old channel stopped, its lease released"
    STOP_OLD = "stop the old channel at Google"
    RELEASE_LEASE = "give the lease back"
    DONE = "done"


#: Step -> the steps that may follow it (the drawing above).
NEXT_STEPS: dict[RenewalStep, tuple[RenewalStep, ...]] = {
    RenewalStep.CLAIM_LEASE: (RenewalStep.CHECK_SUBSCRIPTION, RenewalStep.DONE),
    RenewalStep.CHECK_SUBSCRIPTION: (
        RenewalStep.MAKE_SUCCESSOR,
        RenewalStep.FIND_SUCCESSOR,
        RenewalStep.RELEASE_LEASE,
    ),
    RenewalStep.FIND_SUCCESSOR: (RenewalStep.MAKE_SUCCESSOR, RenewalStep.NOTIFY_RENEWED),
    RenewalStep.MAKE_SUCCESSOR: (RenewalStep.WATCH,),
    RenewalStep.WATCH: (RenewalStep.NOTIFY_RENEWED, RenewalStep.RELEASE_LEASE),
    RenewalStep.NOTIFY_RENEWED: (RenewalStep.RETIRE_OLD,),
    RenewalStep.RETIRE_OLD: (RenewalStep.STOP_OLD, RenewalStep.RELEASE_LEASE),
    RenewalStep.STOP_OLD: (RenewalStep.DONE,),
    RenewalStep.RELEASE_LEASE: (RenewalStep.DONE,),
    RenewalStep.DONE: (),
}
