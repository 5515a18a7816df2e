"""The backstop: each renewal run syncs the ``--sync`` subscriptions no notification synced lately.

Notifications are not 100% reliable. A subscription whose last sync ended more
than ``CHANNELKIT_SYNC_BACKSTOP`` seconds ago is synced by the run. When that
sync hands over changes older than ``MISSED_AFTER`` that no notification's sync
fetched, the notifications for them went missing: the subscription gets a
``missed`` lifecycle event (the changes have already been delivered; the event
tells the app that its push path is lossy). Never raises for one subscription.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from channelkit import logs
from channelkit.change_sink import ChangeSink
from channelkit.errors import ChannelkitError
from channelkit.events import deliver_events
from channelkit.lifecycle import transition
from channelkit.subscription import Event, Subscription
from channelkit.sync import sync

__all__ = ["MISSED_AFTER", "run_backstop"]

log = logs.get_logger("channelkit.renewal")

#: A change this old (seconds) that only the backstop fetched was announced by no notification.
MISSED_AFTER = 300


def _due(subscription: Subscription, now_ms: int, backstop_ms: int) -> bool:
    return subscription.is_active and (subscription.last_sync_at or 0) <= now_ms - backstop_ms


def run_backstop(
    store: Any,
    google: Any,
    sink: ChangeSink,
    *,
    dispatcher: Any,
    clock: Callable[[], float],
    backstop_seconds: float,
    budget_seconds: float | None,
    lease_seconds: float,
) -> dict[str, int]:
    """Sync every ``--sync`` subscription not synced for ``backstop_seconds``; counts of what happened."""
    started = time.monotonic()
    now_ms = int(clock() * 1000)
    counts = {"synced": 0, "missed": 0, "failed": 0}
    for subscription in store.list_subscriptions(sync=True):
        if not _due(subscription, now_ms, int(backstop_seconds * 1000)):
            continue
        left = None if budget_seconds is None else budget_seconds - (time.monotonic() - started)
        if left is not None and left <= 0:
            break
        try:
            result = sync(
                subscription.id,
                store=store,
                google=google,
                sink=sink,
                clock=clock,
                budget=left,
                lease=lease_seconds,
            )
            counts["synced"] += 1
            oldest = result.oldest_change_ms
            if oldest is not None and oldest <= int(clock() * 1000) - MISSED_AFTER * 1000:
                _record_missed(store, subscription.id, int(clock() * 1000), dispatcher)
                counts["missed"] += 1
        except ChannelkitError as exc:
            counts["failed"] += 1
            logs.event(
                log, "WARNING", "backstop sync failed", subscriptionId=subscription.id, error=str(exc)[:300]
            )
    return counts


def _record_missed(store: Any, subscription_id: str, now_ms: int, dispatcher: Any) -> None:
    """The ``missed`` event, recorded with the subscription and then delivered (or left in its outbox)."""

    def change(current: Subscription) -> Subscription | None:
        return transition(current, Event.MISSED, now_ms=now_ms) if current.is_active else None

    written = store.change_subscription(subscription_id, change)
    if written is not None:
        deliver_events(store, dispatcher, subscription_id, known=written)
