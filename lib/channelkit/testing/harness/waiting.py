"""Wait for a condition by polling it, never by sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]


T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str = "",
) -> T:
    """The first truthy value of ``predicate()``, polled every ``interval`` seconds.

    ``TimeoutError`` naming ``message`` once ``timeout`` seconds have passed: a test
    fails with it, a script reports it. The predicate may raise to give up early.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {message or predicate}")
        time.sleep(interval)
