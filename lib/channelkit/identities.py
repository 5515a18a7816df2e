"""Google credentials for each subscription's identity, built once per instance.

``Identities.credentials(reference, scopes)`` turns a reference (``adc``,
``subject:EMAIL``, ``user:KEY``; see ``user_credentials``) into google-auth
credentials. Stored user credentials are opened with the keyring, refreshed
under a lock per key (one refresh per expiry, however many threads renew that
user's subscriptions), and the access token is kept until shortly before it
expires. A refresh answered ``invalid_grant`` marks the credential revoked, in
the store and here: it is never refreshed again until ``credentials add``
stores a new grant. Every failure is a typed ``GoogleApiError``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from channelkit.errors import AuthError, CredentialsError, StoreError, TransientApiError

__all__ = [
    "CREDENTIALS_KEY_MISSING",
    "CREDENTIALS_MISSING",
    "Identities",
]

#: ``AuthError.reason`` when stored credentials cannot be used at all: both suspend with CREDENTIALS_INVALID.
CREDENTIALS_KEY_MISSING = "credentialsKeyMissing"
CREDENTIALS_MISSING = "credentialsMissing"


class Identities:
    """Credentials per reference; ``store`` and ``keyring`` are needed for ``user:KEY`` only."""

    #: Seconds between two reads of a stored credential's record by one instance: a grant
    #: stored again (a user who reconnects) replaces the one in memory within this time.
    CHECK_EVERY = 60.0

    def __init__(
        self,
        *,
        store: Any = None,
        keyring: Any = None,
        subject: str | None = None,
        base: Any = None,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.keyring = keyring
        self.subject = subject
        self._base = base
        self.clock = clock
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._users: dict[str, Any] = {}
        self._delegations: dict[str, Any] = {}
        self._revoked: set[str] = set()
        #: key -> (version loaded, when its record was last checked): a new grant is noticed within CHECK_EVERY.
        self._checked: dict[str, tuple[int, float]] = {}
        #: Refreshes this instance made, per key (what the issue's figures count).
        self.refreshes: dict[str, int] = {}

    # --- ADC and delegation -------------------------------------------------------

    def _adc(self, scopes: list[str]) -> Any:
        with self._lock:
            if self._base is None:
                import google.auth
                from google.auth import exceptions as auth_exc

                from channelkit.google_api import NO_CREDENTIALS

                try:
                    self._base, _ = google.auth.default(scopes=scopes)
                except auth_exc.GoogleAuthError as exc:
                    # The deployment's fault, not one subscription's: never a reason to suspend.
                    raise AuthError(f"no Google credentials: {exc}", reason=NO_CREDENTIALS) from exc
            return self._base

    def _delegated(self, email: str, scopes: list[str]) -> Any:
        """ADC acting for ``email``, kept per email: its token is refreshed once per expiry too."""
        base = self._adc(scopes)
        if not hasattr(base, "with_subject"):
            raise AuthError("domain-wide delegation (subject:EMAIL) needs service-account key credentials")
        with self._lock:
            found = self._delegations.get(email)
            if found is None:
                found = self._delegations[email] = base.with_subject(email)
            return found

    # --- stored user credentials ----------------------------------------------------

    def _user(self, key: str) -> Any:
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            self._recheck(key)
            if key in self._revoked:
                raise AuthError(
                    f"credentials user:{key} were revoked; store a new grant", reason="invalid_grant"
                )
            creds = self._users.get(key)
            if creds is None:
                creds = self._users[key] = self._load(key)
            if not creds.valid:
                self._refresh(key, creds)
            return creds

    def _recheck(self, key: str) -> None:
        """Drop what is held for ``key`` if its record moved to a new version (a new grant)."""
        checked = self._checked.get(key)
        if checked is None or self.clock() - checked[1] < self.CHECK_EVERY or self.store is None:
            return
        try:
            stored = self.store.find_credential(key)
        except StoreError:
            return  # keep what is held; the next call checks again
        if stored is None or stored.version != checked[0]:
            self._users.pop(key, None)
            self._revoked.discard(key)
            self._checked.pop(key, None)
        else:
            self._checked[key] = (checked[0], self.clock())

    def _load(self, key: str) -> Any:
        from google.oauth2.credentials import Credentials

        from channelkit.user_credentials import unseal

        if self.keyring is None:
            raise AuthError(
                f"credentials user:{key} need CHANNELKIT_CREDENTIALS_KEY, which is not set",
                reason=CREDENTIALS_KEY_MISSING,
            )
        if self.store is None:
            raise AuthError(f"credentials user:{key}: no store to read them from", reason=CREDENTIALS_MISSING)
        try:
            stored = self.store.get_credential(key)
            if stored.revoked:
                self._revoked.add(key)
                self._checked[key] = (stored.version, self.clock())
                raise AuthError(
                    f"credentials user:{key} were revoked; store a new grant", reason="invalid_grant"
                )
            self._checked[key] = (stored.version, self.clock())
            secrets = unseal(self.keyring, stored)
        except CredentialsError as exc:
            raise AuthError(f"credentials user:{key}: {exc}", reason=CREDENTIALS_MISSING) from exc
        except StoreError as exc:
            raise TransientApiError(f"credentials user:{key} could not be read: {exc}") from exc
        return Credentials(
            token=None,
            refresh_token=secrets["refresh_token"],
            client_id=stored.client_id,
            client_secret=secrets["client_secret"],
            token_uri=stored.token_uri,
            scopes=stored.scopes or None,
        )

    def _refresh(self, key: str, creds: Any) -> None:
        from google.auth import exceptions as auth_exc
        from google.auth.transport.requests import Request

        self.refreshes[key] = self.refreshes.get(key, 0) + 1
        try:
            creds.refresh(Request())
        except auth_exc.RefreshError as exc:
            if "invalid_grant" in str(exc):
                self._revoke(key)
                raise AuthError(
                    f"credentials user:{key} were refused: invalid_grant", reason="invalid_grant"
                ) from exc
            if getattr(exc, "retryable", False):
                raise TransientApiError(f"credentials user:{key} could not be refreshed now") from exc
            raise AuthError(f"credentials user:{key} could not be refreshed: {type(exc).__name__}") from exc
        except auth_exc.TransportError as exc:
            raise TransientApiError(
                f"credentials user:{key}: the token endpoint could not be reached"
            ) from exc
        try:
            self.store.note_refresh(key, int(self.clock() * 1000))
        except StoreError:
            pass  # a date for ``credentials list``: not worth failing the call

    def revoke(self, key: str) -> None:
        """Google refused the grant (``invalid_grant``, or a 401 with a fresh token): stop using it."""
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            self._revoke(key)

    def _revoke(self, key: str) -> None:
        """Google refused the grant: never refresh it again (here, and for every instance via the store)."""
        self._revoked.add(key)
        self._users.pop(key, None)
        now_ms = int(self.clock() * 1000)

        def mark(current: Any) -> Any:
            if current.revoked:
                return None
            current.revoked_at = now_ms
            return current

        try:
            self.store.change_credential(key, mark)
        except (StoreError, CredentialsError):
            pass  # the subscriptions are suspended anyway; the next refresh attempt learns it again

    def forget(self, key: str) -> None:
        """Drop what this instance holds for ``key`` (a new grant was stored)."""
        with self._lock:
            self._users.pop(key, None)
            self._revoked.discard(key)
            self._checked.pop(key, None)

    # --- any reference ----------------------------------------------------------------

    def credentials(self, reference: str, scopes: list[str]) -> Any:
        """google-auth credentials for ``reference``, valid now (``AuthError`` / ``TransientApiError``)."""
        kind, _, value = reference.partition(":")
        if kind == "user":
            return self._user(value)
        if kind == "subject":
            return self._delegated(value or self.subject or "", scopes)
        if self.subject:  # CHANNELKIT_SUBJECT: the deployment-wide delegation of earlier versions
            return self._delegated(self.subject, scopes)
        return self._adc(scopes)
