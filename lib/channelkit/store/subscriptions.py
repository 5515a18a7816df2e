"""Subscription records in the store: created once, changed by compare-and-set, counted cheaply.

The rules are written once here, on the primitives of ``documents`` that each
backend translates. No subscription operation touches the messages: ``status``
can run every minute. A record of the last renewal run is kept beside them
(``record_run`` / ``last_run``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from channelkit.errors import SubscriptionExistsError, SubscriptionNotFoundError
from channelkit.store.documents import Documents, Filter
from channelkit.store.records import Record
from channelkit.subscription import Subscription, from_record, to_record

__all__ = [
    "SubscriptionChange",
    "SubscriptionRecords",
]

#: A change to a subscription: the new one, or None to leave the record as it is.
SubscriptionChange = Callable[[Subscription], Subscription | None]

SUBSCRIPTIONS, RUNS = "subscriptions", "runs"


class SubscriptionRecords(Documents):
    """The subscription half of the store, on the primitives of ``Documents``."""

    def create_subscription(self, subscription: Subscription) -> None:
        """Store a new subscription; ``SubscriptionExistsError`` if its id is taken."""
        if not subscription.id:
            raise ValueError("a stored subscription needs an id")
        if not self._doc_insert(SUBSCRIPTIONS, subscription.id, to_record(subscription)):
            raise SubscriptionExistsError(f"subscription {subscription.id!r} already exists")

    def find_subscription(self, subscription_id: str) -> Subscription | None:
        found = self._doc_fetch(SUBSCRIPTIONS, subscription_id)
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
        return self._doc_change(
            SUBSCRIPTIONS,
            subscription_id,
            from_record,
            to_record,
            change,
            lambda: SubscriptionNotFoundError(f"no subscription {subscription_id!r}"),
        )

    def list_subscriptions(
        self,
        *,
        state: str | None = None,
        events_pending: bool = False,
        heard_before: int | None = None,
        credentials: str | None = None,
        sync: bool = False,
        limit: int | None = None,
    ) -> builtins.list[Subscription]:
        """Subscriptions in ``state``, or with undelivered events, or active and quiet since
        ``heard_before``, or using ``credentials``, or made with ``--sync``.

        Each is one single-field query (no composite index): combine them in the caller.
        """
        filters: builtins.list[Filter] = []
        if state is not None:
            filters.append(("state", "==", str(state)))
        if events_pending:
            filters.append(("eventsPending", "==", True))
        if heard_before is not None:
            filters.append(("heardAt", "<=", int(heard_before)))
        if credentials is not None:
            filters.append(("credentials", "==", credentials))
        if sync:
            filters.append(("sync", "==", True))
        found = [from_record(r) for r in self._doc_query(SUBSCRIPTIONS, filters, limit=limit)]
        return sorted(found, key=lambda s: (s.created_at or 0, s.id))

    def count_subscriptions(self, *, state: str | None = None, credentials: str | None = None) -> int:
        filters: builtins.list[Filter] = []
        if state is not None:
            filters.append(("state", "==", str(state)))
        if credentials is not None:
            filters.append(("credentials", "==", credentials))
        return self._doc_count(SUBSCRIPTIONS, filters)

    def note_notification(self, subscription_id: str, now_ms: int) -> bool:
        """Record that a notification arrived (the webhook calls it at most every 10 minutes).

        A blind write: no read, no version. False when there is no record (a
        deployment not migrated yet). ``heardAt`` is set with it, though only an
        active subscription keeps one: the next write of another state drops it.
        """
        fields = {"lastNotificationAt": now_ms, "heardAt": now_ms}
        return self._doc_touch(SUBSCRIPTIONS, subscription_id, fields)

    def record_run(self, name: str, record: Record) -> None:
        """Keep the record of the latest run of ``name`` (``renewal``), for ``status``."""
        self._doc_write(RUNS, name, dict(record))

    def last_run(self, name: str) -> dict[str, Any] | None:
        found = self._doc_read(RUNS, name)
        return found[0] if found else None
