"""Managing stored user credentials: add (or reconnect), list, remove, rotate the key.

``python -m channelkit credentials ...`` calls these; an app that runs its own
OAuth consent flow calls ``store_user_credentials(key, info)``. Storing needs
``CHANNELKIT_CREDENTIALS_KEY``: without it nothing is stored (``ConfigError``,
exit 2). Nothing here returns, prints or logs a secret.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from channelkit import config
from channelkit.crypto import Keyring
from channelkit.errors import ConfigError, CredentialInUseError, SubscriptionNotFoundError
from channelkit.store import ChannelStore, open_store
from channelkit.subscription import Reason, State
from channelkit.user_credentials import (
    StoredCredential,
    parse_authorized_user,
    parse_reference,
    seal,
    unseal,
    user_reference,
)

__all__ = [
    "CredentialUse",
    "keyring",
    "list_user_credentials",
    "reactivate_credential",
    "remove_user_credentials",
    "rotate_credentials",
    "store_user_credentials",
]


def keyring(value: str | None = None) -> Keyring:
    """The keyring of ``CHANNELKIT_CREDENTIALS_KEY``; ``ConfigError`` when it is not set."""
    text = config.credentials_key(value)
    if text is None:
        raise ConfigError(
            "storing credentials needs CHANNELKIT_CREDENTIALS_KEY (base64 of 32 random bytes; "
            "deploy.sh keeps one in Secret Manager)"
        )
    return Keyring.parse(text)


def store_user_credentials(
    key: str,
    info: Any,
    *,
    store: ChannelStore | None = None,
    keys: Keyring | None = None,
    clock: Callable[[], float] = time.time,
) -> StoredCredential:
    """Store an "authorized_user" grant under ``key`` (a dict or its JSON text).

    A grant already stored under ``key`` is replaced (a user who reconnects):
    its version moves on and a revocation is cleared. Subscriptions suspended
    by that revocation stay suspended until reactivated (``reactivate_credential``).
    """
    user_reference(key)  # validates the key
    fields = parse_authorized_user(info)
    keys = keys or keyring()
    store = store or open_store()
    now_ms = int(clock() * 1000)
    secrets = {"refresh_token": fields["refresh_token"], "client_secret": fields["client_secret"]}
    fresh = StoredCredential(
        key=key,
        client_id=fields["client_id"],
        token_uri=fields["token_uri"],
        scopes=fields["scopes"],
        sealed=seal(keys, key, 1, **secrets),
        version=1,
        created_at=now_ms,
    )
    if store.put_credential(fresh):
        return fresh

    def replace(current: StoredCredential) -> StoredCredential:
        version = current.version + 1
        return dataclasses.replace(
            fresh, version=version, sealed=seal(keys, key, version, **secrets), created_at=current.created_at
        )

    replaced = store.change_credential(key, replace)
    assert replaced is not None
    return replaced


@dataclasses.dataclass
class CredentialUse:
    """A stored credential and how many subscriptions (not stopped) use it."""

    credential: StoredCredential
    in_use: int

    def to_json(self) -> dict[str, Any]:
        return {**self.credential.public_json(), "inUse": self.in_use}


def _users_of(store: ChannelStore, reference: str) -> list[Any]:
    return [s for s in store.list_subscriptions(credentials=reference) if s.state != State.STOPPED]


def list_user_credentials(store: ChannelStore | None = None) -> list[CredentialUse]:
    store = store or open_store()
    return [CredentialUse(c, len(_users_of(store, c.reference))) for c in store.list_credentials()]


def remove_user_credentials(
    key: str,
    *,
    stop: bool = False,
    store: ChannelStore | None = None,
    google: Any = None,
    dispatcher: Any = None,
) -> list[str]:
    """Delete a stored credential; the subscriptions stopped first (with ``stop``), by id.

    Refused (``CredentialInUseError``) while subscriptions use it, unless ``stop``.
    """
    from channelkit.subscribe import stop_subscription

    store = store or open_store()
    store.get_credential(key)
    users = _users_of(store, user_reference(key))
    if users and not stop:
        raise CredentialInUseError(
            f"credentials {key!r} are used by {len(users)} subscription(s); stop them first or pass --stop"
        )
    for subscription in users:
        try:
            stop_subscription(subscription.id, store=store, google=google, dispatcher=dispatcher)
        except SubscriptionNotFoundError:
            pass
    store.delete_credential(key)
    return [s.id for s in users]


def rotate_credentials(*, store: ChannelStore | None = None, keys: Keyring | None = None) -> int:
    """Re-seal every stored credential under the first key; how many were re-sealed."""
    store = store or open_store()
    keys = keys or keyring()
    moved = 0
    for credential in store.list_credentials():
        if credential.sealed.get("keyId") == keys.primary_id:
            continue

        def reseal(current: StoredCredential) -> StoredCredential | None:
            if current.sealed.get("keyId") == keys.primary_id:
                return None
            secrets = unseal(keys, current)
            version = current.version + 1
            return dataclasses.replace(
                current, version=version, sealed=seal(keys, current.key, version, **secrets)
            )

        if store.change_credential(credential.key, reseal) is not None:
            moved += 1
    return moved


def reactivate_credential(
    key: str, *, store: ChannelStore | None = None, google: Any = None, dispatcher: Any = None
) -> tuple[list[str], dict[str, str]]:
    """Reactivate the subscriptions of ``key`` suspended ``CREDENTIALS_INVALID``: (done, failed: reason)."""
    from channelkit.errors import ChannelkitError
    from channelkit.reactivate import reactivate

    store = store or open_store()
    reference = parse_reference(f"user:{key}")
    identities = getattr(google, "identities", None)
    if identities is not None:
        identities.forget(key)  # the grant in memory may be the refused one
    done, failed = [], {}
    for subscription in store.list_subscriptions(credentials=reference, state=State.SUSPENDED.value):
        if subscription.reason != Reason.CREDENTIALS_INVALID:
            continue
        try:
            reactivate(subscription.id, store=store, google=google, dispatcher=dispatcher)
            done.append(subscription.id)
        except ChannelkitError as exc:
            failed[subscription.id] = " ".join(str(exc).split())[:300]
    return done, failed
