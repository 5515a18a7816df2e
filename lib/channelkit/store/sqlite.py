"""Embedded SQLite backend: local runs and demos without the Firestore emulator.

Only translates the primitives of ``ChannelStore`` to SQL. Records are kept as
JSON; versions are random ids, so a compare-and-set is one conditional
``UPDATE``/``DELETE`` and a deleted-then-recreated row never matches an old
version. Writes committed together are one transaction. Several processes may share one file (WAL mode, busy timeout).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from channelkit import config
from channelkit.errors import ChannelExistsError, ConfigError, StoreUnavailable
from channelkit.store.base import ChannelStore
from channelkit.store.batches import CHANNELS, Write
from channelkit.store.documents import KINDS
from channelkit.store.records import Record, Version

__all__ = [
    "SQLiteStore",
    "path_from_url",
]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    channel_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    version TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (channel_id, number)
);
"""

_OPS = {"==": "=", "<=": "<="}


def _encode(record: Record) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return {"$datetime": value.isoformat()}
        raise TypeError(f"cannot store {type(value).__name__}")

    return json.dumps(record, default=default, sort_keys=True)


def _decode(text: str) -> Record:
    def hook(obj: dict) -> Any:
        if set(obj) == {"$datetime"}:
            return datetime.datetime.fromisoformat(obj["$datetime"])
        return obj

    return json.loads(text, object_hook=hook)


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"SQLite store URL must look like sqlite:///PATH, got {url!r}")
    path = url[len("sqlite:///") :]
    if not path:
        raise ConfigError("SQLite store URL has no path")
    return path


def _table(kind: str) -> str:
    """The table of a kind of record (a fixed name, never taken from input)."""
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    return kind


def _select(sql: str, filters: Iterable[tuple[str, str, Any]]) -> tuple[str, list[Any]]:
    """``sql`` with a WHERE clause for ``(field, op, value)`` filters on the JSON records."""
    clauses, params = [], []
    for field, op, value in filters:
        clauses.append(f"json_extract(data, ?) {_OPS[op]} ?")
        params.extend([f"$.{field}", value])
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return sql, params


