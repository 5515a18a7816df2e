"""A store outage surfaces as StoreUnavailable within the configured bound.

The Firestore case stops a real emulator of its own (the shared one keeps
running for the other tests), then restarts it on the same port.
"""

from __future__ import annotations

import time

import pytest

from channelkit.channel import Channel
from channelkit.errors import StoreUnavailable
from channelkit.store import open_store

BOUND = 1.0  # seconds: CHANNELKIT_STORE_TIMEOUT for these tests


def channel(cid="c-1"):
    return Channel("web_hook", cid, "tok", "https://x/h", status="active", expiration=10)


def timed(fn):
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        fn()
    return time.monotonic() - start, info.value


def test_firestore_outage_fails_fast_with_the_typed_error_then_recovers(private_emulator, monkeypatch):
    open_store("firestore", timeout=30).create(channel())  # a cold emulator answers slowly once
    monkeypatch.setenv("CHANNELKIT_STORE_TIMEOUT", str(BOUND))
    store = open_store("firestore")
    assert store.get("c-1").status == "active"
    private_emulator.stop()

    for call in (
        lambda: store.get("c-1"),
        lambda: store.create(channel("c-2")),
        lambda: store.claim_message("c-1", 1, now_ms=0, timeout_seconds=60),
        lambda: store.due_for_renewal(100),
        lambda: store.update("c-1", status="stopped"),
    ):
        elapsed, error = timed(call)
        # The client's own default would retry for 60 s; ours gives up near BOUND.
        assert elapsed < BOUND * 10, elapsed
        assert error.__cause__ is not None  # wrapped, with the gRPC error chained
        assert "Traceback" not in str(error)

    private_emulator.start()  # same port, empty database
    open_store("firestore", timeout=30).create(channel("c-3"))
    store.create(channel("c-4"))
    assert store.get("c-3").status == "active"


def test_sqlite_store_that_cannot_open_is_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite:///{blocker}/sub/channels.db")


def test_a_message_write_is_tried_again_only_while_firestore_is_unavailable(firestore_env):
    """The message writes retry ServiceUnavailable themselves (not through the client's
    retry wrapper): again until it answers, never after another error, each attempt within
    the bound (the first test shows a claim giving up near it), with the caller's keyword
    arguments (``retry=None`` for the library's calls) on every attempt."""
    from google.api_core import exceptions as gexc

    store = open_store("firestore", timeout=BOUND)
    attempts = []

    def unavailable_twice(record, *, retry, timeout):
        attempts.append((retry, timeout))
        if len(attempts) <= 2:
            raise gexc.ServiceUnavailable("down")
        return record

    assert store._write_once(unavailable_twice, "written", retry=None) == "written"
    assert len(attempts) == 3 and all(retry is None and 0 < timeout <= BOUND for retry, timeout in attempts)

    def conflict(*, timeout):
        attempts.append(timeout)
        raise gexc.Conflict("exists")

    attempts.clear()
    with pytest.raises(gexc.Conflict):
        store._write_once(conflict)
    assert len(attempts) == 1  # it may have reached the server: never written twice

    def down(*, timeout):
        attempts.append(timeout)
        raise gexc.ServiceUnavailable("down")

    attempts.clear()
    with pytest.raises(gexc.ServiceUnavailable):  # the store wraps it as StoreUnavailable
        store._write_once(down)
    assert len(attempts) >= 3 and all(0 < timeout <= BOUND for timeout in attempts)
