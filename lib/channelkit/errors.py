"""Every failure channelkit reports, as one tree of typed errors.

Callers catch the branch they care about; entry points map branches to HTTP
statuses or exit codes. Library errors (gRPC, googleapiclient) are wrapped at
one boundary each, with ``raise ... from exc``, so nothing raw leaks out.

    ChannelkitError
    ├── ConfigError                     bad setting (environment, argument)
    ├── InvalidNotificationError        a push request that is not a valid notification
    │   │                               (also googleapiclient.errors.InvalidNotificationError)
    │   ├── MissingHeaderError          a required X-Goog header is absent (also KeyError)
    │   ├── InvalidMessageNumberError   blank, or not a positive integer (also ValueError)
    │   ├── ChannelMismatchError        notification for another channel
    │   ├── TokenMismatchError          token absent or different
    │   └── ResourceMismatchError       resource id differs from the stored one
    ├── RequestError                    the HTTP request itself is unacceptable
    │   ├── MethodNotAllowedError       not POST
    │   ├── BodyTooLargeError           body over the limit
    │   └── UnreadableBodyError         body cannot be read (malformed chunks, broken upload)
    ├── ChannelStateError               the channel exists but cannot take this
    │   ├── ChannelGoneError            stopped, failed or expired
    │   ├── ChannelConflictError        a conditional update found another status
    │   └── InvalidTransitionError      a subscription's state does not allow this event
    ├── StoreError                      the channel store
    │   ├── StoreUnavailable            backend down or too slow (retry later)
    │   ├── ChannelNotFoundError        no channel with this id
    │   ├── ChannelExistsError          create-only write hit an existing id
    │   ├── SubscriptionNotFoundError   no subscription with this id
    │   └── SubscriptionExistsError     create-only write hit an existing subscription
    ├── CredentialsError                stored user credentials
    │   ├── CredentialNotFoundError     no stored credentials under this key (also KeyError)
    │   ├── CredentialDecryptError      altered, or sealed under a key no longer held
    │   └── CredentialInUseError        removal refused: subscriptions still use them
    ├── MessageInProgressError          the same message is being processed elsewhere
    ├── FanoutError                     renewal fan-out over Pub/Sub (renew-worker)
    │   ├── MalformedShardError         a shard message that is not a list of subscription ids
    │   │                               (also ValueError)
    │   └── ShardPublishError           publishing a shard to CHANNELKIT_RENEW_TOPIC failed
    ├── FeedError                       change feeds (sync)
    │   ├── UnsupportedFeedError        the watch method has no change feed (also ValueError)
    │   ├── SyncLeaseLostError          another sync took the subscription's sync lease
    │   ├── BadSyncRequestError         a message on CHANNELKIT_SYNC_TOPIC is not a sync request
    │   └── SyncIncompleteError         a requested sync did not finish; a retry may (Pub/Sub redelivers)
    ├── DispatchError                   handing a notification to the app failed
    │   ├── HandlerConfigError          CHANNELKIT_HANDLER cannot be imported
    │   ├── HandlerError                the app's handler raised
    │   └── PublishError                Pub/Sub publish failed
    └── GoogleApiError                  a call to a Google API failed
        ├── UnknownApiError             no bundled discovery document / method
        ├── InvalidRequestError         400: the request is wrong
        ├── AuthError                   401/403: credentials or permission
        ├── ResourceGoneError           404/410: the watched resource is gone
        └── TransientApiError           429/5xx/connection: try again later
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

__all__ = [
    "AuthError",
    "BadSyncRequestError",
    "BodyTooLargeError",
    "ChannelConflictError",
    "ChannelExistsError",
    "ChannelGoneError",
    "ChannelMismatchError",
    "ChannelNotFoundError",
    "ChannelStateError",
    "ChannelkitError",
    "ConfigError",
    "CredentialDecryptError",
    "CredentialInUseError",
    "CredentialNotFoundError",
    "CredentialsError",
    "DispatchError",
    "FanoutError",
    "FeedError",
    "GoogleApiError",
    "HandlerConfigError",
    "HandlerError",
    "InvalidMessageNumberError",
    "InvalidNotificationError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "MalformedShardError",
    "MessageInProgressError",
    "MethodNotAllowedError",
    "MissingHeaderError",
    "PublishError",
    "RequestError",
    "ResourceGoneError",
    "ResourceMismatchError",
    "ShardPublishError",
    "StoreError",
    "StoreUnavailable",
    "SubscriptionExistsError",
    "SubscriptionNotFoundError",
    "SyncIncompleteError",
    "SyncLeaseLostError",
    "TokenMismatchError",
    "TransientApiError",
    "UnknownApiError",
    "UnreadableBodyError",
    "UnsupportedFeedError",
]


class ChannelkitError(Exception):
    """Base of every error channelkit raises on purpose."""


class ConfigError(ChannelkitError, ValueError):
    """A setting (environment variable or argument) is invalid."""


# --- notifications -----------------------------------------------------------


class InvalidNotificationError(ChannelkitError):
    """The request is not a valid notification for the channel.

    Also a subclass of ``googleapiclient.errors.InvalidNotificationError``, so
    that code written against ``googleapiclient.channel`` keeps catching it: see
    ``_adopt_googleapiclient_base`` below.
    """


class MissingHeaderError(InvalidNotificationError, KeyError):
    """A required ``X-Goog-*`` header is missing (or blank).

    Also a ``KeyError``: ``googleapiclient.channel`` let the headers' ``KeyError``
    escape, and code written against it may still catch that.
    """

    def __init__(self, header: str):
        super().__init__(f"missing required header {header}")
        self.header = header

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InvalidMessageNumberError(InvalidNotificationError, ValueError):
    """``X-Goog-Message-Number`` is blank or not a positive integer.

    Also a ``ValueError``, which ``int()`` raised in ``googleapiclient.channel``.
    """


class ChannelMismatchError(InvalidNotificationError):
    """The notification names another channel id."""


class TokenMismatchError(InvalidNotificationError):
    """The channel token is absent or does not match (never shows either value)."""


class ResourceMismatchError(InvalidNotificationError):
    """The resource id differs from the one stored for the channel."""


# --- the HTTP request ---------------------------------------------------------


class RequestError(ChannelkitError):
    """The HTTP request cannot be a notification at all."""


class MethodNotAllowedError(RequestError):
    """Notifications are POSTed; anything else is refused."""


class BodyTooLargeError(RequestError):
    """The request body is over the configured limit."""


class UnreadableBodyError(RequestError):
    """The request body could not be read (malformed chunked encoding, a broken upload)."""


# --- channel state ------------------------------------------------------------


class ChannelStateError(ChannelkitError):
    """The channel exists but its state forbids the operation."""


class ChannelGoneError(ChannelStateError):
    """The channel is stopped, failed, or expired."""


class ChannelConflictError(ChannelStateError):
    """A conditional update found the channel in another status."""


class InvalidTransitionError(ChannelStateError):
    """The subscription's lifecycle state does not allow this event (``lifecycle.TRANSITIONS``)."""


