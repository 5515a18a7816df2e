"""The webhook's core: one push request in, one verdict out. No web framework here.

``receive(method, headers, body, store=..., dispatcher=...)`` checks a request
against its stored channel and hands a real notification to the application
exactly once. It returns a ``Verdict`` (``accepted``, or ``duplicate`` for a
message already handled; both answer 200) or raises a typed error from
``channelkit.errors``; ``status_for(error)`` is the HTTP status for it
(docs/design.md, "Webhook responses"). The store, the dispatcher and the clock
are injected.

A ``Receiver`` is two steps and one log line per request:

- ``channelkit.judge.RequestJudge`` judges the request: method, body limit,
  headers, the channel (through a ``ChannelCache``, where a cached channel may
  only say yes), token, resource id and liveness, and learns a pending
  channel's resource id;
- ``channelkit.delivery.ExactlyOnceDelivery`` delivers it exactly once: claim,
  dispatch, then mark done (waiting out a store outage) or release.

Its settings (``CHANNELKIT_GRACE``, ``CHANNELKIT_CLAIM_TIMEOUT``,
``CHANNELKIT_MAX_BODY``, ``CHANNELKIT_CACHE_TTL``,
``CHANNELKIT_ACCEPT_UNSIGNED_IDS``) are fixed when it is built,
from its arguments, a ``channelkit.config.Settings`` or the environment: no
request reads the environment.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from typing import Any

from channelkit import config, logs
from channelkit.channel_cache import ChannelCache
from channelkit.config import Settings
from channelkit.delivery import ExactlyOnceDelivery
from channelkit.errors import ChannelkitError, ConfigError, DispatchError, HandlerError
from channelkit.inline_sync import InlineSync
from channelkit.judge import RequestJudge, read_body
from channelkit.store import ChannelStore
from channelkit.verdict import ACCEPTED, DUPLICATE, Verdict, outcome_for, status_for

__all__ = [
    "ACCEPTED",
    "DUPLICATE",
    "ChannelCache",
    "Receiver",
    "Verdict",
    "outcome_for",
    "read_body",
    "receive",
    "status_for",
]

Clock = Callable[[], float]

log = logs.get_logger(__name__)


class _Default(enum.Enum):
    CACHE = "a new ChannelCache"


def _setting(value: Any, settings: Settings | None, name: str) -> Any:
    """An explicit value, else the one in ``settings``, else the environment's (read now, once)."""
    if value is not None:
        return getattr(config, name)(value)
    if settings is not None:
        return getattr(settings, name)
    return getattr(config, name)()


class HeardClock:
    """Writes a subscription's ``lastNotificationAt`` at most once per ``every_ms`` from this instance.

    Never per notification: the hot path stays at its two writes, and this
    occasional write per subscription is blind (no read) and may fail quietly:
    it is a health signal, not a record the webhook depends on. The webhook
    writes it at most every 10 minutes (``interval_for``): ``status`` only asks
    whether a subscription was heard within ``CHANNELKIT_QUIET_AFTER``.
    """

    #: The longest interval: "last heard" is at most this stale (ms).
    MAX_EVERY_MS = 600_000
    #: Subscriptions remembered; past this the memory starts over (one extra write each).
    SIZE = 10_000

    @classmethod
    def interval_for(cls, quiet_after: float) -> int:
        """A quarter of ``quiet_after`` seconds, in ms, between 1 s and ``MAX_EVERY_MS``."""
        return int(max(1_000, min(cls.MAX_EVERY_MS, quiet_after * 1000 / 4)))

    def __init__(self, store: ChannelStore, every_ms: int = MAX_EVERY_MS):
        self.store = store
        self.every_ms = every_ms
        self._written: dict[str, int] = {}
        # The Receiver's threads share one clock: a burst must not let two of them write.
        self._lock = threading.Lock()

    def note(self, subscription_id: str, now_ms: int) -> None:
        last = self._written.get(subscription_id)  # the usual answer, without the lock
        if last is not None and now_ms - last < self.every_ms:
            return
        with self._lock:
            last = self._written.get(subscription_id)
            if last is not None and now_ms - last < self.every_ms:
                return
            if len(self._written) >= self.SIZE:
                self._written.clear()
            self._written[subscription_id] = now_ms
        try:
            self.store.note_notification(subscription_id, now_ms)
        except ChannelkitError as exc:
            logs.event(
                log,
                "WARNING",
                "lastNotificationAt not written",
                subscriptionId=subscription_id,
                error=str(exc),
            )


class _WithBodies:
    """The app's dispatcher, preceded by a body feed's batch (``InlineSync.before_done``)."""

    def __init__(self, dispatcher: Any, changes: InlineSync):
        self.dispatcher, self.changes = dispatcher, changes

    def prepare(self) -> None:
        prepare = getattr(self.dispatcher, "prepare", None)
        if callable(prepare):
            prepare()

    def dispatch(self, notification: Any, channel: Any) -> None:
        self.changes.before_done(notification, channel)
        getattr(self.dispatcher, "dispatch", self.dispatcher)(notification, channel)


