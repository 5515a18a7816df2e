"""The subscribe and stop flows (docs/design.md, "Subscribe" and "Stop").

Subscribe stores the channel ``pending`` *before* calling ``watch``: Google may
deliver the ``sync`` notification before ``watch`` returns, and the webhook
must already know the channel. The store, the Google client and the clock are
injected; defaults come from the configuration.
"""

from __future__ import annotations

import datetime
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

from channelkit import channel as ch
from channelkit import config, signing
from channelkit.errors import (
    ChannelConflictError,
    ChannelExistsError,
    ConfigError,
    GoogleApiError,
    InvalidTransitionError,
    ResourceGoneError,
    SubscriptionExistsError,
    SubscriptionNotFoundError,
)
from channelkit.feeds import feed_for
from channelkit.google_api import GoogleApi, canonical, check_watch_method, is_loopback_url
from channelkit.store import ACTIVE, FAILED, PENDING, STOPPED, ChannelStore, open_store
from channelkit.subscription import Event, State, Subscription
from channelkit.user_credentials import ADC, parse_reference

__all__ = [
    "activate",
    "active_fields",
    "check_address",
    "error_text",
    "fail",
    "mark_active",
    "stop",
    "stop_at_google",
    "stop_call",
    "stop_subscription",
    "subscribe",
    "subscription_for",
    "watched",
]


Clock = Callable[[], float]

#: Lifetime assumed for a channel whose watch response has no expiration (Google's usual default).
ASSUMED_LIFETIME = 3600


def check_address(address: str) -> str:
    """Google delivers only to HTTPS; plain http is allowed for loopback hosts (local runs)."""
    parts = urllib.parse.urlsplit(address or "")
    if parts.scheme == "https" and parts.hostname:
        return address
    if parts.scheme == "http" and parts.hostname and is_loopback_url(address):
        return address
    raise ConfigError(f"address must be an https:// URL (http:// only for localhost), got {address!r}")


def error_text(exc: BaseException) -> str:
    """A short, token-free description of an error for ``lastError``."""
    return f"{type(exc).__name__}: {exc}"[:500]


def _now(clock: Clock | None) -> float:
    return (clock or time.time)()


def subscribe(
    api: str,
    version: str,
    method: str,
    *,
    address: str,
    params: dict[str, Any] | None = None,
    token: str | None = None,
    ttl: float | None = None,
    store: ChannelStore | None = None,
    google: GoogleApi | None = None,
    clock: Clock | None = None,
    channel_id: str | None = None,
    subscription_id: str | None = None,
    credentials: str | None = None,
    sync: bool = False,
    initial: bool = False,
) -> ch.Channel:
    """Create a watch channel; returns it ``active`` with Google's resource id and expiration.

    ``ttl`` asks for an expiration that many seconds from now (Google may
    clamp it). ``credentials`` names the identity that watches, renews and
    stops: ``adc`` (default), ``subject:EMAIL`` or ``user:KEY`` (stored with
    ``credentials add``; it must exist). On a failed ``watch`` the channel is marked ``failed`` with the
    error and the typed GoogleApiError is raised; if it had already learned its
    resource id from an early notification it is stopped at Google.

    With ``sync`` channelkit fetches the changes after each notification
    (``channelkit.sync``): the method must have a feed (``UnsupportedFeedError``
    before anything is stored), and the first cursor is taken before ``watch``
    (``feeds.first_cursor``): Drive ``changes.watch`` without ``pageToken`` gets
    ``changes.getStartPageToken``; a ``syncToken`` API is listed to its end.
    ``initial`` asks for what exists now too, delivered by the first sync as one resync.
    """
    api, version = canonical(api, version)
    params = dict(params or {})
    check_address(address)
    feed = feed_for(api, version, method, params) if sync else None
    # With sync, Drive's pageToken is taken below (changes.getStartPageToken), before watch.
    check_watch_method(api, version, method, params, optional=("pageToken",) if feed is not None else ())
    if ttl is not None and ttl <= 0:
        raise ConfigError(f"ttl must be a positive number of seconds, got {ttl!r}")
    store = store or open_store()
    subscription_id = subscription_id or str(uuid.uuid4())
    token = (
        ch.validate_token(token) if token is not None else signing.new_token(store.signer, subscription_id)
    )
    channel_id = _channel_id(channel_id, store.signer)
    reference = parse_reference(credentials, default_subject=config.delegated_subject())
    if reference.startswith("user:"):
        store.get_credential(reference.partition(":")[2])  # CredentialNotFoundError before anything is stored
    google = google or GoogleApi(store=store)
    cursor = None
    if feed is not None:
        from channelkit.sync import first_cursor

        cursor = first_cursor(
            feed, params, google, credentials=None if reference == ADC else reference, initial=initial
        )
    now = _now(clock)
    new = ch.Channel(
        "web_hook",
        channel_id,
        token,
        address,
        expiration=int((now + ttl) * 1000) if ttl else None,
        api=api,
        version=version,
        method=method,
        method_params=params,
        subscription_id=subscription_id,
        status=PENDING,
        created_at=datetime.datetime.fromtimestamp(now, tz=datetime.UTC),
        credentials=None if reference == ADC else reference,
        sync=True if sync else None,
    )
    try:
        store.create(new)
    except ChannelExistsError:
        # A retried create whose first attempt landed (its answer was lost): the
        # stored channel is ours if it carries our random token. Anything else
        # is a genuine clash of ids.
        existing = store.find(new.id)
        if existing is None or existing.status != PENDING or not ch.tokens_match(existing.token, new.token):
            raise
    live = activate(new, store=store, google=google)
    try:
        store.create_subscription(subscription_for(live, int(now * 1000), cursor=cursor))
    except SubscriptionExistsError:
        pass  # a retried subscribe with the same subscription id: its record stands
    return live