# --- store --------------------------------------------------------------------


class StoreError(ChannelkitError):
    """The channel store failed or refused an operation."""


class StoreUnavailable(StoreError):
    """The store is down or did not answer within its time bound; retry later."""


class ChannelNotFoundError(StoreError, KeyError):
    """No channel with this id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "channel not found"


class ChannelExistsError(StoreError):
    """A create-only write found a channel with the same id."""


class SubscriptionNotFoundError(StoreError, KeyError):
    """No subscription with this id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "subscription not found"


class SubscriptionExistsError(StoreError):
    """A create-only write found a subscription with the same id."""


class CredentialsError(ChannelkitError):
    """Stored user credentials cannot be used as asked."""


class CredentialNotFoundError(CredentialsError, KeyError):
    """No stored credentials under this key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "credentials not found"


class CredentialDecryptError(CredentialsError):
    """A sealed secret was altered, or sealed under a key ``CHANNELKIT_CREDENTIALS_KEY`` no longer holds."""


class CredentialInUseError(CredentialsError):
    """Credentials are still used by subscriptions (stop them first, or ``--stop``)."""


class MessageInProgressError(ChannelkitError):
    """Another delivery of the same message is being processed right now."""


# --- renewal fan-out ----------------------------------------------------------


class FanoutError(ChannelkitError):
    """Renewal fan-out (``channelkit.renewal.fanout``): a shard cannot be sent or read."""


class MalformedShardError(FanoutError, ValueError):
    """A shard message is not what ``ShardPublisher`` sends (JSON with a list of subscription ids)."""


class ShardPublishError(FanoutError):
    """Publishing a renewal shard to ``CHANNELKIT_RENEW_TOPIC`` failed (retry later)."""


# --- change feeds -------------------------------------------------------------


class FeedError(ChannelkitError):
    """A change feed (``channelkit.sync``) cannot run as asked."""


class UnsupportedFeedError(FeedError, ValueError):
    """The watch method has no change feed, or its parameters cannot be kept by one."""


class SyncLeaseLostError(FeedError):
    """Another sync took the subscription's sync lease (ours had lapsed): this one stops."""


