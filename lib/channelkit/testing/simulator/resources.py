"""What the simulator can watch: each API's watch kinds (paths, states, limits) and ``Resource``.

Paths and rules are those of the discovery documents bundled with
google-api-python-client (drive.v3, calendar.v3, admin.directory_v1, admin.reports_v1).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import urllib.parse
from typing import Any

__all__ = [
    "ADMIN",
    "DAY",
    "DRIVE_CHANGED",
    "GOOGLEAPIS",
    "HOUR",
    "STOP_PATHS",
    "WATCH_KINDS",
    "Resource",
    "WatchKind",
    "check_changed",
    "check_state",
    "watch_kind",
]

HOUR = 3_600
DAY = 24 * HOUR

GOOGLEAPIS = "https://www.googleapis.com/"
ADMIN = "https://admin.googleapis.com/"

#: Values Drive puts in ``X-Goog-Changed``.
DRIVE_CHANGED = frozenset({"content", "parents", "children", "permissions", "properties"})
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


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


def check_state(spec: WatchKind, state: Any) -> None:
    """ValueError unless ``state`` is a change state (or, for Reports, an event name) of ``spec``."""
    if spec.states is None:
        if not isinstance(state, str) or state == "sync" or not _EVENT_NAME.fullmatch(state):
            raise ValueError(f"{state!r} is not an event name")
    elif state not in spec.states:
        raise ValueError(
            f"{state!r} is not a {spec.api}/{spec.kind} state;"
            f" expected one of {', '.join(sorted(spec.states))}"
        )


def check_changed(spec: WatchKind, changed: Any) -> tuple[str, ...]:
    """``X-Goog-Changed`` values as a tuple (a list or a comma-separated string); ValueError if invalid."""
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
