"""Counts the Firestore operations a benchmarked process performs (``python -m bench``).

The webhook benchmark puts this directory on ``PYTHONPATH`` and sets
``BENCH_OPCOUNT_FILE``; Python then imports this module at start-up, and it
wraps the Firestore GAPIC client's RPC methods to count documents written
(``commit``; also by collection: ``writes_in:messages``, ...) and read
(``batch_get_documents``, ``run_query``), plus every RPC by name
(``rpc_commit``, ``rpc_run_aggregation_query``, ...), and the HTTP
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


def _field(request, name):
    if isinstance(request, dict):
        return request.get(name) or []
    return getattr(request, name, None) or []


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


def install() -> None:
    """Wrap the Firestore client (and Flask) in this process; once."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    from google.cloud.firestore_v1.services.firestore import client as gapic

    cls = gapic.FirestoreClient
    commit, batch_get, run_query = cls.commit, cls.batch_get_documents, cls.run_query

    def counted_commit(self, request=None, **kwargs):
        writes = _field(request, "writes")
        by_collection = collections.Counter(f"writes_in:{_collection(w)}" for w in writes)
        _add(rpc_commit=1, writes=len(writes), **by_collection)
        return commit(self, request=request, **kwargs)

    def counted_batch_get(self, request=None, **kwargs):
        _add(rpc_batch_get=1, reads=len(_field(request, "documents")))
        return batch_get(self, request=request, **kwargs)

    def counted_run_query(self, request=None, **kwargs):
        _add(rpc_run_query=1)
        for response in run_query(self, request=request, **kwargs):
            if getattr(response, "document", None) is not None and response.document.name:
                _add(reads=1)
            yield response

    import flask

    dispatch = flask.Flask.full_dispatch_request

    def counted_dispatch(self, *args, **kwargs):
        try:
            return dispatch(self, *args, **kwargs)
        finally:
            _add(requests=1)

    flask.Flask.full_dispatch_request = counted_dispatch
    cls.commit, cls.batch_get_documents, cls.run_query = counted_commit, counted_batch_get, counted_run_query
    # Counted as calls only: an aggregation (count()) reads no document.
    for name in ("begin_transaction", "rollback", "get_document", "run_aggregation_query"):
        original = getattr(cls, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            _add(**{f"rpc_{_name}": 1})
            return _original(self, *args, **kwargs)

        setattr(cls, name, counted)


if _PATH:
    install()
