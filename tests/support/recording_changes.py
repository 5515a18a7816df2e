"""A change handler for tests: records every batch it returned from to a JSON-lines file.

Point ``CHANNELKIT_CHANGE_HANDLER`` at ``support.recording_changes:handle`` and set
``RECORDING_CHANGES_FILE``. ``RECORDING_CHANGES_FAIL_FIRST=N`` makes the first N calls
raise (counted in ``RECORDING_CHANGES_FILE.calls``), so a test sees a batch offered again.
"""

from __future__ import annotations

import fcntl
import json
import os


class InjectedChangeFailure(RuntimeError):
    """Raised on purpose by the recording change handler."""


def _count_call(path: str) -> int:
    with open(path + ".calls", "a+", encoding="utf-8") as calls:
        fcntl.flock(calls, fcntl.LOCK_EX)
        calls.seek(0)
        count = len(calls.read()) + 1
        calls.write(".")
        return count


def handle(batch, subscription) -> None:
    path = os.environ["RECORDING_CHANGES_FILE"]
    number = _count_call(path)
    if number <= int(os.environ.get("RECORDING_CHANGES_FAIL_FIRST") or 0):
        raise InjectedChangeFailure(f"injected failure of call {number}")
    line = json.dumps({**batch.to_json(), "api": subscription.api, "method": subscription.method})
    with open(path, "a", encoding="utf-8") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        out.write(line + "\n")


def read(path) -> list[dict]:
    """The recorded batches, in the order they were returned from."""
    try:
        with open(path, encoding="utf-8") as source:
            return [json.loads(line) for line in source if line.strip()]
    except FileNotFoundError:
        return []
