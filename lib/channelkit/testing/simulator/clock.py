"""The simulator's clock: channel expiry is judged on it, and a test moves it."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable

__all__ = ["Clock"]


class Clock:
    """The simulator's clock: real time plus an offset that a test controls.

    Channel expiry is judged on this clock, so ``advance(seconds)`` ends
    channels without waiting. ``freeze()`` stops it between explicit moves.
    """

    def __init__(self, on_change: Callable[[], None] | None = None):
        self._lock = threading.Lock()
        self._offset_ms = 0
        self._frozen_ms: int | None = None
        self._on_change = on_change

    def now_ms(self) -> int:
        with self._lock:
            return self._now_locked()

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.now_ms() / 1000, datetime.UTC)

    def advance(self, seconds: float) -> int:
        """Move forward (or back, if negative) by ``seconds``; return the new now in ms."""
        delta = round(seconds * 1000)
        with self._lock:
            if self._frozen_ms is not None:
                self._frozen_ms += delta
            else:
                self._offset_ms += delta
            now = self._now_locked()
        self._changed()
        return now

    def set_ms(self, ms: int) -> None:
        """Make now ``ms`` (Unix milliseconds); time keeps running unless frozen."""
        with self._lock:
            if self._frozen_ms is not None:
                self._frozen_ms = int(ms)
            else:
                self._offset_ms = int(ms) - _real_ms()
        self._changed()

    def freeze(self) -> None:
        """Stop the clock at its current time; only ``advance``/``set_ms`` move it."""
        with self._lock:
            self._frozen_ms = self._now_locked()

    def unfreeze(self) -> None:
        """Let the clock run again, from where it stands."""
        with self._lock:
            if self._frozen_ms is not None:
                self._offset_ms = self._frozen_ms - _real_ms()
                self._frozen_ms = None

    def _now_locked(self) -> int:
        return self._frozen_ms if self._frozen_ms is not None else _real_ms() + self._offset_ms

    def _changed(self) -> None:
        if self._on_change:
            self._on_change()


def _real_ms() -> int:
    return time.time_ns() // 1_000_000
