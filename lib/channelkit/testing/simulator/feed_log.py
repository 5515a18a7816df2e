"""``ChangeLog``: an append-only history of one collection, which every feed listing is read from.

Each change keeps a snapshot of the item as it became, so a listing can be
cut at any point of the history and paged through later with the same answer,
however many changes arrive in between: that is what makes page tokens stable.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

__all__ = ["ChangeLog", "Entry", "rfc3339"]


def rfc3339(ms: int) -> str:
    """``2026-12-02T18:09:11.123Z`` from Unix milliseconds, as Google writes times."""
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One change: its sequence number (1, 2, …), the item's key and what it became."""

    seq: int
    key: str
    item: dict[str, Any] | None  #: None: the item was removed for good
    time_ms: int


class ChangeLog:
    """The changes of one collection, oldest first; ``current`` is the latest item per key.

    ``generation`` grows each time the tokens issued for this log are expired;
    ``floor`` is the first sequence number a resume position may name.
    """

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.current: dict[str, dict[str, Any]] = {}
        self.generation = 0
        self.floor = 1
        self._cut: tuple[int, int, list[Entry]] | None = None  #: the last ``latest_between`` answered

    @property
    def last_seq(self) -> int:
        return len(self.entries)

    def append(self, key: str, item: dict[str, Any] | None, time_ms: int) -> Entry:
        """Record that ``key`` became ``item`` (None: removed); returns the entry."""
        entry = Entry(self.last_seq + 1, key, None if item is None else dict(item), time_ms)
        self.entries.append(entry)
        if item is None:
            self.current.pop(key, None)
        else:
            self.current[key] = dict(item)
        return entry

    def after(self, seq: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries whose sequence number is above ``seq``, oldest first."""
        return self.entries[seq : seq + limit]

    def latest_between(self, since: int, upto: int) -> list[Entry]:
        """The last entry of each key changed in (``since``, ``upto``], in the order of those entries.

        With ``since`` 0 this is the collection as it stood at ``upto``
        (removed items are the entries whose ``item`` is None).
        """
        if self._cut is not None and self._cut[:2] == (since, upto):
            return self._cut[2]  # the next page of the same listing: the history before upto is fixed
        latest: dict[str, Entry] = {}
        for entry in self.entries[since:upto]:
            latest.pop(entry.key, None)
            latest[entry.key] = entry
        cut = list(latest.values())
        self._cut = (since, upto, cut)
        return cut

    def expire(self) -> None:
        """Make every token issued so far unusable (see ``generation`` and ``floor``)."""
        self.generation += 1
        self.floor = self.last_seq + 1
