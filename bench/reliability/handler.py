"""The app handler of the reliability suite: records every call durably, across processes.

The webhook under test is started with
``CHANNELKIT_HANDLER=bench.reliability.handler:handle`` and:

* ``RELIABILITY_RECORD`` — a file; each call appends one JSON line (an
  exclusive ``flock`` per write, ``O_APPEND``), from any worker process or thread;
* ``RELIABILITY_FAIL_RATE`` — optional, 0..1: the share of calls that raise
  ``InjectedFailure`` at random (the webhook then answers 503 and releases the claim);
* ``RELIABILITY_DELAY`` — optional seconds of "work" per call (so that
  concurrent duplicates overlap with a running handler).

Each line: ``c`` channel id, ``n`` message number, ``s`` state, ``r`` resource
id, ``b`` a digest of the body, ``ok`` (false for an injected failure), ``t0`` /
``t1`` wall-clock start and end of the call, ``pid``. Kept small and fast: the
suite writes tens of thousands of lines.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import time

_rng = random.Random()
_rng_pid = None


class InjectedFailure(RuntimeError):
    """Raised on purpose (``RELIABILITY_FAIL_RATE``)."""


def body_digest(body: bytes) -> str:
    return hashlib.sha1(body or b"").hexdigest()[:16]


def _fail_now(rate: float) -> bool:
    global _rng_pid
    if rate <= 0:
        return False
    if _rng_pid != os.getpid():  # a forked worker: its own random stream
        _rng.seed(os.urandom(16))
        _rng_pid = os.getpid()
    return _rng.random() < rate


def handle(notification, channel) -> None:
    t0 = time.time()
    delay = float(os.environ.get("RELIABILITY_DELAY") or 0)
    if delay:
        time.sleep(delay)
    fail = _fail_now(float(os.environ.get("RELIABILITY_FAIL_RATE") or 0))
    record = {
        "c": notification.channel_id,
        "n": notification.message_number,
        "s": notification.state,
        "r": notification.resource_id,
        "b": body_digest(notification.body),
        "ok": not fail,
        "t0": t0,
        "t1": time.time(),
        "pid": os.getpid(),
    }
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(os.environ["RELIABILITY_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)  # closing releases the lock
    if fail:
        raise InjectedFailure(f"injected failure for message {notification.message_number}")


def read_record(path: str) -> list[dict]:
    """Every recorded call, in the order written."""
    try:
        with open(path, encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
