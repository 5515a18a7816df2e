"""The webhook's core: one push request in, one verdict out. No web framework here.

``receive(method, headers, body, store=..., dispatcher=...)`` checks a request
against its stored channel and hands a real notification to the application
exactly once. It returns a ``Verdict`` (``accepted``, or ``duplicate`` for a
message already handled; both answer 200) or raises a typed error from
``channelkit.errors``; ``status_for(error)`` is the HTTP status of DESIGN.md §3
for it. The store, the dispatcher and the clock are injected.

Checks, in order (the first failure decides):

1. the method is POST (``MethodNotAllowedError``, 405);
2. the body is within ``CHANNELKIT_MAX_BODY`` (``BodyTooLargeError``, 413) — a
   stream is read no further than the limit;
3. the X-Goog headers are all there and the message number is a positive
   integer (``InvalidNotificationError``, 400);
4. the channel exists (``ChannelNotFoundError``, 404);
5. token (constant time) and resource id, once known, match
   (``TokenMismatchError`` / ``ResourceMismatchError``, 403);
6. the channel is live (``ChannelGoneError``, 410): not ``failed``; not
   ``stopped``, except for ``CHANNELKIT_GRACE`` seconds after a renewal created
   its successor (deliveries still in flight on the old channel); not expired
   for more than ``CHANNELKIT_GRACE`` seconds.

A ``pending`` channel (stored before ``watch`` returned) accepts a valid
notification and records the resource id from its headers, with a conditional
update that only applies while it is still ``pending``.

Then exactly-once: the message is claimed create-only in the store; a claim
that finds the message done is a duplicate (200, nothing called); one that
finds it in progress answers 503 (``MessageInProgressError``) so Google retries
later. A claimed message is dispatched and marked done; if the dispatch fails,
the claim is released (so Google's retry is processed) and the dispatch error
raised (503). A store failure raises ``StoreUnavailable`` (503) before a claim
exists or after it was released, so Google's retry is processed. Once the
handler has succeeded the verdict is ``accepted`` even if the claim cannot be
marked done (logged): a 503 then would invite a second call.

Channel lookups are cached per process for ``CHANNELKIT_CACHE_TTL`` seconds,
so a stop or a renewal takes effect within that time. A cached channel is never
trusted to refuse: before answering 403 or 410 the channel is read again.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from channelkit import config, logs
from channelkit.channel import (
    X_GOOG_CHANNEL_ID,
    X_GOOG_MESSAGE_NUMBER,
    X_GOOG_RESOURCE_STATE,
    Channel,
    Notification,
    from_header_map,
    header_map,
    parse_message_number,
    to_millis,
    validate_channel_id,
)
from channelkit.errors import (
    BodyTooLargeError,
    ChannelGoneError,
    ChannelkitError,
    ChannelNotFoundError,
    ConfigError,
    DispatchError,
    HandlerConfigError,
    HandlerError,
    InvalidNotificationError,
    MessageInProgressError,
    MethodNotAllowedError,
    ResourceMismatchError,
    StoreUnavailable,
    TokenMismatchError,
    UnreadableBodyError,
)
from channelkit.store import FAILED, PENDING, STOPPED, ChannelStore, ClaimOutcome

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

ACCEPTED = "accepted"
DUPLICATE = "duplicate"

Clock = Callable[[], float]

#: Typed error -> (HTTP status, log outcome), DESIGN.md §3. The first matching class wins.
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
#: Backoff (seconds) between attempts to mark a processed message done in a store outage.
FINISH_RETRY_FIRST, FINISH_RETRY_MAX = 0.2, 2.0

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


# --- body -------------------------------------------------------------------


def read_body(body: Any, limit: int, content_length: Any = None) -> bytes:
    """The request body as bytes, never reading more than ``limit + 1`` bytes.

    ``body`` is bytes or a binary stream. A declared ``content_length`` over the
    limit is refused before anything is read. ``BodyTooLargeError`` when over;
    ``UnreadableBodyError`` when the stream fails (400: the request is broken).
    """
    too_large = BodyTooLargeError(f"request body is larger than {limit} bytes")
    if content_length is not None:
        try:
            declared = int(str(content_length).strip())
        except ValueError:
            declared = None
        if declared is not None and declared > limit:
            raise too_large
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    elif hasattr(body, "read"):
        chunks, remaining = [], limit + 1
        try:
            while remaining > 0:
                chunk = body.read(remaining)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        except Exception as exc:  # the server's reader: malformed chunks, a broken upload
            raise UnreadableBodyError(f"request body could not be read: {type(exc).__name__}") from exc
        data = b"".join(chunks)
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        raise TypeError(f"body must be bytes or a binary stream, not {type(body).__name__}")
    if len(data) > limit:
        raise too_large
    return data


# --- channel cache ------------------------------------------------------------


class ChannelCache:
    """A small per-process cache of channel lookups with a short lifetime.

    ``ttl`` seconds (default ``CHANNELKIT_CACHE_TTL``, read at each call; 0
    disables caching); at most ``max_size`` channels, the oldest dropped first.
    Thread-safe. ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        ttl: float | None = None,
        *,
        max_size: int = 4096,
        clock: Clock = time.monotonic,
    ):
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._ttl = ttl
        self.max_size = max_size
        self._clock = clock
        self._entries: collections.OrderedDict[str, tuple[float, Channel]] = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def ttl(self) -> float:
        return config.cache_ttl(self._ttl)

    def get(self, channel_id: str) -> Channel | None:
        """The cached channel if still fresh, else None."""
        ttl = self.ttl
        with self._lock:
            entry = self._entries.get(channel_id)
            if entry is None:
                return None
            stored_at, channel = entry
            age = self._clock() - stored_at
            if ttl <= 0 or age >= ttl or age < 0:
                del self._entries[channel_id]
                return None
            return channel

    def put(self, channel: Channel) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[channel.id] = (self._clock(), channel)
            self._entries.move_to_end(channel.id)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def forget(self, channel_id: str) -> None:
        with self._lock:
            self._entries.pop(channel_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# --- the receiver ---------------------------------------------------------------


log = logs.get_logger(__name__)


def _storable_channel_id(channel_id: str) -> bool:
    """Could a channel with this id exist? Only ids Google accepts are ever stored."""
    try:
        validate_channel_id(channel_id)
    except ValueError:
        return False
    return True


def _call(dispatcher: Any, notification: Notification, channel: Channel) -> None:
    if hasattr(dispatcher, "dispatch"):
        dispatcher.dispatch(notification, channel)
    else:
        dispatcher(notification, channel)


class Receiver:
    """Judges push requests against a store; one per process, shared by its threads.

    Arguments (None reads the configuration at each request):
        store: the ``ChannelStore``.
        dispatcher: a ``channelkit.dispatch.Dispatcher``, or any callable
            ``(notification, channel)``; raising means "not processed".
        clock: wall-clock seconds (``time.time``); expiry and claims use it.
        sleep: waits between attempts to mark a processed message done
            (``time.sleep``; tests pass one that moves their clock).
        cache: a ``ChannelCache`` (default: a new one), or None for no caching.
        grace, claim_timeout, max_body: override ``CHANNELKIT_GRACE``,
            ``CHANNELKIT_CLAIM_TIMEOUT`` and ``CHANNELKIT_MAX_BODY``.
    """

    _DEFAULT_CACHE = object()

    def __init__(
        self,
        *,
        store: ChannelStore,
        dispatcher: Any,
        clock: Clock | None = None,
        cache: ChannelCache | object | None = _DEFAULT_CACHE,
        grace: float | None = None,
        claim_timeout: float | None = None,
        max_body: int | None = None,
        sleep: Callable[[float], None] | None = None,
    ):
        self.store = store
        self.dispatcher = dispatcher
        self.clock = clock or time.time
        self.cache: ChannelCache | None = (
            ChannelCache() if cache is Receiver._DEFAULT_CACHE else cache  # type: ignore[assignment]
        )
        self._grace = grace
        self._claim_timeout = claim_timeout
        self._max_body = max_body
        self._sleep = sleep or time.sleep

    # --- the request --------------------------------------------------------------

    def receive(self, method: str, headers: Any, body: Any = b"") -> Verdict:
        """Judge one request; a ``Verdict``, or a typed error (see ``status_for``).

        Every call is logged as one structured line with its outcome and latency.
        """
        started = time.monotonic()
        context: dict[str, Any] = {}
        try:
            verdict = self._receive(method, headers, body, context)
        except ChannelkitError as exc:
            self._log_rejection(exc, context, started)
            raise
        self._log(
            "INFO",
            f"notification {verdict.outcome}",
            context,
            started,
            outcome=verdict.outcome,
            status=verdict.status,
        )
        return verdict

    def _receive(self, method: str, headers: Any, body: Any, context: dict) -> Verdict:
        if str(method).upper() != "POST":
            raise MethodNotAllowedError(f"method {method} not allowed; notifications are POSTed")
        upper = header_map(headers)
        data = read_body(body, config.max_body(self._max_body), upper.get("CONTENT-LENGTH"))

        channel_id = (upper.get(X_GOOG_CHANNEL_ID) or "").strip()
        context["channelId"] = channel_id[:100] or None
        context["state"] = (upper.get(X_GOOG_RESOURCE_STATE) or "").strip()[:100] or None
        # Well-formed? Checked against a stand-in channel (no token, no resource id):
        # missing headers and bad message numbers are refused before any store read.
        from_header_map(Channel("web_hook", channel_id, None, None), upper, data)
        context["messageNumber"] = parse_message_number(upper[X_GOOG_MESSAGE_NUMBER])
        if not _storable_channel_id(channel_id):
            raise ChannelNotFoundError("unknown channel")

        now_ms = self._now_ms()
        try:
            channel, notification = self._judge(channel_id, upper, data, now_ms)
        except ChannelGoneError:
            try:
                self._learn_failed_resource(channel_id, upper, data)
            except ChannelkitError:
                pass  # best effort: the answer is 410 either way
            raise
        context["subscriptionId"] = channel.subscription_id
        if channel.status == PENDING and not channel.resource_id:
            channel, notification = self._learn_resource(channel, upper, data, now_ms)
        return self._deliver_once(channel, notification, now_ms)

    # --- the channel ----------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _fetch(self, channel_id: str) -> Channel:
        channel = self.store.find(channel_id)
        if channel is None:
            if self.cache is not None:
                self.cache.forget(channel_id)
            raise ChannelNotFoundError("unknown channel")
        if self.cache is not None:
            self.cache.put(channel)
        return channel

    def _judge(
        self, channel_id: str, headers: Mapping[str, str], body: bytes, now_ms: int
    ) -> tuple[Channel, Notification]:
        """The channel and the checked notification; a cached channel never refuses."""
        cached = self.cache.get(channel_id) if self.cache is not None else None
        if cached is not None:
            try:
                return cached, self._check(cached, headers, body, now_ms)
            except (InvalidNotificationError, ChannelGoneError):
                pass  # perhaps stale: judge again on a fresh read
        channel = self._fetch(channel_id)
        return channel, self._check(channel, headers, body, now_ms)

    def _check(self, channel: Channel, headers: Mapping[str, str], body: bytes, now_ms: int) -> Notification:
        notification = from_header_map(channel, headers, body)
        self._check_live(channel, now_ms)
        return notification

    def _check_live(self, channel: Channel, now_ms: int) -> None:
        grace_ms = config.grace(self._grace) * 1000
        if channel.status == FAILED:
            raise ChannelGoneError("channel failed")
        if channel.status == STOPPED and not self._stopped_within_grace(channel, now_ms, grace_ms):
            raise ChannelGoneError("channel stopped")
        if channel.expiration and now_ms > channel.expiration + grace_ms:
            raise ChannelGoneError("channel expired")

    def _stopped_within_grace(self, channel: Channel, now_ms: int, grace_ms: float) -> bool:
        """A channel replaced by a renewal takes in-flight deliveries for the grace period.

        The grace runs from the moment renewal retired it (``stopped_at``; for
        records without it, from the creation of its successor). A channel
        stopped by hand, or without a known successor, has no grace.
        """
        if not channel.renewed_by or grace_ms <= 0:
            return False
        if channel.stopped_at:
            return now_ms <= channel.stopped_at + grace_ms
        successor = self.cache.get(channel.renewed_by) if self.cache is not None else None
        if successor is None:
            successor = self.store.find(channel.renewed_by)
            if successor is None:
                return False
            if self.cache is not None:
                self.cache.put(successor)
        created_ms = to_millis(successor.created_at)
        return created_ms is not None and now_ms <= created_ms + grace_ms

    def _learn_resource(
        self, channel: Channel, headers: Mapping[str, str], body: bytes, now_ms: int
    ) -> tuple[Channel, Notification]:
        """Record a pending channel's resource id from its first valid notification.

        The store sets it only if none is recorded yet and returns what is
        stored, so a second, different id is judged (and refused) against the
        first one.
        """
        notification = from_header_map(channel, headers, body)
        learned = self.store.record_resource(
            channel.id, notification.resource_id, notification.resource_uri or None
        )
        if self.cache is not None:
            self.cache.put(learned)
        return learned, self._check(learned, headers, body, now_ms)

    def _learn_failed_resource(self, channel_id: str, headers: Mapping[str, str], body: bytes) -> None:
        """A failed channel that Google made after all: remember its resource id for a stop.

        Its watch failed (say, timed out) yet a valid notification arrives, so
        it is live at Google. The answer stays 410; the store marks it
        ``stop_pending`` and the next renewal run stops it. Best effort.
        """
        channel = self.store.find(channel_id)
        if channel is None or channel.status != FAILED or channel.resource_id:
            return
        notification = from_header_map(channel, headers, body)
        self.store.record_resource(channel.id, notification.resource_id)

    # --- exactly once -------------------------------------------------------------------

    def _deliver_once(self, channel: Channel, notification: Notification, now_ms: int) -> Verdict:
        prepare = getattr(self.dispatcher, "prepare", None)
        if callable(prepare):
            prepare()  # a misconfigured handler fails here, before any claim is written
        claim = self.store.claim_message(
            channel.id,
            notification.message_number,
            now_ms=now_ms,
            timeout_seconds=config.claim_timeout(self._claim_timeout),
        )
        if claim.outcome is ClaimOutcome.DONE:
            return Verdict(DUPLICATE, notification, channel)
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            raise MessageInProgressError("this message is being processed by another delivery")
        try:
            _call(self.dispatcher, notification, channel)
        except BaseException as exc:
            self._release(claim, channel, notification)
            if isinstance(exc, DispatchError):
                raise
            if isinstance(exc, Exception):
                raise HandlerError(f"handler raised {type(exc).__name__}: {exc}"[:500]) from exc
            raise  # KeyboardInterrupt, SystemExit: released, then let go
        self._mark_done(claim, channel, notification)
        return Verdict(ACCEPTED, notification, channel)

    def _mark_done(self, claim, channel: Channel, notification: Notification) -> None:
        """Mark a processed message done, trying until the store takes it or a takeover could.

        Processed but not marked, the claim stays ``in_progress``: a re-delivery
        that comes after ``CHANNELKIT_CLAIM_TIMEOUT`` would take it over and run
        the handler a second time. So a store outage here is waited out (with
        backoff) for up to that timeout; the request stays open meanwhile. The
        verdict is ``accepted`` either way: a 503 would only invite a second call.
        """
        give_up = self.clock() + config.claim_timeout(self._claim_timeout)
        delay = FINISH_RETRY_FIRST
        while True:
            try:
                finished = self.store.finish_message(claim)
                break
            except StoreUnavailable as exc:
                if self.clock() + delay > give_up:
                    self._log_problem("could not mark a processed message done", channel, notification, exc)
                    return
                self._sleep(delay)
                delay = min(delay * 2, FINISH_RETRY_MAX)
        if not finished:
            self._log_problem(
                "message claim was taken over while the handler ran "
                "(handler slower than CHANNELKIT_CLAIM_TIMEOUT?)",
                channel,
                notification,
                None,
            )

    def _release(self, claim, channel: Channel, notification: Notification) -> None:
        try:
            released = self.store.release_message(claim)
        except StoreUnavailable as exc:
            self._log_problem(
                "could not release the claim of a failed message; "
                "retries answer 503 until CHANNELKIT_CLAIM_TIMEOUT passes",
                channel,
                notification,
                exc,
            )
            return
        if not released:
            self._log_problem("message claim was taken over before release", channel, notification, None)

    # --- logs ---------------------------------------------------------------------------

    def _log(self, severity: str, message: str, context: dict, started: float, **fields) -> None:
        latency_ms = round((time.monotonic() - started) * 1000, 1)
        logs.event(log, severity, message, **context, latencyMs=latency_ms, **fields)

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
        exc_info = exc.__cause__ if isinstance(exc, HandlerError) and exc.__cause__ else None
        if exc_info is not None:
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
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

    def _log_problem(
        self, message: str, channel: Channel, notification: Notification, exc: Exception | None
    ) -> None:
        logs.event(
            log,
            "WARNING",
            message,
            channelId=channel.id,
            messageNumber=notification.message_number,
            state=notification.state,
            reason=f"{type(exc).__name__}: {exc}"[:500] if exc else None,
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
    )
    return receiver.receive(method, headers, body)
