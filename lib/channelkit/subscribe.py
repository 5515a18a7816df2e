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
from channelkit.errors import (
    ChannelConflictError,
    ChannelExistsError,
    ConfigError,
    GoogleApiError,
    ResourceGoneError,
)
from channelkit.google_api import GoogleApi, canonical, check_watch_method, is_loopback_url
from channelkit.store import ACTIVE, FAILED, PENDING, STOPPED, ChannelStore, open_store

__all__ = [
    "activate",
    "check_address",
    "error_text",
    "fail",
    "stop",
    "stop_at_google",
    "subscribe",
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
) -> ch.Channel:
    """Create a watch channel; returns it ``active`` with Google's resource id and expiration.

    ``ttl`` asks for an expiration that many seconds from now (Google may
    clamp it). On a failed ``watch`` the channel is marked ``failed`` with the
    error and the typed GoogleApiError is raised; if it had already learned its
    resource id from an early notification it is stopped at Google.
    """
    api, version = canonical(api, version)
    params = dict(params or {})
    check_address(address)
    check_watch_method(api, version, method, params)
    token = ch.validate_token(token) if token is not None else ch.new_token()
    if ttl is not None and ttl <= 0:
        raise ConfigError(f"ttl must be a positive number of seconds, got {ttl!r}")
    store = store or open_store()
    google = google or GoogleApi()
    now = _now(clock)
    new = ch.Channel(
        "web_hook",
        ch.validate_channel_id(channel_id or str(uuid.uuid4())),
        token,
        address,
        expiration=int((now + ttl) * 1000) if ttl else None,
        api=api,
        version=version,
        method=method,
        method_params=params,
        subscription_id=subscription_id or str(uuid.uuid4()),
        status=PENDING,
        created_at=datetime.datetime.fromtimestamp(now, tz=datetime.UTC),
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
    return activate(new, store=store, google=google)


def activate(new: ch.Channel, *, store: ChannelStore, google: GoogleApi) -> ch.Channel:
    """Call ``watch`` for a stored ``pending`` channel and mark it ``active`` (or ``failed``)."""
    try:
        response = google.watch(new.api, new.version, new.method, new.method_params or {}, new.body())
    except GoogleApiError as exc:
        fail(new.id, exc, store=store, google=google)
        raise
    learned = new.copy()
    learned.update(response)
    if not learned.expiration:
        # Google answered without an expiration: assume its usual default, so that
        # renewal still finds the channel before it dies.
        learned.expiration = int((time.time() + ASSUMED_LIFETIME) * 1000)
    try:
        return store.update(
            new.id,
            expect_status=PENDING,
            status=ACTIVE,
            resource_id=learned.resource_id or None,
            resource_uri=learned.resource_uri or None,
            expiration=learned.expiration,
            last_error=None,
        )
    except ChannelConflictError:
        # Stopped (or failed) while watch ran: the channel is live at Google, so stop it there.
        marked = store.update(new.id, resource_id=learned.resource_id or None, stop_pending=True)
        stop_at_google(marked, store=store, google=google)
        raise


def fail(channel_id: str, exc: BaseException, *, store: ChannelStore, google: GoogleApi) -> None:
    """Mark a channel whose watch failed ``failed``; stop it at Google if it went live."""
    failed = store.update(channel_id, status=FAILED, last_error=error_text(exc), stop_pending=None)
    if failed.resource_id:  # an early notification proved it live at Google
        stop_at_google(failed, store=store, google=google)


def stop_at_google(channel: ch.Channel, *, store: ChannelStore, google: GoogleApi) -> GoogleApiError | None:
    """``channels.stop`` for a channel; None when done (404 counts as done).

    On failure the channel keeps ``stop_pending`` so that the next renewal run
    tries again, and the error is returned. A channel that never learned its
    resource id cannot be stopped by id at Google: it simply expires.
    """
    if channel.resource_id:
        try:
            google.stop(channel.api, channel.version, channel.id, channel.resource_id)
        except ResourceGoneError:
            pass
        except GoogleApiError as exc:
            store.update(channel.id, stop_pending=True, last_error=error_text(exc))
            return exc
    if channel.stop_pending:
        store.update(channel.id, stop_pending=None)
    return None


def stop(
    channel_id: str,
    *,
    store: ChannelStore | None = None,
    google: GoogleApi | None = None,
) -> list[ch.Channel]:
    """Stop a subscription: this channel and every other live channel of its subscription.

    Each is first marked ``stopped`` (the webhook refuses it as soon as its
    short per-instance cache lapses, and renewal leaves it alone), then
    stopped at Google; 404 means
    already gone. If Google refuses, the channel keeps ``stop_pending`` for
    the next renewal run and the first error is raised after all are tried.
    Raises ChannelNotFoundError for an unknown id.
    """
    store = store or open_store()
    google = google or GoogleApi()
    target = store.get(channel_id)
    related = store.list(subscription_id=target.subscription_id) if target.subscription_id else []
    channels = [target] + [c for c in related if c.id != target.id and c.status in (PENDING, ACTIVE)]
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
    if errors:
        raise errors[0]
    return [store.get(c.id) for c in channels]
