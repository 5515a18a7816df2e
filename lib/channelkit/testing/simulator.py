"""A local HTTP server that plays Google's side of push notifications.

It answers the ``watch`` and ``channels.stop`` calls of Drive v3, Calendar v3,
Admin SDK Directory and Reports on the very paths google-api-python-client
builds from its bundled discovery documents, when the client's endpoint is the
simulator's root URL plus the API's service path. It then POSTs notifications to
each channel's address the way Google does: a ``sync`` message first, then one
message per change of the watched resource, with Google's headers, message
numbers that grow with gaps, retries with backoff on 5xx, and nothing after a
channel is stopped or expired. A test controls it from Python or over HTTP::

    with Simulator() as sim:
        drive = build("drive", "v3", static_discovery=True, http=httplib2.Http(),
                      client_options={"api_endpoint": sim.url + "drive/v3/"})
        drive.files().watch(fileId="F", body={...}).execute()
        sim.change("drive", "files", fileId="F", state="update", changed=["content"])
        sim.wait_idle()
        assert [d.state for d in sim.deliveries] == ["sync", "update"]

A watched resource is named by the API, the watch kind (the discovery resource
whose ``watch`` was called) and the parameters that identify it, spelled as in
the watch call: ``Resource.of("drive", "files", fileId="F")``. See
``docs/simulator.md`` for the whole picture.

Only the standard library is used. Notifications are sent only to loopback
addresses (127.0.0.0/8, ``localhost``, ``::1``); any other address is accepted
at watch time, like Google would, but its notifications are recorded as
``undeliverable`` and never sent.
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import datetime
import email.utils
import hashlib
import heapq
import http.client
import itertools
import json
import random
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from channelkit._loopback import is_loopback_host

__all__ = [
    "WATCH_KINDS",
    "ApiCall",
    "ChannelInfo",
    "Clock",
    "Delivery",
    "Resource",
    "Simulator",
    "WatchKind",
    "is_loopback_host",
    "main",
]

HOUR = 3_600
DAY = 24 * HOUR

GOOGLEAPIS = "https://www.googleapis.com/"
ADMIN = "https://admin.googleapis.com/"
USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
CONTROL_PREFIX = "/_simulator/"

#: Statuses after which a notification is sent again, as Google does.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: Values Drive puts in ``X-Goog-Changed``.
DRIVE_CHANGED = frozenset({"content", "parents", "children", "permissions", "properties"})
#: Delivery outcomes, one per attempt record.
DELIVERED, RETRY, FAILED, UNDELIVERABLE, CANCELLED = (
    "delivered",
    "retry",
    "failed",
    "undeliverable",
    "cancelled",
)

_CHANNEL_ID = re.compile(r"[A-Za-z0-9\-_+/=]{1,64}")
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_REASONS = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
    504: "backendError",
}


# --- what can be watched ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WatchKind:
    """One watchable collection: where its ``watch`` lives and how it behaves."""

    api: str  #: "drive", "calendar", "directory" or "reports"
    kind: str  #: the discovery resource whose ``watch`` this is, e.g. "files"
    path: str  #: request path below the root, ``{name}`` for path parameters
    uri: str  #: ``resourceUri`` template (Google's host), same placeholders
    states: frozenset[str] | None  #: valid change states; None: any event name
    max_ttl: int  #: longest channel life in seconds; longer requests are clamped
    default_ttl: int = HOUR  #: channel life when none is requested
    key_query: tuple[str, ...] = ()  #: query parameters that are part of the resource's name
    one_of_query: tuple[str, ...] = ()  #: at least one of these query parameters is required
    required_query: tuple[str, ...] = ()  #: required, but not part of the resource's name
    filter_query: str | None = None  #: query parameter that limits the states delivered
    body: str | None = None  #: notification body: "changes", "user", "activity" or None
    changed: bool = False  #: carries ``X-Goog-Changed``

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))

    @property
    def key_params(self) -> tuple[str, ...]:
        return self.path_params + self.key_query

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = (
            f"(?P<{seg[1:-1]}>[^/]+)" if seg.startswith("{") else re.escape(seg)
            for seg in self.path.split("/")
        )
        return re.compile("/" + "/".join(parts))


_DRIVE_FILE_STATES = frozenset({"add", "remove", "update", "trash", "untrash"})
_CALENDAR_STATES = frozenset({"exists", "not_exists"})
_DIRECTORY_STATES = frozenset({"add", "delete", "makeAdmin", "undelete", "update"})


def _calendar(kind: str, path: str) -> WatchKind:
    return WatchKind(
        "calendar",
        kind,
        f"calendar/v3/{path}/watch",
        f"{GOOGLEAPIS}calendar/v3/{path}",
        _CALENDAR_STATES,
        30 * DAY,
    )


#: Every watch the simulator serves. Paths checked against the discovery documents
#: bundled with google-api-python-client (drive.v3, calendar.v3, admin.directory_v1,
#: admin.reports_v1).
WATCH_KINDS: tuple[WatchKind, ...] = (
    WatchKind(
        "drive",
        "files",
        "drive/v3/files/{fileId}/watch",
        f"{GOOGLEAPIS}drive/v3/files/{{fileId}}",
        _DRIVE_FILE_STATES,
        DAY,
        changed=True,
    ),
    WatchKind(
        "drive",
        "changes",
        "drive/v3/changes/watch",
        f"{GOOGLEAPIS}drive/v3/changes",
        frozenset({"change"}),
        7 * DAY,
        key_query=("driveId",),
        required_query=("pageToken",),
        body="changes",
    ),
    _calendar("events", "calendars/{calendarId}/events"),
    _calendar("calendarList", "users/me/calendarList"),
    _calendar("acl", "calendars/{calendarId}/acl"),
    _calendar("settings", "users/me/settings"),
    WatchKind(
        "directory",
        "users",
        "admin/directory/v1/users/watch",
        f"{ADMIN}admin/directory/v1/users",
        _DIRECTORY_STATES,
        2 * DAY,
        default_ttl=2 * HOUR,
        key_query=("customer", "domain"),
        one_of_query=("customer", "domain"),
        filter_query="event",
        body="user",
    ),
    WatchKind(
        "reports",
        "activities",
        "admin/reports/v1/activity/users/{userKey}/applications/{applicationName}/watch",
        f"{ADMIN}admin/reports/v1/activity/users/{{userKey}}/applications/{{applicationName}}",
        None,
        6 * HOUR,
        filter_query="eventName",
        body="activity",
    ),
)
_KINDS = {(k.api, k.kind): k for k in WATCH_KINDS}
_WATCH_ROUTES = [(k.pattern, k) for k in WATCH_KINDS]
#: ``channels.stop`` path of each API.
STOP_PATHS = {
    "/drive/v3/channels/stop": "drive",
    "/calendar/v3/channels/stop": "calendar",
    "/admin/directory_v1/channels/stop": "directory",
    "/admin/reports_v1/channels/stop": "reports",
}


def watch_kind(api: str, kind: str) -> WatchKind:
    """The ``WatchKind`` of ``api``/``kind``; ValueError naming the valid ones if unknown."""
    try:
        return _KINDS[(api, kind)]
    except KeyError:
        known = ", ".join(f"{a}/{k}" for a, k in _KINDS)
        raise ValueError(f"unknown watch kind {api}/{kind}; known: {known}") from None


@dataclasses.dataclass(frozen=True)
class Resource:
    """The name of a watched resource: api, kind and identifying parameters.

    Build it with ``Resource.of("drive", "files", fileId="F")``: the parameter
    names are those of the watch call (path parameters, plus ``driveId`` for
    Drive changes and ``customer``/``domain`` for Directory users).
    """

    api: str
    kind: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, api: str, kind: str, **params: Any) -> Resource:
        spec = watch_kind(api, kind)
        given = {k: str(v) for k, v in params.items() if v is not None}
        unknown = set(given) - set(spec.key_params)
        if unknown:
            raise ValueError(
                f"{api}/{kind} is named by {', '.join(spec.key_params) or 'no parameter'};"
                f" unexpected: {', '.join(sorted(unknown))}"
            )
        missing = [p for p in spec.path_params if not given.get(p)]
        if spec.one_of_query and not any(given.get(p) for p in spec.one_of_query):
            missing.append(" or ".join(spec.one_of_query))
        if missing:
            raise ValueError(f"{api}/{kind} needs {', '.join(missing)}")
        return cls(api, kind, tuple(sorted(given.items())))

    @property
    def spec(self) -> WatchKind:
        return watch_kind(self.api, self.kind)

    @property
    def resource_id(self) -> str:
        """Opaque id, the same for every channel on this resource (and every run)."""
        digest = hashlib.sha256(repr((self.api, self.kind, self.params)).encode()).digest()
        return base64.b32encode(digest).decode().lower()[:26]

    def to_json(self) -> dict[str, Any]:
        return {"api": self.api, "kind": self.kind, "params": dict(self.params)}

    def __str__(self) -> str:
        query = urllib.parse.urlencode(self.params)
        return f"{self.api}/{self.kind}" + (f"?{query}" if query else "")


# --- small helpers ----------------------------------------------------------


def http_date(ms: int) -> str:
    """``Tue, 19 Nov 2013 01:13:52 GMT`` from Unix milliseconds."""
    return email.utils.formatdate(ms / 1000, usegmt=True)


def google_error(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """Google's JSON error body."""
    reason = reason or _REASONS.get(status, "unknown")
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }


