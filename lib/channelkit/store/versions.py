"""Compare-and-set on channel records, and the versions a store last wrote.

A channel changes by read → change → compare-and-set on the version read: of
several concurrent writers exactly one wins, and the others read again and
judge their change anew. Versions are opaque (Firestore's ``update_time``, a
random id in SQLite); a backend only has to read a record with its version
and write one if the version is unchanged.

To save a read per change, a store remembers the record and version it last
wrote for each channel and starts its next change there. The version
precondition makes that as safe as a fresh read: if anyone wrote since, the
write is refused and the loop reads. The versions a listing of due channels
saw are kept apart (``ListedVersions``), each for one change: the renewal
lease is then taken with one write and no read.
"""

from __future__ import annotations

import abc
import collections
import threading
from collections.abc import Callable
from typing import Any, overload

from channelkit.channel import Channel
from channelkit.errors import ChannelConflictError, ChannelNotFoundError, StoreUnavailable
from channelkit.signing import Signer
from channelkit.store import records
from channelkit.store.records import Record, Version

__all__ = [
    "KnownVersions",
    "ListedVersions",
    "VersionedChannels",
]


#: How often a compare-and-set loop re-reads after losing a race before giving up.
MAX_CAS_ATTEMPTS = 20
#: Channels whose last written (record, version) a store remembers.
KNOWN_VERSIONS = 2048
#: Channels whose listed (record, version) a store keeps until their first change.
LISTED_VERSIONS = 100_000

#: A change to a channel: the new channel, or None to leave the record as it is.
Change = Callable[[Channel], Channel | None]


class KnownVersions:
    """The (record, version) last written per channel, for the ``KNOWN_VERSIONS`` most recent."""

    def __init__(self, size: int = KNOWN_VERSIONS):
        self.size = size
        self._known: collections.OrderedDict[str, tuple[Record, Version]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def remember(self, channel_id: str, record: Record, version: Version) -> None:
        """Keep the (record, version) just written; a version of None or True is unknown."""
        with self._lock:
            if version is None or version is True:
                self._known.pop(channel_id, None)
                return
            self._known[channel_id] = (record, version)
            self._known.move_to_end(channel_id)
            while len(self._known) > self.size:
                self._known.popitem(last=False)

    def recall(self, channel_id: str) -> tuple[Record, Version] | None:
        with self._lock:
            return self._known.get(channel_id)

    def forget(self, channel_id: str) -> None:
        with self._lock:
            self._known.pop(channel_id, None)


class ListedVersions:
    """The (record, version) of the channels the last due listing returned, each taken once.

    Kept apart from ``KnownVersions`` so that the writes of a long run do not push
    the versions of channels it has yet to claim out; a new listing replaces them.
    """

    def __init__(self, size: int = LISTED_VERSIONS):
        self.size = size
        self._listed: dict[str, tuple[Record, Version]] = {}
        self._lock = threading.Lock()

    def keep(self, found: list[tuple[Record, Version]]) -> None:
        with self._lock:
            self._listed = {
                record["id"]: (record, version)
                for record, version in found[: self.size]
                if record.get("id") and version not in (None, True)
            }

    def take(self, channel_id: str) -> tuple[Record, Version] | None:
        with self._lock:
            return self._listed.pop(channel_id, None)


class VersionedChannels(abc.ABC):
    """Channel records changed by compare-and-set; a backend gives ``_read`` and ``_compare_and_set``."""

    ttl_days: int
    #: Keeps tokens out of the records (``records``); None without a deployment key.
    signer: Signer | None = None

    def __init__(self) -> None:
        self._known = KnownVersions()
        self._listed = ListedVersions()

    def _start(self, channel_id: str) -> tuple[Record, Version] | None:
        """The (record, version) a change may start from without a read: last written, else listed."""
        listed = self._listed.take(channel_id)
        return self._known.recall(channel_id) or listed

    def _to_record(self, channel: Channel) -> Record:
        return records.to_record(channel, ttl_days=self.ttl_days, signer=self.signer)

    def _from_record(self, record: Record) -> Channel:
        return records.from_record(record, self.signer)

    @abc.abstractmethod
    def _read(self, channel_id: str) -> tuple[Record, Version] | None:
        """The record and its version, or None."""

    @abc.abstractmethod
    def _compare_and_set(self, channel_id: str, record: Record, version: Version, previous: Record) -> Any:
        """Replace ``previous`` by ``record`` iff the version is still ``version``.

        Falsy if it was not; truthy if it was: the new version, or True when
        the backend does not know it.
        """

    @overload
    def _cas_update(self, channel_id: str, change: Callable[[Channel], Channel]) -> Channel: ...

    @overload
    def _cas_update(self, channel_id: str, change: Change) -> Channel | None: ...

    def _cas_update(self, channel_id: str, change: Change) -> Channel | None:
        """Read, apply ``change``, compare-and-set; re-read and retry on a lost race.

        ``change(channel)`` returns the new channel, or None to leave the record
        as it is; the result is what was written (or None).

        The first attempt starts from the remembered record and version, when
        there are any. A decision not to write (None, or a ``ChannelConflictError``
        raised by ``change``) is never taken on a remembered record: it is taken
        again on a fresh read.
        """
        start = self._start(channel_id)
        for _ in range(MAX_CAS_ATTEMPTS):
            remembered = start is not None
            if start is not None:
                (record, version), start = start, None
            else:
                found = self._read(channel_id)
                if found is None:
                    self._known.forget(channel_id)
                    raise ChannelNotFoundError(f"no channel {channel_id!r}")
                record, version = found
            try:
                new = change(self._from_record(record))
            except ChannelConflictError:
                if remembered:
                    continue
                raise
            if new is None:
                if remembered:
                    continue
                return None
            new_record = self._to_record(new)
            written = self._compare_and_set(channel_id, new_record, version, record)
            if written:
                self._known.remember(channel_id, new_record, written)
                return new
            self._known.forget(channel_id)
        raise StoreUnavailable(f"channel {channel_id!r}: too much contention, try again")
