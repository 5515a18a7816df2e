"""A subscription's lifecycle: every state change, and how Google's refusals are judged.

One table, ``TRANSITIONS``, says which event may move a subscription from
which state to which; ``transition`` is the only function that changes a
subscription's state, and it records the event in the subscription's outbox
in the same change, so that the write that makes a transition also keeps its
event (delivered later, at least once: ``events``)::

    active ──suspended(reason)──▶ suspended ──reactivated──▶ active
    active ──expired────────────▶ expired   ──reactivated──▶ active
    active ──renewed / expiring / missed─▶ active
    any but stopped ──stopped───▶ stopped

``judge_failure`` sorts a failed ``watch`` into transient (never suspends),
counted (suspends after ``CHANNELKIT_SUSPEND_AFTER`` consecutive failed runs)
and immediate (suspends at once: retrying cannot help, and a retry storm
against a revoked credential is what this exists to prevent). Pure functions.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from typing import Any

from channelkit.errors import (
    AuthError,
    GoogleApiError,
    InvalidTransitionError,
    ResourceGoneError,
    TransientApiError,
)
from channelkit.google_api import INVALID_GRANT, NO_CREDENTIALS
from channelkit.subscription import Event, Reason, State, Subscription

__all__ = [
    "ENDPOINT_REASONS",
    "MAX_OUTBOX",
    "TRANSITIONS",
    "Failure",
    "FailureKind",
    "judge_failure",
    "record_failure",
    "record_success",
    "transition",
]


#: (state, event) -> the state it leads to. Anything else is an InvalidTransitionError.
TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.ACTIVE, Event.RENEWED): State.ACTIVE,
    (State.ACTIVE, Event.EXPIRING): State.ACTIVE,
    (State.ACTIVE, Event.MISSED): State.ACTIVE,
    (State.ACTIVE, Event.SUSPENDED): State.SUSPENDED,
    (State.ACTIVE, Event.EXPIRED): State.EXPIRED,
    (State.SUSPENDED, Event.REACTIVATED): State.ACTIVE,
    (State.EXPIRED, Event.REACTIVATED): State.ACTIVE,
    (State.ACTIVE, Event.STOPPED): State.STOPPED,
    (State.SUSPENDED, Event.STOPPED): State.STOPPED,
    (State.EXPIRED, Event.STOPPED): State.STOPPED,
}

#: Events an outbox holds at most: with no dispatcher for a long time (a broken handler
#: path, a library caller that passes none), the oldest give way, so a record stays small.
MAX_OUTBOX = 50

#: Google's error reasons for an address it will not deliver to.
ENDPOINT_REASONS = frozenset(
    {
        "push.webhookUrlUnauthorized",
        "push.webhookUrlNotHttps",
        "push.webhookUrlNoHostPort",
        "push.webhookUrlInvalid",
        "webhookUrlUnauthorized",
        "webhookUrlNotHttps",
    }
)


def transition(
    subscription: Subscription,
    event: Event,
    *,
    now_ms: int,
    reason: Reason | None = None,
    detail: str | None = None,
    channel_id: str | None = None,
) -> Subscription:
    """The subscription after ``event``, with the event added to its outbox.

    ``reason`` is required for ``suspended`` and refused for every other event.
    ``channel_id`` names the channel that serves it from now on (``renewed``,
    ``reactivated``) or the one the event is about (``expiring``).
    """
    current = State(subscription.state)
    target = TRANSITIONS.get((current, event))
    if target is None:
        raise InvalidTransitionError(f"subscription {subscription.id!r} is {current}: cannot be {event}")
    if (event is Event.SUSPENDED) != (reason is not None):
        raise ValueError("a reason goes with the suspended event, and only with it")
    changes: dict[str, Any] = {"state": target.value}
    if target is not current:
        changes["since"] = now_ms
    if target is not State.SUSPENDED:
        changes["reason"] = None  # a reason says why a subscription is suspended, and only then
    if event in (Event.RENEWED, Event.REACTIVATED):
        changes.update(failures=0, last_failure_at=None, expiring_for=None, reason=None, detail=None)
        if channel_id:
            changes["channel_id"] = channel_id
    elif event is Event.EXPIRING:
        changes["expiring_for"] = channel_id or subscription.channel_id
    elif reason is not None:  # suspended
        changes.update(reason=Reason(reason).value, detail=detail)
    elif detail is not None:
        changes["detail"] = detail
    about = channel_id or subscription.channel_id
    kept = subscription.events[-(MAX_OUTBOX - 1) :] if MAX_OUTBOX > 1 else []
    record = {"id": uuid.uuid4().hex, "event": event.value, "at": now_ms, "channelId": about}
    if reason is not None:
        record["reason"] = Reason(reason).value
    return subscription.copy(events=[*kept, record], **changes)


class FailureKind(enum.Enum):
    """How a failed ``watch`` counts towards suspension."""

    TRANSIENT = "transient"  # 429, 5xx, timeouts, 403 rate limits: never suspends
    COUNTED = "counted"  # suspends after CHANNELKIT_SUSPEND_AFTER consecutive failed runs
    IMMEDIATE = "immediate"  # suspends at once: retrying cannot help


@dataclasses.dataclass(frozen=True)
class Failure:
    """A judged failure: its kind and, unless transient, the reason it would suspend with."""

    kind: FailureKind
    reason: Reason | None


def judge_failure(exc: BaseException) -> Failure:
    """Sort a failed watch by Google's answer (``GoogleApiError.status`` and ``.reason``)."""
    status = getattr(exc, "status", None)
    google_reason = getattr(exc, "reason", None) or ""
    if google_reason in ENDPOINT_REASONS:
        return Failure(FailureKind.IMMEDIATE, Reason.ENDPOINT_UNAUTHORIZED)
    if isinstance(exc, TransientApiError) or not isinstance(exc, GoogleApiError):
        return Failure(FailureKind.TRANSIENT, None)
    if google_reason == NO_CREDENTIALS:  # the deployment has none: fix it, no subscription is at fault
        return Failure(FailureKind.TRANSIENT, None)
    if isinstance(exc, ResourceGoneError):
        return Failure(FailureKind.IMMEDIATE, Reason.RESOURCE_GONE)
    if google_reason == INVALID_GRANT or (isinstance(exc, AuthError) and status != 403):
        return Failure(FailureKind.IMMEDIATE, Reason.CREDENTIALS_INVALID)
    if isinstance(exc, AuthError):
        return Failure(FailureKind.COUNTED, Reason.PERMISSION_DENIED)
    return Failure(FailureKind.COUNTED, Reason.OTHER)


def record_failure(
    subscription: Subscription, failure: Failure, *, now_ms: int, suspend_after: int, detail: str
) -> Subscription:
    """The subscription after a failed renewal attempt: counted, and suspended when it is time."""
    changed = subscription.copy(last_failure_at=now_ms, detail=detail)
    if failure.kind is FailureKind.TRANSIENT or failure.reason is None:
        return changed
    changed.failures = subscription.failures + 1
    if failure.kind is FailureKind.IMMEDIATE or changed.failures >= suspend_after:
        return transition(changed, Event.SUSPENDED, now_ms=now_ms, reason=failure.reason, detail=detail)
    return changed


def record_success(subscription: Subscription, *, channel_id: str, now_ms: int) -> Subscription | None:
    """The subscription once ``channel_id`` is live in place of its channel; None if already recorded."""
    if subscription.channel_id == channel_id:
        return None
    return transition(subscription, Event.RENEWED, now_ms=now_ms, channel_id=channel_id)
