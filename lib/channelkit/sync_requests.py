"""Sync requests: the webhook asks the ``sync`` function, over Pub/Sub, to sync a subscription.

With ``CHANNELKIT_SYNC_TOPIC`` set, the webhook does not sync a ``--sync``
subscription inside the request: once the notification is marked done it
publishes "sync subscription S" there (``SyncRequests.request``) and answers.
The ``sync`` Cloud Function (``functions/sync.py``), triggered by the topic,
reads the message back (``subscription_of``) and hands it to ``run_requested``,
which runs the very ``channelkit.sync.sync`` the inline path runs and says what
Pub/Sub should do with the message: return (acknowledge) or raise
``SyncIncompleteError`` (redeliver, with the trigger's retry policy).

The message: data ``{"subscriptionId": "S"}`` (JSON), attributes ``type=sync``
and ``subscriptionId``. Nothing else, no token: the subscription record holds
all a sync needs. A failed publish never changes the webhook's answer (the
caller logs it); the renewal run's backstop syncs what no request reached.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from channelkit import config
from channelkit.dispatch import DEFAULT_PUBLISH_TIMEOUT, Dispatcher
from channelkit.errors import (
    BadSyncRequestError,
    FeedError,
    StoreUnavailable,
    SubscriptionNotFoundError,
    SyncIncompleteError,
)

if TYPE_CHECKING:  # the webhook imports this module; the sync flow only the sync function needs
    from channelkit.sync import SyncResult

__all__ = [
    "MAX_SUBSCRIPTION_ID",
    "SYNC_TYPE",
    "SyncRequests",
    "load_sync_requests",
    "request_attributes",
    "request_payload",
    "retried",
    "run_requested",
    "subscription_of",
]

#: The ``type`` attribute of a sync request.
SYNC_TYPE = "sync"

#: Longest subscription id a request may carry (a Firestore document id's limit, in characters).
MAX_SUBSCRIPTION_ID = 1500


def request_payload(subscription_id: str) -> dict[str, Any]:
    """The JSON data of a sync request."""
    return {"subscriptionId": subscription_id}


def request_attributes(subscription_id: str) -> dict[str, str]:
    """The attributes of a sync request: ``type=sync``, ``subscriptionId``."""
    return {"type": SYNC_TYPE, "subscriptionId": subscription_id}


class SyncRequests:
    """Publishes sync requests to one topic, through a ``Dispatcher``'s publisher.

    ``publisher`` may be given (a ``google.cloud.pubsub_v1.PublisherClient``);
    otherwise one is created on the first request, as for notifications.
    """

    def __init__(
        self, topic: str, *, publisher: Any = None, publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT
    ):
        self.topic = topic
        self._publisher = Dispatcher(topic=topic, publisher=publisher, publish_timeout=publish_timeout)

    def request(self, subscription_id: str) -> None:
        """Publish "sync subscription ``subscription_id``"; ``PublishError`` when Pub/Sub did not take it."""
        self._publisher.publish(request_payload(subscription_id), request_attributes(subscription_id))


def load_sync_requests(settings: config.Settings | None = None) -> SyncRequests | None:
    """A ``SyncRequests`` on ``CHANNELKIT_SYNC_TOPIC`` (from ``settings``, else the environment); None when unset."""
    topic = settings.sync_topic if settings is not None else config.sync_topic()
    return SyncRequests(topic) if topic else None


def subscription_of(event_data: Any) -> str:
    """The subscription id of a sync request, from a Pub/Sub CloudEvent's ``data``.

    ``event_data`` is ``{"message": {"data": base64, "attributes": {...}, ...}, ...}``
    (Eventarc's ``google.cloud.pubsub.topic.v1.messagePublished``, and what
    functions-framework makes of a plain Pub/Sub push). Anything that is not a
    sync request raises ``BadSyncRequestError``: no retry could change it.
    """
    message = event_data.get("message") if isinstance(event_data, Mapping) else None
    if not isinstance(message, Mapping):
        raise BadSyncRequestError("not a Pub/Sub message")
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise BadSyncRequestError("message attributes are not a map")
    kind = attributes.get("type")
    if kind is not None and kind != SYNC_TYPE:
        raise BadSyncRequestError(f"message type {str(kind)[:40]!r}, not {SYNC_TYPE!r}")
    try:
        body = json.loads(base64.b64decode(message.get("data") or "", validate=True))
    except (TypeError, ValueError, binascii.Error):  # binascii.Error is a ValueError; said for clarity
        raise BadSyncRequestError("message data is not base64 of a JSON object") from None
    subscription_id = body.get("subscriptionId") if isinstance(body, dict) else None
    if not isinstance(subscription_id, str) or not subscription_id.strip():
        raise BadSyncRequestError("message data has no subscriptionId")
    if len(subscription_id) > MAX_SUBSCRIPTION_ID or not subscription_id.isprintable():
        raise BadSyncRequestError("subscriptionId is not a subscription id")
    named = attributes.get("subscriptionId")
    if named is not None and named != subscription_id:
        raise BadSyncRequestError("the subscriptionId attribute and the data disagree")
    return subscription_id


def retried(result: SyncResult) -> bool:
    """Whether a retry may go on where this sync stopped.

    Yes when the budget ran out (``out_of_time``), the change handler raised
    (``handler_failed``: its batch is offered again), or Google refused for a
    while (``failed`` on a 429, a 5xx or a broken connection, left over after
    the client's own retries). No for the rest: ``done``; ``held`` (the sync
    that holds the lease makes one more pass); ``lease_lost`` (another sync
    holds it now); ``inactive``; ``nothing``; and a lasting refusal (401, 403,
    404), which went to the subscription's lifecycle.
    """
    from channelkit.sync import FAILED, HANDLER_FAILED, OUT_OF_TIME

    return result.outcome in (OUT_OF_TIME, HANDLER_FAILED) or (result.outcome == FAILED and result.transient)


def run_requested(subscription_id: str, **parts: Any) -> SyncResult:
    """Run ``channelkit.sync.sync(subscription_id, **parts)`` for a sync request; its ``SyncResult``.

    Raises ``SyncIncompleteError`` when a retry may go on (``retried``, or the
    store unavailable), and ``BadSyncRequestError`` for a subscription that is
    unknown or was not made with ``--sync`` (acknowledged: its record is written
    once ``watch`` returned, so the next notification syncs). Other errors (a
    setting that cannot work) are raised as they are.
    """
    from channelkit import sync as sync_flow  # looked up at the call: the one function both paths run

    try:
        result = sync_flow.sync(subscription_id, **parts)
    except StoreUnavailable as exc:
        raise SyncIncompleteError(f"store unavailable: {exc}"[:500]) from exc
    except (SubscriptionNotFoundError, FeedError) as exc:
        raise BadSyncRequestError(str(exc)[:500]) from exc
    if retried(result):
        raise SyncIncompleteError(f"sync stopped: {result.outcome}: {result.error or ''}"[:500])
    return result
