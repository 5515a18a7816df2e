"""What a renewal run did, counted by outcome: the renew function's JSON answer.

The outcome names are the keys of that answer (and of ``renew --json``), so
they are public: a scheduler's alert or a dashboard may read them.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from typing import Any

__all__ = [
    "RenewalOutcome",
    "RenewalSummary",
]


class RenewalOutcome(enum.Enum):
    """What became of one channel in a run; the value is its key in the summary."""

    RENEWED = "renewed"  # replaced by a live successor: {"old": id, "new": id}
    FAILED = "failed"  # its subscription ended, or a stale pending was abandoned: {"id", "reason"}
    SKIPPED = "skipped"  # left to another run or to the next one: {"id", "reason"}
    STOPPED = "stopped"  # stopped at Google: its id
    DEFERRED = "deferred"  # not started, the run's time budget was spent: its id
    SUSPENDED = "suspended"  # Google refused it for good: {"id", "subscriptionId", "reason"}
    PUBLISHED = (
        "published"  # handed to a renew worker in a shard (CHANNELKIT_RENEW_TOPIC): its subscription id
    )


@dataclasses.dataclass
class RenewalSummary:
    """What one run did, per outcome; ``to_json()`` is the renew function's answer."""

    renewed: list[dict[str, str]] = dataclasses.field(default_factory=list)
    failed: list[dict[str, str]] = dataclasses.field(default_factory=list)
    suspended: list[dict[str, str]] = dataclasses.field(default_factory=list)
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    stopped: list[str] = dataclasses.field(default_factory=list)
    deferred: list[str] = dataclasses.field(default_factory=list)
    published: list[str] = dataclasses.field(default_factory=list)
    duration_ms: int = 0
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: RenewalOutcome, item: Any) -> None:
        """Count one channel under ``outcome`` (channels are renewed in parallel)."""
        with self._lock:
            self.items(outcome).append(item)

    def items(self, outcome: RenewalOutcome) -> list[Any]:
        """The channels counted under ``outcome``."""
        items: list[Any] = getattr(self, outcome.value)
        return items

    def to_json(self) -> dict[str, Any]:
        """``{"renewed": n, ..., "details": {"renewed": [...], ...}, "durationMs": ms}``."""
        result: dict[str, Any] = {outcome.value: len(self.items(outcome)) for outcome in RenewalOutcome}
        result["details"] = {outcome.value: list(self.items(outcome)) for outcome in RenewalOutcome}
        result["durationMs"] = self.duration_ms
        return result
