"""Judge one push request: is it a real notification for a live channel of ours?

Checks, in order (the first failure decides; docs/design.md, "Receive"):

1. the method is POST (``MethodNotAllowedError``, 405);
2. the body is within the limit (``BodyTooLargeError``, 413) — a stream is
   read no further than the limit;
3. with a deployment key, the channel id is one we could have made
   (``ChannelNotFoundError``, 404): an id whose MAC does not verify
   (``channelkit.signing``), or an unsigned one once
   ``CHANNELKIT_ACCEPT_UNSIGNED_IDS`` is false, is refused on the key alone,
   before the other headers are parsed and with no store read;
4. the X-Goog headers are all there and the message number is a positive
   integer (``InvalidNotificationError``, 400);
5. the channel exists (``ChannelNotFoundError``, 404);
6. token (constant time) and resource id, once known, match
   (``TokenMismatchError`` / ``ResourceMismatchError``, 403);
7. the channel is live (``ChannelGoneError``, 410): not ``failed``; not
   ``stopped``, except for the grace period after a renewal created its
   successor (deliveries still in flight on the old channel); not expired for
   more than the grace period.

A ``pending`` channel (stored before ``watch`` returned) accepts a valid
notification and records the resource id from its headers, with a conditional
update that only applies while it is still ``pending``. Channels are looked up
through a ``ChannelCache``, and a cached channel may only say yes: before a
403 or a 410 the channel is read again.
"""

from __future__ import annotations

from typing import Any

from channelkit.channel import (
    X_GOOG_CHANGED,
    X_GOOG_CHANNEL_EXPIRATION,
    X_GOOG_CHANNEL_ID,
    X_GOOG_CHANNEL_TOKEN,
    X_GOOG_MESSAGE_NUMBER,
    X_GOOG_RESOURCE_ID,
    X_GOOG_RESOURCE_STATE,
    X_GOOG_RESOURCE_URI,
    Channel,
    Notification,
    check_against_channel,
    header_map,
    parse_header_map,
    to_millis,
    validate_channel_id,
)
from channelkit.channel_cache import ChannelCache
from channelkit.errors import (
    BodyTooLargeError,
    ChannelGoneError,
    ChannelkitError,
    ChannelNotFoundError,
    InvalidNotificationError,
    MethodNotAllowedError,
    UnreadableBodyError,
)
from channelkit.signing import IdCheck
from channelkit.store import FAILED, PENDING, STOPPED, ChannelStore

__all__ = ["UNVERIFIED", "RequestJudge", "read_body"]

#: The reason (logged, never answered) of a 404 decided on the key alone, before any read.
UNVERIFIED = "unverified id"


def read_body(body: Any, limit: int, content_length: Any = None) -> bytes:
    """The request body as bytes, never reading more than ``limit + 1`` bytes.

    ``body`` is bytes or a binary stream. A declared ``content_length`` over the
    limit is refused before anything is read. ``BodyTooLargeError`` when over;
    ``UnreadableBodyError`` when the stream fails (400: the request is broken).
    """
    if content_length is not None:
        try:
            declared = int(str(content_length).strip())
        except ValueError:
            declared = None
        if declared is not None and declared > limit:
            raise _too_large(limit)
    if body is None:
        return b""
    if type(body) is bytes:  # the webhook's case: already read, within the limit
        if len(body) > limit:
            raise _too_large(limit)
        return body
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
        raise _too_large(limit)
    return data


def _too_large(limit: int) -> BodyTooLargeError:
    return BodyTooLargeError(f"request body is larger than {limit} bytes")


#: The headers a notification is judged on, with the WSGI environ key of each.
_ENVIRON_KEYS = tuple(
    (name, "HTTP_" + name.replace("-", "_"))
    for name in (
        X_GOOG_CHANNEL_ID,
        X_GOOG_MESSAGE_NUMBER,
        X_GOOG_RESOURCE_ID,
        X_GOOG_RESOURCE_STATE,
        X_GOOG_RESOURCE_URI,
        X_GOOG_CHANNEL_TOKEN,
        X_GOOG_CHANNEL_EXPIRATION,
        X_GOOG_CHANGED,
    )
)


def _judged_headers(headers: Any) -> dict[str, str]:
    """``header_map(headers)``, or for Werkzeug's headers only the ones judged (and Content-Length).

    A WSGI environ keys each header once (``HTTP_X_GOOG_CHANNEL_ID``), so the
    nine are looked up, not found among all the environ's keys.
    """
    environ = getattr(headers, "environ", None)
    if type(environ) is not dict:
        return header_map(headers)
    get = environ.get
    upper = {}
    for name, key in _ENVIRON_KEYS:
        value = get(key)
        if value is not None:
            upper[name] = value if type(value) is str else _text(value)
    length = get("CONTENT_LENGTH")
    if length:
        upper["CONTENT-LENGTH"] = length if type(length) is str else _text(length)
    return upper


def _text(value: Any) -> str:
    """A header value as text, as ``header_map`` gives it (bytes are Latin-1)."""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _storable_channel_id(channel_id: str) -> bool:
    """Could a channel with this id exist? Only ids Google accepts are ever stored."""
    try:
        validate_channel_id(channel_id)
    except ValueError:
        return False
    return True


