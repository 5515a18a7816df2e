"""Push channels and the notifications they carry; pure logic, no I/O.

A drop-in replacement for ``googleapiclient.channel``: the same names, argument
order, ``body()`` keys and ``update()`` semantics, so code written against that
module works when only the import changes. Its known defects are fixed:

* ``expiration`` is always an ``int`` of milliseconds since the Unix epoch (or
  ``None``/0 when unset): from ``new_webhook_channel``, after ``update()`` with
  Google's string form, and in ``body()``. Timezone-aware datetimes are
  accepted; naive ones are read as UTC. ``Channel.expires_at`` gives an aware
  datetime.
* a missing header raises ``MissingHeaderError`` naming it, an
  ``InvalidNotificationError`` that is also the ``KeyError`` the old module let
  escape; a message number must be a positive integer, else
  ``InvalidMessageNumberError`` (also a ``ValueError``, as ``int()`` raised);
* the channel token is checked, in constant time;
* ``X-Goog-Channel-Token``, ``X-Goog-Channel-Expiration``, ``X-Goog-Changed``
  and the body are kept on the ``Notification``.

Example: subscribing, then checking each notification::

    channel = new_webhook_channel("https://example.com/webhook", token="s3cret")
    resp = service.files().watch(fileId=FILE_ID, body=channel.body()).execute()
    channel.update(resp)

    n = notification_from_headers(channel, request.headers, request.get_data())
    if n.is_sync:
        ...                     # the channel is live
    elif n.state == "update":
        ...                     # n.changed says what changed, e.g. ("content",)

    service.channels().stop(body=channel.body()).execute()
"""

from __future__ import annotations

import datetime
import email.utils
import functools
import hmac
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from channelkit.errors import (
    ChannelMismatchError,
    InvalidMessageNumberError,
    InvalidNotificationError,
    MissingHeaderError,
    ResourceMismatchError,
    TokenMismatchError,
)

__all__ = [
    "CHANNEL_PARAMS",
    "EPOCH",
    "X_GOOG_CHANGED",
    "X_GOOG_CHANNEL_EXPIRATION",
    "X_GOOG_CHANNEL_ID",
    "X_GOOG_CHANNEL_TOKEN",
    "X_GOOG_MESSAGE_NUMBER",
    "X_GOOG_RESOURCE_ID",
    "X_GOOG_RESOURCE_STATE",
    "X_GOOG_RESOURCE_URI",
    "Channel",
    "InvalidNotificationError",
    "Notification",
    "check_against_channel",
    "from_header_map",
    "new_webhook_channel",
    "notification_from_headers",
    "parse_header_map",
    "to_millis",
    "validate_channel_id",
    "validate_token",
]

#: Naive, as in googleapiclient (kept for compatibility); arithmetic here uses UTC_EPOCH.
EPOCH = datetime.datetime(1970, 1, 1)
UTC_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

#: Watch request/response JSON name -> Channel attribute name.
CHANNEL_PARAMS = {
    "address": "address",
    "id": "id",
    "expiration": "expiration",
    "params": "params",
    "resourceId": "resource_id",
    "resourceUri": "resource_uri",
    "type": "type",
    "token": "token",
}

X_GOOG_CHANNEL_ID = "X-GOOG-CHANNEL-ID"
X_GOOG_MESSAGE_NUMBER = "X-GOOG-MESSAGE-NUMBER"
X_GOOG_RESOURCE_STATE = "X-GOOG-RESOURCE-STATE"
X_GOOG_RESOURCE_URI = "X-GOOG-RESOURCE-URI"
X_GOOG_RESOURCE_ID = "X-GOOG-RESOURCE-ID"
X_GOOG_CHANNEL_TOKEN = "X-GOOG-CHANNEL-TOKEN"
X_GOOG_CHANNEL_EXPIRATION = "X-GOOG-CHANNEL-EXPIRATION"
X_GOOG_CHANGED = "X-GOOG-CHANGED"

