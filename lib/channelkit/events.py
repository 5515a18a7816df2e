"""Deliver lifecycle events: the outbox a transition filled, emptied one event at a time.

A transition and its event are written together (``lifecycle.transition``);
delivering it is a second step: the event goes to the app as a synthetic
notification (message number 0, ``state`` = the event, ``reason`` when one
applies) through the same dispatcher as real ones, and only then leaves the
outbox. A crash in between leaves it there, and the next renewal run delivers
it again: at least once, never lost. A failed delivery stops the subscription's
outbox (events keep their order) until the next attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channelkit import logs
from channelkit.channel import Channel, Notification
from channelkit.errors import ChannelkitError
from channelkit.store import ChannelStore
from channelkit.subscription import Subscription

__all__ = [
    "SYNTHETIC_MESSAGE_NUMBER",
    "default_dispatcher",
    "deliver_events",
    "deliver_pending",
    "dispatch_events",
    "event_notification",
    "without_events",
]

log = logs.get_logger("channelkit.events")

#: Synthetic notifications carry message number 0: Google's numbers start at 1.
SYNTHETIC_MESSAGE_NUMBER = 0


def event_notification(event: dict[str, Any], channel: Channel | None) -> Notification:
    """The synthetic notification that tells the app about one lifecycle event."""
    return Notification(
        SYNTHETIC_MESSAGE_NUMBER,
        event["event"],
        channel.resource_uri if channel else "",
        channel.resource_id if channel else "",
        channel_id=event.get("channelId") or (channel.id if channel else None),
        channel_expiration=channel.expires_at if channel else None,
        reason=event.get("reason"),
    )


def _channel_for(store: ChannelStore, subscription: Subscription, channel_id: str | None) -> Channel:
    """The channel an event is about, as stored; built from the subscription if it is gone."""
    found = store.find(channel_id) if channel_id else None
    if found is not None:
        return found
    return Channel(
        "web_hook",
        channel_id or "",
        None,
        subscription.address,
        api=subscription.api,
        version=subscription.version,
        method=subscription.method,
        method_params=dict(subscription.method_params),
        subscription_id=subscription.id,
    )


def default_dispatcher() -> Any:
    """The app's dispatcher from the environment, or None when it has nowhere to deliver.

    A shell running ``stop`` or ``reactivate`` usually has neither
    ``CHANNELKIT_HANDLER`` nor ``CHANNELKIT_PUBSUB_TOPIC``: its events then stay
    in the outbox for the deployed renew function to deliver, rather than being
    logged in a terminal and lost to the app.
    """
    from channelkit.renewal import renewal_dispatcher

    dispatcher = renewal_dispatcher()
    if dispatcher is None or getattr(dispatcher, "targets", None) == ["log"]:
        return None
    return dispatcher


def deliver_events(
    store: ChannelStore,
    dispatcher: Any,
    subscription_id: str,
    *,
    recorded_before_ms: int | None = None,
    known: Subscription | None = None,
    channels: dict[str, Channel] | None = None,
) -> int:
    """Deliver the subscription's pending events in order; how many were delivered.

    ``known`` is the subscription as just written (saves a read); ``channels``
    the channels at hand by id (saves reading the one an event is about).

    ``dispatcher`` is a Dispatcher or a callable ``(notification, channel)``;
    with None nothing is sent and the events wait in the outbox (for a renewal
    run that has the app's dispatcher). With ``recorded_before_ms``, only events recorded
    before it are sent (a run leaves younger ones to the actor that recorded
    them). A delivery that fails is logged, and the rest wait for the next try.
    """
    if dispatcher is None:
        return 0
    subscription = known if known is not None else store.find_subscription(subscription_id)
    if subscription is None:
        return 0
    delivered = 0
    for event in subscription.events:
        if recorded_before_ms is not None and int(event.get("at") or 0) > recorded_before_ms:
            break
        if not _dispatch(store, dispatcher, subscription, event, channels):
            break
        store.change_subscription(subscription.id, without_events([event["id"]]))
        delivered += 1
    return delivered


def dispatch_events(
    store: ChannelStore, dispatcher: Any, subscription: Subscription, *, channels: dict[str, Channel]
) -> list[str]:
    """Send the subscription's pending events in order, leaving them in the outbox; the ids sent.

    The caller takes them out (``without_events``) in a write of its own, which it
    may commit with others (the renewal's last one). A crash before that write
    sends them again on the next run: at least once.
    """
    sent: list[str] = []
    if dispatcher is None:
        return sent
    for event in subscription.events:
        if not _dispatch(store, dispatcher, subscription, event, channels):
            break
        sent.append(event["id"])
    return sent


def _dispatch(
    store: ChannelStore,
    dispatcher: Any,
    subscription: Subscription,
    event: dict[str, Any],
    channels: dict[str, Channel] | None,
) -> bool:
    """Send one event to the app; False (logged) if its handler failed."""
    channel = (channels or {}).get(event.get("channelId") or "") or _channel_for(
        store, subscription, event.get("channelId")
    )
    try:
        getattr(dispatcher, "dispatch", dispatcher)(event_notification(event, channel), channel)
    except Exception as exc:  # noqa: BLE001 - the app's handler may raise anything
        logs.event(
            log,
            "ERROR",
            f"lifecycle event {event['event']} not delivered, kept for the next renewal run",
            outcome="event_dispatch_failed",
            subscriptionId=subscription.id,
            channelId=event.get("channelId"),
            error=type(exc).__name__,
        )
        return False
    logs.event(
        log,
        "INFO",
        f"lifecycle event {event['event']} delivered",
        outcome="event_delivered",
        subscriptionId=subscription.id,
        channelId=event.get("channelId"),
        event=event["event"],
        reason=event.get("reason"),
    )
    return True


def without_events(event_ids: list[str]) -> Callable[[Subscription], Subscription | None]:
    """A change that takes these events out of the outbox (None when none of them is there)."""
    gone = set(event_ids)

    def change(current: Subscription) -> Subscription | None:
        kept = [e for e in current.events if e.get("id") not in gone]
        return current.copy(events=kept) if len(kept) != len(current.events) else None

    return change


def deliver_pending(store: ChannelStore, dispatcher: Any, *, recorded_before_ms: int) -> int:
    """Deliver every event left in an outbox before ``recorded_before_ms`` (a crash, a failed try)."""
    if dispatcher is None:
        return 0
    delivered = 0
    for subscription in store.list_subscriptions(events_pending=True):
        try:
            delivered += deliver_events(
                store, dispatcher, subscription.id, recorded_before_ms=recorded_before_ms
            )
        except ChannelkitError as exc:  # the store failed for this one: the next run tries again
            logs.event(
                log,
                "WARNING",
                "lifecycle events not delivered",
                subscriptionId=subscription.id,
                error=str(exc),
            )
    return delivered
