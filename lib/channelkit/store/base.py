"""The channel store: one interface, with its logic written once.

``ChannelStore`` holds every rule on top of a handful of primitive operations
that each backend translates to its database: insert-only, read-with-version,
compare-and-set on that version, delete-if-version, and a simple query. The
flows only see ``ChannelStore``; they never know which backend runs, and one
contract test suite runs against every backend.

The rules live by concern: channels and their renewal leases here, the
compare-and-set loop in ``versions``, the message claims in ``claims``, the
subscription records in ``subscriptions``, several writes in one commit in
``batches``. Each
declares the primitives it needs; a backend implements them all.
"""

from __future__ import annotations

import abc
import builtins
import datetime
from collections.abc import Callable, Iterable
from typing import Any

from channelkit import config
from channelkit.channel import Channel
from channelkit.errors import ChannelConflictError, ChannelExistsError, ChannelNotFoundError
from channelkit.signing import Signer
from channelkit.store import records
from channelkit.store.batches import WritesTogether
from channelkit.store.claims import ClaimOutcome, MessageClaim, MessageClaims
from channelkit.store.credentials import CredentialRecords
from channelkit.store.records import ACTIVE, FAILED, PENDING, Record, Version
from channelkit.store.subscriptions import SubscriptionRecords
from channelkit.store.versions import MAX_CAS_ATTEMPTS


class ChannelStore(WritesTogether, MessageClaims, SubscriptionRecords, CredentialRecords):
    """Channels, their renewal leases, their per-message dedupe claims, and the subscriptions.

    All times are passed in (``now_ms``): the clock belongs to the caller.
    Every backend failure surfaces as ``StoreUnavailable`` within the store's
    time bound.
    """

    def __init__(self, *, ttl_days: int | None = None, keyring: Any = None):
        """``keyring``: the deployment's ``crypto.Keyring`` (tokens kept out of the records, ids
        signed); None reads ``CHANNELKIT_CREDENTIALS_KEY``; False means none."""
        super().__init__()
        self.ttl_days = config.record_ttl_days(ttl_days)
        if keyring is None:
            keyring = config.keyring()
        self.signer = Signer(keyring) if keyring else None

    # --- primitives each backend translates (and those of versions and claims) ---

    @abc.abstractmethod
    def _insert(self, channel_id: str, record: Record) -> Version | None:
        """Create the channel record; ChannelExistsError if the id is taken.

        May return the new record's version (then the next change skips a read).
        """

    @abc.abstractmethod
    def _query(
        self,
        filters: Iterable[tuple[str, str, Any]] = (),
        *,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[tuple[Record, Version]]:
        """Records matching every ``(field, op, value)``, each with its version; op is ``==`` or ``<=``."""

    def close(self) -> None:
        """Release connections (optional)."""

    # --- channels -------------------------------------------------------------

    def create(self, channel: Channel) -> None:
        """Store a new channel; ``ChannelExistsError`` if its id is taken."""
        if not channel.id:
            raise ValueError("a stored channel needs an id")
        record = self._to_record(channel)
        self._known.remember(channel.id, record, self._insert(channel.id, record))

    def get(self, channel_id: str) -> Channel:
        """The stored channel; ``ChannelNotFoundError`` if there is none."""
        found = self._read(channel_id)
        if found is None:
            raise ChannelNotFoundError(f"no channel {channel_id!r}")
        return self._from_record(found[0])

    def find(self, channel_id: str) -> Channel | None:
        """The stored channel, or None."""
        found = self._read(channel_id)
        return self._from_record(found[0]) if found else None

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

    def list(
        self, *, status: str | None = None, subscription_id: str | None = None
    ) -> builtins.list[Channel]:
        """Every channel (optionally of one status or subscription), oldest first."""
        filters = []
        if status is not None:
            filters.append(("status", "==", status))
        if subscription_id is not None:
            filters.append(("subscriptionId", "==", subscription_id))
        channels = [self._from_record(r) for r, _ in self._query(filters)]
        epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        return sorted(channels, key=lambda c: (c.created_at or epoch, c.id))

    def due_for_renewal(self, before_ms: int, *, limit: int | None = None) -> builtins.list[Channel]:
        """Active channels expiring at or before ``before_ms``, soonest first.

        The versions listed are kept (``versions.ListedVersions``): the lease claim that
        follows each starts from them instead of reading the channel again.
        """
        found = self._query([("renewAt", "<=", int(before_ms))], order_by="renewAt", limit=limit)
        self._listed.keep(found)
        return [self._from_record(r) for r, _ in found]

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

    def pending_stops(self, *, limit: int | None = None) -> builtins.list[Channel]:
        """Channels that still have to be stopped at Google (``stop_pending``)."""
        found = self._query([("stopPending", "==", True)], limit=limit)
        return [self._from_record(r) for r, _ in found]

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
        change = lease_claim(owner, now_ms=now_ms, lease_seconds=lease_seconds, expect_status=expect_status)
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


def lease_claim(
    owner: str,
    *,
    now_ms: int,
    lease_seconds: float,
    expect_status: str | Iterable[str] | None = ACTIVE,
) -> Callable[[Channel], Channel | None]:
    """The change that takes the renewal lease; None when the channel is not claimable:
    another status, or a lease another owner still holds."""
    allowed = _status_set(expect_status)
    until = int(now_ms + lease_seconds * 1000)

    def change(current: Channel) -> Channel | None:
        if allowed is not None and current.status not in allowed:
            return None
        held_by_other = current.lease_owner not in (None, owner)
        if held_by_other and (current.lease_until or 0) > now_ms:
            return None
        return current.copy(lease_until=until, lease_owner=owner)

    return change


def _status_set(expect: str | Iterable[str] | None) -> frozenset[str] | None:
    if expect is None:
        return None
    if isinstance(expect, str):
        return frozenset([expect])
    return frozenset(expect)


__all__ = [
    "MAX_CAS_ATTEMPTS",
    "ChannelExistsError",
    "ChannelStore",
    "ClaimOutcome",
    "MessageClaim",
    "Record",
    "Version",
    "lease_claim",
]
