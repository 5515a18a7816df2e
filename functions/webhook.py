"""Cloud Function (HTTP) that receives Google API push notifications: target ``webhook``.

Thin on purpose: it reads the request, hands it to ``channelkit.receive``, and
turns the verdict or the typed error into a status (docs/design.md, "Webhook
responses"). The settings (``channelkit.config.Settings``), the store and the
dispatcher are built at the first request and kept for the life of the
instance: no request reads the environment. No input yields a 500: anything
unexpected is logged and answered 503, which Google retries.

Run locally::

    functions-framework --target=webhook --source=functions/webhook.py --port=8080
"""

from __future__ import annotations

import io
import threading
import time

import werkzeug.wsgi

from channelkit import logs
from channelkit.change_sink import load_change_sink
from channelkit.config import Settings
from channelkit.dispatch import load_dispatcher
from channelkit.errors import (
    ChannelkitError,
    ConfigError,
    HandlerConfigError,
    MethodNotAllowedError,
    UnreadableBodyError,
)
from channelkit.inline_sync import InlineSync
from channelkit.receive import ChannelCache, Receiver, outcome_for, read_body, status_for
from channelkit.signing import NO_KEY_WARNING
from channelkit.store import ChannelStore, open_store
from channelkit.sync_requests import load_sync_requests

logs.configure()
log = logs.get_logger("webhook")

#: Short, fixed answers: nothing from the request or the store is echoed back.
REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    413: "Payload Too Large",
    503: "Service Unavailable",
}
TEXT = {"Content-Type": "text/plain; charset=utf-8"}

_settings: Settings | None = None
_receiver: Receiver | None = None
_store: ChannelStore | None = None
_receiver_lock = threading.Lock()
_reported: set[str] = set()


def _get_settings() -> Settings:
    """The instance's settings, resolved at the first request; a bad one is retried next time."""
    global _settings
    settings = _settings
    if settings is not None:  # resolved: no lock on the hot path
        return settings
    with _receiver_lock:
        if _settings is None:
            _settings = Settings.resolve()
        return _settings


def _get_receiver(settings: Settings) -> Receiver:
    """The instance's receiver, built at the first request (after any fork).

    A part that fails to build (bad setting, store unreachable) is tried again
    at the next request; what was built is kept.
    """
    global _receiver, _store
    receiver = _receiver
    if receiver is not None:  # built: no lock on the hot path
        return receiver
    with _receiver_lock:
        if _receiver is None:
            if _store is None:
                _store = open_store(settings.store_url, **settings.store_options())
                if _store.signer is None:
                    logs.event(log, "WARNING", NO_KEY_WARNING)
            _receiver = Receiver(
                store=_store,
                dispatcher=load_dispatcher(settings=settings),
                cache=ChannelCache(settings.cache_ttl),
                settings=settings,
                changes=_inline_sync(_store, settings),
            )
        return _receiver


def _inline_sync(store: ChannelStore, settings: Settings) -> InlineSync | None:
    """Syncs for ``--sync`` subscriptions, when the app said where changes go.

    With ``CHANNELKIT_SYNC_TOPIC`` they are requested from the ``sync`` function instead.
    """
    sink = load_change_sink(settings)
    if sink is None:
        return None
    return InlineSync(
        store=store,
        sink=sink,
        budget=settings.sync_budget,
        lease=settings.sync_lease,
        settings=settings,
        requests=load_sync_requests(settings),
    )


def _build_answer(status: int):
    headers = dict(TEXT)
    if status == 405:
        headers["Allow"] = "POST"
    return REASONS.get(status, "Service Unavailable") + "\n", status, headers


#: Each answer built once (Flask copies the headers into the response it makes from one).
_ANSWERS = {status: _build_answer(status) for status in REASONS}


def _answer(status: int):
    answer = _ANSWERS.get(status)
    return answer if answer is not None else _build_answer(status)


def webhook(request):
    """HTTP entry point: one push notification per POST."""
    started = time.monotonic()
    try:
        return _handle(request, started)
    except Exception:  # noqa: BLE001 - a bug or an unexpected library error: never a 500, never a traceback
        logs.event(
            log,
            "ERROR",
            "unexpected error while handling a notification",
            outcome="error",
            status=503,
            latencyMs=_ms(started),
            exc_info=True,
        )
        return _answer(503)


def _handle(request, started: float):
    try:
        if request.method != "POST":
            # The library refuses it too; but nothing (no store) is needed to say 405.
            raise MethodNotAllowedError("notifications are POSTed")
        settings = _get_settings()
        body = _take_body(request, settings.max_body)
        receiver = _get_receiver(settings)
    except ChannelkitError as exc:
        return _refuse(exc, request, started)
    try:
        verdict = receiver.receive(request.method, request.headers, body)
    except ChannelkitError as exc:
        return _answer(status_for(exc))  # the receiver has logged it
    return _answer(verdict.status)


def _take_body(request, limit: int) -> bytes:
    """The body, read no further than ``limit + 1`` bytes (``BodyTooLargeError`` above).

    A declared Content-Length over the limit is refused without reading. The
    framework reads "the rest" of every request after the response
    (functions-framework's ``read_request``); it is handed an empty input, so an
    oversized body is never buffered: the server discards what is left unread.
    """
    environ = request.environ
    try:
        declared = environ.get("CONTENT_LENGTH", "")
        if declared.isdigit() and not environ.get("wsgi.input_terminated"):
            # The usual case, a plain Content-Length: refuse or read it in one go.
            size = int(declared)
            if size > limit:
                read_body(None, limit, size)  # raises BodyTooLargeError
            if not size:
                return b""
            try:
                data = environ["wsgi.input"].read(size)
            except Exception as exc:  # the server's reader: a broken upload
                raise UnreadableBodyError(f"request body could not be read: {type(exc).__name__}") from exc
            if len(data) != size:
                raise UnreadableBodyError("request body ended before its Content-Length")
            return data
        read_body(None, limit, request.content_length)
        return read_body(werkzeug.wsgi.get_input_stream(environ), limit)
    finally:
        environ["wsgi.input"] = io.BytesIO()
        environ["CONTENT_LENGTH"] = "0"
        environ.pop("wsgi.input_terminated", None)


def _refuse(exc: ChannelkitError, request, started: float):
    """Answer (and log) an error raised before the receiver ran."""
    status, outcome = status_for(exc), outcome_for(exc)
    # A bad setting is reported once per instance, loudly (channelkit.dispatch does it for
    # CHANNELKIT_HANDLER); each refused request still gets its own ordinary line.
    if isinstance(exc, ConfigError) and not isinstance(exc, HandlerConfigError):
        with _receiver_lock:
            first = str(exc) not in _reported
            _reported.add(str(exc))
        if first:
            logs.event(
                log,
                "CRITICAL",
                f"webhook misconfigured, answering 503 until fixed: {exc}",
                outcome=outcome,
                status=status,
            )
    logs.event(
        log,
        "WARNING" if status >= 500 else "INFO",
        f"request refused: {outcome}",
        outcome=outcome,
        status=status,
        method=str(request.method)[:16],
        reason=str(exc)[:300],
        latencyMs=_ms(started),
    )
    return _answer(status)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