class ApiError(Exception):
    """Raised inside a request handler; answered with Google's error shape."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


class Clock:
    """The simulator's clock: real time plus an offset that a test controls.

    Channel expiry is judged on this clock, so ``advance(seconds)`` ends
    channels without waiting. ``freeze()`` stops it between explicit moves.
    """

    def __init__(self, on_change: Callable[[], None] | None = None):
        self._lock = threading.Lock()
        self._offset_ms = 0
        self._frozen_ms: int | None = None
        self._on_change = on_change

    def now_ms(self) -> int:
        with self._lock:
            return self._now_locked()

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.now_ms() / 1000, datetime.UTC)

    def advance(self, seconds: float) -> int:
        """Move forward (or back, if negative) by ``seconds``; return the new now in ms."""
        delta = round(seconds * 1000)
        with self._lock:
            if self._frozen_ms is not None:
                self._frozen_ms += delta
            else:
                self._offset_ms += delta
            now = self._now_locked()
        self._changed()
        return now

    def set_ms(self, ms: int) -> None:
        """Make now ``ms`` (Unix milliseconds); time keeps running unless frozen."""
        with self._lock:
            if self._frozen_ms is not None:
                self._frozen_ms = int(ms)
            else:
                self._offset_ms = int(ms) - _real_ms()
        self._changed()

    def freeze(self) -> None:
        """Stop the clock at its current time; only ``advance``/``set_ms`` move it."""
        with self._lock:
            self._frozen_ms = self._now_locked()

    def unfreeze(self) -> None:
        """Let the clock run again, from where it stands."""
        with self._lock:
            if self._frozen_ms is not None:
                self._offset_ms = self._frozen_ms - _real_ms()
                self._frozen_ms = None

    def _now_locked(self) -> int:
        return self._frozen_ms if self._frozen_ms is not None else _real_ms() + self._offset_ms

    def _changed(self) -> None:
        if self._on_change:
            self._on_change()


def _real_ms() -> int:
    return time.time_ns() // 1_000_000


# --- records ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ApiCall:
    """One request to the API side (watch, stop, or an unknown path)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  #: parsed JSON, or the raw text when it is not JSON
    status: int
    response: Any  #: the JSON returned, None for an empty body
    operation: str | None  #: e.g. "drive.files.watch", "drive.channels.stop"
    time_ms: int  #: on the simulator clock

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One attempt to deliver a notification (or a decision not to send it).

    ``outcome`` is ``delivered`` (2xx), ``retry`` (5xx or connection error, sent
    again later), ``failed`` (other status, or out of attempts),
    ``undeliverable`` (address not on this machine: never sent) or
    ``cancelled`` (channel stopped or expired before this attempt: not sent).
    """

    channel_id: str
    message_number: int
    state: str
    address: str
    headers: dict[str, str]
    body: bytes
    attempt: int  #: 1 for the first send; 0 when nothing was sent
    outcome: str
    status: int | None = None
    error: str | None = None
    duplicate: bool = False  #: a second copy injected by ``duplicate_next``
    time_ms: int = 0  #: on the simulator clock

    @property
    def body_json(self) -> Any:
        """The body parsed as JSON, or None when empty."""
        return json.loads(self.body) if self.body else None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["body"] = self.body.decode("utf-8", "replace")
        return data


@dataclasses.dataclass(frozen=True)
class ChannelInfo:
    """A snapshot of one channel as the simulator holds it."""

    id: str
    resource: Resource
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration_ms: int
    params: dict[str, str]
    payload: bool
    filter: str | None  #: Directory ``event`` / Reports ``eventName`` of the watch call
    deliverable: bool  #: the address is on this machine
    stopped: bool
    expired: bool

    @property
    def live(self) -> bool:
        return not (self.stopped or self.expired)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["resource"] = self.resource.to_json()
        data["live"] = self.live
        return data


@dataclasses.dataclass(eq=False)
class _Channel:
    id: str
    resource: Resource
    resource_uri: str
    address: str
    token: str | None
    expiration_ms: int
    params: dict[str, str]
    payload: bool
    filter: str | None
    deliverable: bool
    last_number: int = 0
    stopped: bool = False

    def expired(self, now_ms: int) -> bool:
        return now_ms >= self.expiration_ms

    def live(self, now_ms: int) -> bool:
        return not self.stopped and not self.expired(now_ms)

    def info(self, now_ms: int) -> ChannelInfo:
        return ChannelInfo(
            self.id,
            self.resource,
            self.resource.resource_id,
            self.resource_uri,
            self.address,
            self.token,
            self.expiration_ms,
            dict(self.params),
            self.payload,
            self.filter,
            self.deliverable,
            self.stopped,
            self.expired(now_ms),
        )


@dataclasses.dataclass(eq=False)
class _Message:
    channel: _Channel
    number: int
    state: str
    headers: dict[str, str]
    body: bytes
    duplicate: bool = False
    attempt: int = 0
    done: threading.Event = dataclasses.field(default_factory=threading.Event)


# --- the simulator ----------------------------------------------------------


class Simulator:
    """Google's push side on a local port. Thread-safe; use as a context manager.

    Arguments:
        host, port: where to listen; port 0 picks a free one (see ``url``).
        sync_before_response: deliver each new channel's ``sync`` message before
            answering its watch call (otherwise it is queued and races the answer,
            as with Google).
        retry_base, max_attempts: a notification answered 500/502/503/504 or not
            answered is sent again after ``retry_base * 2**(attempt-1)`` seconds,
            at most ``max_attempts`` times in all.
        delivery_timeout: seconds to wait for a receiver's answer.
        latency: seconds added before every watch/stop answer.
        seed: seeds message-number gaps and generated ids, for repeatable runs.
        ssl_context: used for notifications to ``https://`` loopback addresses.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sync_before_response: bool = False,
        retry_base: float = 0.01,
        max_attempts: int = 6,
        delivery_timeout: float = 5.0,
        latency: float = 0.0,
        seed: int | None = None,
        ssl_context: Any = None,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.host, self._port = host, port
        self.sync_before_response = sync_before_response
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.delivery_timeout = delivery_timeout
        self.latency = latency
        self._cond = threading.Condition(threading.RLock())
        self.clock = Clock(on_change=self._wake)
        self._rng = random.Random(seed)
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # never through a proxy: loopback only
            _NoRedirect(),
            urllib.request.HTTPSHandler(context=ssl_context),
        )
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._in_flight = 0  # survives reset(): a send may be under way
        self._reset_state()

    def _reset_state(self) -> None:
        self._channels: dict[str, _Channel] = {}
        self._calls: list[ApiCall] = []
        self._deliveries: list[Delivery] = []
        self._queues: dict[str, collections.deque[_Message]] = {}
        self._schedule: list[tuple[float, int, str]] = []  # (due, seq, channel id)
        self._seq = itertools.count()
        self._failures: dict[str, collections.deque[tuple[int, str | None]]] = {
            "watch": collections.deque(),
            "stop": collections.deque(),
        }
        self._duplicates = 0
        self._reorder_left = 0
        self._held: list[_Message] = []

    # lifecycle

    def start(self) -> Simulator:
        """Listen and start the delivery worker; returns self."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        server_class = _IPv6Server if ":" in self.host else _Server
        self._server = server_class((self.host, self._port), _Handler)
        self._server.simulator = self
        self._stopping = False
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever,
                args=(0.05,),  # quick shutdown
                name="simulator-http",
                daemon=True,
            ),
            threading.Thread(target=self._deliver_loop, name="simulator-delivery", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delivering. Notifications still queued are dropped."""
        if self._server is None:
            return
        with self._cond:
            self._stopping = True
            for queue in self._queues.values():
                for message in queue:
                    message.done.set()
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=self.delivery_timeout + 1)
        self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Root URL with a trailing slash, e.g. ``http://127.0.0.1:PORT/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def reset(self) -> None:
        """Forget channels, records, queued notifications and pending faults."""
        with self._cond:
            for queue in self._queues.values():
                for message in queue:
                    message.done.set()
            self._reset_state()
            self._cond.notify_all()

    # changing resources

    def change(
        self,
        target: Resource | str,
        kind: str | None = None,
        /,
        *,
        state: str,
        changed: list[str] | tuple[str, ...] | None = None,
        body: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> dict[str, int]:
        """Change a watched resource; notify every live channel that watches it.

        ``target`` is a ``Resource``, or an api name followed by the kind and the
        resource's parameters: ``change("drive", "files", fileId="F", state="update")``.
        ``state`` must be valid for the API (ValueError otherwise). ``changed``
        (Drive files only) becomes ``X-Goog-Changed``. ``body`` (Drive changes,
        Directory, Reports) is merged over the generated notification body.
        Returns ``{channel id: message number}`` of the notifications queued.
        """
        if isinstance(target, Resource):
            if kind is not None or params:
                raise TypeError("give either a Resource or api, kind and parameters")
            resource = target
        else:
            if kind is None:
                raise TypeError("change() needs the watch kind after the api name")
            resource = Resource.of(target, kind, **params)
        spec = resource.spec
        _check_state(spec, state)
        changed = _check_changed(spec, changed)
        if body is not None and (spec.body is None or not isinstance(body, Mapping)):
            raise ValueError(f"{spec.api}/{spec.kind} notifications carry no body to set")
        with self._cond:
            now = self.clock.now_ms()
            payload = self._body(spec, resource, state, body, now)
            queued = {}
            for channel in list(self._channels.values()):
                if channel.resource != resource or not channel.live(now):
                    continue
                if channel.filter and channel.filter != state:
                    continue
                send_body = payload if (spec.body != "activity" or channel.payload) else b""
                message = self._new_message(channel, state, send_body, changed)
                self._submit(message)
                queued[channel.id] = message.number
            return queued

    def change_channel_resource(self, channel_id: str, **kwargs: Any) -> dict[str, int]:
        """``change()`` the resource that ``channel_id`` watches (KeyError if unknown)."""
        with self._cond:
            channel = self._channels.get(channel_id)
            if channel is None:
                raise KeyError(f"no channel {channel_id!r}")
            resource = channel.resource
        return self.change(resource, **kwargs)

    # faults

    def fail_next(
        self, operation: str, status: int = 503, count: int = 1, message: str | None = None
    ) -> None:
        """Make the next ``count`` ``watch`` or ``stop`` calls fail with ``status``."""
        if operation not in self._failures:
            raise ValueError("operation must be 'watch' or 'stop'")
        if not 400 <= int(status) <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        with self._cond:
            self._failures[operation].extend([(int(status), message)] * int(count))

    def clear_faults(self) -> dict[str, int]:
        """Drop the ``fail_next`` failures not used yet; how many were left per operation."""
        with self._cond:
            left = {op: len(queue) for op, queue in self._failures.items()}
            for queue in self._failures.values():
                queue.clear()
            return left

    def duplicate_next(self, count: int = 1) -> None:
        """Send each of the next ``count`` notifications twice (same number, same headers)."""
        with self._cond:
            self._duplicates += int(count)

    def reorder_next(self, count: int) -> None:
        """Hold the next ``count`` change notifications, then send them in reverse order.

        ``sync`` messages are never held. ``release_held()`` sends early.
        """
        if count < 2:
            raise ValueError("reordering needs at least 2 notifications")
        with self._cond:
            self._reorder_left = int(count)

    def release_held(self) -> int:
        """Queue the held notifications, newest first; returns how many."""
        with self._cond:
            held, self._held, self._reorder_left = self._held, [], 0
            for message in reversed(held):
                self._enqueue(message)
            return len(held)

    # records and waiting

    @property
    def calls(self) -> list[ApiCall]:
        """Every API request so far, oldest first."""
        with self._cond:
            return list(self._calls)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery attempt (and decision not to send) so far, oldest first."""
        with self._cond:
            return list(self._deliveries)

    def channel(self, channel_id: str) -> ChannelInfo:
        """Snapshot of a channel, live or not (KeyError if never created)."""
        with self._cond:
            return self._channels[channel_id].info(self.clock.now_ms())

    def channels(self) -> list[ChannelInfo]:
        """Every channel ever created, live or not."""
        with self._cond:
            now = self.clock.now_ms()
            return [c.info(now) for c in self._channels.values()]

    def live_channels(self) -> list[ChannelInfo]:
        """Channels neither stopped nor expired on the simulator clock."""
        return [c for c in self.channels() if c.live]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy and return it; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._cond.wait(min(remaining, 0.05))

    def wait_for_deliveries(
        self,
        count: int = 1,
        *,
        channel_id: str | None = None,
        state: str | None = None,
        outcome: str | None = DELIVERED,
        timeout: float = 5.0,
    ) -> list[Delivery]:
        """Wait for at least ``count`` matching delivery records; return all that match."""

        def matching() -> list[Delivery]:
            return [
                d
                for d in self._deliveries
                if (channel_id is None or d.channel_id == channel_id)
                and (state is None or d.state == state)
                and (outcome is None or d.outcome == outcome)
            ]

        if count <= 0:
            with self._cond:
                return matching()
        return self.wait_for(lambda: len(matching()) >= count and matching(), timeout)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until nothing is queued, being sent or waiting to be retried.

        Notifications held by ``reorder_next`` do not count until released.
        """
        self.wait_for(lambda: not self._schedule and not self._in_flight, timeout)

    # internals: messages and delivery

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _new_message(
        self, channel: _Channel, state: str, body: bytes, changed: tuple[str, ...] = ()
    ) -> _Message:
        number = 1 if channel.last_number == 0 else channel.last_number + self._rng.randint(2, 97)
        channel.last_number = number
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": http_date(channel.expiration_ms),
            "X-Goog-Message-Number": str(number),
            "X-Goog-Resource-ID": channel.resource.resource_id,
            "X-Goog-Resource-State": state,
            "X-Goog-Resource-URI": channel.resource_uri,
            "Content-Type": "application/json; charset=UTF-8",
            "User-Agent": USER_AGENT,
        }
        if channel.token:
            headers["X-Goog-Channel-Token"] = channel.token
        if changed:
            headers["X-Goog-Changed"] = ",".join(changed)
        return _Message(channel, number, state, headers, body)

    def _submit(self, message: _Message) -> None:
        """Apply duplicate/reorder faults, then queue. Caller holds the lock."""
        copies = [message]
        if self._duplicates > 0:
            self._duplicates -= 1
            copies.append(dataclasses.replace(message, duplicate=True, done=threading.Event()))
        for copy in copies:
            if copy.state != "sync" and self._reorder_left > 0:
                self._held.append(copy)
                self._reorder_left -= 1
                if self._reorder_left == 0:
                    self.release_held()
            else:
                self._enqueue(copy)

    def _enqueue(self, message: _Message) -> None:
        if not message.channel.deliverable:
            self._record(message, attempt=0, outcome=UNDELIVERABLE, error="address not on this machine")
            message.done.set()
            return
        queue = self._queues.setdefault(message.channel.id, collections.deque())
        queue.append(message)
        if len(queue) == 1:
            self._schedule_channel(message.channel.id, 0.0)

    def _schedule_channel(self, channel_id: str, delay: float) -> None:
        heapq.heappush(self._schedule, (time.monotonic() + delay, next(self._seq), channel_id))
        self._cond.notify_all()

    def _record(
        self,
        message: _Message,
        *,
        attempt: int,
        outcome: str,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        self._deliveries.append(
            Delivery(
                message.channel.id,
                message.number,
                message.state,
                message.channel.address,
                dict(message.headers),
                message.body,
                attempt,
                outcome,
                status,
                error,
                message.duplicate,
                self.clock.now_ms(),
            )
        )
        self._cond.notify_all()

    def _finish(self, message: _Message) -> None:
        """Drop the head of its channel's queue; schedule the next one."""
        queue = self._queues[message.channel.id]
        queue.popleft()
        message.done.set()
        if queue:
            self._schedule_channel(message.channel.id, 0.0)
        else:
            del self._queues[message.channel.id]

    def _deliver_loop(self) -> None:
        while True:
            with self._cond:
                message = self._next_due()
                if message is None:
                    return
                channel = message.channel
                now = self.clock.now_ms()
                if not channel.live(now):
                    reason = "channel stopped" if channel.stopped else "channel expired"
                    self._record(message, attempt=0, outcome=CANCELLED, error=reason)
                    self._finish(message)
                    continue
                message.attempt += 1
                self._in_flight += 1
            status, error = self._post(message)
            with self._cond:
                self._in_flight -= 1
                if self._queues.get(channel.id, [None])[0] is not message:
                    continue  # reset() while sending
                retryable = status in RETRY_STATUSES or status is None
                if status is not None and 200 <= status < 300:
                    self._record(message, attempt=message.attempt, outcome=DELIVERED, status=status)
                    self._finish(message)
                elif retryable and message.attempt < self.max_attempts:
                    self._record(message, attempt=message.attempt, outcome=RETRY, status=status, error=error)
                    delay = self.retry_base * 2 ** (message.attempt - 1)
                    self._schedule_channel(channel.id, delay)
                else:
                    self._record(message, attempt=message.attempt, outcome=FAILED, status=status, error=error)
                    self._finish(message)

    def _next_due(self) -> _Message | None:
        """Wait for the next channel whose head message is due. Caller holds the lock."""
        while not self._stopping:
            if self._schedule:
                due, _, channel_id = self._schedule[0]
                wait = due - time.monotonic()
                if wait <= 0:
                    heapq.heappop(self._schedule)
                    queue = self._queues.get(channel_id)
                    if queue:
                        return queue[0]
                    continue
                self._cond.wait(wait)
            else:
                self._cond.wait()
        return None

    def _post(self, message: _Message) -> tuple[int | None, str | None]:
        request = urllib.request.Request(
            message.channel.address, data=message.body, headers=message.headers, method="POST"
        )
        try:
            with self._opener.open(request, timeout=self.delivery_timeout) as response:
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"

    def _body(
        self, spec: WatchKind, resource: Resource, state: str, override: Mapping[str, Any] | None, now_ms: int
    ) -> bytes:
        if spec.body is None:
            return b""
        params = dict(resource.params)
        if spec.body == "changes":
            data: dict[str, Any] = {"kind": "drive#changes"}
        elif spec.body == "user":
            user_id = str(self._rng.randrange(10**20, 10**21))
            domain = params.get("domain", "example.com")
            data = {
                "kind": "admin#directory#user",
                "id": user_id,
                "etag": f'"{self._rng.getrandbits(64):x}"',
                "primaryEmail": f"user{user_id[-6:]}@{domain}",
            }
        else:  # activity
            user = params["userKey"]
            data = {
                "kind": "admin#reports#activity",
                "id": {
                    "time": datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC)
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
                    "uniqueQualifier": str(self._rng.getrandbits(62)),
                    "applicationName": params["applicationName"],
                    "customerId": "C0000000",
                },
                "etag": f'"{self._rng.getrandbits(64):x}"',
                "actor": {
                    "callerType": "USER",
                    "email": user if "@" in user else "user@example.com",
                    "profileId": str(self._rng.randrange(10**20, 10**21)),
                },
                "ipAddress": "192.0.2.1",
                "events": [{"type": params["applicationName"], "name": state}],
            }
        data.update(override or {})
        return json.dumps(data, separators=(",", ":")).encode()

    # internals: the API side

    def _handle_api(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, str | None]:
        """(status, JSON or None, operation) for one API request."""
        spec, path_params, stop_api = None, {}, STOP_PATHS.get(path)
        for pattern, candidate in _WATCH_ROUTES:
            match = pattern.fullmatch(path)
            if match:
                spec = candidate
                path_params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                break
        if spec:
            operation, kind = f"{spec.api}.{spec.kind}.watch", "watch"
        elif stop_api:
            operation, kind = f"{stop_api}.channels.stop", "stop"
        else:
            raise _Answer(404, google_error(404, f"Method not found: {path}", "notFound"), None)
        if method != "POST":
            raise _Answer(404, google_error(404, f"{method} not found: {path}", "notFound"), operation)
        try:
            return self._serve(spec, stop_api, path_params, query, body, kind, operation)
        except ApiError as exc:
            raise _Answer(exc.status, google_error(exc.status, exc.message, exc.reason), operation) from None

    def _serve(
        self,
        spec: WatchKind | None,
        stop_api: str | None,
        path_params: dict[str, str],
        query: dict[str, str],
        body: Any,
        kind: str,
        operation: str,
    ) -> tuple[int, Any, str]:
        if self.latency > 0:
            time.sleep(self.latency)
        with self._cond:
            failure = self._failures[kind].popleft() if self._failures[kind] else None
        if failure:
            status, message = failure
            raise _Answer(status, google_error(status, message or "Injected failure"), operation)
        if body is _INVALID_JSON:
            raise ApiError(400, "parseError", "Parse Error")
        if spec:
            return 200, self._watch(spec, path_params, query, body), operation
        self._stop(stop_api, body)
        return 204, None, operation

    def _watch(
        self, spec: WatchKind, path_params: dict[str, str], query: dict[str, str], body: Any
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "required", "Required: channel in the request body")
        channel_id = body.get("id")
        if not channel_id:
            raise ApiError(400, "required", "Required: id")
        if not isinstance(channel_id, str) or not _CHANNEL_ID.fullmatch(channel_id):
            raise ApiError(400, "invalid", f"Invalid channel id: {channel_id!r}")
        if str(body.get("type", "")).lower() not in ("web_hook", "webhook"):
            raise ApiError(400, "invalid", f"Invalid channel type: {body.get('type')!r}")
        address = body.get("address")
        if not isinstance(address, str) or not address:
            raise ApiError(400, "required", "Required: address")
        parts = urllib.parse.urlsplit(address)
        host = parts.hostname
        if not host or not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
            raise ApiError(400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}")
        token = body.get("token")
        if token is not None and (not isinstance(token, str) or len(token) > 256):
            raise ApiError(400, "invalid", "Invalid channel token: at most 256 characters")
        channel_params = body.get("params") or {}
        if not isinstance(channel_params, dict):
            raise ApiError(400, "invalid", "Invalid channel params: must be an object")
        for name in spec.required_query:
            if not query.get(name):
                raise ApiError(400, "required", f"Required parameter: {name}")
        if spec.one_of_query and not any(query.get(n) for n in spec.one_of_query):
            raise ApiError(
                400, "badRequest", f"Bad Request: one of {', '.join(spec.one_of_query)} is required"
            )
        watch_filter = query.get(spec.filter_query) if spec.filter_query else None
        if watch_filter:
            try:
                _check_state(spec, watch_filter)
            except ValueError as exc:
                raise ApiError(400, "invalid", f"Invalid value for {spec.filter_query}: {exc}") from None
        key = {**path_params, **{n: query[n] for n in spec.key_query if query.get(n)}}
        resource = Resource.of(spec.api, spec.kind, **key)
        uri_query = [
            (n, query[n])
            for n in (
                *spec.key_query,
                *spec.required_query,
                *((spec.filter_query,) if spec.filter_query else ()),
            )
            if query.get(n)
        ]
        resource_uri = spec.uri.format(**{k: urllib.parse.quote(v, safe="") for k, v in path_params.items()})
        resource_uri += "?" + urllib.parse.urlencode([*uri_query, ("alt", "json")])

        with self._cond:
            now = self.clock.now_ms()
            expiration = _expiration(spec, body.get("expiration"), channel_params.get("ttl"), now)
            existing = self._channels.get(channel_id)
            if existing is not None and existing.live(now):
                raise ApiError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
            channel = _Channel(
                channel_id,
                resource,
                resource_uri,
                address,
                token or None,
                expiration,
                {str(k): str(v) for k, v in channel_params.items()},
                bool(body.get("payload")),
                watch_filter or None,
                is_loopback_host(host),
            )
            self._channels[channel_id] = channel
            sync = self._new_message(channel, "sync", b"")
            self._submit(sync)
        if self.sync_before_response:
            sync.done.wait(self._sync_wait())
        response = {
            "kind": "api#channel",
            "id": channel_id,
            "resourceId": resource.resource_id,
            "resourceUri": resource_uri,
            "expiration": str(expiration),
        }
        if token:
            response["token"] = token
        return response

    def _sync_wait(self) -> float:
        backoff = sum(self.retry_base * 2**i for i in range(self.max_attempts))
        return self.max_attempts * self.delivery_timeout + backoff

    def _stop(self, api: str, body: Any) -> None:
        if not isinstance(body, dict) or not body.get("id"):
            raise ApiError(400, "required", "Required: id")
        channel_id = body["id"]
        with self._cond:
            channel = self._channels.get(channel_id) if isinstance(channel_id, str) else None
            if (
                channel is None
                or channel.resource.api != api
                or not channel.live(self.clock.now_ms())
                or body.get("resourceId") != channel.resource.resource_id
            ):
                raise ApiError(404, "notFound", f"Channel '{channel_id}' not found for project")
            channel.stopped = True
            self._cond.notify_all()

    def _record_call(self, call: ApiCall) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    # internals: the control API

    def _handle_control(self, method: str, name: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if body is _INVALID_JSON or (body is not None and not isinstance(body, dict)):
            return 400, {"error": {"message": "body must be a JSON object"}}
        body = body or {}
        route = _CONTROL_ROUTES.get((method, name))
        if route is None:
            return 404, {"error": {"message": f"no control endpoint {method} {CONTROL_PREFIX}{name}"}}
        try:
            return 200, route(self, body, query)
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"error": {"message": str(exc).strip("'\"")}}
        except TimeoutError as exc:
            return 504, {"error": {"message": str(exc)}}