def _channel_id(chosen: str | None, signer: signing.Signer | None) -> str:
    """A new channel id (signed when there is a key), or the caller's, checked.

    An id chosen by hand carries no MAC: with a key and unsigned ids refused
    (``CHANNELKIT_ACCEPT_UNSIGNED_IDS=false``) the webhook would refuse its
    every notification, so it is refused here instead.
    """
    if chosen is None:
        return signing.new_channel_id(signer)
    chosen = ch.validate_channel_id(chosen)
    if signer is not None and not config.accept_unsigned_ids():
        if signer.check_channel_id(chosen) is not signing.IdCheck.SIGNED:
            raise ConfigError(
                "a channel id chosen by hand is not signed, and CHANNELKIT_ACCEPT_UNSIGNED_IDS=false "
                "refuses unsigned ids: leave the id to channelkit"
            )
    return chosen


def subscription_for(channel: ch.Channel, now_ms: int, *, cursor: str | None = None) -> Subscription:
    """The record of a new subscription that ``channel`` (live) serves (with its first sync ``cursor``).

    Written once ``watch`` succeeded: a subscription whose first watch fails was
    never made (the caller gets the error). A crash before this write leaves an
    active channel without a record: its first renewal writes it.
    """
    return Subscription(
        id=channel.subscription_id or "",
        api=channel.api,
        version=channel.version,
        method=channel.method,
        method_params=dict(channel.method_params or {}),
        address=channel.address,
        channel_id=channel.id,
        state=State.ACTIVE.value,
        since=now_ms,
        created_at=now_ms,
        credentials=channel.credentials,
        sync=bool(channel.sync),
        cursor=cursor,
    )


def activate(new: ch.Channel, *, store: ChannelStore, google: GoogleApi) -> ch.Channel:
    """Call ``watch`` for a stored ``pending`` channel and mark it ``active`` (or ``failed``)."""
    return mark_active(watched(new, store=store, google=google), store=store, google=google)


def watched(new: ch.Channel, *, store: ChannelStore, google: GoogleApi) -> ch.Channel:
    """Call ``watch`` for a stored ``pending`` channel: the channel as Google answered (not
    stored yet; ``active_fields`` say what to store). On a refusal it is marked ``failed``."""
    try:
        response = google.watch(
            new.api, new.version, new.method, new.method_params or {}, new.body(), credentials=new.credentials
        )
    except GoogleApiError as exc:
        fail(new.id, exc, store=store, google=google)
        raise
    learned = new.copy()
    learned.update(response)
    if not learned.expiration:
        # Google answered without an expiration: assume its usual default, so that
        # renewal still finds the channel before it dies.
        learned.expiration = int((time.time() + ASSUMED_LIFETIME) * 1000)
    return learned


def active_fields(learned: ch.Channel) -> dict[str, Any]:
    """What marking a watched channel ``active`` writes (only over a ``pending`` one)."""
    return {
        "status": ACTIVE,
        "resource_id": learned.resource_id or None,
        "resource_uri": learned.resource_uri or None,
        "expiration": learned.expiration,
        "last_error": None,
    }


def mark_active(learned: ch.Channel, *, store: ChannelStore, google: GoogleApi) -> ch.Channel:
    """Store a watched channel ``active``; if it left ``pending`` meanwhile, stop it at Google
    and raise ``ChannelConflictError``."""
    try:
        return store.update(learned.id, expect_status=PENDING, **active_fields(learned))
    except ChannelConflictError:
        # Stopped (or failed) while watch ran: the channel is live at Google, so stop it there.
        marked = store.update(learned.id, resource_id=learned.resource_id or None, stop_pending=True)
        stop_at_google(marked, store=store, google=google)
        raise


def fail(channel_id: str, exc: BaseException, *, store: ChannelStore, google: GoogleApi) -> None:
    """Mark a channel whose watch failed ``failed``; stop it at Google if it went live."""
    failed = store.update(channel_id, status=FAILED, last_error=error_text(exc), stop_pending=None)
    if failed.resource_id:  # an early notification proved it live at Google
        stop_at_google(failed, store=store, google=google)


