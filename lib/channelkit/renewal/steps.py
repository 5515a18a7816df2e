"""The steps of renewing one channel, and which step may follow which.

New before old: the successor is live before the old channel is retired, so a
subscription is never without a live channel. A run that dies between any two
steps leaves its lease set, and the next run takes the branch that finishes
its work (see ``Renewer.renew_channel``)::

    CLAIM_LEASE ──┬── clean claim ─────────────────────────▶ MAKE_SUCCESSOR
                  ├── a crashed run's trace ─▶ FIND_SUCCESSOR ──┬── none ──▶ MAKE_SUCCESSOR
                  │                                             └── active ─▶ NOTIFY_RENEWED
                  └── held by another run, or not active ─▶ DONE

    MAKE_SUCCESSOR (stored pending) ─▶ WATCH ──┬── live, marked active ─▶ NOTIFY_RENEWED
                                               └── gone / stopped / Google failed ─▶ RELEASE_LEASE

    NOTIFY_RENEWED ─▶ RETIRE_OLD ──┬── marked stopped, lease released ─▶ STOP_OLD ─▶ DONE
                                   └── it left active meanwhile ─▶ RELEASE_LEASE ─▶ DONE

The app is told before the old channel is retired: a crash in between tells it
again on the next run (at least once), never not at all.
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
    FIND_SUCCESSOR = "look for a successor a crashed run left"
    MAKE_SUCCESSOR = "store a pending successor"
    WATCH = "watch the successor at Google and mark it active"
    NOTIFY_RENEWED = "send the app a renewed notification"
    RETIRE_OLD = "mark the old channel stopped, its lease released"
    STOP_OLD = "stop the old channel at Google"
    RELEASE_LEASE = "give the lease back"
    DONE = "done"


#: Step -> the steps that may follow it (the drawing above).
NEXT_STEPS: dict[RenewalStep, tuple[RenewalStep, ...]] = {
    RenewalStep.CLAIM_LEASE: (RenewalStep.MAKE_SUCCESSOR, RenewalStep.FIND_SUCCESSOR, RenewalStep.DONE),
    RenewalStep.FIND_SUCCESSOR: (RenewalStep.MAKE_SUCCESSOR, RenewalStep.NOTIFY_RENEWED),
    RenewalStep.MAKE_SUCCESSOR: (RenewalStep.WATCH,),
    RenewalStep.WATCH: (RenewalStep.NOTIFY_RENEWED, RenewalStep.RELEASE_LEASE),
    RenewalStep.NOTIFY_RENEWED: (RenewalStep.RETIRE_OLD,),
    RenewalStep.RETIRE_OLD: (RenewalStep.STOP_OLD, RenewalStep.RELEASE_LEASE),
    RenewalStep.STOP_OLD: (RenewalStep.DONE,),
    RenewalStep.RELEASE_LEASE: (RenewalStep.DONE,),
    RenewalStep.DONE: (),
}