# --- control API over HTTP --------------------------------------------------


def _control_change(sim: Simulator, body: dict, query: dict) -> Any:
    options = {
        "state": body.get("state"),
        "changed": body.get("changed"),
        "body": body.get("body"),
    }
    if not options["state"]:
        raise ValueError("state is required")
    if body.get("channelId"):
        queued = sim.change_channel_resource(body["channelId"], **options)
    else:
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError("params must be an object")
        queued = sim.change(Resource.of(str(body.get("api")), str(body.get("kind")), **params), **options)
    return {"messages": [{"channelId": c, "messageNumber": n} for c, n in queued.items()]}


def _control_clock(sim: Simulator, body: dict, query: dict) -> Any:
    if "advanceSeconds" in body:
        sim.clock.advance(float(body["advanceSeconds"]))
    if "nowMs" in body:
        sim.clock.set_ms(int(body["nowMs"]))
    return {"nowMs": sim.clock.now_ms()}


def _control_config(sim: Simulator, body: dict, query: dict) -> Any:
    if "latency" in body:
        sim.latency = float(body["latency"])
    if "syncBeforeResponse" in body:
        sim.sync_before_response = bool(body["syncBeforeResponse"])
    return {"latency": sim.latency, "syncBeforeResponse": sim.sync_before_response}


