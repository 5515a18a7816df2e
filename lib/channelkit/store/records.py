"""Translation between ``Channel`` objects and stored records (the Firestore data model).

Pure functions. A record is a dict with the document's field names (camelCase,
docs/design.md, "Firestore data model"); backends store it as they like and hand it back unchanged.
Derived fields are computed here, once, for every backend:

* ``renewAt`` — the expiration (ms), present only while the channel is
  ``active``: one single-field range query finds channels due for renewal.
* ``expireAt`` — when Firestore TTL may delete the document: long after the
  channel ends.

The token is kept in clear only without a deployment key. With one (a
``signing.Signer``), a token derived from the key is stored as the id of the key
that derives it (``tokenKeyId``), and any other token sealed with AES-GCM
(``tokenSealed``). A token that cannot be opened here (no key, or not the right
one) is read as a ``SealedToken``: it matches no request and is written back
exactly as it was, so a process without the key never loses or weakens one.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from channelkit.channel import SUBSCRIPTION_FIELDS, Channel, from_millis
from channelkit.errors import CredentialDecryptError
from channelkit.signing import Signer

__all__ = [
    "ACTIVE",
    "FAILED",
    "FIELDS",
    "PENDING",
    "STATUSES",
    "STOPPED",
    "TOKEN_FIELDS",
    "Record",
    "SealedToken",
    "Version",
    "field_name",
    "from_record",
    "to_record",
]


UTC = datetime.UTC

#: A stored record: field name -> value, as the backend hands it back.
Record = dict[str, Any]
#: A record's version, opaque: Firestore's ``update_time``, a random id in SQLite.
Version = Any

#: Channel attribute -> record field.
FIELDS = {
    "id": "id",
    "type": "type",
    "token": "token",
    "address": "address",
    "expiration": "expiration",
    "params": "params",
    "resource_id": "resourceId",
    "resource_uri": "resourceUri",
    "api": "api",
    "version": "version",
    "method": "method",
    "method_params": "methodParams",
    "subscription_id": "subscriptionId",
    "status": "status",
    "created_at": "createdAt",
    "renews": "renews",
    "renewed_by": "renewedBy",
    "lease_until": "leaseUntil",
    "last_error": "lastError",
    "stop_pending": "stopPending",
    "lease_owner": "leaseOwner",
    "stopped_at": "stoppedAt",
    "held": "renewHeld",
    "credentials": "credentials",
    "sync": "sync",
}
assert set(FIELDS) == {
    "id",
    "type",
    "token",
    "address",
    "expiration",
    "params",
    "resource_id",
    "resource_uri",
    *SUBSCRIPTION_FIELDS,
}

#: Statuses a channel moves through (docs/design.md, "Firestore data model").
PENDING, ACTIVE, STOPPED, FAILED = "pending", "active", "stopped", "failed"
STATUSES = (PENDING, ACTIVE, STOPPED, FAILED)


#: The record fields that may hold a channel's token, in clear or not.
TOKEN_FIELDS = ("token", "tokenKeyId", "tokenSealed")
#: Associated data of a sealed token: a sealed token opens as nothing else.
TOKEN_AAD = b"channelkit/channel-token"


class SealedToken(str):
    """A token this process cannot open: it compares equal to no request's token.

    Its text is random, made here, and never stored; ``fields`` are the record's
    token fields, written back as they were.
    """

    fields: dict[str, Any]

    def __new__(cls, fields: dict[str, Any]) -> SealedToken:
        value = super().__new__(cls, "sealed-" + os.urandom(32).hex())
        value.fields = dict(fields)
        return value


def field_name(attr: str) -> str:
    """The record field for a Channel attribute (ValueError for unknown ones)."""
    try:
        return FIELDS[attr]
    except KeyError:
        raise ValueError(f"unknown channel field {attr!r}") from None


def _aware(value: Any) -> Any:
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _token_fields(token: str, subscription_id: str | None, signer: Signer | None) -> Record:
    if isinstance(token, SealedToken):
        return dict(token.fields)
    if signer is None:
        return {"token": token}
    key = signer.token_key(token, subscription_id) if subscription_id else None
    if key is not None:
        return {"tokenKeyId": key}
    return {"tokenSealed": signer.keyring.encrypt(token.encode("utf-8"), TOKEN_AAD)}


def _open_token(record: Record, signer: Signer | None) -> str | None:
    if "token" in record:
        return record["token"]
    fields = {name: record[name] for name in TOKEN_FIELDS if name in record}
    if not fields:
        return None
    if signer is not None:
        if "tokenKeyId" in fields and record.get("subscriptionId"):
            token = signer.derive_token(record["subscriptionId"], fields["tokenKeyId"])
            if token is not None:
                return token
        elif "tokenSealed" in fields:
            try:
                return signer.keyring.decrypt(fields["tokenSealed"], TOKEN_AAD).decode("utf-8")
            except (CredentialDecryptError, UnicodeDecodeError):
                pass
    return SealedToken(fields)


def to_record(channel: Channel, *, ttl_days: int, signer: Signer | None = None) -> Record:
    """The stored form of ``channel``, with its derived fields and its token kept as above."""
    record: Record = {}
    for attr, name in FIELDS.items():
        value = getattr(channel, attr)
        if value is None or value == "":
            continue
        if attr == "created_at":
            value = _aware(value)
        elif attr == "token":
            record.update(_token_fields(value, channel.subscription_id, signer))
            continue
        record[name] = value
    # Read back from the record: a plain Channel does not declare its subscription fields.
    if record.get("status") == ACTIVE and channel.expiration and not record.get("renewHeld"):
        record["renewAt"] = int(channel.expiration)
    end = from_millis(channel.expiration) or record.get("createdAt")
    if end is not None:
        record["expireAt"] = end + datetime.timedelta(days=ttl_days)
    return record


def from_record(record: Record, signer: Signer | None = None) -> Channel:
    """The Channel a record describes (derived and unknown fields are dropped)."""
    values = {attr: record.get(name) for attr, name in FIELDS.items()}
    values["token"] = _open_token(record, signer)
    for attr in ("resource_id", "resource_uri"):
        if values[attr] is None:
            values[attr] = ""
    values["created_at"] = _aware(values["created_at"])
    if values["params"] is not None:
        values["params"] = dict(values["params"])
    if values["method_params"] is not None:
        values["method_params"] = dict(values["method_params"])
    return Channel(**values)
