"""Hand accepted notifications to the application: its handler, a Pub/Sub topic, or the log.

``CHANNELKIT_HANDLER=package.module:function`` names the app's handler,
imported once per process and called as ``handle(notification, channel)``.
``CHANNELKIT_PUBSUB_TOPIC=projects/P/topics/T`` publishes one message per
notification. With both set, the message is published first and the handler
called second: a failure of either makes the delivery fail (503, retried by
Google), and since Pub/Sub is at-least-once anyway, a retry that publishes
again is harmless, whereas a handler must never run twice for one message.
With neither set, each notification is logged.

The renewal flow uses the same dispatcher to send its synthetic ``renewed``
notification::

    dispatcher = load_dispatcher()
    dispatcher.dispatch(notification, channel)     # raises a DispatchError on failure
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from typing import Any

from channelkit import config, logs
from channelkit.channel import Channel, Notification
from channelkit.errors import DispatchError, HandlerConfigError, HandlerError, PublishError

__all__ = [
    "Dispatcher",
    "clear_handler_cache",
    "load_dispatcher",
    "load_handler",
    "pubsub_attributes",
    "pubsub_payload",
]

Handler = Callable[[Notification, Channel], Any]

DEFAULT_PUBLISH_TIMEOUT = 10.0  # seconds to wait for Pub/Sub to acknowledge a publish

log = logs.get_logger(__name__)

_handlers: dict[str, Handler | HandlerConfigError] = {}
_handlers_lock = threading.Lock()


def clear_handler_cache() -> None:
    """Forget imported handlers and remembered failures (tests; a reloaded configuration)."""
    with _handlers_lock:
        _handlers.clear()


def _resolve(path: str, variable: str = "CHANNELKIT_HANDLER") -> Handler:
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise HandlerConfigError(f"{variable} must look like package.module:function, got {path!r}")
    module_name, attr = module_name.strip(), attr.strip()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module itself failed while importing
        raise HandlerConfigError(
            f"{variable}={path!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise HandlerConfigError(
                f"{variable}={path!r}: module {module_name!r} has no attribute {attr!r}"
            ) from exc
    if not callable(target):
        raise HandlerConfigError(f"{variable}={path!r}: {attr!r} is not callable")
    return target


def load_handler(path: str, variable: str = "CHANNELKIT_HANDLER") -> Handler:
    """The callable named ``package.module:function``, imported once per process.

    A path that cannot be used raises ``HandlerConfigError``; the failure is
    logged once, loudly, and remembered, so later calls fail fast and quietly.
    """
    with _handlers_lock:
        cached = _handlers.get(path)
        if cached is None:
            try:
                cached = _resolve(path, variable)
            except HandlerConfigError as exc:
                cached = exc
                logs.event(
                    log,
                    "CRITICAL",
                    f"channelkit handler misconfigured, every notification is answered 503 "
                    f"until this is fixed: {exc}",
                    outcome="handler_config_error",
                    handler=path,
                )
            _handlers[path] = cached
    if isinstance(cached, HandlerConfigError):
        raise HandlerConfigError(str(cached))
    return cached


def _subscription_fields(channel: Channel | None) -> dict[str, Any]:
    if channel is None:
        return {}
    return {
        "subscriptionId": channel.subscription_id,
        "api": channel.api,
        "version": channel.version,
        "method": channel.method,
        "methodParams": dict(channel.method_params or {}),
    }


def pubsub_payload(notification: Notification, channel: Channel | None) -> dict[str, Any]:
    """The JSON data of the Pub/Sub message: the notification and its subscription (no token)."""
    payload = notification.to_dict()
    payload.update(_subscription_fields(channel))
    payload.pop("token", None)
    return payload


def pubsub_attributes(notification: Notification, channel: Channel | None) -> dict[str, str]:
    """Message attributes (strings): type, channelId, messageNumber, state, subscriptionId, reason.

    ``type`` is ``lifecycle`` for the synthetic events (message number 0) and
    ``notification`` for Google's own.
    """
    values = {
        "type": "lifecycle" if notification.message_number == 0 else "notification",
        "channelId": notification.channel_id,
        "messageNumber": notification.message_number,
        "state": notification.state,
        "subscriptionId": channel.subscription_id if channel is not None else None,
        "reason": notification.reason,
    }
    return {k: str(v) for k, v in values.items() if v is not None and v != ""}


class Dispatcher:
    """Delivers one notification to the handler and/or the topic; raises ``DispatchError``.

    ``handler`` is a callable or a ``package.module:function`` path (imported
    on first use, once per process). ``publisher`` may be given (a
    ``google.cloud.pubsub_v1.PublisherClient``); otherwise one is created on the
    first publish, so that nothing network-bound exists before a worker forks.
    """

    def __init__(
        self,
        *,
        handler: Handler | str | None = None,
        topic: str | None = None,
        publisher: Any = None,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
    ):
        self._handler_path = handler if isinstance(handler, str) else None
        self._handler = None if isinstance(handler, str) else handler
        self.topic = topic
        self._publisher = publisher
        self._publisher_lock = threading.Lock()
        self.publish_timeout = publish_timeout

    @property
    def targets(self) -> list[str]:
        """What this dispatcher delivers to: ``handler``, ``pubsub``, or ``log``."""
        found = []
        if self.topic:
            found.append("pubsub")
        if self._handler is not None or self._handler_path:
            found.append("handler")
        return found or ["log"]

    def prepare(self) -> None:
        """Import the handler now; ``HandlerConfigError`` if the path is unusable."""
        self._resolve_handler()

    def _resolve_handler(self) -> Handler | None:
        if self._handler is None and self._handler_path:
            self._handler = load_handler(self._handler_path)
        return self._handler

    def __call__(self, notification: Notification, channel: Channel) -> None:
        self.dispatch(notification, channel)

    def dispatch(self, notification: Notification, channel: Channel) -> None:
        """Publish, then call the handler; log when neither is configured."""
        handler = self._resolve_handler()  # a bad path fails before anything is published
        if self.topic:
            self._publish(notification, channel)
        if handler is not None:
            try:
                handler(notification, channel)
            except Exception as exc:
                raise HandlerError(f"handler raised {type(exc).__name__}: {exc}"[:500]) from exc
        if not self.topic and handler is None:
            logs.event(
                log,
                "INFO",
                "notification received (no CHANNELKIT_HANDLER or CHANNELKIT_PUBSUB_TOPIC set)",
                outcome="logged",
                notification=notification.to_dict(),
                subscriptionId=channel.subscription_id if channel is not None else None,
            )

    # --- Pub/Sub --------------------------------------------------------------

    def _client(self) -> Any:
        with self._publisher_lock:
            if self._publisher is None:
                try:
                    import google.cloud.pubsub_v1 as pubsub_v1

                    self._publisher = pubsub_v1.PublisherClient()
                except Exception as exc:
                    raise PublishError(
                        f"cannot create the Pub/Sub client: {type(exc).__name__}: {exc}"
                    ) from exc
            return self._publisher

    def _publish(self, notification: Notification, channel: Channel) -> None:
        self.publish(pubsub_payload(notification, channel), pubsub_attributes(notification, channel))

    def publish(self, payload: dict[str, Any], attributes: dict[str, str]) -> None:
        """Publish one JSON message to the topic and wait for Pub/Sub to take it; ``PublishError``."""
        data = json.dumps(payload, separators=(",", ":")).encode()
        client = self._client()
        try:
            from google.api_core import retry as gretry

            retry = gretry.Retry(timeout=self.publish_timeout)
            future = client.publish(self.topic, data, retry=retry, timeout=self.publish_timeout, **attributes)
            future.result(timeout=self.publish_timeout)
        except Exception as exc:
            if isinstance(exc, DispatchError):
                raise
            raise PublishError(f"publish to {self.topic} failed: {type(exc).__name__}: {exc}"[:500]) from exc


def load_dispatcher(
    *,
    handler: str | None = None,
    topic: str | None = None,
    prepare: bool = True,
    settings: config.Settings | None = None,
) -> Dispatcher:
    """A Dispatcher from ``CHANNELKIT_HANDLER`` and ``CHANNELKIT_PUBSUB_TOPIC``.

    ``handler`` and ``topic`` win; then ``settings`` (already resolved: the
    environment is not read again); then the environment. With ``prepare``
    (the default) the handler is imported right away, so a misconfigured path
    raises ``HandlerConfigError`` here (a malformed topic raises ``ConfigError``).
    """
    environ: dict[str, str] | None = None  # None: the process environment
    if settings is not None:
        handler, topic = handler or settings.handler, topic or settings.pubsub_topic
        environ = {}  # resolved already: nothing to fall back to
    dispatcher = Dispatcher(
        handler=config.handler(handler, environ=environ),
        topic=config.pubsub_topic(topic, environ=environ),
    )
    if prepare:
        dispatcher.prepare()
    return dispatcher
