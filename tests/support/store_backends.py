"""The store over every backend: one fixture, so that one contract runs unchanged against each.

Firestore runs on the real emulator (an empty database per test); SQLite on a
file in ``tmp_path``. Import ``store`` by name into a test module to run its
tests once per backend.
"""

from __future__ import annotations

import pytest

from channelkit.store import open_store

BACKENDS = ["sqlite", "firestore"]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    if request.param == "firestore":
        request.getfixturevalue("firestore_env")
        s = open_store("firestore", timeout=10)
    else:
        s = open_store(f"sqlite:///{tmp_path}/channels.db")
    yield s
    s.close()