def _control_fail_next(sim: Simulator, body: dict, query: dict) -> Any:
    sim.fail_next(
        str(body.get("operation")),
        int(body.get("status", 503)),
        int(body.get("count", 1)),
        body.get("message"),
    )
    return {}


def _control_wait_idle(sim: Simulator, body: dict, query: dict) -> Any:
    sim.wait_idle(float(body.get("timeout", 5.0)))
    return {"idle": True}


def _control_channels(sim: Simulator, body: dict, query: dict) -> Any:
    listed = sim.channels() if query.get("all") in ("1", "true") else sim.live_channels()
    return {"channels": [c.to_json() for c in listed]}


_CONTROL_ROUTES: dict[tuple[str, str], Callable[[Simulator, dict, dict], Any]] = {
    ("POST", "change"): _control_change,
    ("GET", "clock"): lambda sim, body, query: {"nowMs": sim.clock.now_ms()},
    ("POST", "clock"): _control_clock,
    ("POST", "config"): _control_config,
    ("POST", "fail_next"): _control_fail_next,
    ("POST", "clear_faults"): lambda sim, body, query: {"left": sim.clear_faults()},
    ("POST", "duplicate_next"): lambda sim, body, query: sim.duplicate_next(int(body.get("count", 1))) or {},
    ("POST", "reorder_next"): lambda sim, body, query: sim.reorder_next(int(body.get("count", 0))) or {},
    ("POST", "release_held"): lambda sim, body, query: {"released": sim.release_held()},
    ("POST", "wait_idle"): _control_wait_idle,
    ("POST", "reset"): lambda sim, body, query: sim.reset() or {},
    ("GET", "channels"): _control_channels,
    ("GET", "calls"): lambda sim, body, query: {"calls": [c.to_json() for c in sim.calls]},
    ("GET", "deliveries"): lambda sim, body, query: {"deliveries": [d.to_json() for d in sim.deliveries]},
}


