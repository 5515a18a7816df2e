"""Channels no subscription needs any more: make sure Google forgets them.

A run sweeps the ``pending`` channels that a crashed subscribe or renewal left
(older than the renewal lease), retries the stops at Google that failed
earlier (``stop_pending``), and abandons the extra successors a renewal finds.
A channel may be live at Google without our knowing its resource id: the
predecessor's stands in, Google's resource id being stable for a resource.
"""

from __future__ import annotations

from channelkit.channel import Channel, to_millis
from channelkit.errors import ChannelConflictError
from channelkit.google_api import GoogleApi
from channelkit.renewal.outcomes import RenewalOutcome, RenewalSummary
from channelkit.store import FAILED, PENDING, ChannelStore
from channelkit.subscribe import stop_at_google

__all__ = [
    "abandon",
    "finish_stop",
    "stale_pending",
    "stop_maybe_live",
    "sweep_channel",
]


def stale_pending(store: ChannelStore, *, now_ms: int, lease_seconds: float) -> list[Channel]:
    """``pending`` channels older than the lease: a crashed subscribe or renewal left them."""
    stale_before = now_ms - lease_seconds * 1000
    return [
        c
        for c in store.list(status=PENDING)
        if (to_millis(c.created_at) or 0) <= stale_before and (c.lease_until or 0) <= now_ms
    ]


def sweep_channel(
    channel: Channel, summary: RenewalSummary, *, store: ChannelStore, google: GoogleApi
) -> None:
    """Abandon one stale pending channel (unless it was activated meanwhile)."""
    predecessor = store.find(channel.renews) if channel.renews else None
    reason = "abandoned: its watch never completed"
    if abandon(channel, predecessor, reason, store=store, google=google):
        summary.add(RenewalOutcome.FAILED, {"id": channel.id, "reason": "abandoned pending channel"})


def finish_stop(channel: Channel, summary: RenewalSummary, *, store: ChannelStore, google: GoogleApi) -> None:
    """Stop at Google a channel whose earlier stop failed."""
    if stop_at_google(channel, store=store, google=google) is None:
        summary.add(RenewalOutcome.STOPPED, channel.id)


def abandon(
    channel: Channel,
    predecessor: Channel | None,
    reason: str,
    *,
    store: ChannelStore,
    google: GoogleApi,
    expect: str = PENDING,
) -> bool:
    """Mark a channel ``failed`` and make sure Google forgets it.

    Only if it is still ``expect`` (by default ``pending``): False when it
    moved on meanwhile (say, a slow run activated it), and nothing is done.
    """
    try:
        current = store.update(channel.id, expect_status=expect, status=FAILED, last_error=reason)
    except ChannelConflictError:
        return False
    stop_maybe_live(current, predecessor, store=store, google=google)
    return True


def stop_maybe_live(
    channel: Channel, predecessor: Channel | None, *, store: ChannelStore, google: GoogleApi
) -> None:
    """Stop a channel that may have gone live at Google without our knowing its id."""
    resource_id = channel.resource_id or (predecessor.resource_id if predecessor else "")
    if not resource_id:
        return
    marked = store.update(channel.id, resource_id=resource_id, stop_pending=True)
    stop_at_google(marked, store=store, google=google)
