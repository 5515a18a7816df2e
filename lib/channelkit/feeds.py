"""Change feeds: for each supported watch method, how its changes are listed, read and resumed.

A push notification carries no data: the app must then list what changed from a
saved cursor. This module knows, per watch method, which call lists the changes
(``Feed.call``), what a response means (``Feed.step``: its items, where the next
call starts, whether the listing reached its end) and which refusal means "the
cursor is no longer valid, list everything again" (``Feed.restarts``). Pure: no
I/O; ``channelkit.sync`` makes the calls and keeps the cursor.

Three kinds of feed:

* ``list``: Drive ``changes.watch`` (``changes.list``) and Calendar ``events``,
  ``calendarList``, ``acl`` and ``settings`` (their ``list`` with ``syncToken``);
* ``get``: Drive ``files.watch``: the file's metadata (``files.get``), a batch of one;
* ``body``: Directory ``users.watch`` and Reports ``activities.watch``: the
  notification body is the resource, handed over parsed, a batch of one, no fetch.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

from channelkit.errors import GoogleApiError, UnsupportedFeedError
from channelkit.google_api import canonical

__all__ = [
    "BODY",
    "GET",
    "LIST",
    "Batch",
    "Call",
    "Cursor",
    "Feed",
    "Step",
    "batch_from_body",
    "feed_for",
    "parse_time",
    "rewatch_params",
    "supported",
]

LIST, GET, BODY = "list", "get", "body"


@dataclasses.dataclass(frozen=True)
class Batch:
    """What the change handler gets: the API's own resources, in Google's order.

    ``cursor`` is where the batch starts (opaque; None for feeds without one).
    ``resync``: the batch belongs to a full resynchronisation; ``resync_complete``:
    it is the last of one (what the app holds and did not see since it began is gone).
    """

    subscription_id: str
    cursor: str | None
    items: list[dict[str, Any]]
    resync: bool = False
    resync_complete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriptionId": self.subscription_id,
            "cursor": self.cursor,
            "items": self.items,
            "resync": self.resync,
            "resyncComplete": self.resync_complete,
        }


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where a feed's next call starts; stored on the subscription as one opaque string.

    ``token``: Drive's page token, or Calendar's sync token (during a Drive
    resync: the start page token taken before it began). ``page``: a page token
    inside a listing in progress (Calendar: it goes with its sync token).
    ``resync``: a full listing is under way.
    """

    token: str | None = None
    page: str | None = None
    resync: bool = False

    def encode(self) -> str | None:
        """Google's own token when that is all there is; else a small JSON object."""
        if not self.resync and self.page is None:
            return self.token
        return json.dumps({"t": self.token, "p": self.page, "r": self.resync}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls(resync=True)  # no cursor at all: only a full listing can start one
        if not text.startswith("{"):  # Google's tokens never start with a brace
            return cls(token=text)
        data = json.loads(text)
        return cls(token=data.get("t"), page=data.get("p"), resync=bool(data.get("r")))


@dataclasses.dataclass(frozen=True)
class Call:
    """One Google call: a dotted method of the feed's API and its parameters."""

    method: str
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Step:
    """What one response means: its items, the cursor after it, and where the pass stands.

    ``end``: the listing reached its end (the cursor rests until the next notification).
    ``resync_complete``: this response ended a full listing.
    """

    items: list[dict[str, Any]]
    cursor: Cursor
    end: bool
    resync_complete: bool = False


class Feed:
    """A feed of one watch method with the watch's parameters; subclasses say how it lists."""

    kind = LIST

    def __init__(self, api: str, version: str, method: str, params: dict[str, Any]):
        self.api, self.version, self.method = api, version, method
        self.params = dict(params)

    def call(self, cursor: Cursor) -> Call:  # pragma: no cover - every subclass says
        raise NotImplementedError

    def step(self, cursor: Cursor, response: dict[str, Any]) -> Step:  # pragma: no cover
        raise NotImplementedError

    def restarts(self, exc: GoogleApiError) -> bool:
        """Whether Google's refusal says the cursor is no longer valid (full resync)."""
        return False

    def watch_params(self, cursor: Cursor) -> dict[str, Any]:
        """The parameters a renewal watches with, the subscription being at ``cursor``."""
        return dict(self.params)

    #: The field of an item that says when it changed (RFC 3339), if the API gives one.
    time_field: str | None = None

    def item_time(self, item: dict[str, Any]) -> int | None:
        """When an item changed (ms), for the backstop's ``missed`` judgement; None when unknown."""
        value = item.get(self.time_field) if self.time_field else None
        return parse_time(value) if isinstance(value, str) else None


def parse_time(text: str) -> int | None:
    """RFC 3339 (``2026-12-02T18:09:11.123Z``) as ms since the epoch; None when unreadable."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _keep(params: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k in names}


class DriveChanges(Feed):
    """``changes.list`` from a page token; an invalid token: a fresh start token, then ``files.list``."""

    time_field = "time"

    LIST_PARAMS = frozenset(
        {
            "driveId",
            "includeCorpusRemovals",
            "includeItemsFromAllDrives",
            "includeLabels",
            "includePermissionsForView",
            "includeRemoved",
            "pageSize",
            "restrictToMyDrive",
            "spaces",
            "supportsAllDrives",
        }
    )
    START_PARAMS = frozenset({"driveId", "supportsAllDrives"})
    FILES_PARAMS = frozenset(
        {"driveId", "includeItemsFromAllDrives", "includeLabels", "pageSize", "spaces", "supportsAllDrives"}
    )

    def call(self, cursor: Cursor) -> Call:
        if cursor.resync and cursor.token is None:
            return Call("changes.getStartPageToken", _keep(self.params, self.START_PARAMS))
        if cursor.resync:
            params = _keep(self.params, self.FILES_PARAMS)
            params["corpora"] = "drive" if params.get("driveId") else "user"
            if cursor.page:
                params["pageToken"] = cursor.page
            return Call("files.list", params)
        params = _keep(self.params, self.LIST_PARAMS)
        params["pageToken"] = cursor.token
        return Call("changes.list", params)

    def step(self, cursor: Cursor, response: dict[str, Any]) -> Step:
        if cursor.resync and cursor.token is None:
            return Step([], Cursor(token=response["startPageToken"], resync=True), end=False)
        if cursor.resync:
            items = [_file_as_change(f) for f in response.get("files") or []]
            if response.get("nextPageToken"):
                return Step(items, Cursor(cursor.token, response["nextPageToken"], resync=True), end=False)
            # The corpus is listed: what changed since the start token follows in changes.list.
            return Step(items, Cursor(token=cursor.token), end=False, resync_complete=True)
        items = list(response.get("changes") or [])
        if response.get("nextPageToken"):
            return Step(items, Cursor(token=response["nextPageToken"]), end=False)
        return Step(items, Cursor(token=response["newStartPageToken"]), end=True)

    def watch_params(self, cursor: Cursor) -> dict[str, Any]:
        """``changes.watch`` from the token the subscription has reached, not the one it began with.

        A token kept since subscribe time only grows older with each renewal; one Drive
        no longer knows would make every renewal fail. During a resync the cursor's token is
        the start token taken before it began: still where the feed goes on from.
        """
        params = dict(self.params)
        if cursor.token:
            params["pageToken"] = cursor.token
        return params

    def restarts(self, exc: GoogleApiError) -> bool:
        """Drive answers an expired or unknown page token with 400 ``invalid`` naming ``pageToken`` (or 410)."""
        if exc.status == 410:
            return True
        named = getattr(exc, "location", None) == "pageToken" or "pagetoken" in str(exc).lower()
        return exc.status in (400, 404) and named


def _file_as_change(file: dict[str, Any]) -> dict[str, Any]:
    """A file listed by a resync, in the shape of a Drive change: one handler reads both."""
    change = {
        "kind": "drive#change",
        "changeType": "file",
        "removed": False,
        "fileId": file.get("id"),
        "file": file,
    }
    if file.get("modifiedTime"):
        change["time"] = file["modifiedTime"]
    return change


class CalendarList(Feed):
    """A Calendar collection listed with ``syncToken``; 410 ``fullSyncRequired``: list it all again.

    The same query shape is kept for the full listing and the incremental ones;
    deleted items are always asked for (``showDeleted``), so that a resync's
    items and an incremental listing's look alike.
    """

    #: Parameters Calendar refuses beside a syncToken (400 syncTokenWithRequestRestrictions).
    REFUSED = frozenset(
        {
            "iCalUID",
            "minAccessRole",
            "orderBy",
            "privateExtendedProperty",
            "q",
            "sharedExtendedProperty",
            "timeMax",
            "timeMin",
            "updatedMin",
        }
    )
    CURSOR_PARAMS = frozenset({"pageToken", "syncToken"})
    time_field = "updated"  # events carry it; the other collections do not

    def __init__(self, api: str, version: str, method: str, params: dict[str, Any], *, show_deleted: bool):
        refused = sorted(set(params) & self.REFUSED)
        if refused:
            raise UnsupportedFeedError(
                f"{method} with sync cannot keep {', '.join(refused)}: Calendar refuses it beside a syncToken"
            )
        super().__init__(api, version, method, params)
        self.list_method = method.rsplit(".", 1)[0] + ".list"
        self.base = {k: v for k, v in params.items() if k not in self.CURSOR_PARAMS}
        if show_deleted:
            self.base["showDeleted"] = True

    def call(self, cursor: Cursor) -> Call:
        params = dict(self.base)
        if not cursor.resync:
            params["syncToken"] = cursor.token
        if cursor.page:
            params["pageToken"] = cursor.page
        return Call(self.list_method, params)

    def step(self, cursor: Cursor, response: dict[str, Any]) -> Step:
        items = list(response.get("items") or [])
        if response.get("nextPageToken"):
            return Step(items, dataclasses.replace(cursor, page=response["nextPageToken"]), end=False)
        return Step(items, Cursor(token=response["nextSyncToken"]), end=True, resync_complete=cursor.resync)

    def restarts(self, exc: GoogleApiError) -> bool:
        return exc.status == 410


class DriveFile(Feed):
    """``files.watch``: the file's metadata as it is now (``files.get``), a batch of one; no cursor."""

    kind = GET
    GET_PARAMS = frozenset({"fileId", "acknowledgeAbuse", "includeLabels", "supportsAllDrives"})

    def call(self, cursor: Cursor) -> Call:
        return Call("files.get", _keep(self.params, self.GET_PARAMS))

    def step(self, cursor: Cursor, response: dict[str, Any]) -> Step:
        return Step([response], Cursor(), end=True)


class NotificationBody(Feed):
    """The resource is in the notification body (Directory users, Reports activities): no fetch."""

    kind = BODY


#: (api, version, watch method) -> how to build its feed.
_FEEDS: dict[tuple[str, str, str], Any] = {
    ("drive", "v3", "changes.watch"): DriveChanges,
    ("drive", "v3", "files.watch"): DriveFile,
    ("calendar", "v3", "events.watch"): lambda *a: CalendarList(*a, show_deleted=True),
    ("calendar", "v3", "calendarList.watch"): lambda *a: CalendarList(*a, show_deleted=True),
    ("calendar", "v3", "acl.watch"): lambda *a: CalendarList(*a, show_deleted=True),
    ("calendar", "v3", "settings.watch"): lambda *a: CalendarList(*a, show_deleted=False),
    ("admin", "directory_v1", "users.watch"): NotificationBody,
    ("admin", "reports_v1", "activities.watch"): NotificationBody,
}


def rewatch_params(
    api: str | None, version: str | None, method: str | None, params: dict[str, Any], cursor: str | None
) -> dict[str, Any]:
    """A renewal's watch parameters for a subscription at ``cursor`` (None: not a ``--sync`` one)."""
    if cursor is None or (api, version, method) == (None, None, None):
        return dict(params)
    try:
        feed = feed_for(api, version, method, params)
    except UnsupportedFeedError:
        return dict(params)
    return feed.watch_params(Cursor.decode(cursor))


def supported() -> list[tuple[str, str, str]]:
    """Every (api, version, watch method) with a feed."""
    return sorted(_FEEDS)


def feed_for(api: str | None, version: str | None, method: str | None, params: dict[str, Any]) -> Feed:
    """The feed of a watch method with its parameters; ``UnsupportedFeedError`` when it has none."""
    if not (api and version and method):
        raise UnsupportedFeedError(
            f"no API method to sync: api={api!r} version={version!r} method={method!r}"
        )
    api, version = canonical(api, version)
    make = _FEEDS.get((api, version, method))
    if make is None:
        names = ", ".join(f"{a} {v} {m}" for a, v, m in supported())
        raise UnsupportedFeedError(f"{api} {version} {method} has no change feed (supported: {names})")
    feed: Feed = make(api, version, method, dict(params or {}))
    return feed


def batch_from_body(subscription_id: str, body: Any) -> Batch | None:
    """A body feed's batch: the notification body parsed, as a batch of one (None when empty)."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        if not body.strip():
            return None
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if not isinstance(body, dict) or not body:
        return None
    return Batch(subscription_id, None, [body])
