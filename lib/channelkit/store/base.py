"""The channel store: one interface, with its logic written once.

``ChannelStore`` holds every rule (create-only writes, conditional status
changes, renewal leases, message claims) on top of a handful of primitive
operations that each backend translates to its database: insert-only,
read-with-version, compare-and-set on that version, delete-if-version, and a
simple query. The flows only see ``ChannelStore``; they never know which
backend runs, and one contract test suite runs against every backend.

Versions are opaque: Firestore's ``update_time``, a counter in SQLite. A
compare-and-set succeeds only if the stored version is still the one read, so
of several concurrent claimants exactly one wins.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import datetime
import enum
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from channelkit import config
from channelkit.channel import Channel, to_millis
from channelkit.errors import (
    ChannelConflictError,
    ChannelExistsError,
    ChannelNotFoundError,
    StoreUnavailable,
)
from channelkit.store import records
from channelkit.store.records import ACTIVE, FAILED, PENDING

#: How often a compare-and-set loop re-reads after losing a race before giving up.
MAX_CAS_ATTEMPTS = 20
#: Channels whose last written (record, version) a store remembers (see ``_cas_update``).
KNOWN_VERSIONS = 2048

Record = dict[str, Any]
Version = Any


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


def _ms_to_datetime(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


class ChannelStore(abc.ABC):
    """Channels and their per-message dedupe claims.

    All times are passed in (``now_ms``): the clock belongs to the caller.
    Every backend failure surfaces as ``StoreUnavailable`` within the store's
    time bound.
    """

    def __init__(self, *, ttl_days: int | None = None):
        self.ttl_days = config.record_ttl_days(ttl_days)
        self._known: collections.OrderedDict[str, tuple[Record, Version]] = collections.OrderedDict()
        self._known_lock = threading.Lock()

    # --- primitives each backend translates ----------------------------------

    @abc.abstractmethod
    def _insert(self, channel_id: str, record: Record) -> Version | None:
        """Create the channel record; ChannelExistsError if the id is taken.

        May return the new record's version (then the next change skips a read).
        """

    @abc.abstractmethod
    def _read(self, channel_id: str) -> tuple[Record, Version] | None:
        """The record and its version, or None."""

    @abc.abstractmethod
    def _compare_and_set(self, channel_id: str, record: Record, version: Version, previous: Record) -> Any:
        """Replace ``previous`` by ``record`` iff the version is still ``version``.

        Falsy if it was not; truthy if it was: the new version, or True when
        the backend does not know it.
        """

    @abc.abstractmethod
    def _query(
        self,
        filters: Iterable[tuple[str, str, Any]] = (),
        *,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        """Records matching every ``(field, op, value)``; op is ``==`` or ``<=``."""

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

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release connections (optional)."""

    # --- channels -------------------------------------------------------------

    def create(self, channel: Channel) -> None:
        """Store a new channel; ``ChannelExistsError`` if its id is taken."""
        if not channel.id:
            raise ValueError("a stored channel needs an id")
        record = records.to_record(channel, ttl_days=self.ttl_days)
        self._remember(channel.id, record, self._insert(channel.id, record))

    def get(self, channel_id: str) -> Channel:
        """The stored channel; ``ChannelNotFoundError`` if there is none."""
        found = self._read(channel_id)
        if found is None:
            raise ChannelNotFoundError(f"no channel {channel_id!r}")
        return records.from_record(found[0])

    def find(self, channel_id: str) -> Channel | None:
        """The stored channel, or None."""
        found = self._read(channel_id)
        return records.from_record(found[0]) if found else None

    def update(
        self,
        channel_id: str,
        *,
        expect_status: str | Iterable[str] | None = None,
        **fields: Any,
    ) -> Channel:
        """Change some fields atomically and return the channel as stored.

        With ``expect_status``, the change applies only if the channel's status
        is (one of) it; otherwise ``ChannelConflictError``. Fields are Channel
        attribute names; ``None`` removes a field.
        """
        for attr in fields:
            records.field_name(attr)
        allowed = _status_set(expect_status)

        def change(current: Channel) -> Channel:
            if allowed is not None and current.status not in allowed:
                raise ChannelConflictError(
                    f"channel {channel_id!r} is {current.status!r}, expected {sorted(allowed)}"
                )
            return current.copy(**fields)

        return self._cas_update(channel_id, change)

    def list(self, *, status: str | None = None, subscription_id: str | None = None) -> list[Channel]:
        """Every channel (optionally of one status or subscription), oldest first."""
        filters = []
        if status is not None:
            filters.append(("status", "==", status))
        if subscription_id is not None:
            filters.append(("subscriptionId", "==", subscription_id))
        channels = [records.from_record(r) for r in self._query(filters)]
        epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        return sorted(channels, key=lambda c: (c.created_at or epoch, c.id))

    def due_for_renewal(self, before_ms: int, *, limit: int | None = None) -> list[Channel]:
        """Active channels expiring at or before ``before_ms``, soonest first."""
        found = self._query([("renewAt", "<=", int(before_ms))], order_by="renewAt", limit=limit)
        return [records.from_record(r) for r in found]

    def record_resource(self, channel_id: str, resource_id: str, resource_uri: str | None = None) -> Channel:
        """Teach a channel its resource id from its first valid notification, once.

        Only a ``pending`` channel (its watch has not returned yet) or a
        ``failed`` one (its watch failed, yet Google made the channel: it is
        marked ``stop_pending`` so that renewal stops it at Google) that has no
        resource id yet is changed. Returns the channel as stored, so that the
        caller judges the notification against the id that won.
        """

        def change(current: Channel) -> Channel | None:
            if current.resource_id or current.status not in (PENDING, FAILED):
                return None
            fields: dict[str, Any] = {"resource_id": resource_id}
            if resource_uri and not current.resource_uri:
                fields["resource_uri"] = resource_uri
            if current.status == FAILED:
                fields["stop_pending"] = True
            return current.copy(**fields)

        written = self._cas_update(channel_id, change)
        return written if written is not None else self.get(channel_id)

    def pending_stops(self, *, limit: int | None = None) -> list[Channel]:
        """Channels that still have to be stopped at Google (``stop_pending``)."""
        found = self._query([("stopPending", "==", True)], limit=limit)
        return [records.from_record(r) for r in found]

    def claim_lease(
        self,
        channel_id: str,
        owner: str,
        *,
        now_ms: int,
        lease_seconds: float,
        expect_status: str | Iterable[str] | None = ACTIVE,
    ) -> Channel | None:
        """Take the renewal lease; the channel if ours, None if held or not claimable.

        Of several concurrent claimants exactly one gets the channel. A lease
        that ran out (``lease_until`` past) may be taken by anyone.
        """
        allowed = _status_set(expect_status)
        until = int(now_ms + lease_seconds * 1000)

        def change(current: Channel) -> Channel | None:
            if allowed is not None and current.status not in allowed:
                return None
            held_by_other = current.lease_owner not in (None, owner)
            if held_by_other and (current.lease_until or 0) > now_ms:
                return None
            return current.copy(lease_until=until, lease_owner=owner)

        try:
            channel = self._cas_update(channel_id, change)
        except ChannelNotFoundError:
            return None
        return channel

    def release_lease(self, channel_id: str, owner: str) -> None:
        """Give the lease back if ``owner`` still holds it."""

        def change(current: Channel) -> Channel | None:
            if current.lease_owner != owner:
                return None
            return current.copy(lease_until=None, lease_owner=None)

        try:
            self._cas_update(channel_id, change)
        except ChannelNotFoundError:
            pass

    def _cas_update(self, channel_id: str, change) -> Any:
        """Read, apply ``change``, compare-and-set; re-read and retry on a lost race.

        ``change(channel)`` returns the new Channel, or None to leave the record
        as it is; the result is what was written (or None).

        The first attempt starts from the record and version this store itself
        last wrote for the channel, when it remembers them, instead of reading:
        the version precondition makes that as safe as a fresh read (if anyone
        wrote since, the write is refused and the loop reads). A decision not to
        write (None, or an error raised by ``change``) is never taken on a
        remembered record: it is taken again on a fresh read.
        """
        start = self._recall(channel_id)
        for _ in range(MAX_CAS_ATTEMPTS):
            remembered = start is not None
            if start is not None:
                (record, version), start = start, None
            else:
                found = self._read(channel_id)
                if found is None:
                    self._forget(channel_id)
                    raise ChannelNotFoundError(f"no channel {channel_id!r}")
                record, version = found
            try:
                new = change(records.from_record(record))
            except ChannelConflictError:
                if remembered:
                    continue
                raise
            if new is None:
                if remembered:
                    continue
                return None
            new_record = records.to_record(new, ttl_days=self.ttl_days)
            written = self._compare_and_set(channel_id, new_record, version, record)
            if written:
                self._remember(channel_id, new_record, written)
                return new
            self._forget(channel_id)
        raise StoreUnavailable(f"channel {channel_id!r}: too much contention, try again")

    def _remember(self, channel_id: str, record: Record, version: Any) -> None:
        """Keep the (record, version) just written; a version of None or True is unknown."""
        with self._known_lock:
            if version is None or version is True:
                self._known.pop(channel_id, None)
                return
            self._known[channel_id] = (record, version)
            self._known.move_to_end(channel_id)
            while len(self._known) > KNOWN_VERSIONS:
                self._known.popitem(last=False)

    def _recall(self, channel_id: str) -> tuple[Record, Version] | None:
        with self._known_lock:
            return self._known.get(channel_id)

    def _forget(self, channel_id: str) -> None:
        with self._known_lock:
            self._known.pop(channel_id, None)

    # --- messages -------------------------------------------------------------

    def claim_message(
        self, channel_id: str, number: int, *, now_ms: int, timeout_seconds: float
    ) -> MessageClaim:
        """Claim message ``number`` of a channel, create-only.

        CLAIMED: process it, then ``finish_message`` or ``release_message``.
        DONE: a duplicate of a processed message. IN_PROGRESS: another
        delivery holds it; a claim older than ``timeout_seconds`` is taken over.
        """
        record = self._message_record("in_progress", now_ms)
        record["claimId"] = uuid.uuid4().hex
        for _ in range(MAX_CAS_ATTEMPTS):
            version = self._insert_message(channel_id, number, record)
            if version is not None:
                return MessageClaim(channel_id, number, ClaimOutcome.CLAIMED, version, record["claimId"])
            found = self._read_message(channel_id, number)
            if found is None:
                continue  # released between our insert and read: try again
            existing, version = found
            if existing.get("claimId") == record["claimId"] and existing.get("status") != "done":
                # A retried create whose first attempt had landed: the claim is ours.
                return MessageClaim(channel_id, number, ClaimOutcome.CLAIMED, version, record["claimId"])
            if existing.get("status") == "done":
                return MessageClaim(channel_id, number, ClaimOutcome.DONE)
            claimed_at = existing.get("claimedAt")
            age_ms = now_ms - to_millis(claimed_at) if claimed_at else None
            if age_ms is not None and age_ms < timeout_seconds * 1000:
                return MessageClaim(channel_id, number, ClaimOutcome.IN_PROGRESS)
            new_version = self._update_message(channel_id, number, record, version)
            if new_version is not None:
                return MessageClaim(channel_id, number, ClaimOutcome.CLAIMED, new_version, record["claimId"])
        return MessageClaim(channel_id, number, ClaimOutcome.IN_PROGRESS)

    def finish_message(self, claim: MessageClaim) -> bool:
        """Mark a claimed message done; False if the claim was taken over meanwhile.

        Only the status changes (claimedAt, expireAt and claimId stay as claimed):
        the webhook encodes one field on every notification, not three.
        """
        return self._settle(
            claim,
            lambda version: (
                self._update_message(claim.channel_id, claim.number, {"status": "done"}, version) is not None
            ),
        )

    def release_message(self, claim: MessageClaim) -> bool:
        """Drop a claim so a retry can process the message; False if taken over."""
        return self._settle(
            claim,
            lambda version: self._delete_message(claim.channel_id, claim.number, version),
            released=True,
        )

    def _settle(self, claim: MessageClaim, write, *, released: bool = False) -> bool:
        """Finish or release a claim, which is ours as long as it carries our ``claimId``.

        The claim's version is tried first (one write). If it no longer matches,
        the record is read: a record with another claimId (or none) was taken
        over; one with ours changed for another reason (our earlier attempt
        landed though its answer was lost, or the store restored the record
        with a new version) and is settled at its current version.
        """
        _require_claimed(claim)
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
            if record.get("status") == "done":
                return not released  # our earlier "done" landed
        return False

    def _message_record(self, status: str, now_ms: int) -> Record:
        now = _ms_to_datetime(now_ms)
        return {
            "status": status,
            "claimedAt": now,
            "expireAt": now + datetime.timedelta(days=self.ttl_days),
        }


def _require_claimed(claim: MessageClaim) -> None:
    if not claim.claimed:
        raise ValueError(f"message {claim.number} was not claimed ({claim.outcome.value})")


def _status_set(expect: str | Iterable[str] | None) -> frozenset[str] | None:
    if expect is None:
        return None
    if isinstance(expect, str):
        return frozenset([expect])
    return frozenset(expect)


__all__ = ["ChannelExistsError", "ChannelStore", "ClaimOutcome", "MessageClaim"]