class SQLiteStore(ChannelStore):
    """``ChannelStore`` on one SQLite file (``CHANNELKIT_STORE=sqlite:///PATH``)."""

    def __init__(
        self, path: str, *, timeout: float | None = None, ttl_days: int | None = None, keyring: Any = None
    ):
        super().__init__(ttl_days=ttl_days, keyring=keyring)
        self.path = path
        self.timeout = config.store_timeout(timeout)
        self._lock = threading.Lock()
        with self._errors():
            if path != ":memory:":
                parent = os.path.dirname(os.path.abspath(path))
                os.makedirs(parent, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _errors(self):
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"SQLite store failed: {exc}") from exc

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run a write; the number of rows it changed."""
        with self._lock, self._errors():
            return self._db.execute(sql, tuple(params)).rowcount

    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """Run a read and take every row while holding the lock.

        The connection is shared by threads: a row left to fetch later could be
        reset by another thread's statement (sqlite3 reuses cached statements).
        """
        with self._lock, self._errors():
            return self._db.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- channels -------------------------------------------------------------

    def _insert(self, channel_id: str, record: Record) -> None:
        try:
            self._execute(
                "INSERT INTO channels (id, version, data) VALUES (?, ?, ?)",
                (channel_id, uuid.uuid4().hex, _encode(record)),
            )
        except sqlite3.IntegrityError as exc:
            raise ChannelExistsError(f"channel {channel_id!r} already exists") from exc

    def _read(self, channel_id: str) -> tuple[Record, Version] | None:
        rows = self._fetch("SELECT data, version FROM channels WHERE id = ?", (channel_id,))
        return (_decode(rows[0][0]), rows[0][1]) if rows else None

    def _compare_and_set(self, channel_id, record, version, previous) -> bool:
        changed = self._execute(
            "UPDATE channels SET data = ?, version = ? WHERE id = ? AND version = ?",
            (_encode(record), uuid.uuid4().hex, channel_id, version),
        )
        return changed == 1

    def _query(self, filters=(), *, order_by=None, limit=None) -> list[tuple[Record, Version]]:
        sql, params = _select("SELECT data, version FROM channels", filters)
        if order_by:
            sql += " ORDER BY json_extract(data, ?)"
            params.append(f"$.{order_by}")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [(_decode(row[0]), row[1]) for row in self._fetch(sql, params)]

    def _commit(self, writes: list[Write]) -> list[Version] | None:
        """One transaction: every write, or (a version changed, an id taken) none."""
        versions = [uuid.uuid4().hex for _ in writes]
        with self._lock, self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for write, version in zip(writes, versions, strict=True):
                    table = "channels" if write.kind == CHANNELS else _table(write.kind)
                    if write.creates:
                        try:
                            self._db.execute(
                                f"INSERT INTO {table} (id, version, data) VALUES (?, ?, ?)",
                                (write.doc_id, version, _encode(write.record)),
                            )
                        except sqlite3.IntegrityError as exc:
                            raise ChannelExistsError(f"{write.kind} {write.doc_id!r} already exists") from exc
                        continue
                    changed = self._db.execute(
                        f"UPDATE {table} SET data = ?, version = ? WHERE id = ? AND version = ?",
                        (_encode(write.record), version, write.doc_id, write.version),
                    ).rowcount
                    if changed != 1:
                        self._db.execute("ROLLBACK")
                        return None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return versions

    # --- the records beside the channels (subscriptions, credentials, runs) ---
    # ``kind`` is one of documents.KINDS, each its own table: never user input in the SQL.

    def _doc_insert(self, kind: str, doc_id: str, record: Record) -> bool:
        try:
            self._execute(
                f"INSERT INTO {_table(kind)} (id, version, data) VALUES (?, ?, ?)",
                (doc_id, uuid.uuid4().hex, _encode(record)),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def _doc_read(self, kind: str, doc_id: str) -> tuple[Record, Version] | None:
        rows = self._fetch(f"SELECT data, version FROM {_table(kind)} WHERE id = ?", (doc_id,))
        return (_decode(rows[0][0]), rows[0][1]) if rows else None

    def _doc_replace(self, kind, doc_id, record, version, previous) -> str | None:
        new_version = uuid.uuid4().hex
        changed = self._execute(
            f"UPDATE {_table(kind)} SET data = ?, version = ? WHERE id = ? AND version = ?",
            (_encode(record), new_version, doc_id, version),
        )
        return new_version if changed == 1 else None

    def _doc_delete(self, kind: str, doc_id: str, version: Version) -> bool:
        changed = self._execute(f"DELETE FROM {_table(kind)} WHERE id = ? AND version = ?", (doc_id, version))
        return changed == 1

    def _doc_touch(self, kind: str, doc_id: str, fields: Record) -> bool:
        changed = self._execute(
            f"UPDATE {_table(kind)} SET data = json_patch(data, ?), version = ? WHERE id = ?",
            (_encode(fields), uuid.uuid4().hex, doc_id),
        )
        return changed == 1

    def _doc_write(self, kind: str, doc_id: str, record: Record) -> None:
        self._execute(
            f"INSERT OR REPLACE INTO {_table(kind)} (id, version, data) VALUES (?, ?, ?)",
            (doc_id, uuid.uuid4().hex, _encode(record)),
        )

    def _doc_query(self, kind: str, filters=(), *, limit=None) -> list[Record]:
        sql, params = _select(f"SELECT data FROM {_table(kind)}", filters)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_decode(row[0]) for row in self._fetch(sql, params)]

    def _doc_count(self, kind: str, filters=()) -> int:
        sql, params = _select(f"SELECT COUNT(*) FROM {_table(kind)}", filters)
        return int(self._fetch(sql, params)[0][0])

    # --- messages -------------------------------------------------------------

    def _insert_message(self, channel_id: str, number: int, record: Record) -> Version | None:
        version = uuid.uuid4().hex
        try:
            self._execute(
                "INSERT INTO messages (channel_id, number, version, data) VALUES (?, ?, ?, ?)",
                (channel_id, number, version, _encode(record)),
            )
        except sqlite3.IntegrityError:
            return None
        return version

    def _read_message(self, channel_id: str, number: int) -> tuple[Record, Version] | None:
        rows = self._fetch(
            "SELECT data, version FROM messages WHERE channel_id = ? AND number = ?",
            (channel_id, number),
        )
        return (_decode(rows[0][0]), rows[0][1]) if rows else None

    def _update_message(self, channel_id, number, fields, version) -> Version | None:
        new_version = uuid.uuid4().hex
        changed = self._execute(
            "UPDATE messages SET data = json_patch(data, ?), version = ?"
            " WHERE channel_id = ? AND number = ? AND version = ?",
            (_encode(fields), new_version, channel_id, number, version),
        )
        return new_version if changed == 1 else None

    def _delete_message(self, channel_id: str, number: int, version: Version) -> bool:
        changed = self._execute(
            "DELETE FROM messages WHERE channel_id = ? AND number = ? AND version = ?",
            (channel_id, number, version),
        )
        return changed == 1
