"""Reactivate a suspended or expired subscription: a new watch now, with its stored parameters.

``python -m channelkit reactivate SUBSCRIPTION_ID`` calls ``reactivate``. The
new channel is stored ``pending`` before ``watch`` (as in subscribe); once it
is live the subscription becomes ``active`` with a ``reactivated`` event (one
write), and the channel that served it before, if still live at Google, is
retired and stopped. If Google refuses again, the refusal is judged as in
renewal, recorded on the subscription (which keeps its state), and raised.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

from channelkit import channel as ch
from channelkit import signing
from channelkit.errors import ChannelConflictError, ConfigError, GoogleApiError, InvalidTransitionError
from channelkit.feeds import rewatch_params
from channelkit.google_api import GoogleApi
from channelkit.lifecycle import judge_failure, transition
from channelkit.renewal.renewer import SEALED_TOKEN, successor_of
from channelkit.signing import Signer
from channelkit.store import ACTIVE, STOPPED, ChannelStore, open_store
from channelkit.store.records import SealedToken
from channelkit.subscribe import activate, error_text, stop, stop_at_google
from channelkit.subscription import Event, State, Subscription

__all__ = [
    "REACTIVATABLE",
    "reactivate",
]

#: The states ``reactivate`` accepts.
REACTIVATABLE = (State.SUSPENDED.value, State.EXPIRED.value)


def _new_channel(
    subscription: Subscription, last: ch.Channel | None, now_ms: int, signer: Signer | None
) -> ch.Channel:
    """A pending channel for the subscription: like its last one (token, lifetime), or from the record."""
    if last is not None:
        if isinstance(last.token, SealedToken):
            raise ConfigError(f"cannot reactivate {subscription.id!r}: {SEALED_TOKEN}")
        return successor_of(last, now_ms, signer, subscription)

    return ch.Channel(
        "web_hook",
        signing.new_channel_id(signer),
        signing.new_token(signer, subscription.id),
        subscription.address,
        api=subscription.api,
        version=subscription.version,
        method=subscription.method,
        method_params=rewatch_params(
            subscription.api,
            subscription.version,
            subscription.method,
            subscription.method_params,
            subscription.cursor,
        ),
        subscription_id=subscription.id,
        credentials=subscription.credentials,
        sync=True if subscription.sync else None,
        status="pending",
        created_at=datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.UTC),
    )


def reactivate(
    subscription_id: str,
    *,
    store: ChannelStore | None = None,
    google: GoogleApi | None = None,
    dispatcher: Any = None,
    clock: Callable[[], float] | None = None,
) -> ch.Channel:
    """Watch again for a ``suspended`` or ``expired`` subscription; the new live channel.

    Raises ``SubscriptionNotFoundError``, ``InvalidTransitionError`` (it is
    active or stopped), or the typed ``GoogleApiError`` of a new refusal.
    """
    from channelkit.events import default_dispatcher, deliver_events

    store = store or open_store()
    google = google or GoogleApi(store=store)
    now = clock or time.time
    subscription = store.get_subscription(subscription_id)
    if subscription.state not in REACTIVATABLE:
        raise InvalidTransitionError(
            f"subscription {subscription_id!r} is {subscription.state}: only a suspended or expired one"
            " can be reactivated"
        )
    last = store.find(subscription.channel_id) if subscription.channel_id else None
    new = _new_channel(subscription, last, int(now() * 1000), store.signer)
    store.create(new)
    try:
        live = activate(new, store=store, google=google)
    except GoogleApiError as exc:
        _record_refusal(store, subscription_id, exc, int(now() * 1000))
        raise

    def change(current: Subscription) -> Subscription:
        return transition(current, Event.REACTIVATED, now_ms=int(now() * 1000), channel_id=live.id)

    try:
        store.change_subscription(subscription_id, change)
    except InvalidTransitionError:
        # Reactivated (or stopped) by someone else meanwhile: ours is one channel too many.
        stop(live.id, store=store, google=google, dispatcher=dispatcher)
        raise
    if last is not None and last.status == ACTIVE:
        _retire(store, google, last, live, int(now() * 1000))
    deliver_events(store, dispatcher or default_dispatcher(), subscription_id)
    return live


def _record_refusal(store: ChannelStore, subscription_id: str, exc: GoogleApiError, now_ms: int) -> None:
    """Keep the new refusal's reason on the record; the state does not change (no event)."""
    failure = judge_failure(exc)

    def change(current: Subscription) -> Subscription | None:
        if current.state not in REACTIVATABLE:
            return None
        changes: dict[str, Any] = {"detail": error_text(exc), "last_failure_at": now_ms}
        if current.state == State.SUSPENDED and failure.reason is not None:
            changes["reason"] = failure.reason.value
        return current.copy(**changes)

    store.change_subscription(subscription_id, change)


def _retire(store: ChannelStore, google: GoogleApi, last: ch.Channel, live: ch.Channel, now_ms: int) -> None:
    """The channel that served before (its renewal held) is replaced: mark it stopped, stop it at Google."""
    try:
        retired = store.update(
            last.id,
            expect_status=ACTIVE,
            status=STOPPED,
            renewed_by=live.id,
            stopped_at=now_ms,
            stop_pending=True if last.resource_id else None,
            held=None,
        )
    except ChannelConflictError:
        return
    stop_at_google(retired, store=store, google=google)
