"""The health of every subscription at a glance: ``python -m channelkit status`` and the renew log.

Cheap enough to run every minute as a probe: four count aggregations, two
single-field queries on the subscriptions (the suspended and expired ones, the
quiet ones), one on the channels (those ending soon), and one document (the
last renewal run). Nothing reads the messages.

Unhealthy (exit 1) when a subscription is suspended or expired, or a live
channel ends within ``CHANNELKIT_EXPIRING_WARN`` while its renewal is failing:
a run tried and failed (the channel carries the error), or no run has happened
since the channel came due (``CHANNELKIT_RENEW_BEFORE`` before its end), so
renewal is not running at all. A channel that simply lives less than the
window (Google's one-hour default) is not a problem while runs keep renewing
it. Quiet subscriptions are listed, never unhealthy: some resources rarely change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from channelkit.channel import Channel
from channelkit.store import ChannelStore
from channelkit.subscription import State, Subscription

__all__ = [
    "PROBLEM_LIMIT",
    "HealthReport",
    "check_health",
]

#: At most this many subscriptions are listed per kind of problem (the counts stay exact).
PROBLEM_LIMIT = 1000


@dataclasses.dataclass
class HealthReport:
    """What ``status`` prints; ``to_json()`` is ``status --json``, ``log_fields()`` the renew log line."""

    now_ms: int
    counts: dict[str, int]
    problems: list[Subscription]
    expiring: list[Channel]
    quiet: list[Subscription]
    soonest: Channel | None
    last_run: dict[str, Any] | None

    @property
    def healthy(self) -> bool:
        return (
            not self.counts.get(State.SUSPENDED, 0)
            and not self.counts.get(State.EXPIRED, 0)
            and not self.expiring
        )

    def log_fields(self) -> dict[str, Any]:
        """The counts, flat: each a field of the ``channelkit health`` log line."""
        fields: dict[str, Any] = {state.value: self.counts.get(state.value, 0) for state in State}
        fields.update(expiringSoon=len(self.expiring), quiet=len(self.quiet), healthy=self.healthy)
        return fields

    def to_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "counts": {state.value: self.counts.get(state.value, 0) for state in State},
            "soonestExpiry": _channel_json(self.soonest, self.now_ms) if self.soonest else None,
            "problems": [_subscription_json(s, self.now_ms) for s in self.problems],
            "expiringSoon": [_channel_json(c, self.now_ms) for c in self.expiring],
            "quiet": [_subscription_json(s, self.now_ms) for s in self.quiet],
            "lastRenewalRun": self.last_run,
        }


def _seconds_since(value: int | None, now_ms: int) -> int | None:
    return (now_ms - value) // 1000 if value else None


def _subscription_json(subscription: Subscription, now_ms: int) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "state": subscription.state,
        "reason": subscription.reason,
        "detail": subscription.detail,
        "since": subscription.since,
        "sinceSeconds": _seconds_since(subscription.since, now_ms),
        "api": subscription.api,
        "method": subscription.method,
        "params": dict(subscription.method_params),
        "channelId": subscription.channel_id,
        "lastNotificationAt": subscription.last_notification_at,
    }


def _channel_json(channel: Channel, now_ms: int) -> dict[str, Any]:
    return {
        "channelId": channel.id,
        "subscriptionId": channel.subscription_id,
        "expiration": channel.expiration,
        "expiresInSeconds": (channel.expiration - now_ms) // 1000 if channel.expiration else None,
        "lastError": channel.last_error,
    }


def check_health(
    store: ChannelStore,
    *,
    now_ms: int,
    expiring_warn: float,
    quiet_after: float,
    renew_before: float,
) -> HealthReport:
    """Read what ``status`` needs from the store (see the module's docstring for the cost)."""
    counts = {state.value: store.count_subscriptions(state=state.value) for state in State}
    problems: list[Subscription] = []
    for state in (State.SUSPENDED, State.EXPIRED):
        if counts[state.value]:
            problems += store.list_subscriptions(state=state.value, limit=PROBLEM_LIMIT)
    window_end = now_ms + int(expiring_warn * 1000)
    last_run = store.last_run("renewal")
    last_run_at = int(last_run["at"]) if last_run and last_run.get("at") is not None else None

    def failing(channel: Channel) -> bool:
        came_due = (channel.expiration or 0) - int(renew_before * 1000)
        overdue = came_due <= now_ms and (last_run_at is None or last_run_at < came_due)
        return bool(channel.last_error) or overdue

    expiring = [c for c in store.due_for_renewal(window_end, limit=PROBLEM_LIMIT) if failing(c)]
    heard_before = now_ms - int(quiet_after * 1000)
    quiet = [
        s for s in store.list_subscriptions(heard_before=heard_before, limit=PROBLEM_LIMIT) if s.is_active
    ]
    soonest = next(iter(store.due_for_renewal(2**62, limit=1)), None)
    return HealthReport(
        now_ms=now_ms,
        counts=counts,
        problems=problems,
        expiring=expiring,
        quiet=quiet,
        soonest=soonest,
        last_run=last_run,
    )
