"""Channel stores: the interface and its backends, chosen by ``CHANNELKIT_STORE``."""

from __future__ import annotations

from channelkit import config
from channelkit.store.base import ChannelStore
from channelkit.store.claims import ClaimOutcome, MessageClaim
from channelkit.store.records import ACTIVE, FAILED, PENDING, STATUSES, STOPPED

__all__ = [
    "ACTIVE",
    "FAILED",
    "PENDING",
    "STATUSES",
    "STOPPED",
    "ChannelStore",
    "ClaimOutcome",
    "MessageClaim",
    "open_store",
]


def open_store(url: str | None = None, **options) -> ChannelStore:
    """The store named by ``url`` or ``CHANNELKIT_STORE``: ``firestore`` or ``sqlite:///PATH``."""
    url = config.store_url(url)
    if url == "firestore":
        from channelkit.store.firestore import FirestoreStore

        return FirestoreStore(**options)
    from channelkit.store.sqlite import SQLiteStore, path_from_url

    return SQLiteStore(path_from_url(url), **options)
