"""Message claims: the rules on which exactly-once delivery rests.

Each notification (channel id + message number) gets one message record,
created only by whoever claims it first. Its timeline::

    claim_message: create-only; of any number of claimants, one creates it (CLAIMED)
        │
        ▼
    in_progress ─┬─ finish_message ──▶ done      later claims: DONE (a duplicate)
    claimedAt    └─ release_message ─▶ deleted   a retry claims it afresh
    claimId
        │
        │  later claims while it is in_progress:
        ├─ claimedAt within the claim timeout ─▶ IN_PROGRESS (its owner is still at work)
        └─ older: its owner is presumed dead ──▶ taken over (CLAIMED): a new claimedAt
           and claimId, written by compare-and-set on the version: one taker wins

A claim is ours while the record carries our ``claimId``; the version only
saves a read. A create whose answer was lost (the record exists, with our
``claimId``) is ours. Finishing or releasing first writes at the claim's
version; when that is refused, the record is read again:

* same ``claimId``, only the version changed (our earlier write landed though
  its answer was lost, or the store restored the record with a new version):
  settled at its current version;
* another ``claimId``, or none: a real takeover after the timeout; refused
  (False), so a stale owner never marks another's delivery done or deletes it.

Every message record carries ``expireAt`` (``ttl_days`` after its claim), from
which Firestore's TTL policy may delete it.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import enum
import random
from collections.abc import Callable

from channelkit.channel import to_millis
from channelkit.store.records import Record, Version
from channelkit.store.versions import MAX_CAS_ATTEMPTS

__all__ = [
    "DONE",
    "IN_PROGRESS",
    "ClaimOutcome",
    "MessageClaim",
    "MessageClaims",
]


IN_PROGRESS, DONE = "in_progress", "done"


class ClaimOutcome(enum.Enum):
    """What claiming a message found."""

    CLAIMED = "claimed"  # ours now: process it, then finish or release
    DONE = "done"  # already processed: a duplicate delivery
    IN_PROGRESS = "in_progress"  # someone else is processing it right now


@dataclasses.dataclass(frozen=True)
class MessageClaim:
    """The result of ``claim_message``; pass it back to finish or release."""

    channel_id: str
    number: int
    outcome: ClaimOutcome
    version: Version = None
    #: The ``claimId`` written with the claim: it, not the version, says the claim is ours.
    claim_id: str | None = None

    @property
    def claimed(self) -> bool:
        return self.outcome is ClaimOutcome.CLAIMED


class MessageClaims(abc.ABC):
    """Claim, finish and release message records; a backend gives the four message primitives."""

    ttl_days: int

    @abc.abstractmethod
    def _insert_message(self, channel_id: str, number: int, record: Record) -> Version | None:
        """Create the message record; its version, or None if it already exists."""

    @abc.abstractmethod
    def _read_message(self, channel_id: str, number: int) -> tuple[Record, Version] | None:
        """The message record and its version, or None."""

    @abc.abstractmethod
    def _update_message(
        self, channel_id: str, number: int, fields: Record, version: Version
    ) -> Version | None:
        """Set ``fields`` of the message record (others kept) iff unchanged; the new version, or None."""

    @abc.abstractmethod
    def _delete_message(self, channel_id: str, number: int, version: Version) -> bool:
        """Delete the message record iff unchanged."""

    def _mark_message_done(self, channel_id: str, number: int, version: Version) -> bool:
        """Set the message record's status to done iff unchanged (``_update_message``'s write).

        A backend may make it cheaper: no one needs the new version.
        """
        return self._update_message(channel_id, number, {"status": DONE}, version) is not None

    def claim_message(
        self, channel_id: str, number: int, *, now_ms: int, timeout_seconds: float
    ) -> MessageClaim:
        """Claim message ``number`` of a channel, create-only.

        CLAIMED: process it, then ``finish_message`` or ``release_message``.
        DONE: a duplicate of a processed message. IN_PROGRESS: another
        delivery holds it; a claim older than ``timeout_seconds`` is taken over.
        """
        record = self._message_record(IN_PROGRESS, now_ms)
        # 32 hex digits, as uuid4().hex gave. Unique, not secret (it proves whose claim it is to
        # us, not to anyone else), so not os.urandom: its system call lets go of the GIL, and
        # the webhook thread waits to get it back behind the other requests' Python. The module's
        # generator is seeded from os.urandom at import and again in every forked child (CPython
        # registers that at fork), so gunicorn's workers never draw the same sequence.
        claim_id = record["claimId"] = f"{random.getrandbits(128):032x}"
        for _ in range(MAX_CAS_ATTEMPTS):
            version = self._insert_message(channel_id, number, record)
            if version is not None:
                return MessageClaim(channel_id, number, ClaimOutcome.CLAIMED, version, claim_id)
            found = self._read_message(channel_id, number)
            if found is None:
                continue  # released between our insert and read: try again
            existing, version = found
            if existing.get("claimId") == claim_id and existing.get("status") != DONE:
                # A retried create whose first attempt had landed: the claim is ours.
                return MessageClaim(channel_id, number, ClaimOutcome.CLAIMED, version, claim_id)
            if existing.get("status") == DONE:
                return MessageClaim(channel_id, number, ClaimOutcome.DONE)
            claimed_at = existing.get("claimedAt")
            claimed_ms = to_millis(claimed_at) if claimed_at else None
            if claimed_ms is not None and now_ms - claimed_ms < timeout_seconds * 1000:
                return MessageClaim(channel_id, number, ClaimOutcome.IN_PROGRESS)
            new_version = self._update_message(channel_id, number, record, version)
            if new_version is not None:
                return MessageClaim(channel_id, number, ClaimOutcome.CLAIMED, new_version, claim_id)
        return MessageClaim(channel_id, number, ClaimOutcome.IN_PROGRESS)

    def finish_message(self, claim: MessageClaim) -> bool:
        """Mark a claimed message done; False if the claim was taken over meanwhile.

        Only the status changes (claimedAt, expireAt and claimId stay as claimed):
        the webhook encodes one field on every notification, not three.
        """
        return self._settle(
            claim, lambda version: self._mark_message_done(claim.channel_id, claim.number, version)
        )

    def release_message(self, claim: MessageClaim) -> bool:
        """Drop a claim so a retry can process the message; False if taken over."""
        return self._settle(
            claim,
            lambda version: self._delete_message(claim.channel_id, claim.number, version),
            released=True,
        )

    def _settle(
        self, claim: MessageClaim, write: Callable[[Version], bool], *, released: bool = False
    ) -> bool:
        """Finish or release a claim, which is ours as long as it carries our ``claimId``.

        The claim's version is tried first (one write). If it no longer matches,
        the record is read: see the module's docstring for what is settled and
        what is refused.
        """
        if not claim.claimed:
            raise ValueError(f"message {claim.number} was not claimed ({claim.outcome.value})")
        version = claim.version
        for _ in range(MAX_CAS_ATTEMPTS):
            if write(version):
                return True
            found = self._read_message(claim.channel_id, claim.number)
            if found is None:
                return released  # gone: our own release landed, or someone else's took it
            record, version = found
            if claim.claim_id is None or record.get("claimId") != claim.claim_id:
                return False
            if record.get("status") == DONE:
                return not released  # our earlier "done" landed
        return False

    def _message_record(self, status: str, now_ms: int) -> Record:
        now = datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.UTC)
        return {
            "status": status,
            "claimedAt": now,
            "expireAt": now + datetime.timedelta(days=self.ttl_days),
        }