#: Sent on every notification, in the order they are checked.
REQUIRED_HEADERS = (
    X_GOOG_CHANNEL_ID,
    X_GOOG_MESSAGE_NUMBER,
    X_GOOG_RESOURCE_ID,
    X_GOOG_RESOURCE_STATE,
    X_GOOG_RESOURCE_URI,
)
_GOOGLE_SPELLING = {
    X_GOOG_CHANNEL_ID: "X-Goog-Channel-ID",
    X_GOOG_MESSAGE_NUMBER: "X-Goog-Message-Number",
    X_GOOG_RESOURCE_ID: "X-Goog-Resource-ID",
    X_GOOG_RESOURCE_STATE: "X-Goog-Resource-State",
    X_GOOG_RESOURCE_URI: "X-Goog-Resource-URI",
    X_GOOG_CHANNEL_TOKEN: "X-Goog-Channel-Token",
    X_GOOG_CHANNEL_EXPIRATION: "X-Goog-Channel-Expiration",
    X_GOOG_CHANGED: "X-Goog-Changed",
}
#: The eight X-Goog names, required ones first, in upper case and as Google spells them.
_SPELLINGS = (tuple(_GOOGLE_SPELLING.values()), tuple(_GOOGLE_SPELLING))
#: The same names as PEP 3333 (WSGI) keys them in the request environ.
_WSGI_NAMES = tuple("HTTP_" + name.replace("-", "_") for name in _GOOGLE_SPELLING)

MAX_CHANNEL_ID_LENGTH = 64
MAX_TOKEN_LENGTH = 256
MAX_MESSAGE_NUMBER = 2**63 - 1  # int64, like every Google message number
_CHANNEL_ID_RE = re.compile(r"[A-Za-z0-9\-_+/=]{1,64}")


def to_millis(value: Any) -> int | None:
    """Milliseconds since the Unix epoch from an int, digit string, float or datetime.

    ``None`` stays ``None``. Naive datetimes are read as UTC.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("expiration must be milliseconds or a datetime, not bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isascii() and text.lstrip("-").isdigit():
            return int(text)
        raise ValueError(f"expiration is not a number of milliseconds: {value!r}")
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        delta = value - UTC_EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    raise TypeError(f"expiration must be milliseconds or a datetime, not {type(value).__name__}")


def from_millis(ms: int | None) -> datetime.datetime | None:
    """Aware UTC datetime from milliseconds; ``None`` (or 0, "unset") gives ``None``."""
    if not ms:
        return None
    return UTC_EPOCH + datetime.timedelta(milliseconds=ms)


def validate_channel_id(channel_id: str) -> str:
    """Return ``channel_id`` if Google accepts it (≤ 64 of ``[A-Za-z0-9-_+/=]``)."""
    if not isinstance(channel_id, str) or not _CHANNEL_ID_RE.fullmatch(channel_id):
        raise ValueError(f"channel id must be 1-{MAX_CHANNEL_ID_LENGTH} characters of A-Z a-z 0-9 - _ + / =")
    return channel_id


def validate_token(token: str | None) -> str | None:
    """Return ``token`` if it fits Google's limit of 256 characters."""
    if token is None:
        return None
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"token must be 1-{MAX_TOKEN_LENGTH} characters")
    return token


