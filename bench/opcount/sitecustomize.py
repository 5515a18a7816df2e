"""Counts the Firestore operations a benchmarked process performs (``python -m bench``).

The webhook benchmark puts this directory on ``PYTHONPATH`` and sets
``BENCH_OPCOUNT_FILE``; Python then imports this module at start-up, and it
wraps gRPC's channel to count documents written
(``commit``; also by collection: ``writes_in:messages``, ...) and read
(``batch_get_documents``, ``run_query``), plus each Firestore RPC the
store uses by name (``rpc_commit``, ``rpc_run_aggregation_query``, ...), and the HTTP
requests the Flask app finished (``requests``), so operations per request are
counted on one side of the wire. Counts are written to that file as JSON a few
times a second, so the benchmark can take the difference over a measured window.
Nothing here runs unless the variable is set; channelkit itself carries no
counting code.

A benchmark that runs channelkit in its own process (``bench.bench_renewal``)
imports this module, calls ``install()`` and reads ``snapshot()``; ``scope(label)``
also counts what the calling thread does meanwhile under ``label``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator

_PATH = os.environ.get("BENCH_OPCOUNT_FILE")
_counts: collections.Counter = collections.Counter()
_scoped: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
_lock = threading.Lock()
_local = threading.local()
_writer_pid = None
_installed = False


def _add(**amounts) -> None:
    global _writer_pid
    label = getattr(_local, "label", None)
    with _lock:
        _counts.update(amounts)
        if label is not None:
            _scoped[label].update(amounts)
        if _PATH and _writer_pid != os.getpid():  # the first call in this process (after any fork)
            _writer_pid = os.getpid()
            threading.Thread(target=_write_forever, daemon=True).start()


def _write_forever() -> None:
    while True:
        with _lock:
            data = json.dumps(dict(_counts))
        tmp = f"{_PATH}.{os.getpid()}.tmp"
        with open(tmp, "w") as out:
            out.write(data)
        os.replace(tmp, _PATH)
        time.sleep(0.1)


def _collection(write) -> str:
    """The id of the collection a ``Write`` goes to (``messages`` for .../channels/X/messages/7)."""
    name = (
        getattr(getattr(write, "update", None), "name", "")
        or getattr(write, "delete", "")
        or getattr(getattr(write, "transform", None), "document", "")
    )
    parts = name.split("/") if isinstance(name, str) else []
    return parts[-2] if len(parts) >= 2 else "?"


def snapshot() -> dict:
    """The counts so far: ``{"total": {...}, "scopes": {label: {...}}}`` (copies)."""
    with _lock:
        return {"total": dict(_counts), "scopes": {k: dict(v) for k, v in _scoped.items()}}


@contextlib.contextmanager
def scope(label: str) -> Iterator[None]:
    """Count what this thread does inside the block under ``label`` too (the innermost label wins)."""
    outer = getattr(_local, "label", None)
    _local.label = label
    try:
        yield
    finally:
        _local.label = outer


#: The Firestore RPCs counted, by method name, as ``rpc_<name>``.
_FIRESTORE = "/google.firestore.v1.Firestore/"
_RPC_NAMES = {
    "Commit": "commit",
    "BatchGetDocuments": "batch_get",
    "RunQuery": "run_query",
    "BeginTransaction": "begin_transaction",
    "Rollback": "rollback",
    "GetDocument": "get_document",
    "RunAggregationQuery": "run_aggregation_query",
}


def _raw(message):
    """The protobuf message itself, when a proto-plus wrapper holds it (the library's stubs)."""
    pb = getattr(type(message), "pb", None)
    return message if pb is None else pb(message)


def _counting_serializer(rpc: str, serialize):
    def counting(request):
        raw = _raw(request)
        if rpc == "commit":
            writes = raw.writes
            by_collection = collections.Counter(f"writes_in:{_collection(w)}" for w in writes)
            _add(rpc_commit=1, writes=len(writes), **by_collection)
        elif rpc == "batch_get":
            _add(rpc_batch_get=1, reads=len(raw.documents))
        else:
            _add(**{f"rpc_{rpc}": 1})  # an aggregation (count()) reads no document
        return serialize(request)

    return counting


def install() -> None:
    """Count Firestore RPCs on every gRPC channel of this process (and Flask's requests); once.

    Requests are counted where they are serialized, on the channel, in the
    calling thread: what the client library sends through its stubs and what
    channelkit sends on the library's channel directly (store/message_writes.py)
    are counted alike, each attempt of a retried call included. A query's
    documents are counted as the caller takes them from the library's
    ``run_query`` (gRPC decodes a stream's responses on a thread of its own,
    where ``scope`` would not see them); nothing queries on the direct path.

    Call it before any store is built: the direct writer makes its gRPC callable
    once, when its store is first used, and a callable made before this is not
    counted. The library's stubs make theirs on every call (through their
    logging interceptor), so each library RPC also pays for ``counted`` and a
    dict lookup, a few µs that a direct write does not.
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    import grpc._channel

    made: dict = {}

    def wrap(original):
        def counted(self, method, request_serializer=None, response_deserializer=None, *args, **kwargs):
            name = _RPC_NAMES.get(method[len(_FIRESTORE) :]) if method.startswith(_FIRESTORE) else None
            if name is not None and request_serializer is not None:
                counting = made.get((method, request_serializer))
                if counting is None:
                    counting = made[method, request_serializer] = _counting_serializer(
                        name, request_serializer
                    )
                request_serializer = counting
            return original(self, method, request_serializer, response_deserializer, *args, **kwargs)

        return counted

    channel = grpc._channel.Channel
    channel.unary_unary = wrap(channel.unary_unary)
    channel.unary_stream = wrap(channel.unary_stream)

    from google.cloud.firestore_v1.services.firestore import client as gapic

    run_query = gapic.FirestoreClient.run_query

    def counted_run_query(self, request=None, **kwargs):
        for response in run_query(self, request=request, **kwargs):
            if getattr(response, "document", None) is not None and response.document.name:
                _add(reads=1)
            yield response

    gapic.FirestoreClient.run_query = counted_run_query

    import flask

    dispatch = flask.Flask.full_dispatch_request

    def counted_dispatch(self, *args, **kwargs):
        try:
            return dispatch(self, *args, **kwargs)
        finally:
            _add(requests=1)

    flask.Flask.full_dispatch_request = counted_dispatch


if _PATH:
    install()
