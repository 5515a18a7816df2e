"""Faults a test injects: failing ``watch``/``stop`` calls, duplicated and reordered notifications."""

from __future__ import annotations

import collections
import dataclasses
import threading

from channelkit.testing.simulator.state import Message

__all__ = ["Faults"]


class Faults:
    """The faults still pending. Shares the simulator's lock (``lock``)."""

    def __init__(self, lock: threading.Condition):
        self._lock = lock
        self._failures: dict[str, collections.deque[tuple[int, str | None]]] = {}
        self._duplicates = 0
        self._reorder_left = 0
        self._held: list[Message] = []
        self.clear()

    def clear(self) -> None:
        """Forget every pending fault, held notifications included (they are not sent)."""
        with self._lock:
            self._failures = {"watch": collections.deque(), "stop": collections.deque()}
            self._duplicates = 0
            self._reorder_left = 0
            self._held = []

    # API calls

    def fail_next(
        self, operation: str, status: int = 503, count: int = 1, message: str | None = None
    ) -> None:
        """Make the next ``count`` ``watch`` or ``stop`` calls fail with ``status``."""
        if operation not in self._failures:
            raise ValueError("operation must be 'watch' or 'stop'")
        if not 400 <= int(status) <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        with self._lock:
            self._failures[operation].extend([(int(status), message)] * int(count))

    def take_failure(self, operation: str) -> tuple[int, str | None] | None:
        """The next injected failure of ``operation`` (status, message), used up; None if none."""
        with self._lock:
            queue = self._failures[operation]
            return queue.popleft() if queue else None

    def clear_failures(self) -> dict[str, int]:
        """Drop the ``fail_next`` failures not used yet; how many were left per operation."""
        with self._lock:
            left = {op: len(queue) for op, queue in self._failures.items()}
            for queue in self._failures.values():
                queue.clear()
            return left

    # notifications

    def duplicate_next(self, count: int = 1) -> None:
        with self._lock:
            self._duplicates += int(count)

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
