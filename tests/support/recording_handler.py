"""A channelkit handler for tests: records every call to a JSON-lines file.

Point ``CHANNELKIT_HANDLER`` at ``support.recording_handler:handle`` (with the
``tests`` directory on ``PYTHONPATH``) and set:

* ``RECORDING_HANDLER_FILE`` — where each call is appended, one JSON object per
  line, from any number of threads and processes (an exclusive ``flock`` per write);
* ``RECORDING_HANDLER_FAIL_FIRST`` — optional: the first call for these message
  numbers raises, so the webhook answers 503 and the retry succeeds. ``*`` (all),
  ``odd``, ``even`` or a comma-separated list of numbers;
* ``RECORDING_HANDLER_DELAY`` — optional seconds to sleep in each call, so that
  concurrent deliveries overlap.

A call for a given channel and message number never runs concurrently with
another call for the same message (that is the webhook's promise), so counting
earlier attempts in the file is race-free for the decision to fail.
"""

from __future__ import annotations

import fcntl
import json
import os
import time


class InjectedFailure(RuntimeError):
    """Raised on purpose by the recording handler."""


def _path() -> str:
    path = os.environ.get("RECORDING_HANDLER_FILE")
    if not path:
        raise RuntimeError("RECORDING_HANDLER_FILE is not set")
    return path


def read_calls(path: str | None = None) -> list[dict]:
    """Every recorded call, oldest first (``ok`` false for injected failures)."""
    path = path or _path()
    try:
        with open(path, encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def _should_fail(number: int, spec: str) -> bool:
    spec = spec.strip()
    if not spec:
        return False
    if spec == "*":
        return True
    if spec == "odd":
        return number % 2 == 1
    if spec == "even":
        return number % 2 == 0
    return str(number) in {part.strip() for part in spec.split(",")}


def handle(notification, channel) -> None:
    path = _path()
    delay = float(os.environ.get("RECORDING_HANDLER_DELAY") or 0)
    if delay:
        time.sleep(delay)
    earlier = [
        c
        for c in read_calls(path)
        if c["channelId"] == notification.channel_id and c["messageNumber"] == notification.message_number
    ]
    fail = not earlier and _should_fail(
        notification.message_number, os.environ.get("RECORDING_HANDLER_FAIL_FIRST", "")
    )
    record = {
        "channelId": notification.channel_id,
        "messageNumber": notification.message_number,
        "state": notification.state,
        "resourceId": notification.resource_id,
        "changed": list(notification.changed),
        "body": notification.body.decode("utf-8", "replace"),
        "subscriptionId": channel.subscription_id,
        "channelResourceId": channel.resource_id,
        "ok": not fail,
        "pid": os.getpid(),
        "time": time.time(),
    }
    with open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(record) + "\n")
        f.flush()
    if fail:
        raise InjectedFailure(f"injected failure for message {notification.message_number}")
