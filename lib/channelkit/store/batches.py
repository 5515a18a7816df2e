"""Several writes committed together: every one of them lands, or none does.

A flow names what it wants written as items: a new channel (``NewChannel``,
create-only), a change to a channel (``ChangeChannel``) or to a subscription
record (``ChangeSubscription``). ``write_together`` applies each change to the
record it last knew or read, and hands the backend one commit (``_commit``):
Firestore one batched write, its preconditions on each record's version;
SQLite one transaction. If any record changed meanwhile, nothing is written,
the records are read again, the changes judged anew and the commit tried again,
as the compare-and-set of a single record does (``versions``).

A change returns the new value, or None to leave that record out of the commit
(the others are still written; a ``required`` change's None refuses the whole
commit); it raises (``ChannelConflictError``, say) to refuse the whole commit. As in ``versions``, a decision not to write is never
taken on a remembered record, only on a fresh read.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any

from channelkit.channel import Channel
from channelkit.errors import (
    ChannelConflictError,
    ChannelNotFoundError,
    StoreUnavailable,
    SubscriptionNotFoundError,
)
from channelkit.store.documents import Documents
from channelkit.store.records import Record, Version
from channelkit.store.subscriptions import SUBSCRIPTIONS
from channelkit.store.versions import MAX_CAS_ATTEMPTS, VersionedChannels
from channelkit.subscription import Subscription
from channelkit.subscription import from_record as subscription_from_record
from channelkit.subscription import to_record as subscription_to_record

__all__ = [
    "CHANNELS",
    "ChangeChannel",
    "ChangeSubscription",
    "NewChannel",
    "Write",
    "WritesTogether",
]

#: The kind of a channel write (the others are ``documents.KINDS``).
CHANNELS = "channels"


@dataclasses.dataclass(frozen=True)
class NewChannel:
    """Store a new channel (create-only: ``ChannelExistsError`` if its id is taken)."""

    channel: Channel


@dataclasses.dataclass(frozen=True)
class ChangeChannel:
    """Change a stored channel: ``change(current)`` is the new channel, or None to leave it.

    ``required``: a None refuses the whole commit (``ChannelConflictError``) instead.
    """

    channel_id: str
    change: Callable[[Channel], Channel | None]
    required: bool = False


@dataclasses.dataclass(frozen=True)
class ChangeSubscription:
    """Change a subscription record: ``change(current)`` is the new one, or None to leave it."""

    subscription_id: str
    change: Callable[[Subscription], Subscription | None]


Item = NewChannel | ChangeChannel | ChangeSubscription


@dataclasses.dataclass(frozen=True)
class Write:
    """One write of a commit, as a backend translates it.

    ``version`` None: create-only. Else: replace ``previous`` by ``record`` iff
    the record's version is still ``version``.
    """

    kind: str  # CHANNELS or one of documents.KINDS
    doc_id: str
    record: Record
    version: Version = None
    previous: Record | None = None

    @property
    def creates(self) -> bool:
        return self.version is None


class WritesTogether(VersionedChannels, Documents):
    """``write_together`` on the store; a backend gives ``_commit``."""

    @abc.abstractmethod
    def _commit(self, writes: list[Write]) -> list[Version] | None:
        """Commit every write or none: the new versions in order, or None if a version
        precondition failed (nothing written). ``ChannelExistsError`` if a create-only
        write found its id taken (nothing written either)."""

    def write_together(self, *items: Item) -> list[Any]:
        """Apply each item's change and commit them all at once; the values written, in order.

        A value is None for an item whose change left its record as it was. Raises
        what a change raises on a fresh read (nothing written), ``ChannelNotFoundError``
        or ``SubscriptionNotFoundError`` for a record that is not there,
        ``ChannelExistsError`` for a new channel whose id is taken.
        """
        fresh = False
        for _ in range(MAX_CAS_ATTEMPTS):
            try:
                prepared = [self._prepare(item, fresh) for item in items]
            except _Rejudge:
                fresh = True
                continue
            writes = [write for write, _ in prepared if write is not None]
            versions = self._commit(writes) if writes else []
            if versions is not None:
                for write, version in zip(writes, versions, strict=True):
                    self._remember(write, version)
                return [value for _, value in prepared]
            for write in writes:
                self._forget(write)
            fresh = True
        raise StoreUnavailable("writes together: too much contention, try again")

    # --- one item -----------------------------------------------------------------

    def _prepare(self, item: Item, fresh: bool) -> tuple[Write | None, Any]:
        """The item's write (None: nothing to write) and the value it writes."""
        if isinstance(item, NewChannel):
            if not item.channel.id:
                raise ValueError("a stored channel needs an id")
            return Write(CHANNELS, item.channel.id, self._to_record(item.channel)), item.channel
        if isinstance(item, ChangeChannel):
            start = None if fresh else self._start(item.channel_id)
            if start is None:
                start = self._read(item.channel_id)
                if start is None:
                    self._known.forget(item.channel_id)
                    raise ChannelNotFoundError(f"no channel {item.channel_id!r}")
            record, version = start
            channel = self._judge(item.change, self._from_record(record), fresh)
            if channel is None:
                if item.required:
                    raise ChannelConflictError(f"channel {item.channel_id!r}: its change did not apply")
                return None, None
            return Write(CHANNELS, item.channel_id, self._to_record(channel), version, record), channel
        name = f"{SUBSCRIPTIONS}/{item.subscription_id}"
        start = None if fresh else self._doc_versions.recall(name)
        if start is None:
            start = self._doc_fetch(SUBSCRIPTIONS, item.subscription_id)
            if start is None:
                raise SubscriptionNotFoundError(f"no subscription {item.subscription_id!r}")
        record, version = start
        subscription = self._judge(item.change, subscription_from_record(record), fresh)
        if subscription is None:
            return None, None
        new = subscription_to_record(subscription)
        return Write(SUBSCRIPTIONS, item.subscription_id, new, version, record), subscription

    @staticmethod
    def _judge(change: Callable[[Any], Any], current: Any, fresh: bool) -> Any:
        """``change(current)``; on a remembered record, a refusal or a None is judged again, fresh."""
        try:
            new = change(current)
        except ChannelConflictError:
            if fresh:
                raise
            raise _Rejudge from None
        if new is None and not fresh:
            raise _Rejudge
        return new

    def _remember(self, write: Write, version: Version) -> None:
        if write.kind == CHANNELS:
            self._known.remember(write.doc_id, write.record, version)
        else:
            self._doc_versions.remember(f"{write.kind}/{write.doc_id}", write.record, version)

    def _forget(self, write: Write) -> None:
        if write.kind == CHANNELS:
            self._known.forget(write.doc_id)
        else:
            self._doc_versions.forget(f"{write.kind}/{write.doc_id}")


class _Rejudge(Exception):
    """A change declined on a remembered record: read every record again and judge anew."""
