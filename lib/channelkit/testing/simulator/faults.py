"""Faults a test injects: failing ``watch``/``stop`` calls, feed reads and token refreshes; dropped,
duplicated and reordered notifications.

A call fails either once (``fail_next``, ``refuse_next``: a queue per operation,
used up in order) or for as long as a standing refusal matches it (``refuse``:
every call whose parameters match, until it is lifted). The queue is used first.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from channelkit.testing.simulator.refusals import Refusal, default_reason, refusal
from channelkit.testing.simulator.state import Message

__all__ = ["OPERATIONS", "Faults", "StandingRefusal"]

#: The operations a failure can be injected into: the API's ``watch`` and ``stop``, its feed
#: reads (``read``: ``changes.list``, ``files.get``, ``events.list``, …), and the token
#: endpoint's refresh (``token``: ``fail_next`` only, answered in OAuth's error shape).
OPERATIONS = ("watch", "stop", "read", "token")
#: The operations a named refusal (``refuse_next``, ``refuse``) can be answered to.
_REFUSABLE = ("watch", "stop", "read")


@dataclasses.dataclass(frozen=True)
class StandingRefusal:
    """``refusal`` answered to every ``operation`` call whose parameters include all of ``match``."""

    refusal: Refusal
    operation: str
    match: Mapping[str, str]

    def matches(self, operation: str, params: Mapping[str, str]) -> bool:
        return operation == self.operation and all(params.get(k) == v for k, v in self.match.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "refusal": self.refusal.name,
            "status": self.refusal.status,
            "reason": self.refusal.reason,
            "operation": self.operation,
            "match": dict(self.match),
        }


class Faults:
    """The faults still pending. Shares the simulator's lock (``lock``)."""

    def __init__(self, lock: threading.Condition):
        self._lock = lock
        self._failures: dict[str, collections.deque[Refusal]] = {}
        self._standing: list[StandingRefusal] = []
        self._duplicates = 0
        self._drops = 0
        self._reorder_left = 0
        self._held: list[Message] = []
        self.clear()

    def clear(self) -> None:
        """Forget every pending fault, held notifications included (they are not sent)."""
        with self._lock:
            self._failures = {op: collections.deque() for op in OPERATIONS}
            self._standing = []
            self._duplicates = 0
            self._drops = 0
            self._reorder_left = 0
            self._held = []

    # API calls

    def fail_next(
        self,
        operation: str,
        status: int = 503,
        count: int = 1,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Make the next ``count`` ``watch``, ``stop``, ``read`` or ``token`` calls fail with ``status`` (and ``reason``).

        For ``token`` the reason is the OAuth ``error`` (``internal_failure`` for 5xx by default).
        """
        if not 400 <= int(status) <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        failure = Refusal(
            None,
            int(status),
            reason or default_reason(int(status), operation),
            message or "Injected failure",
        )
        self._queue(operation, failure, count)

    def refuse_next(
        self, name: str, operation: str = "watch", count: int = 1, status: int | None = None
    ) -> None:
        """Make the next ``count`` calls of ``operation`` answer the refusal ``name`` (see ``REFUSALS``)."""
        _check_operation(operation, _REFUSABLE)
        self._queue(operation, refusal(name, status), count)

    def _queue(self, operation: str, failure: Refusal, count: int) -> None:
        _check_operation(operation)
        with self._lock:
            self._failures[operation].extend([failure] * int(count))

    def refuse(
        self,
        name: str,
        match: Mapping[str, object] | None = None,
        operation: str = "watch",
        status: int | None = None,
    ) -> StandingRefusal:
        """Answer the refusal ``name`` to every ``operation`` call matching ``match``, until lifted."""
        _check_operation(operation, _REFUSABLE)
        if match is not None and not isinstance(match, Mapping):
            raise ValueError("match must be an object of parameter names to values")
        standing = StandingRefusal(
            refusal(name, status), operation, {str(k): str(v) for k, v in (match or {}).items()}
        )
        with self._lock:
            self._standing.append(standing)
        return standing

    def unrefuse(
        self,
        name: str | None = None,
        match: Mapping[str, object] | None = None,
        operation: str | None = None,
    ) -> int:
        """Lift the standing refusals with this name, this exact match and operation (None: any)."""
        if match is not None and not isinstance(match, Mapping):
            raise ValueError("match must be an object of parameter names to values")
        wanted = None if match is None else {str(k): str(v) for k, v in match.items()}
        with self._lock:
            kept = [
                s
                for s in self._standing
                if not (
                    (name is None or s.refusal.name == name)
                    and (wanted is None or dict(s.match) == wanted)
                    and (operation is None or s.operation == operation)
                )
            ]
            lifted = len(self._standing) - len(kept)
            self._standing = kept
            return lifted

    def standing(self) -> list[StandingRefusal]:
        """The standing refusals, oldest first."""
        with self._lock:
            return list(self._standing)

    def take_failure(self, operation: str, params: Mapping[str, str] | None = None) -> Refusal | None:
        """What this call is refused with: the next queued failure (used up), else a standing refusal.

        The first standing refusal whose ``match`` the call's ``params`` satisfy; None if none.
        """
        with self._lock:
            queue = self._failures[operation]
            if queue:
                return queue.popleft()
            for standing in self._standing:
                if standing.matches(operation, params or {}):
                    return standing.refusal
            return None

    def clear_failures(self) -> dict[str, int]:
        """Drop the queued failures not used yet and lift every standing refusal.

        Returns how many queued failures were left per operation.
        """
        with self._lock:
            left = {op: len(queue) for op, queue in self._failures.items()}
            for queue in self._failures.values():
                queue.clear()
            self._standing = []
            return left

    # notifications

    def duplicate_next(self, count: int = 1) -> None:
        with self._lock:
            self._duplicates += int(count)

    def drop_next(self, count: int = 1) -> None:
        with self._lock:
            self._drops += int(count)

    def take_drop(self, message: Message) -> bool:
        """Whether ``message`` is to be lost (``drop_next``); ``sync`` messages never are."""
        with self._lock:
            if message.state == "sync" or self._drops <= 0:
                return False
            self._drops -= 1
            return True

    def reorder_next(self, count: int) -> None:
        if count < 2:
            raise ValueError("reordering needs at least 2 notifications")
        with self._lock:
            self._reorder_left = int(count)

    def release_held(self) -> list[Message]:
        """The held notifications, newest first, no longer held; ends the reordering."""
        with self._lock:
            held, self._held, self._reorder_left = self._held, [], 0
            return held[::-1]

    def apply(self, message: Message) -> list[Message]:
        """What to send now for a new ``message``, in order: itself, a duplicate, or held ones released.

        A message may be duplicated, then held for reordering (``sync`` never is);
        the last one a reordering waits for releases them all, newest first.
        """
        with self._lock:
            copies = [message]
            if self._duplicates > 0:
                self._duplicates -= 1
                copies.append(dataclasses.replace(message, duplicate=True, done=threading.Event()))
            send = []
            for copy in copies:
                if copy.state != "sync" and self._reorder_left > 0:
                    self._held.append(copy)
                    self._reorder_left -= 1
                    if self._reorder_left == 0:
                        send.extend(self.release_held())
                else:
                    send.append(copy)
            return send


def _check_operation(operation: str, allowed: tuple[str, ...] = OPERATIONS) -> None:
    if operation not in allowed:
        if operation == "token":
            raise ValueError(
                "named refusals answer watch, stop and read only; for the token endpoint use"
                " fail_next('token', status) or revoke()"
            )
        raise ValueError(f"operation must be {' or '.join(repr(o) for o in allowed)}")