def new_token() -> str:
    """A random channel token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


_new_object = object.__new__


class Notification:
    """One push notification, checked against its channel.

    The first four arguments are those of ``googleapiclient.channel.Notification``;
    the rest are keyword-only additions.
    """

    # Set lazily: the raw optional headers, and their parsed forms once read (see below).
    _expiration_header: str | None
    _changed_header: str | None
    _channel_expiration: datetime.datetime | None
    _changed: tuple[str, ...]
    #: Lifecycle events only (message number 0): why a subscription was suspended.
    reason: str | None = None

    def __init__(
        self,
        message_number,
        state,
        resource_uri,
        resource_id,
        *,
        channel_id: str | None = None,
        token: str | None = None,
        channel_expiration: datetime.datetime | None = None,
        changed: tuple[str, ...] = (),
        body: bytes = b"",
        reason: str | None = None,
    ):
        self.message_number = message_number
        self.state = state
        self.resource_uri = resource_uri
        self.resource_id = resource_id
        self.channel_id = channel_id
        self.token = token
        self.channel_expiration = channel_expiration
        self.changed = tuple(changed)
        self.body = body
        if reason is not None:
            self.reason = reason

    # notification_from_headers leaves the two optional headers as text, parsed on first
    # use: most handlers never read them, and the webhook should not pay for them.

    @property
    def channel_expiration(self) -> datetime.datetime | None:
        """``X-Goog-Channel-Expiration`` as an aware datetime (None when absent or unreadable)."""
        try:
            return self._channel_expiration
        except AttributeError:
            self._channel_expiration = parse_http_date(self._expiration_header)
            return self._channel_expiration

    @channel_expiration.setter
    def channel_expiration(self, value: datetime.datetime | None) -> None:
        self._channel_expiration = value

    @property
    def changed(self) -> tuple[str, ...]:
        """``X-Goog-Changed`` as a tuple (``("content", "properties")``; () when absent)."""
        try:
            return self._changed
        except AttributeError:
            self._changed = parse_changed(self._changed_header)
            return self._changed

    @changed.setter
    def changed(self, value: tuple[str, ...]) -> None:
        self._changed = tuple(value)

    @property
    def is_sync(self) -> bool:
        """True for the first message of every channel (``state == "sync"``)."""
        return self.state == "sync"

    @property
    def resource_state(self) -> str:
        """Alias of ``state``: googleapiclient's docstring used this name."""
        return self.state

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, without the token (never forwarded or logged)."""
        result = {
            "channelId": self.channel_id,
            "messageNumber": self.message_number,
            "state": self.state,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
            "channelExpiration": (self.channel_expiration.isoformat() if self.channel_expiration else None),
            "changed": list(self.changed),
            "body": self.body.decode("utf-8", "replace") if self.body else "",
        }
        if self.reason is not None:
            result["reason"] = self.reason
        return result

    def __repr__(self) -> str:
        return (
            f"Notification(channel_id={self.channel_id!r}, message_number={self.message_number!r},"
            f" state={self.state!r}, resource_id={self.resource_id!r})"
        )

    _FIELDS = (
        "message_number",
        "state",
        "resource_uri",
        "resource_id",
        "channel_id",
        "token",
        "channel_expiration",
        "changed",
        "body",
        "reason",
    )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Notification):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class Channel:
    """A notification channel: Google's fields, plus, once stored, its subscription.

    ``Channel(type, id, token, address, expiration=None, params=None,
    resource_id="", resource_uri="")`` as in googleapiclient; the subscription
    fields (``api``, ``version``, ``method``, ``method_params``,
    ``subscription_id``, ``status``, ...) are keyword-only and default to None.
    """

    # The subscription fields a stored channel carries beside Google's (keyword-only, default
    # None). This list is SUBSCRIPTION_FIELDS, below: the one place they are named.
    api: str | None
    version: str | None
    method: str | None
    method_params: dict[str, Any] | None
    subscription_id: str | None
    status: str | None
    created_at: datetime.datetime | None
    renews: str | None
    renewed_by: str | None
    lease_until: int | None
    lease_owner: str | None
    last_error: str | None
    stop_pending: bool | None
    stopped_at: int | None
    held: bool | None
    credentials: str | None
    sync: bool | None

    def __init__(
        self,
        type,
        id,
        token,
        address,
        expiration=None,
        params=None,
        resource_id="",
        resource_uri="",
        **subscription: Any,
    ):
        unknown = set(subscription) - set(SUBSCRIPTION_FIELDS)
        if unknown:
            raise TypeError(f"unexpected Channel argument(s): {', '.join(sorted(unknown))}")
        self.type = type
        self.id = id
        self.token = token
        self.address = address
        self.expiration = expiration
        self.params = params
        self.resource_id = resource_id
        self.resource_uri = resource_uri
        for name in SUBSCRIPTION_FIELDS:
            setattr(self, name, subscription.get(name))

    @property
    def expiration(self) -> int | None:
        """Expiration in ms since the Unix epoch (int), whatever form it was set in."""
        return self._expiration

    @expiration.setter
    def expiration(self, value: Any) -> None:
        self._expiration = to_millis(value)

    @property
    def expires_at(self) -> datetime.datetime | None:
        """Expiration as an aware UTC datetime, or None when unset."""
        return from_millis(self._expiration)

    def body(self) -> dict[str, Any]:
        """The body for a ``watch()`` or ``channels.stop()`` call.

        ``expiration`` is the int of ms; googleapiclient serializes it as JSON.
        """
        result = {
            "id": self.id,
            "token": self.token,
            "type": self.type,
            "address": self.address,
        }
        if self.params:
            result["params"] = self.params
        if self.resource_id:
            result["resourceId"] = self.resource_id
        if self.resource_uri:
            result["resourceUri"] = self.resource_uri
        if self.expiration:
            result["expiration"] = self.expiration
        return result

    def update(self, resp: Mapping[str, Any]) -> None:
        """Take the fields Google returned from ``watch()`` (non-None values only)."""
        for json_name, attr in CHANNEL_PARAMS.items():
            value = resp.get(json_name)
            if value is not None:
                setattr(self, attr, value)

    def copy(self, **changes: Any) -> Channel:
        """A new Channel with the same fields, some replaced."""
        fields = {
            "type": self.type,
            "id": self.id,
            "token": self.token,
            "address": self.address,
            "expiration": self.expiration,
            "params": dict(self.params) if self.params else self.params,
            "resource_id": self.resource_id,
            "resource_uri": self.resource_uri,
        }
        for name in SUBSCRIPTION_FIELDS:
            fields[name] = getattr(self, name)
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unexpected Channel field(s): {', '.join(sorted(unknown))}")
        fields.update(changes)
        return Channel(**fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Channel):
            return NotImplemented
        return vars(self) == vars(other)

    def __repr__(self) -> str:  # never shows the token
        return (
            f"Channel(id={self.id!r}, type={self.type!r}, address={self.address!r},"
            f" expiration={self.expiration!r}, resource_id={self.resource_id!r},"
            f" status={self.status!r})"
        )


#: Subscription fields a stored channel carries beside Google's channel fields.
SUBSCRIPTION_FIELDS: tuple[str, ...] = tuple(Channel.__annotations__)


def header_map(headers: Any) -> dict[str, str]:
    """Upper-cased header names -> values; accepts dicts, Werkzeug headers, lists of pairs."""
    environ = getattr(headers, "environ", None)
    if type(environ) is dict:  # Werkzeug's request.headers: read the WSGI environ itself
        items = [
            (key[5:].replace("_", "-"), value) for key, value in environ.items() if key.startswith("HTTP_")
        ]
        items += [
            (key.replace("_", "-"), environ[key])
            for key in ("CONTENT_LENGTH", "CONTENT_TYPE")
            if environ.get(key)
        ]
    else:
        items = headers.items() if hasattr(headers, "items") else headers
    result: dict[str, str] = {}
    for name, value in items:
        result[str(name).upper()] = _text(value)
    return result


def _text(value: Any) -> str:
    """A header value as text (bytes are Latin-1, as HTTP/1.1 carries them)."""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise MissingHeaderError(name)
    if not value.strip():
        if name == X_GOOG_MESSAGE_NUMBER:  # int("") raised ValueError in googleapiclient
            raise InvalidMessageNumberError("message number is blank, not a positive integer")
        raise MissingHeaderError(name)
    return value.strip()


def parse_message_number(value: str) -> int:
    """A positive int64 from ASCII digits; anything else is invalid."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise InvalidMessageNumberError("message number is not a positive integer")
    number = int(text)
    if number < 1 or number > MAX_MESSAGE_NUMBER:
        raise InvalidMessageNumberError("message number is not a positive integer")
    return number


