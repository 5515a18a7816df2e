"""Deliver a judged notification to the application exactly once (docs/design.md, "Exactly once").

The message (channel id + message number) is claimed create-only in the
store. A claim that finds the message done is a duplicate (200, nothing
called); one that finds it in progress answers 503 (``MessageInProgressError``)
so Google retries later. A claimed message is dispatched and marked done; if
the dispatch fails, the claim is released (so Google's retry is processed) and
the dispatch error raised (503). A store failure raises ``StoreUnavailable``
(503) before a claim exists or after it was released, so Google's retry is
processed. Once the handler has succeeded the verdict is ``accepted`` even if
the claim cannot be marked done (logged): a 503 then would invite a second call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channelkit import logs
from channelkit.channel import Channel, Notification
from channelkit.errors import DispatchError, HandlerError, MessageInProgressError, StoreUnavailable
from channelkit.store import ChannelStore, ClaimOutcome, MessageClaim
from channelkit.verdict import ACCEPTED, DUPLICATE, Verdict

__all__ = ["ExactlyOnceDelivery"]

#: Backoff (seconds) between attempts to mark a processed message done in a store outage.
FINISH_RETRY_FIRST, FINISH_RETRY_MAX = 0.2, 2.0

# The receiver's lines share one logger name, whichever step writes them.
log = logs.get_logger("channelkit.receive")


class ExactlyOnceDelivery:
    """Claim → dispatch → mark done (with backoff) or release, for one notification at a time.

    ``dispatcher`` is a ``channelkit.dispatch.Dispatcher`` or any callable
    ``(notification, channel)``; raising means "not processed". ``clock`` is
    wall-clock seconds and ``sleep`` waits between attempts to mark a message
    done. ``claim_timeout`` is fixed when the delivery is built.
    """

    def __init__(
        self,
        store: ChannelStore,
        dispatcher: Any,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        claim_timeout: float,
    ):
        self.store = store
        self.dispatcher = dispatcher
        self.clock = clock
        self.claim_timeout = claim_timeout
        self._sleep = sleep
        # Looked up once: a Dispatcher (prepare + dispatch) or a bare callable.
        prepare = getattr(dispatcher, "prepare", None)
        self._prepare: Callable[[], Any] | None = prepare if callable(prepare) else None
        self._dispatch: Callable[[Notification, Channel], Any] = (
            dispatcher.dispatch if hasattr(dispatcher, "dispatch") else dispatcher
        )

    def deliver(self, channel: Channel, notification: Notification, now_ms: int) -> Verdict:
        """``accepted`` once, ``duplicate`` after; ``MessageInProgressError`` or the dispatch error else."""
        if self._prepare is not None:
            self._prepare()  # a misconfigured handler fails here, before any claim is written
        claim = self.store.claim_message(
            channel.id,
            notification.message_number,
            now_ms=now_ms,
            timeout_seconds=self.claim_timeout,
        )
        if claim.outcome is ClaimOutcome.DONE:
            return Verdict(DUPLICATE, notification, channel)
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            raise MessageInProgressError("this message is being processed by another delivery")
        try:
            self._dispatch(notification, channel)
        except BaseException as exc:
            self._release(claim, channel, notification)
            if isinstance(exc, DispatchError):
                raise
            if isinstance(exc, Exception):
                raise HandlerError(f"handler raised {type(exc).__name__}: {exc}"[:500]) from exc
            raise  # KeyboardInterrupt, SystemExit: released, then let go
        self._mark_done(claim, channel, notification)
        return Verdict(ACCEPTED, notification, channel)

    def _mark_done(self, claim: MessageClaim, channel: Channel, notification: Notification) -> None:
        """Mark a processed message done, trying until the store takes it or a takeover could.

        Processed but not marked, the claim stays ``in_progress``: a re-delivery
        that comes after ``CHANNELKIT_CLAIM_TIMEOUT`` would take it over and run
        the handler a second time. So a store outage here is waited out (with
        backoff) for up to that timeout; the request stays open meanwhile. The
        verdict is ``accepted`` either way: a 503 would only invite a second call.
        """
        give_up = self.clock() + self.claim_timeout
        delay = FINISH_RETRY_FIRST
        while True:
            try:
                finished = self.store.finish_message(claim)
                break
            except StoreUnavailable as exc:
                if self.clock() + delay > give_up:
                    _log_problem("could not mark a processed message done", channel, notification, exc)
                    return
                self._sleep(delay)
                delay = min(delay * 2, FINISH_RETRY_MAX)
        if not finished:
            _log_problem(
                "message claim was taken over while the handler ran "
                "(handler slower than CHANNELKIT_CLAIM_TIMEOUT?)",
                channel,
                notification,
                None,
            )

    def _release(self, claim: MessageClaim, channel: Channel, notification: Notification) -> None:
        try:
            released = self.store.release_message(claim)
        except StoreUnavailable as exc:
            _log_problem(
                "could not release the claim of a failed message; "
                "retries answer 503 until CHANNELKIT_CLAIM_TIMEOUT passes",
                channel,
                notification,
                exc,
            )
            return
        if not released:
            _log_problem("message claim was taken over before release", channel, notification, None)


def _log_problem(message: str, channel: Channel, notification: Notification, exc: Exception | None) -> None:
    logs.event(
        log,
        "WARNING",
        message,
        channelId=channel.id,
        messageNumber=notification.message_number,
        state=notification.state,
        reason=f"{type(exc).__name__}: {exc}"[:500] if exc else None,
    )
