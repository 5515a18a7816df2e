"""Authenticated encryption of the secrets channelkit keeps at rest (AES-256-GCM).

``CHANNELKIT_CREDENTIALS_KEY`` holds one or more base64 keys of 32 bytes,
comma-separated: the first encrypts, every one decrypts, so a key is rotated
by putting the new one first and re-encrypting (``credentials rotate``).
Each sealed value names the key that sealed it by a one-way id (never the
key), carries its own random 96-bit nonce, and binds the caller's associated
data: a ciphertext moved to another record, or altered, does not decrypt.
The key's text never appears in an error message.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
from typing import Any

from channelkit.errors import ConfigError, CredentialDecryptError

__all__ = [
    "KEY_BYTES",
    "Keyring",
    "key_id",
    "new_key",
]

KEY_BYTES = 32
NONCE_BYTES = 12
SETTING = "CHANNELKIT_CREDENTIALS_KEY"
WANTS = f"{SETTING} must be base64 keys of {KEY_BYTES} bytes, comma-separated (first encrypts)"


def key_id(key: bytes) -> str:
    """A short one-way name for a key: which key sealed a value, without revealing it."""
    return hashlib.sha256(b"channelkit key id\x00" + key).hexdigest()[:16]


def new_key() -> str:
    """A fresh key, as ``CHANNELKIT_CREDENTIALS_KEY`` takes it (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


@dataclasses.dataclass(frozen=True, repr=False)
class Keyring:
    """The keys of ``CHANNELKIT_CREDENTIALS_KEY``, first one primary. Its repr shows key ids only."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys or any(len(k) != KEY_BYTES for k in self.keys):
            raise ConfigError(f"{SETTING} needs keys of {KEY_BYTES} bytes")

    def __repr__(self) -> str:
        return f"Keyring(key_ids={[key_id(k) for k in self.keys]})"

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Keys from the setting's text; ``ConfigError`` naming the setting (never its value)."""
        keys = []
        for position, part in enumerate(p.strip() for p in text.split(",")):
            if not part:
                continue
            try:
                key = base64.b64decode(part, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(f"{WANTS}: key {position + 1} is not base64") from None
            if len(key) != KEY_BYTES:
                raise ConfigError(f"{WANTS}: key {position + 1} is {len(key)} bytes")
            keys.append(key)
        if not keys:
            raise ConfigError(f"{WANTS}: it is empty")
        return cls(tuple(keys))

    @property
    def primary_id(self) -> str:
        return key_id(self.keys[0])

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> dict[str, Any]:
        """Seal under the primary key: ``{"keyId", "nonce", "ciphertext"}`` (base64 strings)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[0]).encrypt(nonce, plaintext, associated_data)
        return {
            "keyId": self.primary_id,
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(sealed).decode(),
        }

    def decrypt(self, sealed: dict[str, Any], associated_data: bytes) -> bytes:
        """Open a sealed value; ``CredentialDecryptError`` if no key fits or it was altered."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        wanted = sealed.get("keyId")
        key = next((k for k in self.keys if key_id(k) == wanted), None)
        if key is None:
            raise CredentialDecryptError(f"sealed under key {wanted!r}, which {SETTING} does not hold")
        try:
            nonce = base64.b64decode(sealed["nonce"], validate=True)
            ciphertext = base64.b64decode(sealed["ciphertext"], validate=True)
            return AESGCM(key).decrypt(nonce, ciphertext, associated_data)
        except (InvalidTag, KeyError, binascii.Error, ValueError, TypeError):
            raise CredentialDecryptError("a sealed value was altered or does not belong here") from None