# --- validation helpers -----------------------------------------------------


def _check_state(spec: WatchKind, state: Any) -> None:
    if spec.states is None:
        if not isinstance(state, str) or state == "sync" or not _EVENT_NAME.fullmatch(state):
            raise ValueError(f"{state!r} is not an event name")
    elif state not in spec.states:
        raise ValueError(
            f"{state!r} is not a {spec.api}/{spec.kind} state;"
            f" expected one of {', '.join(sorted(spec.states))}"
        )


def _check_changed(spec: WatchKind, changed: Any) -> tuple[str, ...]:
    if not changed:
        return ()
    if not spec.changed:
        raise ValueError(f"{spec.api}/{spec.kind} notifications carry no X-Goog-Changed")
    if isinstance(changed, str):
        changed = [part.strip() for part in changed.split(",")]
    unknown = set(changed) - DRIVE_CHANGED
    if unknown:
        raise ValueError(f"unknown X-Goog-Changed value(s): {', '.join(sorted(unknown))}")
    return tuple(changed)


def _expiration(spec: WatchKind, requested: Any, ttl: Any, now_ms: int) -> int:
    """The channel's expiration in ms: requested (or ``params.ttl``), clamped to the maximum.

    A missing, zero or past expiration gets the kind's default life.
    """
    latest = now_ms + spec.max_ttl * 1000
    if requested not in (None, "", 0, "0"):
        if isinstance(requested, bool) or not str(requested).isdigit():
            raise ApiError(400, "invalid", f"Invalid expiration: {requested!r}")
        wanted = int(requested)
    elif ttl not in (None, ""):
        if not str(ttl).isdigit():
            raise ApiError(400, "invalid", f"Invalid params.ttl: {ttl!r}")
        wanted = now_ms + int(ttl) * 1000
    else:
        wanted = 0
    if wanted <= now_ms:
        wanted = now_ms + spec.default_ttl * 1000
    return min(wanted, latest)