#: ``GoogleApiError.reason`` of a stored grant that no retry can bring back (refused, or removed).
_GRANT_GONE = frozenset({"invalid_grant", "credentialsMissing"})


def stop_at_google(channel: ch.Channel, *, store: ChannelStore, google: GoogleApi) -> GoogleApiError | None:
    """``channels.stop`` for a channel; None when done (404 counts as done).

    On failure the channel keeps ``stop_pending`` so that the next renewal run
    tries again, and the error is returned. A channel that never learned its
    resource id cannot be stopped by id at Google: it simply expires. Nor can
    one whose stored grant Google refused or that was removed: no retry can
    succeed, so it is left to expire, with the reason in ``lastError``.
    """
    fields, error = stop_call(channel, google=google)
    if fields:
        store.update(channel.id, **fields)
    return error


def stop_call(channel: ch.Channel, *, google: GoogleApi) -> tuple[dict[str, Any], GoogleApiError | None]:
    """``channels.stop`` for a channel, nothing stored: the fields to store ({}: none) and the
    error to report (None: done), as ``stop_at_google`` describes."""
    if channel.resource_id:
        try:
            google.stop(
                channel.api, channel.version, channel.id, channel.resource_id, credentials=channel.credentials
            )
        except ResourceGoneError:
            pass
        except GoogleApiError as exc:
            if getattr(exc, "reason", None) in _GRANT_GONE:
                note = f"not stopped at Google, it ends at its expiration: {error_text(exc)}"
                return {"stop_pending": None, "last_error": note[:500]}, None
            return {"stop_pending": True, "last_error": error_text(exc)}, exc
    return ({"stop_pending": None} if channel.stop_pending else {}), None


def stop(
    channel_id: str,
    *,
    store: ChannelStore | None = None,
    google: GoogleApi | None = None,
    dispatcher: Any = None,
) -> list[ch.Channel]:
    """Stop a subscription: this channel and every other live channel of its subscription.

    The subscription record becomes ``stopped`` and its ``stopped`` event is
    delivered through ``dispatcher`` (default: the app's, from the environment;
    with none there, the event waits for the next renewal run).

    Each is first marked ``stopped`` (the webhook refuses it as soon as its
    short per-instance cache lapses, and renewal leaves it alone), then
    stopped at Google; 404 means
    already gone. If Google refuses, the channel keeps ``stop_pending`` for
    the next renewal run and the first error is raised after all are tried.
    Raises ChannelNotFoundError for an unknown id.
    """
    store = store or open_store()
    google = google or GoogleApi(store=store)
    target = store.get(channel_id)
    related = store.list(subscription_id=target.subscription_id) if target.subscription_id else []
    channels = [target] + [c for c in related if c.id != target.id and c.status in (PENDING, ACTIVE)]
    recorded = _record_stopped(store, target.subscription_id) if target.subscription_id else False
    errors: list[GoogleApiError] = []
    for channel in channels:
        if channel.status == STOPPED and not channel.stop_pending:
            continue
        marked = store.update(
            channel.id,
            status=STOPPED,
            stopped_at=int(time.time() * 1000),
            stop_pending=True if channel.resource_id else None,
            lease_until=None,
            lease_owner=None,
        )
        error = stop_at_google(marked, store=store, google=google)
        if error is not None:
            errors.append(error)
    if recorded and target.subscription_id:
        _deliver(store, target.subscription_id, dispatcher)
    if errors:
        raise errors[0]
    return [store.get(c.id) for c in channels]


def stop_subscription(
    subscription_id: str,
    *,
    store: ChannelStore | None = None,
    google: GoogleApi | None = None,
    dispatcher: Any = None,
) -> list[ch.Channel]:
    """``stop`` by subscription id (``SubscriptionNotFoundError`` if there is no such record)."""
    store = store or open_store()
    subscription = store.get_subscription(subscription_id)
    if not subscription.channel_id:
        raise SubscriptionNotFoundError(f"subscription {subscription_id!r} has no channel")
    return stop(subscription.channel_id, store=store, google=google, dispatcher=dispatcher)


def _record_stopped(store: ChannelStore, subscription_id: str) -> bool:
    """Mark the record ``stopped`` with its event, before the channels: a crash re-sends, never drops."""
    from channelkit.lifecycle import transition

    def change(current: Subscription) -> Subscription | None:
        if current.state == State.STOPPED:
            return None
        try:
            return transition(current, Event.STOPPED, now_ms=int(time.time() * 1000))
        except InvalidTransitionError:  # pragma: no cover - every state but stopped may stop
            return None

    try:
        return store.change_subscription(subscription_id, change) is not None
    except SubscriptionNotFoundError:
        return False  # a deployment not migrated yet: nothing to record


def _deliver(store: ChannelStore, subscription_id: str, dispatcher: Any) -> None:
    """Deliver the subscription's events through ``dispatcher``, or the app's (from the environment)."""
    from channelkit.events import default_dispatcher, deliver_events

    deliver_events(store, dispatcher or default_dispatcher(), subscription_id)
