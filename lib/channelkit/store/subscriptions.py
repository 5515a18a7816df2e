"""Subscription records in the store: created once, changed by compare-and-set, counted cheaply.

The rules are written once here, on primitives each backend translates (a
create-only insert, a read with version, a replace-if-version, a query and a
count on single fields, a blind field update for the notification clock).
No subscription operation touches the messages: ``status`` can run every minute.

A record of the last renewal run is kept beside them (``record_run`` / ``last_run``).
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Iterable
from typing import Any

from channelkit.errors import StoreUnavailable, SubscriptionNotFoundError
from channelkit.store.records import Record, Version
from channelkit.store.versions import MAX_CAS_ATTEMPTS
from channelkit.subscription import Subscription, from_record, to_record

__all__ = [
    "SubscriptionChange",
    "SubscriptionRecords",
]

#: A change to a subscription: the new one, or None to leave the record as it is.
SubscriptionChange = Callable[[Subscription], Subscription | None]


class SubscriptionRecords(abc.ABC):
    """The subscription half of the store; a backend gives the primitives below."""

    # --- primitives each backend translates -----------------------------------------

    @abc.abstractmethod
    def _insert_subscription(self, subscription_id: str, record: Record) -> None:
        """Create the record; ``SubscriptionExistsError`` if the id is taken."""

    @abc.abstractmethod
    def _read_subscription(self, subscription_id: str) -> tuple[Record, Version] | None:
        """The record and its version, or None."""

    @abc.abstractmethod
    def _replace_subscription(
        self, subscription_id: str, record: Record, version: Version, previous: Record
    ) -> bool:
        """Replace ``previous`` by ``record`` iff the version is still ``version``."""

    @abc.abstractmethod
    def _query_subscriptions(
        self, filters: Iterable[tuple[str, str, Any]] = (), *, limit: int | None = None
    ) -> builtins.list[Record]:
        """Records matching every ``(field, op, value)``; op is ``==`` or ``<=``."""

    @abc.abstractmethod
    def _count_subscriptions(self, filters: Iterable[tuple[str, str, Any]] = ()) -> int:
        """How many records match (an aggregation: no document is read)."""

    @abc.abstractmethod
    def _touch_subscription(self, subscription_id: str, fields: Record) -> bool:
        """Set ``fields`` on an existing record without a version check; False if there is none."""

    @abc.abstractmethod
    def _write_run(self, name: str, record: Record) -> None:
        """Store (replace) the record of a run."""

    @abc.abstractmethod
    def _read_run(self, name: str) -> Record | None:
        """The record of a run, or None."""

    # --- the rules ------------------------------------------------------------------

    def create_subscription(self, subscription: Subscription) -> None:
        """Store a new subscription; ``SubscriptionExistsError`` if its id is taken."""
        if not subscription.id:
            raise ValueError("a stored subscription needs an id")
        self._insert_subscription(subscription.id, to_record(subscription))

    def find_subscription(self, subscription_id: str) -> Subscription | None:
        found = self._read_subscription(subscription_id)
        return from_record(found[0]) if found else None

    def get_subscription(self, subscription_id: str) -> Subscription:
        found = self.find_subscription(subscription_id)
        if found is None:
            raise SubscriptionNotFoundError(f"no subscription {subscription_id!r}")
        return found

    def change_subscription(self, subscription_id: str, change: SubscriptionChange) -> Subscription | None:
        """Read, apply ``change``, compare-and-set; again on a lost race. What was written, or None.

        ``change`` may raise (``InvalidTransitionError``, say): nothing is written.
        """
        for _ in range(MAX_CAS_ATTEMPTS):
            found = self._read_subscription(subscription_id)
            if found is None:
                raise SubscriptionNotFoundError(f"no subscription {subscription_id!r}")
            record, version = found
            new = change(from_record(record))
            if new is None:
                return None
            if self._replace_subscription(subscription_id, to_record(new), version, record):
                return new
        raise StoreUnavailable(f"subscription {subscription_id!r}: too much contention, try again")

    def list_subscriptions(
        self,
        *,
        state: str | None = None,
        events_pending: bool = False,
        heard_before: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[Subscription]:
        """Subscriptions in ``state``, or with undelivered events, or active and quiet since ``heard_before``.

        Each is one single-field query (no composite index): combine them in the caller.
        """
        filters: builtins.list[tuple[str, str, Any]] = []
        if state is not None:
            filters.append(("state", "==", str(state)))
        if events_pending:
            filters.append(("eventsPending", "==", True))
        if heard_before is not None:
            filters.append(("heardAt", "<=", int(heard_before)))
        found = [from_record(r) for r in self._query_subscriptions(filters, limit=limit)]
        return sorted(found, key=lambda s: (s.created_at or 0, s.id))

    def count_subscriptions(self, *, state: str | None = None) -> int:
        filters = [("state", "==", str(state))] if state is not None else []
        return self._count_subscriptions(filters)

    def note_notification(self, subscription_id: str, now_ms: int) -> bool:
        """Record that a notification arrived (the webhook calls it at most once a minute).

        A blind write: no read, no version. False when there is no record (a
        deployment not migrated yet). ``heardAt`` is set with it, though only an
        active subscription keeps one: the next write of another state drops it.
        """
        return self._touch_subscription(subscription_id, {"lastNotificationAt": now_ms, "heardAt": now_ms})

    def record_run(self, name: str, record: Record) -> None:
        """Keep the record of the latest run of ``name`` (``renewal``), for ``status``."""
        self._write_run(name, dict(record))

    def last_run(self, name: str) -> Record | None:
        return self._read_run(name)
