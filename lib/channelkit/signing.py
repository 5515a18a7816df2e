"""Channel ids that prove they are ours, and channel tokens that need not be stored.

The webhook must be public, so anyone may send it a request with any channel
id. With a deployment key (``CHANNELKIT_CREDENTIALS_KEY``), channelkit makes
ids that carry a MAC of their random part: the webhook verifies it in constant
time before anything that costs, and a forged or mistyped id is refused with no
store read. The tokens channelkit generates are derived from the key and the
subscription, so the store keeps only which key derived them, never the token.

Pure functions of their inputs. Each purpose has its own subkey, derived from
the deployment key with HMAC, so a MAC of one kind never stands for another
(and never for the AES key that seals credentials). Every key of the keyring
verifies; the first one makes new ids and tokens, so a rotated key keeps old
channels working until their renewal moves them to the new one.

A signed id is ``ck1-`` + 22 characters of randomness + 22 characters of MAC
(base64url, no padding): 48 characters, within Google's 64 and its alphabet.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import uuid

from channelkit import channel as ch
from channelkit.crypto import Keyring, key_id

__all__ = [
    "ID_PREFIX",
    "NO_KEY_WARNING",
    "IdCheck",
    "Signer",
    "new_channel_id",
    "new_token",
    "renewed_token",
]

ID_PREFIX = "ck1-"
_PART = 22  # base64url of 16 bytes, unpadded
SIGNED_ID_LENGTH = len(ID_PREFIX) + 2 * _PART
_ID_PURPOSE = b"channelkit/channel-id/v1"
_TOKEN_PURPOSE = b"channelkit/channel-token/v1"


#: What the functions log once at start when they run without a deployment key.
NO_KEY_WARNING = (
    "CHANNELKIT_CREDENTIALS_KEY is not set: channel ids are not signed (a forged id costs a store read)"
    " and channel tokens are stored in clear"
)


class IdCheck(enum.Enum):
    """What a channel id says about itself under the keyring."""

    SIGNED = "signed"  # a MAC that a key of the keyring made
    FORGED = "forged"  # shaped like a signed id, but no key made its MAC
    UNSIGNED = "unsigned"  # any other id: made before ids were signed, or by hand


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _subkey(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, purpose, hashlib.sha256).digest()


class Signer:
    """Makes and verifies signed channel ids and derived tokens under a keyring.

    Built once per process (the subkeys are computed here); thread-safe, since
    each call works on its own copy of the prepared MACs.
    """

    def __init__(self, keyring: Keyring):
        self.keyring = keyring
        self._id_macs = [hmac.new(_subkey(k, _ID_PURPOSE), digestmod=hashlib.sha256) for k in keyring.keys]
        self._token_macs = {
            key_id(k): hmac.new(_subkey(k, _TOKEN_PURPOSE), digestmod=hashlib.sha256) for k in keyring.keys
        }
        self._primary = key_id(keyring.keys[0])

    def __repr__(self) -> str:
        return f"Signer({self.keyring!r})"

    # --- channel ids ------------------------------------------------------------

    @staticmethod
    def _mac(prepared: hmac.HMAC, message: str) -> str:
        mac = prepared.copy()
        mac.update(message.encode("ascii"))
        return _b64(mac.digest()[:16])

    def new_channel_id(self) -> str:
        """A fresh id signed under the first key."""
        random_part = _b64(os.urandom(16))
        return ID_PREFIX + random_part + self._mac(self._id_macs[0], random_part)

    def check_channel_id(self, channel_id: str) -> IdCheck:
        """``SIGNED`` if a key of the keyring made it, ``FORGED`` if it only looks signed."""
        if len(channel_id) != SIGNED_ID_LENGTH or not channel_id.startswith(ID_PREFIX):
            return IdCheck.UNSIGNED
        if not channel_id.isascii():
            return IdCheck.FORGED
        random_part, given = channel_id[len(ID_PREFIX) : -_PART], channel_id[-_PART:]
        verified = False
        for prepared in self._id_macs:  # every key, whatever the answer: no early exit
            verified |= hmac.compare_digest(self._mac(prepared, random_part), given)
        return IdCheck.SIGNED if verified else IdCheck.FORGED

    # --- tokens -----------------------------------------------------------------

    def derive_token(self, subscription_id: str, key: str | None = None) -> str | None:
        """The token of a subscription under the key named ``key`` (default: the first); None if unknown."""
        prepared = self._token_macs.get(key or self._primary)
        if prepared is None:
            return None
        mac = prepared.copy()
        mac.update(subscription_id.encode("utf-8"))
        return _b64(mac.digest())

    def token_key(self, token: str, subscription_id: str) -> str | None:
        """The id of the key that derives ``token`` for this subscription, or None (a token of its own)."""
        for name in self._token_macs:
            derived = self.derive_token(subscription_id, name)
            if derived is not None and hmac.compare_digest(derived.encode(), token.encode("utf-8")):
                return name
        return None


def new_channel_id(signer: Signer | None) -> str:
    """A new channel id: signed when there is a key, else a random uuid4."""
    return signer.new_channel_id() if signer is not None else str(uuid.uuid4())


def new_token(signer: Signer | None, subscription_id: str) -> str:
    """A new channel token: derived from the key and the subscription, else 256 random bits."""
    if signer is not None:
        token = signer.derive_token(subscription_id)
        if token is not None:
            return token
    return ch.new_token()


def renewed_token(signer: Signer | None, token: str | None, subscription_id: str | None) -> str | None:
    """The token a renewal gives the successor: a derived one moves to the first key; others stay."""
    if signer is None or not token or not subscription_id:
        return token
    if signer.token_key(token, subscription_id) is None:
        return token  # the user's own token: kept as it is
    return signer.derive_token(subscription_id)
