"""The sync lease: one sync at a time per subscription, across instances; bursts leave one mark.

A sync takes the lease on the subscription record by compare-and-set (owner,
until when). A notification that finds it held does not start its own sync:
it sets ``syncAgain`` on the record, and writes only when the mark is not
already set, so a burst of notifications costs the holder one more pass and
the store a handful of writes. The holder saves its cursor with each page in a
write that checks it still holds the lease (and extends it); the last page's
cursor goes in the write that ends the pass, which makes one more pass if the
mark is set, else lets go: a pass of P pages costs P + 1 writes. A crashed holder's
lease lapses at ``syncUntil`` and the next sync takes it.

The changes themselves are pure functions on ``Subscription`` (tested alone);
``SyncLease`` applies them through ``store.change_subscription``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from channelkit.errors import SyncLeaseLostError
from channelkit.subscription import Subscription

__all__ = [
    "KEEP",
    "Acquired",
    "SyncLease",
    "finish",
    "release",
    "save",
    "take",
]


class _Keep(enum.Enum):
    KEEP = "keep"


#: ``finish(..., cursor=KEEP)``: the pass ends where the last save left the cursor.
KEEP = _Keep.KEEP
_NewCursor = str | None | _Keep


class Acquired(enum.Enum):
    """What a request for the lease came to."""

    TAKEN = "taken"  # ours: sync now
    MARKED = "marked"  # held by another sync, which will make one more pass
    INACTIVE = "inactive"  # the subscription is not active, or has no feed


def _held_by_other(current: Subscription, owner: str, now_ms: int) -> bool:
    return current.sync_owner not in (None, owner) and (current.sync_until or 0) > now_ms


def take(current: Subscription, owner: str, *, now_ms: int, lease_ms: int) -> Subscription | None:
    """The record with the lease ours; or with the mark set when another holds it; None: no write."""
    if not (current.sync and current.is_active):
        return None
    if _held_by_other(current, owner, now_ms):
        return None if current.sync_again else current.copy(sync_again=True)
    return current.copy(sync_owner=owner, sync_until=now_ms + lease_ms, sync_again=False)


def save(
    current: Subscription, owner: str, cursor: str | None, *, now_ms: int, lease_ms: int
) -> Subscription:
    """The record with the cursor moved, if the lease is still ours (and extended); else SyncLeaseLostError."""
    if current.sync_owner != owner:
        raise SyncLeaseLostError(f"subscription {current.id!r}: the sync lease was taken by another sync")
    return current.copy(cursor=cursor, sync_until=now_ms + lease_ms)


def finish(
    current: Subscription, owner: str, *, now_ms: int, lease_ms: int, cursor: _NewCursor = KEEP
) -> Subscription:
    """At the end of a pass: the mark cleared and the lease kept (one more pass), or the lease let go.

    ``cursor``: the last page's cursor, saved in this same write (one write fewer per pass).
    """
    if current.sync_owner != owner:
        raise SyncLeaseLostError(f"subscription {current.id!r}: the sync lease was taken by another sync")
    moved = current if cursor is KEEP else current.copy(cursor=cursor)
    if current.sync_again:
        return moved.copy(sync_again=False, sync_until=now_ms + lease_ms, last_sync_at=now_ms)
    return moved.copy(sync_owner=None, sync_until=None, last_sync_at=now_ms)


def release(current: Subscription, owner: str, *, now_ms: int) -> Subscription | None:
    """The lease let go without another pass (a failure, the budget spent); None if not ours."""
    if current.sync_owner != owner:
        return None
    return current.copy(sync_owner=None, sync_until=None, sync_again=False, last_sync_at=now_ms)


class SyncLease:
    """One sync's hold on one subscription record, through the store's compare-and-set."""

    def __init__(
        self, store: Any, subscription_id: str, owner: str, *, lease_ms: int, clock_ms: Callable[[], int]
    ):
        self.store, self.subscription_id, self.owner = store, subscription_id, owner
        self.lease_ms, self.clock_ms = lease_ms, clock_ms

    def acquire(self) -> tuple[Acquired, Subscription | None]:
        """Take the lease (TAKEN, the record), or leave the mark for its holder (MARKED)."""
        now = self.clock_ms()
        seen: list[Subscription] = []

        def decide(current: Subscription) -> Subscription | None:
            seen.append(current)
            return take(current, self.owner, now_ms=now, lease_ms=self.lease_ms)

        written = self.store.change_subscription(self.subscription_id, decide)
        if written is not None and written.sync_owner == self.owner:
            return Acquired.TAKEN, written
        # No write: ``take`` declined on a fresh read (the store never declines on a remembered one).
        current = written or seen[-1]
        if current.sync and current.is_active and _held_by_other(current, self.owner, now):
            return Acquired.MARKED, None
        return Acquired.INACTIVE, None

    def save(self, cursor: str | None) -> Subscription:
        now = self.clock_ms()
        written: Subscription = self.store.change_subscription(
            self.subscription_id, lambda s: save(s, self.owner, cursor, now_ms=now, lease_ms=self.lease_ms)
        )
        return written

    def finish(self, cursor: _NewCursor = KEEP) -> bool:
        """True: a notification came meanwhile, make one more pass (the lease is kept).

        ``cursor``: the last page's cursor, saved in the same write.
        """
        now = self.clock_ms()
        written: Subscription = self.store.change_subscription(
            self.subscription_id,
            lambda s: finish(s, self.owner, now_ms=now, lease_ms=self.lease_ms, cursor=cursor),
        )
        return written.sync_owner == self.owner

    def release(self, change: Callable[[Subscription], Subscription] | None = None) -> Subscription | None:
        """Let go (and apply ``change``, e.g. a failure's lifecycle, in the same write)."""
        now = self.clock_ms()

        def apply(current: Subscription) -> Subscription | None:
            released = release(current, self.owner, now_ms=now)
            if released is None:
                return None
            return change(released) if change is not None else released

        written: Subscription | None = self.store.change_subscription(self.subscription_id, apply)
        return written