class RequestJudge:
    """The checks above, against a store seen through an optional cache; no side effect but learning.

    ``grace_seconds`` and ``max_body`` are fixed when the judge is built: no
    request reads a setting.
    """

    def __init__(
        self,
        store: ChannelStore,
        cache: ChannelCache | None,
        *,
        grace_seconds: float,
        max_body: int,
        accept_unsigned_ids: bool = True,
    ):
        self.store = store
        self.cache = cache
        self.max_body = max_body
        self._grace_ms = grace_seconds * 1000
        self._signer = store.signer
        self._accept_unsigned = accept_unsigned_ids

    def judge(
        self, method: str, headers: Any, body: Any, now_ms: int, context: dict[str, Any]
    ) -> tuple[Channel, Notification]:
        """The channel and its checked notification, or a typed error.

        ``context`` receives what is known for the log line as soon as it is
        known (channel id, state, message number, subscription), so that a
        refusal is logged with it too.
        """
        if str(method).upper() != "POST":
            raise MethodNotAllowedError(f"method {method} not allowed; notifications are POSTed")
        upper = _judged_headers(headers)
        data = read_body(body, self.max_body, upper.get("CONTENT-LENGTH"))

        channel_id = (upper.get(X_GOOG_CHANNEL_ID) or "").strip()
        context["channelId"] = channel_id[:100] or None
        context["state"] = (upper.get(X_GOOG_RESOURCE_STATE) or "").strip()[:100] or None
        if channel_id and not self._may_exist(channel_id):
            raise ChannelNotFoundError(UNVERIFIED)  # an id we never made: refused before any other work
        # Well-formed? Parsed once, against no channel: missing headers and bad message
        # numbers are refused before any store read; token and resource id come next.
        parsed = parse_header_map(upper, data)
        context["messageNumber"] = parsed.message_number
        if not _storable_channel_id(channel_id):
            raise ChannelNotFoundError("unknown channel")

        try:
            channel = self._lookup_and_check(channel_id, parsed, now_ms)
        except ChannelGoneError:
            try:
                self._learn_failed_resource(channel_id, parsed)
            except ChannelkitError:
                pass  # best effort: the answer is 410 either way
            raise
        context["subscriptionId"] = channel.subscription_id
        if channel.status == PENDING and not channel.resource_id:
            return self._learn_resource(channel, parsed, now_ms), parsed
        return channel, parsed

    # --- the channel ----------------------------------------------------------------

    def _may_exist(self, channel_id: str) -> bool:
        """Could we have made this id? Answered from the key alone: a forgery costs no read."""
        signer = self._signer
        if signer is None:
            return True
        check = signer.check_channel_id(channel_id)
        return check is IdCheck.SIGNED or (check is IdCheck.UNSIGNED and self._accept_unsigned)

    def _fetch(self, channel_id: str) -> Channel:
        channel = self.store.find(channel_id)
        if channel is None:
            if self.cache is not None:
                self.cache.forget(channel_id)
            raise ChannelNotFoundError("unknown channel")
        if self.cache is not None:
            self.cache.put(channel)
        return channel

    def _lookup_and_check(self, channel_id: str, parsed: Notification, now_ms: int) -> Channel:
        """The channel the notification belongs to (checked); a cached channel never refuses."""
        cached = self.cache.get(channel_id) if self.cache is not None else None
        if cached is not None:
            try:
                self._check(cached, parsed, now_ms)
                return cached
            except (InvalidNotificationError, ChannelGoneError):
                pass  # perhaps stale: judge again on a fresh read
        channel = self._fetch(channel_id)
        self._check(channel, parsed, now_ms)
        return channel

    def _check(self, channel: Channel, parsed: Notification, now_ms: int) -> None:
        check_against_channel(channel, parsed)
        self._check_live(channel, now_ms)

    def _check_live(self, channel: Channel, now_ms: int) -> None:
        grace_ms = self._grace_ms
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

    # --- learning the resource id ---------------------------------------------------

    def _learn_resource(self, channel: Channel, parsed: Notification, now_ms: int) -> Channel:
        """Record a pending channel's resource id from its first valid notification.

        The store sets it only if none is recorded yet and returns what is
        stored, so a second, different id is judged (and refused) against the
        first one.
        """
        learned = self.store.record_resource(channel.id, parsed.resource_id, parsed.resource_uri or None)
        if self.cache is not None:
            self.cache.put(learned)
        self._check(learned, parsed, now_ms)
        return learned

    def _learn_failed_resource(self, channel_id: str, parsed: Notification) -> None:
        """A failed channel that Google made after all: remember its resource id for a stop.

        Its watch failed (say, timed out) yet a valid notification arrives, so
        it is live at Google. The answer stays 410; the store marks it
        ``stop_pending`` and the next renewal run stops it. Best effort.
        """
        channel = self.store.find(channel_id)
        if channel is None or channel.status != FAILED or channel.resource_id:
            return
        check_against_channel(channel, parsed)
        self.store.record_resource(channel.id, parsed.resource_id)
