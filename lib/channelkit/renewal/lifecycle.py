"""What a renewal tells the subscription record: success, failure, suspension, expiry.

Each outcome is one compare-and-set on ``subscriptions/{id}`` that changes the
state and records the event together (``channelkit.lifecycle``); the renewer
delivers the events afterwards (``channelkit.events``).
"""

from __future__ import annotations

from typing import Any

from channelkit.channel import Channel
from channelkit.errors import ChannelConflictError, ChannelNotFoundError, InvalidTransitionError
from channelkit.lifecycle import judge_failure, record_failure, record_success, transition
from channelkit.store import ACTIVE, ChannelStore
from channelkit.subscription import Event, Reason, State, Subscription

__all__ = [
    "after_failure",
    "after_success",
    "suspend_credential",
]


def after_success(
    store: ChannelStore, subscription_id: str, successor: Channel, now_ms: int
) -> Subscription | None:
    """Record that ``successor`` now serves the subscription (``renewed``, with its event).

    The subscription as written; None if nothing was: it is not active, or it
    was recorded already (a run that died before delivering the event).
    """

    def change(current: Subscription) -> Subscription | None:
        if not current.is_active:
            return None
        return record_success(current, channel_id=successor.id, now_ms=now_ms)

    return store.change_subscription(subscription_id, change)


def after_failure(
    store: ChannelStore,
    subscription_id: str,
    old: Channel,
    exc: BaseException,
    detail: str,
    *,
    now_ms: int,
    suspend_after: int,
    expiring_warn_ms: int,
) -> Subscription | None:
    """Record a failed watch for ``old``'s subscription; the subscription as written.

    In the one write: the failure counted, and the transition it leads to, if
    any: ``suspended`` (a lasting refusal), else ``expired`` (``old`` has ended
    and nothing replaced it), else ``expiring`` (``old`` ends within the warning
    window; once per channel).
    """
    failure = judge_failure(exc)

    def change(current: Subscription) -> Subscription | None:
        if not current.is_active:
            return None
        changed = record_failure(current, failure, now_ms=now_ms, suspend_after=suspend_after, detail=detail)
        if changed.state != State.ACTIVE:
            return changed
        expiration = old.expiration or 0
        try:
            if expiration and expiration <= now_ms:
                return transition(changed, Event.EXPIRED, now_ms=now_ms, detail=detail, channel_id=old.id)
            if expiration and expiration - now_ms <= expiring_warn_ms and changed.expiring_for != old.id:
                return transition(changed, Event.EXPIRING, now_ms=now_ms, channel_id=old.id)
        except InvalidTransitionError:  # pragma: no cover - active allows both
            return changed
        return changed

    return store.change_subscription(subscription_id, change)


def suspend_credential(
    store: ChannelStore, reference: str, detail: str, *, now_ms: int, dispatcher: Any
) -> list[Subscription]:
    """Google refused a stored grant: suspend every active subscription using it, at once.

    Each gets its own ``suspended`` event (``CREDENTIALS_INVALID``) and its
    channel's renewal held: none of them is tried again with that grant.
    """
    from channelkit.events import deliver_events

    def change(current: Subscription) -> Subscription | None:
        if not current.is_active:
            return None
        return transition(
            current, Event.SUSPENDED, now_ms=now_ms, reason=Reason.CREDENTIALS_INVALID, detail=detail
        )

    suspended = []
    for subscription in store.list_subscriptions(credentials=reference, state=State.ACTIVE.value):
        written = store.change_subscription(subscription.id, change)
        if written is None:
            continue
        if written.channel_id:
            try:
                store.update(written.channel_id, expect_status=ACTIVE, held=True)
            except (ChannelConflictError, ChannelNotFoundError):
                pass
        deliver_events(store, dispatcher, written.id, known=written)
        suspended.append(written)
    return suspended
