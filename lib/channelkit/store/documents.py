"""The records kept beside the channels (subscriptions, credentials, runs): one set of primitives.

Each kind lives in its own collection (``config.collection_beside``) and is
reached through the same few operations, which every backend translates: a
create-only insert, a read with version, a replace-if-version, a delete-if-version,
a blind field update, a plain write, a query and a count on single fields. The
rules for each kind (``subscriptions``, ``credentials``) are written on top, once.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from channelkit.errors import StoreUnavailable
from channelkit.store.records import Record, Version
from channelkit.store.versions import MAX_CAS_ATTEMPTS, KnownVersions

__all__ = [
    "KINDS",
    "Documents",
    "Filter",
]

#: The kinds of record kept beside the channels.
KINDS = ("subscriptions", "credentials", "runs")

#: A query filter: (field, op, value), op ``==`` or ``<=``.
Filter = tuple[str, str, Any]

T = TypeVar("T")


class Documents(abc.ABC):
    """Primitives over the collections beside the channels; ``kind`` is one of ``KINDS``."""

    @abc.abstractmethod
    def _doc_insert(self, kind: str, doc_id: str, record: Record) -> bool:
        """Create the record; False if the id is taken (nothing written)."""

    @abc.abstractmethod
    def _doc_read(self, kind: str, doc_id: str) -> tuple[Record, Version] | None:
        """The record and its version, or None."""

    @abc.abstractmethod
    def _doc_replace(self, kind: str, doc_id: str, record: Record, version: Version, previous: Record) -> Any:
        """Replace ``previous`` by ``record`` iff the version is still ``version``.

        Falsy if it was not; else the new version (or True when the backend does not know it).
        """

    @abc.abstractmethod
    def _doc_delete(self, kind: str, doc_id: str, version: Version) -> bool:
        """Delete the record iff the version is still ``version``."""

    @abc.abstractmethod
    def _doc_touch(self, kind: str, doc_id: str, fields: Record) -> bool:
        """Set ``fields`` on an existing record without a version check; False if there is none."""

    @abc.abstractmethod
    def _doc_write(self, kind: str, doc_id: str, record: Record) -> None:
        """Create or replace the record, unconditionally."""

    @abc.abstractmethod
    def _doc_query(
        self, kind: str, filters: Iterable[Filter] = (), *, limit: int | None = None
    ) -> builtins.list[Record]:
        """Records matching every filter."""

    @abc.abstractmethod
    def _doc_count(self, kind: str, filters: Iterable[Filter] = ()) -> int:
        """How many records match (an aggregation: no document is read)."""

    # --- the compare-and-set loop every kind shares ---------------------------------

    @property
    def _doc_versions(self) -> KnownVersions:
        """The (record, version) last read or written per record: a change then skips its read."""
        known = self.__dict__.get("_doc_known")
        if known is None:
            known = self.__dict__["_doc_known"] = KnownVersions()
        return known

    def _doc_fetch(self, kind: str, doc_id: str) -> tuple[Record, Version] | None:
        """``_doc_read``, remembered for the next change of that record."""
        found = self._doc_read(kind, doc_id)
        name = f"{kind}/{doc_id}"
        if found is None:
            self._doc_versions.forget(name)
        else:
            self._doc_versions.remember(name, found[0], found[1])
        return found

    def _doc_change(
        self,
        kind: str,
        doc_id: str,
        decode: Callable[[Record], T],
        encode: Callable[[T], Record],
        change: Callable[[T], T | None],
        missing: Callable[[], Exception],
    ) -> T | None:
        """Read, apply ``change``, compare-and-set; again on a lost race. What was written, or None.

        ``change`` may raise: nothing is written. ``missing()`` is raised when there is no record.
        The first attempt starts from the record this store last read or wrote, when it has
        one (the version precondition makes that as safe as a read); a decision not to
        write, or to refuse (``change`` raising), is never taken on it, only on a fresh read:
        another thread may have remembered an older read after this store's last write.
        """
        name = f"{kind}/{doc_id}"
        start = self._doc_versions.recall(name)
        for _ in range(MAX_CAS_ATTEMPTS):
            remembered = start is not None
            if start is not None:
                (record, version), start = start, None
            else:
                found = self._doc_fetch(kind, doc_id)
                if found is None:
                    raise missing()
                record, version = found
            try:
                new = change(decode(record))
            except Exception:
                if remembered:  # a refusal decided on a remembered record: decide again on a fresh read
                    continue
                raise
            if new is None:
                if remembered:
                    continue
                return None
            new_record = encode(new)
            written = self._doc_replace(kind, doc_id, new_record, version, record)
            if written:
                self._doc_versions.remember(name, new_record, written)
                return new
            self._doc_versions.forget(name)
        raise StoreUnavailable(f"{kind} {doc_id!r}: too much contention, try again")
