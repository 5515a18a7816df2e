"""Subscription records for deployments made before they existed.

Earlier versions kept a subscription only as the ``subscriptionId`` its channel
documents share. ``migrate`` (``python -m channelkit migrate``) writes the
missing ``subscriptions/{id}`` records from those channels; a renewal run does
the same, one subscription at a time, for any channel it renews without one,
so a deployment that never runs ``migrate`` still converges. No event is sent:
nothing changed state, the record only catches up.

How the channels of one subscription say its state (``from_channels``):

* one of them ``active`` → ``active``, served by the newest active one;
* else the newest failed on a watch Google answered 404/410 → ``suspended``
  with ``RESOURCE_GONE`` (what earlier versions did with a gone resource);
* else the newest ``stopped`` by hand (no successor) → ``stopped``;
* else a renewal that failed → ``expired``;
* a subscription that never had a live channel (a subscribe whose watch
  failed, a pending one the sweep will clean) gets no record.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable

from channelkit.channel import Channel, to_millis
from channelkit.errors import SubscriptionExistsError
from channelkit.store import ACTIVE, FAILED, STOPPED, ChannelStore
from channelkit.subscribe import subscription_for
from channelkit.subscription import Reason, State, Subscription

__all__ = [
    "MigrationSummary",
    "ensure_subscription",
    "from_channels",
    "migrate",
]


@dataclasses.dataclass
class MigrationSummary:
    """What ``migrate`` did: records created, subscriptions that had one, ones left without."""

    created: int = 0
    existing: int = 0
    skipped: int = 0

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _newest(channels: Iterable[Channel]) -> Channel | None:
    return max(channels, key=lambda c: (to_millis(c.created_at) or 0, c.id), default=None)


def from_channels(channels: Iterable[Channel], now_ms: int) -> Subscription | None:
    """The subscription record that a subscription's channels describe, or None (see above)."""
    channels = list(channels)
    if not channels or not channels[0].subscription_id:
        return None
    active = _newest(c for c in channels if c.status == ACTIVE)
    newest = _newest(channels)
    assert newest is not None
    # A failed channel that renews another, or a stopped one beside it: it was live once.
    was_live = bool(newest.renews) or any(c.status == STOPPED for c in channels)
    state, reason, serving = None, None, newest
    if active is not None:
        state, serving = State.ACTIVE, active
    elif newest.status == FAILED and was_live and (newest.last_error or "").startswith("ResourceGoneError"):
        state, reason = State.SUSPENDED, Reason.RESOURCE_GONE
    elif newest.status == STOPPED and not newest.renewed_by:
        state = State.STOPPED
    elif newest.status == FAILED and was_live:
        state = State.EXPIRED
    if state is None:
        return None
    first = min(to_millis(c.created_at) or now_ms for c in channels)
    return subscription_for(serving, now_ms).copy(
        state=state.value,
        reason=reason.value if reason else None,
        detail=serving.last_error if state is not State.ACTIVE else None,
        created_at=first,
    )


def ensure_subscription(store: ChannelStore, channels: list[Channel], now_ms: int) -> Subscription | None:
    """The stored record of these channels' subscription, created from them if missing."""
    subscription_id = channels[0].subscription_id if channels else None
    if not subscription_id:
        return None
    found = store.find_subscription(subscription_id)
    if found is not None:
        return found
    made = from_channels(channels, now_ms)
    if made is None:
        return None
    try:
        store.create_subscription(made)
    except SubscriptionExistsError:
        return store.find_subscription(subscription_id)
    return made


def migrate(store: ChannelStore, *, now_ms: int) -> MigrationSummary:
    """Create the subscription record of every subscription that has channels and no record."""
    summary = MigrationSummary()
    groups: dict[str, list[Channel]] = collections.defaultdict(list)
    for channel in store.list():
        if channel.subscription_id:
            groups[channel.subscription_id].append(channel)
    for subscription_id, channels in groups.items():
        if store.find_subscription(subscription_id) is not None:
            summary.existing += 1
        elif ensure_subscription(store, channels, now_ms) is not None:
            summary.created += 1
        else:
            summary.skipped += 1
    return summary
