"""Renewal: keep every subscription alive by replacing channels before they expire.

Google never renews a channel. Each run (Cloud Scheduler → the ``renew``
function, or ``python -m channelkit renew``) does these things:

1. *Renew*: every ``active`` channel expiring within ``CHANNELKIT_RENEW_BEFORE``
   is claimed with a lease (one winner among overlapping runs) and replaced:
   lease + successor stored ``pending`` (one commit) → ``watch`` → successor
   ``active`` + ``renewed`` recorded + old marked ``stopped`` (one commit;
   ``renewed_by`` links them) → old stopped at Google (its stop recorded in a
   third commit). New before old: there is never a moment without a live channel. Only an ``active``
   subscription is renewed; Google's refusals are judged and recorded on the
   subscription (counted, ``suspended``, ``expiring``, ``expired``), and a
   suspended one sees no watch until ``reactivate``. Every transition's event
   (``renewed`` for a catch-up sync, among them) reaches the app at least once.
2. *Finish stops*: channels marked ``stop_pending`` are stopped at Google again.
3. *Sweep*: a ``pending`` channel older than the renewal lease belongs to a
   crashed subscribe or renewal. It is stopped at Google (404 = it never went
   live) and marked ``failed``, so nothing stays live without a record.
4. *Deliver*: lifecycle events a crashed run or a failed delivery left in an
   outbox are delivered; then the run's record is kept and the
   ``channelkit health`` line logged (``channelkit.health``).

Renewing one channel is a self-contained, idempotent unit: a crash after any
step converges on the next run. Channels are renewed in parallel with a bound;
a run that nears its time budget claims no more work.

The modules: ``steps`` (the steps of renewing one channel and which follows
which), ``renewer`` (each step done), ``lifecycle`` (what a renewal records on
the subscription), ``cleanup`` (the sweep and the retried stops), ``outcomes``
(what a run counts), ``run`` (the run: pool, budget, events left, health),
``fanout`` (past ``CHANNELKIT_RENEW_INLINE`` due channels, shards published to
``CHANNELKIT_RENEW_TOPIC`` and renewed by the renew-worker function under the
same leases).
"""

from __future__ import annotations

from channelkit.renewal.outcomes import RenewalOutcome, RenewalSummary
from channelkit.renewal.renewer import RENEWED_STATE, SYNTHETIC_MESSAGE_NUMBER, Renewer
from channelkit.renewal.run import renew_due, renewal_dispatcher
from channelkit.renewal.steps import NEXT_STEPS, RenewalStep

__all__ = [
    "NEXT_STEPS",
    "RENEWED_STATE",
    "SYNTHETIC_MESSAGE_NUMBER",
    "RenewalOutcome",
    "RenewalStep",
    "RenewalSummary",
    "Renewer",
    "renew_due",
    "renewal_dispatcher",
]
