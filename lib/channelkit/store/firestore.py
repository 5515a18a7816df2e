"""Firestore backend: the production store, shared by every function instance.

Translates the primitives of ``ChannelStore`` to google-cloud-firestore:
create-only writes are ``DocumentReference.create``; compare-and-set is an
update or delete with a ``last_update_time`` precondition (an atomic,
single-document check on the server, with no transaction round trips); the
version is the document's ``update_time``. Writes committed together are one
batched write (one commit RPC), each with its precondition. The two writes of
every notification (a message's claim and its "done") are the same requests,
sent on the client's own channel by ``store/message_writes.py``.

Every call carries an explicit timeout and a bounded retry, so an outage
surfaces as ``StoreUnavailable`` within ``CHANNELKIT_STORE_TIMEOUT`` seconds
(the client's defaults would retry for a minute). gRPC and auth errors are
wrapped here, at this one boundary.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from channelkit import config
from channelkit.errors import ChannelExistsError, StoreUnavailable
from channelkit.store.base import ChannelStore
from channelkit.store.batches import CHANNELS, Write
from channelkit.store.claims import DONE
from channelkit.store.documents import KINDS
from channelkit.store.message_writes import MessageWrites
from channelkit.store.records import Record, Version

__all__ = [
    "FirestoreStore",
    "document_id",
]


MESSAGES = "messages"
#: Channels whose messages collection reference the store keeps (the per-notification writes).
MESSAGE_COLLECTIONS = 4096
#: Documents per call when a query is paged.
QUERY_PAGE = 1000
EMULATOR_PROJECT = "channelkit-local"

_TRANSIENT_READ = gretry.if_exception_type(
    gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError
)
# A write is retried only when it surely did not reach the server.
_TRANSIENT_WRITE = gretry.if_exception_type(gexc.ServiceUnavailable)


_UNRESOLVED = object()

#: Backoff (seconds) between attempts of a message write while Firestore is unavailable.
_WRITE_RETRY_FIRST, _WRITE_RETRY_MAX = 0.05, 0.5


def _failure(exc: BaseException) -> Exception | None:
    """The ``StoreUnavailable`` a client-library failure becomes; None for anything else (a bug).

    The typed errors pass as they are: a gRPC or auth error never leaves the store raw.
    """
    if isinstance(exc, (ChannelExistsError, StoreUnavailable)):
        return exc
    if isinstance(exc, (gexc.GoogleAPIError, ValueError)):
        return StoreUnavailable(f"Firestore failed: {type(exc).__name__}: {exc}")
    if type(exc).__module__.startswith(("google.", "grpc")):  # auth/transport errors of google-auth and grpc
        return StoreUnavailable(f"Firestore failed: {type(exc).__name__}")
    return None


def _raw_update_time(result: Any) -> Any:
    """A write result's update time as the protobuf ``Timestamp`` it came in: what
    ``Client.write_option(last_update_time=...)`` takes, so a claim's version is handed back
    to the next write without being turned into a datetime and back (both are versions)."""
    return type(result).pb(result).update_time


def _raise_wrapped(exc: Exception) -> NoReturn:
    """Raise what ``_errors`` would for ``exc`` (in its ``except`` block, without the context manager)."""
    failure = _failure(exc)
    if failure is None or failure is exc:
        raise exc
    raise failure from exc


def document_id(channel_id: str) -> str:
    """A Firestore document id for any channel id Google accepts.

    Google allows ``/`` in channel ids and ids shaped ``__x__``; Firestore
    allows neither in a document id. ``%`` is not in Google's alphabet, so
    percent-escaping those two cases is unambiguous; every other id is kept
    as it is (uuid4 ids, the ones channelkit makes, are never changed).
    """
    doc_id = channel_id.replace("%", "%25").replace("/", "%2F")
    if doc_id.startswith("__"):
        doc_id = "%5F" + doc_id[1:]
    return doc_id


def _filtered(query, filters):
    from google.cloud.firestore_v1.base_query import FieldFilter

    for field, op, value in filters:
        query = query.where(filter=FieldFilter(field, op, value))
    return query


_MISSING = object()


def _same(old: Any, new: Any) -> bool:
    """The stored value need not be written again (same type and equal: 1 is not True)."""
    return type(old) is type(new) and old == new


def _replacing(record: Record, previous: Record) -> dict[str, Any]:
    """An update that turns ``previous`` into ``record``: only the fields that differ, those not
    in ``record`` deleted. (Every write goes with a precondition on the version ``previous`` was
    read at, so the stored document is ``previous``; encoding a field path costs the client
    more CPU than anything else in a write.)"""
    from google.cloud.firestore import DELETE_FIELD

    changes: dict[str, Any] = {
        name: value for name, value in record.items() if not _same(previous.get(name, _MISSING), value)
    }
    for name in previous:
        if name not in record:
            changes[name] = DELETE_FIELD
    if not changes and record:  # the same document again: still a write, which moves the version
        name = next(iter(record))
        changes[name] = record[name]
    return changes


class FirestoreStore(ChannelStore):
    """``ChannelStore`` on a Firestore collection (``CHANNELKIT_COLLECTION``)."""

    def __init__(
        self,
        *,
        project: str | None = None,
        collection: str | None = None,
        timeout: float | None = None,
        ttl_days: int | None = None,
        keyring: Any = None,
        client: Any = None,
    ):
        super().__init__(ttl_days=ttl_days, keyring=keyring)
        self.timeout = config.store_timeout(timeout)
        self.collection_name = config.collection(collection)
        with self._errors():
            if client is None:
                from google.cloud import firestore

                project = config.project(project)
                if project is None and os.environ.get("FIRESTORE_EMULATOR_HOST"):
                    project = EMULATOR_PROJECT
                try:
                    client = firestore.Client(project=project)
                except OSError as exc:  # google-cloud-core: no project passed and none in ADC
                    raise StoreUnavailable(
                        "Firestore failed: ProjectUnknownError: no Google Cloud project"
                    ) from exc
        self.client = client
        self._channels = client.collection(self.collection_name)
        self._messages: dict[str, Any] = {}
        self._last_message = threading.local()
        # The claim and "done" of every notification, sent without the library's per-call
        # machinery when the client allows it (store/message_writes.py); else through it.
        # Resolved at the first message write, as the library makes its channel at its first
        # call: a store built before a fork carries no gRPC channel across it.
        self._message_writes: MessageWrites | object | None = _UNRESOLVED
        self._message_paths: dict[str, str] = {}
        self._beside = {
            kind: client.collection(config.collection_beside(self.collection_name, kind)) for kind in KINDS
        }
        self._read_kw = self._call_kwargs(_TRANSIENT_READ)
        self._write_kw = self._call_kwargs(_TRANSIENT_WRITE)

    def _call_kwargs(self, predicate) -> dict[str, Any]:
        retry = gretry.Retry(
            predicate=predicate, initial=0.05, maximum=0.5, multiplier=2.0, timeout=self.timeout
        )
        return {"retry": retry, "timeout": self.timeout}

    @contextlib.contextmanager
    def _errors(self):
        """Wrap every client-library failure as StoreUnavailable (never a raw gRPC error)."""
        try:
            yield
        except Exception as exc:
            failure = _failure(exc)
            if failure is None or failure is exc:
                raise
            raise failure from exc

    def _write_once(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``write(*args, timeout=..., **kwargs)``, tried again while Firestore is unavailable.

        What ``_write_kw`` gives the other writes (``ServiceUnavailable`` retried
        with backoff within the store timeout; no retry once the write may have
        reached the server), for the message writes: two on every notification,
        sent direct (``MessageWrites``) or through the library with ``retry=None``,
        so that no retry or deadline wrapper is built around every call. The
        last ``ServiceUnavailable`` is raised when time is up.
        """
        try:
            return write(*args, timeout=self.timeout, **kwargs)
        except gexc.ServiceUnavailable:
            deadline = time.monotonic() + self.timeout
        delay = _WRITE_RETRY_FIRST
        while True:
            time.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, _WRITE_RETRY_MAX)
            left = deadline - time.monotonic()
            try:
                return write(*args, timeout=max(left, _WRITE_RETRY_FIRST), **kwargs)
            except gexc.ServiceUnavailable:
                if deadline - time.monotonic() <= delay:
                    raise

    def _precondition(self, version: Version):
        return self.client.write_option(last_update_time=version)

    # --- channels -------------------------------------------------------------

    def _insert(self, channel_id: str, record: Record) -> Version:
        with self._errors():
            try:
                result = self._channels.document(document_id(channel_id)).create(record, **self._write_kw)
            except gexc.AlreadyExists as exc:
                raise ChannelExistsError(f"channel {channel_id!r} already exists") from exc
            except gexc.Conflict as exc:
                raise ChannelExistsError(f"channel {channel_id!r} already exists") from exc
        return result.update_time

    def _read(self, channel_id: str) -> tuple[Record, Version] | None:
        with self._errors():
            snapshot = self._channels.document(document_id(channel_id)).get(**self._read_kw)
        if not snapshot.exists:
            return None
        return snapshot.to_dict(), snapshot.update_time

    def _compare_and_set(self, channel_id, record, version, previous) -> Version | None:
        changes = _replacing(record, previous)
        with self._errors():
            try:
                ref = self._channels.document(document_id(channel_id))
                result = ref.update(changes, option=self._precondition(version), **self._write_kw)
            except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
                return None
        return result.update_time  # the new version

    def _query(self, filters=(), *, order_by=None, limit=None) -> list[tuple[Record, Version]]:
        query = _filtered(self._channels, filters)
        return self._paged(query, order_by=order_by, limit=limit, versions=True)

    def _commit(self, writes: list[Write]) -> list[Version] | None:
        """One batched write (one commit RPC): preconditions on each version, create-only for new ones."""
        batch = self.client.batch()
        for write in writes:
            if write.kind == CHANNELS:
                ref = self._channels.document(document_id(write.doc_id))
            else:
                ref = self._doc(write.kind, write.doc_id)
            if write.creates:
                batch.create(ref, write.record)
            else:
                changes = _replacing(write.record, write.previous or {})
                batch.update(ref, changes, option=self._precondition(write.version))
        with self._errors():
            try:
                results = batch.commit(**self._write_kw)
            except (gexc.AlreadyExists, gexc.Conflict) as exc:
                raise ChannelExistsError(f"a new record's id is taken: {exc}") from exc
            except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
                return None
        return [result.update_time for result in results]

    def _paged(self, query, *, order_by=None, limit=None, versions=False) -> list[Any]:
        if order_by:
            query = query.order_by(order_by)
        # Page through large results: each page is one call within the store's
        # time bound, where one call for 10,000 due channels could outlast it.
        found: list[Any] = []
        last = None
        while True:
            want = QUERY_PAGE if limit is None else min(QUERY_PAGE, int(limit) - len(found))
            if want <= 0:
                return found
            page = query.limit(want)
            if last is not None:
                page = page.start_after(last)
            with self._errors():
                snapshots = list(page.get(**self._read_kw))
            if versions:
                found.extend((snap.to_dict(), snap.update_time) for snap in snapshots)
            else:
                found.extend(snap.to_dict() for snap in snapshots)
            if len(snapshots) < want:
                return found
            last = snapshots[-1]

    # --- the records beside the channels (subscriptions, credentials, runs) ---

    def _doc(self, kind: str, doc_id: str):
        return self._beside[kind].document(document_id(doc_id))

    def _doc_insert(self, kind: str, doc_id: str, record: Record) -> bool:
        with self._errors():
            try:
                self._doc(kind, doc_id).create(record, **self._write_kw)
            except (gexc.AlreadyExists, gexc.Conflict):
                return False
        return True

    def _doc_read(self, kind: str, doc_id: str) -> tuple[Record, Version] | None:
        with self._errors():
            snapshot = self._doc(kind, doc_id).get(**self._read_kw)
        if not snapshot.exists:
            return None
        return snapshot.to_dict(), snapshot.update_time

    def _doc_replace(self, kind, doc_id, record, version, previous) -> Version | None:
        with self._errors():
            try:
                result = self._doc(kind, doc_id).update(
                    _replacing(record, previous), option=self._precondition(version), **self._write_kw
                )
            except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
                return None
        return result.update_time

    def _doc_delete(self, kind: str, doc_id: str, version: Version) -> bool:
        with self._errors():
            try:
                self._doc(kind, doc_id).delete(option=self._precondition(version), **self._write_kw)
            except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
                return False
        return True

    def _doc_touch(self, kind: str, doc_id: str, fields: Record) -> bool:
        with self._errors():
            try:
                self._doc(kind, doc_id).update(fields, **self._write_kw)
            except gexc.NotFound:
                return False
        return True

    def _doc_write(self, kind: str, doc_id: str, record: Record) -> None:
        with self._errors():
            self._doc(kind, doc_id).set(record, **self._write_kw)

    def _doc_query(self, kind: str, filters=(), *, limit=None) -> list[Record]:
        return self._paged(_filtered(self._beside[kind], filters), limit=limit)

    def _doc_count(self, kind: str, filters=()) -> int:
        query = _filtered(self._beside[kind], filters)
        with self._errors():
            results = query.count().get(**self._read_kw)
        return int(results[0][0].value) if results and results[0] else 0

    # --- messages -------------------------------------------------------------

    def _message(self, channel_id: str, number: int):
        # The hot path: each notification's claim and "done" name a message of a channel
        # that is usually known already, so its collection reference is kept (no lock: a
        # race only builds one twice; the size is bounded by starting over), and each
        # thread keeps the last message's reference, which the "done" names again.
        last = getattr(self._last_message, "ref", None)
        if last is not None and last[0] == channel_id and last[1] == number:
            return last[2]
        messages = self._messages.get(channel_id)
        if messages is None:
            if len(self._messages) >= MESSAGE_COLLECTIONS:
                self._messages.clear()
            messages = self._channels.document(document_id(channel_id)).collection(MESSAGES)
            self._messages[channel_id] = messages
        ref = messages.document(str(number))
        self._last_message.ref = (channel_id, number, ref)
        return ref

    def _direct_writes(self) -> MessageWrites | None:
        """The writer of the message writes on the client's channel; None: through the library."""
        writes = self._message_writes
        if writes is _UNRESOLVED:
            with self._errors():
                writes = self._message_writes = MessageWrites.of(self.client)
        return writes  # type: ignore[return-value]

    def _message_path(self, channel_id: str, number: int) -> str:
        # "<collection>/<channel doc>/messages/<number>", below the database's documents/.
        prefix = self._message_paths.get(channel_id)
        if prefix is None:
            if len(self._message_paths) >= MESSAGE_COLLECTIONS:
                self._message_paths.clear()
            prefix = f"{self._channels.document(document_id(channel_id)).path}/{MESSAGES}/"
            self._message_paths[channel_id] = prefix
        return f"{prefix}{number}"

    def _insert_message(self, channel_id: str, number: int, record: Record) -> Version | None:
        direct = self._direct_writes()
        try:
            if direct is not None:
                return self._write_once(direct.create, self._message_path(channel_id, number), record)
            result = self._write_once(self._message(channel_id, number).create, record, retry=None)
        except (gexc.AlreadyExists, gexc.Conflict):
            return None
        except Exception as exc:  # noqa: BLE001 - raised again, wrapped as _errors() would
            _raise_wrapped(exc)
        return _raw_update_time(result)

    def _read_message(self, channel_id: str, number: int) -> tuple[Record, Version] | None:
        with self._errors():
            snapshot = self._message(channel_id, number).get(**self._read_kw)
        if not snapshot.exists:
            return None
        return snapshot.to_dict(), snapshot.update_time

    def _update_message(self, channel_id, number, fields, version) -> Version | None:
        try:
            result = self._write_once(
                self._message(channel_id, number).update,
                fields,
                option=self._precondition(version),
                retry=None,
            )
        except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
            return None
        except Exception as exc:  # noqa: BLE001 - raised again, wrapped as _errors() would
            _raise_wrapped(exc)
        return result.update_time

    def _mark_message_done(self, channel_id: str, number: int, version: Version) -> bool:
        # Sent direct, the result's update time is not read: decoding it is a few µs on every
        # notification. Through the library, it is ``_update_message``'s write.
        direct = self._direct_writes()
        if direct is None:
            return super()._mark_message_done(channel_id, number, version)
        try:
            self._write_once(direct.set_status, self._message_path(channel_id, number), DONE, version)
        except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
            return False
        except Exception as exc:  # noqa: BLE001 - raised again, wrapped as _errors() would
            _raise_wrapped(exc)
        return True

    def _delete_message(self, channel_id: str, number: int, version: Version) -> bool:
        with self._errors():
            try:
                self._message(channel_id, number).delete(option=self._precondition(version), **self._write_kw)
            except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
                return False
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
