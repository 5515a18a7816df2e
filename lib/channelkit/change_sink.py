"""Hand a batch of changes to the app: ``CHANNELKIT_CHANGE_HANDLER`` and/or the Pub/Sub topic.

``fn(batch, subscription)``: returning means processed, raising means not
(the sync then stops, and the batch is offered again from the same cursor).
With ``CHANNELKIT_PUBSUB_TOPIC`` each batch is also published (attributes
``type=changes``, ``subscriptionId``, ``resync``) through the same publisher
as notifications, before the handler is called: Pub/Sub is at-least-once
anyway, whereas the handler must not see a batch twice for one success.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channelkit import config
from channelkit.dispatch import Dispatcher, load_handler
from channelkit.errors import ConfigError, HandlerError
from channelkit.feeds import Batch
from channelkit.subscription import Subscription

__all__ = [
    "ChangeSink",
    "batch_attributes",
    "batch_payload",
    "load_change_sink",
]

ChangeHandler = Callable[[Batch, Subscription], Any]


def batch_payload(batch: Batch, subscription: Subscription) -> dict[str, Any]:
    """The JSON data of a batch's Pub/Sub message: the batch and what its subscription watches."""
    payload = batch.to_json()
    payload.update(
        api=subscription.api,
        version=subscription.version,
        method=subscription.method,
        methodParams=dict(subscription.method_params),
    )
    return payload


def batch_attributes(batch: Batch) -> dict[str, str]:
    return {
        "type": "changes",
        "subscriptionId": batch.subscription_id,
        "resync": "true" if batch.resync else "false",
        "resyncComplete": "true" if batch.resync_complete else "false",
    }


class ChangeSink:
    """Where batches go: a handler (callable or ``module:function``) and/or a topic."""

    def __init__(
        self,
        *,
        handler: ChangeHandler | str | None = None,
        topic: str | None = None,
        publisher: Any = None,
    ):
        if handler is None and topic is None:
            raise ConfigError("a sync needs CHANNELKIT_CHANGE_HANDLER or CHANNELKIT_PUBSUB_TOPIC")
        self._path = handler if isinstance(handler, str) else None
        self._handler = None if isinstance(handler, str) else handler
        self._topic = Dispatcher(topic=topic, publisher=publisher) if topic else None

    def prepare(self) -> None:
        """Import the handler now (``HandlerConfigError`` if the path is unusable)."""
        if self._handler is None and self._path:
            loaded: Any = load_handler(self._path, "CHANNELKIT_CHANGE_HANDLER")
            self._handler = loaded

    def deliver(self, batch: Batch, subscription: Subscription) -> None:
        """Publish, then call the handler; a ``DispatchError`` when either failed."""
        self.prepare()
        if self._topic is not None:
            self._topic.publish(batch_payload(batch, subscription), batch_attributes(batch))
        if self._handler is not None:
            try:
                self._handler(batch, subscription)
            except Exception as exc:
                raise HandlerError(f"change handler raised {type(exc).__name__}: {exc}"[:500]) from exc


def load_change_sink(settings: config.Settings | None = None) -> ChangeSink | None:
    """The app's sink from the settings (else the environment); None when neither is set."""
    if settings is not None:
        handler, topic = settings.change_handler, settings.pubsub_topic
    else:
        handler, topic = config.change_handler(), config.pubsub_topic()
    if handler is None and topic is None:
        return None
    return ChangeSink(handler=handler, topic=topic)
