"""The store over every backend: one fixture, so that one contract runs unchanged against each.

Firestore runs on the real emulator (an empty database per test); SQLite on a
file in ``tmp_path``. Import ``store`` by name into a test module to run its
tests once per backend. ``message_store`` adds Firestore with its message writes
sent through the client library (``firestore-library``), the path a client that
offers no direct writer takes (store/message_writes.py), for the message claims.
"""

from __future__ import annotations

import pytest

from channelkit.store import open_store

BACKENDS = ["sqlite", "firestore"]


MESSAGE_BACKENDS = [*BACKENDS, "firestore-library"]


def _open(request, tmp_path, backend: str):
    if backend.startswith("firestore"):
        request.getfixturevalue("firestore_env")
        s = open_store("firestore", timeout=10)
        if backend == "firestore-library":
            s._message_writes = None
        else:
            assert s._direct_writes() is not None, "the message writes fell back to the library's path"
        return s
    return open_store(f"sqlite:///{tmp_path}/channels.db")


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    s = _open(request, tmp_path, request.param)
    yield s
    s.close()


@pytest.fixture(params=MESSAGE_BACKENDS)
def message_store(request, tmp_path):
    s = _open(request, tmp_path, request.param)
    yield s
    s.close()
