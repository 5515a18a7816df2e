"""A subscription: what the app asked to watch, across every channel that serves it.

Channels come and go (each renewal makes a new one); the subscription stays:
its API method and parameters, its address, which channel is live now, and
its lifecycle ``state`` (``lifecycle`` holds the transitions). Pure data, no
I/O: the store keeps it as ``subscriptions/{id}`` (``to_record`` /
``from_record``), and the channel documents stay the webhook's hot path.

Times are int ms since the Unix epoch, as the channel's ``expiration``.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

__all__ = [
    "RECORD_FIELDS",
    "Event",
    "Reason",
    "State",
    "Subscription",
    "from_record",
    "to_record",
]


class State(enum.StrEnum):
    """Where a subscription is in its life (docs/design.md, "Subscriptions")."""

    ACTIVE = "active"  # a live channel serves it, renewal keeps it alive
    SUSPENDED = "suspended"  # Google refused it for a lasting reason; not retried until reactivated
    EXPIRED = "expired"  # its last channel ended with no successor
    STOPPED = "stopped"  # stopped by the user; final


class Reason(enum.StrEnum):
    """Why a subscription is suspended: a closed set, one per way Google refuses for good."""

    CREDENTIALS_INVALID = "CREDENTIALS_INVALID"  # 401, invalid_grant
    PERMISSION_DENIED = "PERMISSION_DENIED"  # 403 that is not a rate limit
    RESOURCE_GONE = "RESOURCE_GONE"  # 404 / 410: the watched resource is gone
    ENDPOINT_UNAUTHORIZED = "ENDPOINT_UNAUTHORIZED"  # Google refuses the address
    OTHER = "OTHER"  # any other refusal that is not transient


class Event(enum.StrEnum):
    """A lifecycle event: the ``state`` of the synthetic notification that tells the app."""

    RENEWED = "renewed"
    EXPIRING = "expiring"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    REACTIVATED = "reactivated"
    STOPPED = "stopped"
    MISSED = "missed"  # a backstop sync found changes no notification announced (already repaired)


@dataclasses.dataclass
class Subscription:
    """One subscription record. ``events`` is its outbox: events recorded, not yet delivered."""

    id: str
    api: str | None = None
    version: str | None = None
    method: str | None = None
    method_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    address: str | None = None
    #: The channel that serves it now (the live one while ``active``; the last one otherwise).
    channel_id: str | None = None
    state: str = State.ACTIVE.value
    #: A ``Reason`` value while suspended; None otherwise.
    reason: str | None = None
    #: One line on why (Google's answer), token-free; kept for the last failure too.
    detail: str | None = None
    #: When the subscription entered its state (ms).
    since: int | None = None
    created_at: int | None = None
    #: Consecutive renewal runs that failed for a lasting reason (reset by a success).
    failures: int = 0
    #: The last failed renewal attempt (transient ones too), cleared by a success.
    last_failure_at: int | None = None
    #: The latest accepted notification, written at most every 10 minutes per instance.
    last_notification_at: int | None = None
    #: The channel for which ``expiring`` was sent: once per channel.
    expiring_for: str | None = None
    #: Events recorded with their transition and not yet delivered, oldest first.
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: Per-subscription credentials (a reference: ``subject:EMAIL``, ``user:KEY``; None is ADC).
    credentials: str | None = None
    #: Change feeds (``channelkit.sync``): made with ``--sync``; its cursor (opaque, ``feeds.Cursor``).
    sync: bool = False
    cursor: str | None = None
    #: The sync lease: who runs a sync now and until when (ms); a crashed holder's lease lapses.
    sync_owner: str | None = None
    sync_until: int | None = None
    #: Set by a notification that found the lease held: the holder makes one more pass.
    sync_again: bool = False
    #: When the latest sync pass ended (ms).
    last_sync_at: int | None = None

    def copy(self, **changes: Any) -> Subscription:
        """A new Subscription with some fields replaced (lists and dicts copied)."""
        fields = dataclasses.asdict(self)
        fields.update(changes)
        return Subscription(**fields)

    @property
    def is_active(self) -> bool:
        return self.state == State.ACTIVE.value


#: Subscription attribute -> record field (camelCase, like the channel documents).
RECORD_FIELDS = {
    "id": "id",
    "api": "api",
    "version": "version",
    "method": "method",
    "method_params": "methodParams",
    "address": "address",
    "channel_id": "channelId",
    "state": "state",
    "reason": "reason",
    "detail": "detail",
    "since": "since",
    "created_at": "createdAt",
    "failures": "failures",
    "last_failure_at": "lastFailureAt",
    "last_notification_at": "lastNotificationAt",
    "expiring_for": "expiringFor",
    "events": "events",
    "credentials": "credentials",
    "sync": "sync",
    "cursor": "cursor",
    "sync_owner": "syncOwner",
    "sync_until": "syncUntil",
    "sync_again": "syncAgain",
    "last_sync_at": "lastSyncAt",
}
#: Flags stored only while true: a record without a feed looks as it always did.
_FLAGS = ("sync", "sync_again")
assert set(RECORD_FIELDS) == {f.name for f in dataclasses.fields(Subscription)}


def to_record(subscription: Subscription) -> dict[str, Any]:
    """The stored form, with the fields the queries need derived here, once:

    * ``eventsPending`` — present (True) only while the outbox holds events: a
      renewal run finds what it must still deliver with one equality query;
    * ``heardAt`` — present only while ``active``: the latest of its last
      notification and when it became active, so that ``status`` finds quiet
      subscriptions with one single-field range query.
    """
    record: dict[str, Any] = {}
    for attr, name in RECORD_FIELDS.items():
        value = getattr(subscription, attr)
        if value is None or (attr == "events" and not value) or (attr in _FLAGS and not value):
            continue
        record[name] = [dict(e) for e in value] if attr == "events" else value
    if subscription.events:
        record["eventsPending"] = True
    if subscription.is_active:
        heard = max(subscription.last_notification_at or 0, subscription.since or 0)
        if heard:
            record["heardAt"] = heard
    return record


def from_record(record: dict[str, Any]) -> Subscription:
    """The Subscription a record describes (derived and unknown fields are dropped)."""
    values = {attr: record[name] for attr, name in RECORD_FIELDS.items() if record.get(name) is not None}
    values["method_params"] = dict(values.get("method_params") or {})
    values["events"] = [dict(e) for e in values.get("events") or []]
    values["failures"] = int(values.get("failures") or 0)
    for flag in _FLAGS:
        values[flag] = bool(values.get(flag))
    return Subscription(**values)