# --- HTTP plumbing ----------------------------------------------------------


_INVALID_JSON = object()


class _Answer(Exception):
    """A finished answer (status, JSON) raised from deep inside a handler."""

    def __init__(self, status: int, payload: Any, operation: str | None):
        super().__init__(status)
        self.status, self.payload, self.operation = status, payload, operation


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Google does not follow redirects from a webhook; neither do we."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of parallel clients
    # (a renewal run) would overflow it, and each dropped SYN costs the client a
    # 1 s retransmission. Google's front ends take any number of connections.
    request_queue_size = 1024
    simulator: Simulator


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "ESF"
    sys_version = ""
    # Keep-alive, as Google's front ends: a client's next call reuses its
    # connection (every answer carries a Content-Length).
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self, method: str) -> None:
        sim = self.server.simulator
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = _INVALID_JSON
        if parts.path.startswith(CONTROL_PREFIX):
            status, payload = sim._handle_control(method, parts.path[len(CONTROL_PREFIX) :], query, body)
            self._send(status, payload)
            return
        operation = None
        try:
            status, payload, operation = sim._handle_api(method, parts.path, query, body)
        except ApiError as exc:
            status, payload = exc.status, google_error(exc.status, exc.message, exc.reason)
        except _Answer as answer:
            status, payload, operation = answer.status, answer.payload, answer.operation
        except Exception as exc:  # noqa: BLE001 - a simulator bug: answer like Google's backend would
            status, payload = 500, google_error(500, f"Simulator error: {exc!r}")
        if body is _INVALID_JSON:
            body = raw.decode("utf-8", "replace")
        sim._record_call(
            ApiCall(method, parts.path, query, body, status, payload, operation, sim.clock.now_ms())
        )
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# --- command line -----------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m channelkit.testing.simulator``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m channelkit.testing.simulator",
        description="Local Google push-notification simulator (watch, stop, notifications).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument(
        "--sync-before-response",
        action="store_true",
        help="deliver each sync notification before answering its watch call",
    )
    parser.add_argument("--retry-base", type=float, default=0.01, help="backoff base in seconds")
    parser.add_argument("--max-attempts", type=int, default=6, help="delivery attempts per notification")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API answer")
    parser.add_argument("--seed", type=int, default=None, help="seed for message numbers and ids")
    args = parser.parse_args(argv)
    sim = Simulator(
        args.host,
        args.port,
        sync_before_response=args.sync_before_response,
        retry_base=args.retry_base,
        max_attempts=args.max_attempts,
        latency=args.latency,
        seed=args.seed,
    ).start()
    print(sim.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
