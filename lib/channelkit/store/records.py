"""Translation between ``Channel`` objects and stored records (the Firestore data model).

Pure functions. A record is a dict with the document's field names (camelCase,
docs/design.md, "Firestore data model"); backends store it as they like and hand it back unchanged.
Derived fields are computed here, once, for every backend:

* ``renewAt`` — the expiration (ms), present only while the channel is
  ``active``: one single-field range query finds channels due for renewal.
* ``expireAt`` — when Firestore TTL may delete the document: long after the
  channel ends.
"""

from __future__ import annotations

import datetime
from typing import Any

from channelkit.channel import SUBSCRIPTION_FIELDS, Channel, from_millis

__all__ = [
    "ACTIVE",
    "FAILED",
    "FIELDS",
    "PENDING",
    "STATUSES",
    "STOPPED",
    "Record",
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


def to_record(channel: Channel, *, ttl_days: int) -> Record:
    """The stored form of ``channel``, with its derived fields."""
    record: Record = {}
    for attr, name in FIELDS.items():
        value = getattr(channel, attr)
        if value is None or value == "":
            continue
        if attr == "created_at":
            value = _aware(value)
        record[name] = value
    # Read back from the record: a plain Channel does not declare its subscription fields.
    if record.get("status") == ACTIVE and channel.expiration and not record.get("renewHeld"):
        record["renewAt"] = int(channel.expiration)
    end = from_millis(channel.expiration) or record.get("createdAt")
    if end is not None:
        record["expireAt"] = end + datetime.timedelta(days=ttl_days)
    return record


def from_record(record: Record) -> Channel:
    """The Channel a record describes (derived and unknown fields are dropped)."""
    values = {attr: record.get(name) for attr, name in FIELDS.items()}
    for attr in ("resource_id", "resource_uri"):
        if values[attr] is None:
            values[attr] = ""
    values["created_at"] = _aware(values["created_at"])
    if values["params"] is not None:
        values["params"] = dict(values["params"])
    if values["method_params"] is not None:
        values["method_params"] = dict(values["method_params"])
    return Channel(**values)
