"""What the receiver answers: a ``Verdict`` for a real notification, an HTTP status for an error.

Kept apart from the receiver so that the webhook function, the test harnesses
and the delivery step share one table (docs/design.md, "Webhook responses").
"""

from __future__ import annotations

import dataclasses

from channelkit.channel import Channel, Notification
from channelkit.errors import (
    BodyTooLargeError,
    ChannelGoneError,
    ChannelNotFoundError,
    ConfigError,
    DispatchError,
    HandlerConfigError,
    InvalidNotificationError,
    MessageInProgressError,
    MethodNotAllowedError,
    ResourceMismatchError,
    StoreUnavailable,
    TokenMismatchError,
    UnreadableBodyError,
)

__all__ = ["ACCEPTED", "DUPLICATE", "Verdict", "outcome_for", "status_for"]

ACCEPTED = "accepted"
DUPLICATE = "duplicate"

#: Typed error -> (HTTP status, log outcome). The first matching class wins.
STATUS_TABLE: tuple[tuple[type[BaseException], int, str], ...] = (
    (MethodNotAllowedError, 405, "method_not_allowed"),
    (BodyTooLargeError, 413, "too_large"),
    (UnreadableBodyError, 400, "unreadable_body"),
    (TokenMismatchError, 403, "forbidden"),
    (ResourceMismatchError, 403, "forbidden"),
    (InvalidNotificationError, 400, "invalid"),
    (ChannelNotFoundError, 404, "unknown_channel"),
    (ChannelGoneError, 410, "gone"),
    (MessageInProgressError, 503, "in_progress"),
    (HandlerConfigError, 503, "handler_config_error"),
    (DispatchError, 503, "dispatch_failed"),
    (StoreUnavailable, 503, "store_unavailable"),
    (ConfigError, 503, "config_error"),
)

#: Anything else (a bug, an unexpected library error): 503, since it may be transient.
FALLBACK_STATUS, FALLBACK_OUTCOME = 503, "error"


def status_for(error: BaseException) -> int:
    """The HTTP status answering a request that raised ``error`` (never 500)."""
    for kind, status, _ in STATUS_TABLE:
        if isinstance(error, kind):
            return status
    return FALLBACK_STATUS


def outcome_for(error: BaseException) -> str:
    """Short name of the outcome for logs (``invalid``, ``forbidden``, ``gone`` ...)."""
    for kind, _, outcome in STATUS_TABLE:
        if isinstance(error, kind):
            return outcome
    return FALLBACK_OUTCOME


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A request that is a real notification: ``accepted`` (dispatched now) or ``duplicate``."""

    outcome: str
    notification: Notification
    channel: Channel
    status: int = 200

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED

    @property
    def duplicate(self) -> bool:
        return self.outcome == DUPLICATE