def parse_http_date(value: str | None) -> datetime.datetime | None:
    """An aware datetime from an HTTP date, or None when absent or unreadable."""
    if not value:
        return None
    return _parse_http_date(value)


@functools.lru_cache(maxsize=1024)
def _parse_http_date(value: str) -> datetime.datetime | None:
    # Every notification of a channel carries the same expiration header: parse it once.
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def parse_changed(value: str | None) -> tuple[str, ...]:
    """``X-Goog-Changed`` ("content,properties" or "content, properties") as a tuple."""
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a channel without a token accepts any."""
    if not expected:
        return True
    if given is None:
        return False
    return _equal(expected, given)


def _equal(expected: str, given: str) -> bool:
    """Constant-time string equality (ASCII compared as is, anything else as UTF-8)."""
    try:
        return hmac.compare_digest(expected, given)
    except TypeError:  # non-ASCII text
        return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def notification_from_headers(channel: Channel, headers: Any, body: bytes = b"") -> Notification:
    """Check a push request's headers against ``channel``; return its Notification.

    Header names are case-insensitive. Raises ``InvalidNotificationError`` (or a
    subclass) for a missing header, another channel's id, a message number that
    is not a positive integer, a token that is absent or wrong when the channel
    has one, or a resource id that differs from the channel's known one.
    """
    # This runs on every request. A dict keyed exactly as Google spells the headers (or
    # in upper case) and holding nothing else is read in place, as is Werkzeug's
    # request.headers (from its WSGI environ); anything else is rebuilt upper-cased.
    if type(headers) is dict:
        for names in _SPELLINGS:
            try:
                values = (
                    headers[names[0]],
                    headers[names[1]],
                    headers[names[2]],
                    headers[names[3]],
                    headers[names[4]],
                )
            except KeyError:
                continue
            extra = len(headers) - 5
            if not extra:
                return _checked(channel, values, None, None, None, body)
            get = headers.get
            token, expiration, changed = get(names[5]), get(names[6]), get(names[7])
            if extra == (token is not None) + (expiration is not None) + (changed is not None):
                return _checked(channel, values, token, expiration, changed, body)
            break
    else:
        environ = getattr(headers, "environ", None)
        if type(environ) is dict:  # Werkzeug's request.headers: read the WSGI environ itself
            get = environ.get
            return _checked(
                channel,
                tuple(map(get, _WSGI_NAMES[:5])),
                get(_WSGI_NAMES[5]),
                get(_WSGI_NAMES[6]),
                get(_WSGI_NAMES[7]),
                body,
            )
    try:
        upper = {name.upper(): value for name, value in headers.items()}
    except AttributeError:
        upper = header_map(headers)
    return from_header_map(channel, upper, body)


def from_header_map(channel: Channel, upper: Mapping[str, Any], body: Any = b"") -> Notification:
    """``notification_from_headers`` for headers already keyed in upper case (see ``header_map``)."""
    return _from_upper(channel, upper, body)


def parse_header_map(upper: Mapping[str, Any], body: Any = b"") -> Notification:
    """The notification the headers describe, checked against no channel (headers keyed in upper case).

    Raises ``InvalidNotificationError`` for a missing header or a bad message
    number. Its token and resource id are checked later, once, against the
    channel it names (``check_against_channel``): the webhook parses a request
    once and reads the store only for a well-formed one.
    """
    return _from_upper(None, upper, body)


def _from_upper(channel: Channel | None, upper: Mapping[str, Any], body: Any) -> Notification:
    get = upper.get
    values = (
        get(X_GOOG_CHANNEL_ID),
        get(X_GOOG_MESSAGE_NUMBER),
        get(X_GOOG_RESOURCE_ID),
        get(X_GOOG_RESOURCE_STATE),
        get(X_GOOG_RESOURCE_URI),
    )
    return _checked(
        channel, values, get(X_GOOG_CHANNEL_TOKEN), get(X_GOOG_CHANNEL_EXPIRATION), get(X_GOOG_CHANGED), body
    )


def check_against_channel(channel: Channel, notification: Notification) -> Notification:
    """``notification`` (from ``parse_header_map``) if it belongs to ``channel``: id, token, resource id.

    The same checks as ``notification_from_headers``, without parsing again.
    """
    if channel.id != notification.channel_id:
        raise ChannelMismatchError("notification is for another channel")
    expected = channel.token
    token = notification.token
    if expected and (token is None or not _equal(expected, token)):
        raise TokenMismatchError("channel token is missing or does not match")
    if channel.resource_id and not _equal(channel.resource_id, notification.resource_id):
        raise ResourceMismatchError("resource id does not match the channel")
    return notification


def _checked(channel, values, token, expiration, changed, body) -> Notification:
    """Judge the five required values (Google's order: id, number, resource id, state, URI).

    ``channel`` None checks the values alone (``parse_header_map``).
    """
    channel_id, number, resource_id, state, uri = values
    if not (type(channel_id) is type(number) is type(resource_id) is type(state) is type(uri) is str):
        # Missing headers or bytes values: the slow, thorough way.
        upper = {name: _text(value) for name, value in zip(REQUIRED_HEADERS, values) if value is not None}
        for name in REQUIRED_HEADERS:
            _required(upper, name)
        channel_id, number, resource_id, state, uri = map(upper.get, REQUIRED_HEADERS)
    channel_id, number, resource_id = channel_id.strip(), number.strip(), resource_id.strip()
    state, uri = state.strip(), uri.strip()
    if not (channel_id and number and resource_id and state and uri):
        upper = dict(zip(REQUIRED_HEADERS, (channel_id, number, resource_id, state, uri)))
        for name in REQUIRED_HEADERS:
            _required(upper, name)
    if channel is not None and channel.id != channel_id:
        raise ChannelMismatchError("notification is for another channel")
    if number.isdigit() and number.isascii() and len(number) < 19:
        message_number = int(number)  # at most 18 digits: within int64
        if message_number < 1:
            raise InvalidMessageNumberError("message number is not a positive integer")
    else:
        message_number = parse_message_number(number)
    if token is not None and type(token) is not str:
        token = _text(token)
    if expiration is not None and type(expiration) is not str:
        expiration = _text(expiration)
    if changed is not None and type(changed) is not str:
        changed = _text(changed)
    if channel is not None:
        expected = channel.token
        if expected and (token is None or not _equal(expected, token)):
            raise TokenMismatchError("channel token is missing or does not match")
        if channel.resource_id and not _equal(channel.resource_id, resource_id):
            raise ResourceMismatchError("resource id does not match the channel")
    notification = _new_object(Notification)
    notification.message_number = message_number
    notification.state = state
    notification.resource_uri = uri
    notification.resource_id = resource_id
    notification.channel_id = channel_id
    notification.token = token
    notification._expiration_header = expiration  # parsed on first use
    notification._changed_header = changed
    notification.body = body if type(body) is bytes else bytes(body or b"")
    return notification


def new_webhook_channel(url, token=None, expiration=None, params=None) -> Channel:
    """A new ``web_hook`` channel with a uuid4 id.

    ``expiration`` may be a datetime (aware, or naive read as UTC) or ms; it is
    stored as int ms, clamped at 0 (0 means "let Google choose").
    """
    expiration_ms = to_millis(expiration) if expiration else 0
    if expiration_ms is None or expiration_ms < 0:
        expiration_ms = 0
    return Channel("web_hook", str(uuid.uuid4()), token, url, expiration=expiration_ms, params=params)
