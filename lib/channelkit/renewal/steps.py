"""The steps of renewing one channel, and which step may follow which.

New before old: the successor is live before the old channel is retired, so a
subscription is never without a live channel. Writes that belong together go
in one commit (``ChannelStore.write_together``): a crash lands all of them or
none. A run that dies between any two steps leaves its lease set, and the next
run takes the branch that finishes its work (see ``Renewer.renew_channel``)::

    CHECK_SUBSCRIPTION ──┬── active, listed clean ────────────▶ CLAIM_AND_MAKE
                         ├── active, a crashed run's trace ───▶ CLAIM_LEASE
                         ├── suspended/expired/stopped: renewal held (one write) ─▶ DONE
                         └── token sealed under a key this run lacks: left as is ─▶ DONE

    CLAIM_AND_MAKE (commit: lease + pending successor) ──┬── claimed ─▶ WATCH
                                                         └── held by another run, or not active ─▶ DONE
    CLAIM_LEASE ──┬── claimed ─▶ FIND_SUCCESSOR ──┬── none ──▶ MAKE_SUCCESSOR (stored pending) ─▶ WATCH
                  │                               └── active ─▶ RECORD_RENEWAL
                  └── held by another run, or not active ─▶ DONE

    WATCH ──┬── live at Google ─▶ RECORD_RENEWAL
            └── refused / Google failed ─▶ RELEASE_LEASE
                (a refusal is recorded on the subscription first: counted,
                 suspended, expired or expiring, with its event)

    RECORD_RENEWAL (commit: successor active + renewed with its event on the subscription
                    + old marked stopped, stop pending, lease released)
        ──┬── committed ─▶ NOTIFY_RENEWED ─▶ STOP_OLD ─▶ DONE
          └── refused (successor or old channel moved on) ─▶ RECORD_APART
    RECORD_APART (the same, one write at a time, each judged on what is stored)
        ──┬── old retired ─▶ STOP_OLD ─▶ DONE
          └── successor stopped, or old left active ─▶ RELEASE_LEASE ─▶ DONE

    STOP_OLD: channels.stop at Google, then commit: the stop recorded + the
    delivered event out of the outbox.

The ``renewed`` event is in the outbox from the commit that retires the old
channel: a crash before NOTIFY_RENEWED delivers it on a later run
(``deliver_pending``, at least once), never not at all; a crash before STOP_OLD's
commit leaves the old channel ``stop_pending`` (the next run stops it) and the
event in the outbox (delivered again).
"""

from __future__ import annotations

import enum

__all__ = [
    "NEXT_STEPS",
    "RenewalStep",
]


class RenewalStep(enum.Enum):
    """One step of renewing a channel."""

    CHECK_SUBSCRIPTION = "read the subscription (made from the channel if missing); hold it if not active"
    CLAIM_AND_MAKE = "take the lease and store a pending successor, in one commit"
    CLAIM_LEASE = "take the lease alone: a crashed run may have left a successor"
    FIND_SUCCESSOR = "look for a successor a crashed run left"
    MAKE_SUCCESSOR = "store a pending successor"
    WATCH = "watch the successor at Google"
    RECORD_RENEWAL = "in one commit: successor active, renewed on the subscription, old marked stopped"
    RECORD_APART = "the same writes one at a time, when the commit was refused"
    NOTIFY_RENEWED = "deliver the renewed event"
    STOP_OLD = "stop the old channel at Google; in one commit: the stop and the event delivered"
    RELEASE_LEASE = "give the lease back"
    DONE = "done"


#: Step -> the steps that may follow it (the drawing above).
NEXT_STEPS: dict[RenewalStep, tuple[RenewalStep, ...]] = {
    RenewalStep.CHECK_SUBSCRIPTION: (RenewalStep.CLAIM_AND_MAKE, RenewalStep.CLAIM_LEASE, RenewalStep.DONE),
    RenewalStep.CLAIM_AND_MAKE: (RenewalStep.WATCH, RenewalStep.DONE),
    RenewalStep.CLAIM_LEASE: (RenewalStep.FIND_SUCCESSOR, RenewalStep.DONE),
    RenewalStep.FIND_SUCCESSOR: (RenewalStep.MAKE_SUCCESSOR, RenewalStep.RECORD_RENEWAL),
    RenewalStep.MAKE_SUCCESSOR: (RenewalStep.WATCH,),
    RenewalStep.WATCH: (RenewalStep.RECORD_RENEWAL, RenewalStep.RELEASE_LEASE),
    RenewalStep.RECORD_RENEWAL: (RenewalStep.NOTIFY_RENEWED, RenewalStep.RECORD_APART),
    RenewalStep.RECORD_APART: (RenewalStep.STOP_OLD, RenewalStep.RELEASE_LEASE),
    RenewalStep.NOTIFY_RENEWED: (RenewalStep.STOP_OLD,),
    RenewalStep.STOP_OLD: (RenewalStep.DONE,),
    RenewalStep.RELEASE_LEASE: (RenewalStep.DONE,),
    RenewalStep.DONE: (),
}