class BadSyncRequestError(FeedError):
    """A message on ``CHANNELKIT_SYNC_TOPIC`` that is not a sync request: acknowledged, never retried."""


class SyncIncompleteError(FeedError):
    """A requested sync stopped where a retry may go on (store down, Google's 5xx, the budget spent,
    the change handler raised): the ``sync`` function raises it so that Pub/Sub redelivers."""


# --- dispatch -----------------------------------------------------------------


class DispatchError(ChannelkitError):
    """The notification could not be handed to the application."""


class HandlerConfigError(DispatchError, ConfigError):
    """``CHANNELKIT_HANDLER`` does not name an importable callable."""


class HandlerError(DispatchError):
    """The application's handler raised."""


class PublishError(DispatchError):
    """Publishing to the Pub/Sub topic failed."""


# --- Google APIs --------------------------------------------------------------


class GoogleApiError(ChannelkitError):
    """A call to a Google API failed. ``status`` is the HTTP status, if any."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        location: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.reason = reason
        #: The request parameter Google names as at fault (``pageToken``), when it names one.
        self.location = location


class UnknownApiError(GoogleApiError):
    """No bundled discovery document for the API, or no such method."""


class InvalidRequestError(GoogleApiError):
    """Google answered 400: the request itself is wrong."""


class AuthError(GoogleApiError):
    """Google answered 401/403: credentials or permission."""


class ResourceGoneError(GoogleApiError):
    """Google answered 404/410: the watched resource (or channel) is gone."""


class TransientApiError(GoogleApiError):
    """429, 5xx or a broken connection, after the client's retries: try later."""


# --- googleapiclient compatibility, without importing it ------------------------------
#
# The webhook never needs googleapiclient, and importing it costs every cold start.
# Code that catches googleapiclient.errors.InvalidNotificationError must import that
# module first, so our InvalidNotificationError takes googleapiclient's class as a second
# base at that moment: now if it is already imported, else as soon as it is.

_GAPI_ERRORS = "googleapiclient.errors"


def _adopt_googleapiclient_base(module) -> None:
    base = getattr(module, "InvalidNotificationError", None)
    if isinstance(base, type) and not issubclass(InvalidNotificationError, base):
        InvalidNotificationError.__bases__ = (ChannelkitError, base)


class _AdoptOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loading of googleapiclient.errors, once."""

    def find_spec(self, name, path=None, target=None):
        if name != _GAPI_ERRORS:
            return None
        _uninstall()
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        load = loader.exec_module

        def exec_module(module):
            load(module)
            _adopt_googleapiclient_base(module)

        loader.exec_module = exec_module
        return spec


_FINDER = _AdoptOnImport()


def _uninstall() -> None:
    try:
        sys.meta_path.remove(_FINDER)
    except ValueError:
        pass


if _GAPI_ERRORS in sys.modules:
    _adopt_googleapiclient_base(sys.modules[_GAPI_ERRORS])
else:
    sys.meta_path.insert(0, _FINDER)
