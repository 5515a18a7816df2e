"""The sync inside the webhook request, for ``--sync`` subscriptions only.

After a notification is marked done, ``after_delivery`` runs the subscription's
sync within ``CHANNELKIT_SYNC_BUDGET`` seconds; what is left waits for the next
pass (the next notification, ``python -m channelkit sync``, the renewal run's
backstop). Given ``requests`` (``CHANNELKIT_SYNC_TOPIC``: deployed), it syncs
nothing itself: it publishes "sync subscription S" for the ``sync`` function
(``channelkit.sync_requests``), which runs the same ``channelkit.sync.sync``.
Nothing a sync or a request does changes the webhook's answer to Google: their
failures are logged, never raised. Channels record ``sync``, so the check costs
nothing for other subscriptions: no read, no write is added to their path.

Directory and Reports notifications carry the resource in their body: for
them ``before_done`` hands it over as a batch of one *inside* the notification's
exactly-once delivery, before the notification handler; a raise there answers
503 like a failing handler, and Google's retry offers the batch again.
"""

from __future__ import annotations

import threading
from typing import Any

from channelkit import logs
from channelkit.change_sink import ChangeSink
from channelkit.channel import Channel, Notification
from channelkit.errors import ChannelkitError, SubscriptionNotFoundError
from channelkit.feeds import BODY, batch_from_body, feed_for
from channelkit.sync_requests import SyncRequests

__all__ = ["InlineSync"]

log = logs.get_logger("channelkit.sync")


class InlineSync:
    """Runs syncs for a Receiver: one per process, shared by its threads."""

    def __init__(
        self,
        *,
        store: Any,
        sink: ChangeSink,
        budget: float,
        lease: float,
        google: Any = None,
        settings: Any = None,
        clock: Any = None,
        requests: SyncRequests | None = None,
    ):
        self.store, self.sink, self.budget, self.lease = store, sink, budget, lease
        self.settings, self.clock, self.requests = settings, clock, requests
        self._google = google
        self._lock = threading.Lock()

    def google(self) -> Any:
        """The Google client, built on first use (the webhook never needs it for other channels)."""
        with self._lock:
            if self._google is None:
                from channelkit.google_api import GoogleApi

                self._google = GoogleApi.from_settings(self.settings, store=self.store)
            return self._google

    @staticmethod
    def _is_body_feed(channel: Channel) -> bool:
        try:
            return (
                feed_for(channel.api, channel.version, channel.method, channel.method_params or {}).kind
                == BODY
            )
        except ChannelkitError:
            return False

    def before_done(self, notification: Notification, channel: Channel) -> None:
        """A body feed's batch, inside the delivery (raises like a handler: 503, offered again)."""
        if not (channel.sync and channel.subscription_id) or notification.is_sync:
            return
        if not self._is_body_feed(channel):
            return
        batch = batch_from_body(channel.subscription_id, notification.body)
        if batch is None:
            return
        subscription = self.store.get_subscription(channel.subscription_id)
        self.sink.deliver(batch, subscription)

    def after_delivery(self, notification: Notification, channel: Channel) -> None:
        """Sync the channel's subscription within the budget, or request its sync; never raises."""
        if not (channel.sync and channel.subscription_id) or notification.is_sync:
            return
        if self._is_body_feed(channel):
            return
        if self.requests is not None:
            _request(self.requests, channel.subscription_id)
            return
        from channelkit.sync import sync

        try:
            result = sync(
                channel.subscription_id,
                store=self.store,
                google=self.google(),
                sink=self.sink,
                budget=self.budget,
                lease=self.lease,
                settings=self.settings,
                clock=self.clock,
            )
        except SubscriptionNotFoundError:
            return  # its record is written once watch returned: the next notification syncs
        except Exception as exc:  # noqa: BLE001 - a sync never changes the webhook's answer
            logs.event(
                log,
                "ERROR",
                "inline sync failed",
                subscriptionId=channel.subscription_id,
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
            return
        logs.event(
            log,
            "INFO",
            f"inline sync {result.outcome}",
            **{k: v for k, v in result.to_json().items() if v is not None},
        )


def _request(requests: SyncRequests, subscription_id: str) -> None:
    """Publish the sync request; a failure is logged: the next request or the backstop syncs."""
    try:
        requests.request(subscription_id)
    except Exception as exc:  # noqa: BLE001 - a request never changes the webhook's answer
        logs.event(
            log,
            "ERROR",
            "sync request not published (the renewal run's backstop will sync)",
            subscriptionId=subscription_id,
            error=f"{type(exc).__name__}: {exc}"[:500],
        )
        return
    logs.event(log, "INFO", "sync requested", subscriptionId=subscription_id, topic=requests.topic)