class Receiver:
    """Judges push requests against a store; one per process, shared by its threads.

    Arguments:
        store: the ``ChannelStore``.
        dispatcher: a ``channelkit.dispatch.Dispatcher``, or any callable
            ``(notification, channel)``; raising means "not processed".
        clock: wall-clock seconds (``time.time``); expiry and claims use it.
        sleep: waits between attempts to mark a processed message done
            (``time.sleep``; tests pass one that moves their clock).
        cache: a ``ChannelCache`` (default: a new one), or None for no caching.
        settings: a ``channelkit.config.Settings``; without it the environment
            is read once, here.
        changes: a ``channelkit.inline_sync.InlineSync``: ``--sync`` subscriptions
            are synced after their notification is marked done (None: not here).
        grace, claim_timeout, max_body: override ``CHANNELKIT_GRACE``,
            ``CHANNELKIT_CLAIM_TIMEOUT`` and ``CHANNELKIT_MAX_BODY``.
    """

    def __init__(
        self,
        *,
        store: ChannelStore,
        dispatcher: Any,
        clock: Clock | None = None,
        cache: ChannelCache | _Default | None = _Default.CACHE,
        grace: float | None = None,
        claim_timeout: float | None = None,
        max_body: int | None = None,
        sleep: Callable[[float], None] | None = None,
        settings: Settings | None = None,
        changes: InlineSync | None = None,
    ):
        self.store = store
        self.dispatcher = dispatcher
        self.changes = changes
        self.clock = clock or time.time
        if cache is _Default.CACHE:
            cache = ChannelCache(settings.cache_ttl if settings is not None else None)
        self.cache: ChannelCache | None = cache
        self.judge = RequestJudge(
            store,
            cache,
            grace_seconds=_setting(grace, settings, "grace"),
            max_body=_setting(max_body, settings, "max_body"),
            accept_unsigned_ids=_setting(None, settings, "accept_unsigned_ids"),
        )
        self.heard = HeardClock(store, HeardClock.interval_for(_setting(None, settings, "quiet_after")))
        self.delivery = ExactlyOnceDelivery(
            store,
            dispatcher if changes is None else _WithBodies(dispatcher, changes),
            clock=self.clock,
            sleep=sleep or time.sleep,
            claim_timeout=_setting(claim_timeout, settings, "claim_timeout"),
        )

    def receive(self, method: str, headers: Any, body: Any = b"") -> Verdict:
        """Judge one request; a ``Verdict``, or a typed error (see ``status_for``).

        Every call is logged as one structured line with its outcome and latency.
        """
        started = time.monotonic()
        context: dict[str, Any] = {}
        try:
            now_ms = int(self.clock() * 1000)
            channel, notification = self.judge.judge(method, headers, body, now_ms, context)
            verdict = self.delivery.deliver(channel, notification, now_ms)
        except ChannelkitError as exc:
            self._log_rejection(exc, context, started)
            raise
        if channel.subscription_id and not notification.is_sync:  # a new channel's sync proves no change
            self.heard.note(channel.subscription_id, now_ms)
        self._log(
            "INFO",
            f"notification {verdict.outcome}",
            context,
            started,
            outcome=verdict.outcome,
            status=verdict.status,
        )
        if self.changes is not None and channel.sync and verdict.outcome == ACCEPTED:
            self.changes.after_delivery(notification, channel)  # never raises: the answer stands
        return verdict

    # --- logs ---------------------------------------------------------------------------

    def _log(
        self, severity: str, message: str, context: dict, started: float, exc_info: Any = None, **fields: Any
    ) -> None:
        # The request's context is the line's first fields (it is not used after the line).
        context["latencyMs"] = round((time.monotonic() - started) * 1000, 1)
        context.update(fields)
        logs.event_fields(log, severity, message, context, exc_info=exc_info)

    def _log_rejection(self, exc: ChannelkitError, context: dict, started: float) -> None:
        status = status_for(exc)
        outcome = outcome_for(exc)
        if status >= 500:
            severity = "ERROR" if isinstance(exc, (DispatchError, ConfigError)) else "WARNING"
        elif status == 403:
            severity = "WARNING"
        else:
            severity = "INFO"
        # A failing handler's traceback helps its author; other errors are self-explaining.
        cause = exc.__cause__ if isinstance(exc, HandlerError) else None
        exc_info = (type(cause), cause, cause.__traceback__) if cause is not None else None
        self._log(
            severity,
            f"notification rejected: {outcome}",
            context,
            started,
            outcome=outcome,
            status=status,
            reason=str(exc)[:500],
            exc_info=exc_info,
        )


def receive(
    method: str,
    headers: Any,
    body: Any = b"",
    *,
    store: ChannelStore,
    dispatcher: Any,
    clock: Clock | None = None,
    cache: ChannelCache | None = None,
    grace: float | None = None,
    claim_timeout: float | None = None,
    max_body: int | None = None,
    settings: Settings | None = None,
) -> Verdict:
    """Judge one push request (see the module docstring); a ``Verdict`` or a typed error.

    A one-shot form of ``Receiver(...).receive``; pass a long-lived ``cache`` to
    cache channel lookups across calls (none by default).
    """
    receiver = Receiver(
        store=store,
        dispatcher=dispatcher,
        clock=clock,
        cache=cache,
        grace=grace,
        claim_timeout=claim_timeout,
        max_body=max_body,
        settings=settings,
    )
    return receiver.receive(method, headers, body)
