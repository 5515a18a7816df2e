"""Stored OAuth user credentials: what is kept, what is sealed, and how references name them.

A subscription names the identity it watches as (``credentials``):

* ``adc`` — the runtime's Application Default Credentials (the default);
* ``subject:EMAIL`` — domain-wide delegation for that user (``subject:`` alone
  takes ``CHANNELKIT_SUBJECT``);
* ``user:KEY`` — OAuth user credentials stored under ``KEY`` (``credentials add``).

A stored credential keeps its public part in clear (client id, token URI,
scopes, dates, whether Google revoked it) and seals the secrets (refresh token,
client secret) with ``crypto.Keyring``, its key and version bound in as
associated data. Pure functions: the store and the keyring are passed in.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from channelkit.crypto import Keyring
from channelkit.errors import ConfigError

__all__ = [
    "ADC",
    "DEFAULT_TOKEN_URI",
    "StoredCredential",
    "parse_authorized_user",
    "parse_reference",
    "seal",
    "unseal",
    "user_reference",
]

ADC = "adc"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_EMAIL = re.compile(r"[^@\s:]+@[^@\s:]+")


def parse_reference(text: str | None, *, default_subject: str | None = None) -> str:
    """A credentials reference, validated and normalised (``adc``, ``subject:EMAIL``, ``user:KEY``)."""
    if text is None or text.strip() in ("", ADC):
        return ADC
    kind, sep, value = text.strip().partition(":")
    if kind == "subject" and sep:
        email = value or default_subject or ""
        if not _EMAIL.fullmatch(email):
            raise ConfigError("credentials subject:EMAIL needs an email (or CHANNELKIT_SUBJECT for subject:)")
        return f"subject:{email}"
    if kind == "user" and sep:
        if not _KEY.fullmatch(value):
            raise ConfigError(f"credentials key must match {_KEY.pattern}, got {value!r}")
        return f"user:{value}"
    raise ConfigError(f"credentials must be adc, subject:EMAIL or user:KEY, got {text!r}")


def user_reference(key: str) -> str:
    return parse_reference(f"user:{key}")


def parse_authorized_user(info: Any) -> dict[str, Any]:
    """The fields of an "authorized_user" JSON (as Google's OAuth libraries and gcloud write it).

    ``ConfigError`` names what is missing or wrong, never a value.
    """
    if isinstance(info, (str, bytes)):
        try:
            info = json.loads(info)
        except ValueError:
            raise ConfigError("credentials file is not JSON") from None
    if not isinstance(info, dict):
        raise ConfigError("credentials file must hold a JSON object")
    kind = info.get("type", "authorized_user")
    if kind != "authorized_user":
        raise ConfigError(f"credentials file is of type {kind!r}; an 'authorized_user' file is needed")
    missing = [
        f
        for f in ("client_id", "client_secret", "refresh_token")
        if not isinstance(info.get(f), str) or not info[f]
    ]
    if missing:
        raise ConfigError(f"credentials file lacks {', '.join(missing)}")
    scopes = info.get("scopes") or []
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ConfigError("credentials file: scopes must be a list of strings")
    token_uri = info.get("token_uri") or DEFAULT_TOKEN_URI
    if not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://")):
        raise ConfigError("credentials file: token_uri must be an http(s) URL")
    return {
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "refresh_token": info["refresh_token"],
        "token_uri": token_uri,
        "scopes": list(scopes),
    }


@dataclasses.dataclass
class StoredCredential:
    """One stored credential; ``sealed`` holds the secrets (see ``seal``). Its repr shows no secret."""

    key: str
    client_id: str
    token_uri: str
    scopes: list[str]
    sealed: dict[str, Any] = dataclasses.field(repr=False)
    version: int = 1
    created_at: int | None = None
    refreshed_at: int | None = None
    revoked_at: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def reference(self) -> str:
        return user_reference(self.key)

    def to_record(self) -> dict[str, Any]:
        record = {
            "key": self.key,
            "clientId": self.client_id,
            "tokenUri": self.token_uri,
            "scopes": list(self.scopes),
            "sealed": dict(self.sealed),
            "version": self.version,
            "createdAt": self.created_at,
            "refreshedAt": self.refreshed_at,
            "revokedAt": self.revoked_at,
        }
        return {k: v for k, v in record.items() if v is not None}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StoredCredential:
        return cls(
            key=record["key"],
            client_id=record.get("clientId", ""),
            token_uri=record.get("tokenUri") or DEFAULT_TOKEN_URI,
            scopes=list(record.get("scopes") or []),
            sealed=dict(record.get("sealed") or {}),
            version=int(record.get("version") or 1),
            created_at=record.get("createdAt"),
            refreshed_at=record.get("refreshedAt"),
            revoked_at=record.get("revokedAt"),
        )

    def public_json(self) -> dict[str, Any]:
        """What ``credentials list --json`` shows: never a secret."""
        return {
            "key": self.key,
            "reference": self.reference,
            "clientId": self.client_id,
            "scopes": list(self.scopes),
            "createdAt": self.created_at,
            "lastRefreshedAt": self.refreshed_at,
            "revoked": self.revoked,
            "revokedAt": self.revoked_at,
            "version": self.version,
            "sealedWith": self.sealed.get("keyId"),
        }


def _associated_data(key: str, version: int) -> bytes:
    return f"channelkit/credentials/{key}/v{version}".encode()


def seal(
    keyring: Keyring, key: str, version: int, *, refresh_token: str, client_secret: str
) -> dict[str, Any]:
    """The secrets of one credential version, sealed under the keyring's primary key."""
    plaintext = json.dumps({"refresh_token": refresh_token, "client_secret": client_secret}).encode()
    return keyring.encrypt(plaintext, _associated_data(key, version))


def unseal(keyring: Keyring, credential: StoredCredential) -> dict[str, str]:
    """``{"refresh_token", "client_secret"}`` of a stored credential (``CredentialDecryptError`` if altered)."""
    opened = keyring.decrypt(credential.sealed, _associated_data(credential.key, credential.version))
    secrets: dict[str, str] = json.loads(opened)
    return secrets
