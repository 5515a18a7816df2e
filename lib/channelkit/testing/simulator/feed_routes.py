"""Where the feed reads live: the GET paths of Drive and Calendar that a sync calls, and who answers each.

Paths are those of the discovery documents bundled with google-api-python-client
(drive.v3, calendar.v3), below the simulator's root. Each read is also named by
the watchable ``Resource`` whose changes it reads, for the call record, the
owners' authorization and standing refusals.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from channelkit.testing.simulator import calendar_routes, drive_routes
from channelkit.testing.simulator.calendar_data import CalendarData
from channelkit.testing.simulator.drive_data import DriveData
from channelkit.testing.simulator.resources import Resource

__all__ = ["FEED_ROUTES", "FeedRoute", "FeedRoutes"]

#: (drive, calendar, path parameters, query, page size override) -> the JSON answered.
Answer = Callable[[DriveData, CalendarData, dict[str, str], dict[str, str], "int | None"], Any]


@dataclasses.dataclass(frozen=True)
class FeedRoute:
    """One read: its operation name, path below the root, watch kind it reads and handler."""

    operation: str  #: e.g. "drive.changes.list"
    path: str  #: with ``{name}`` for path parameters
    kind: tuple[str, str]  #: the (api, watch kind) whose changes it reads
    answer: Answer

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("/" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path))

    def resource(self, path_params: dict[str, str], query: dict[str, str]) -> Resource | None:
        """The resource this read names (None when its parameters name none)."""
        api, kind = self.kind
        names = ("fileId",) if kind == "files" else ("driveId",) if kind == "changes" else ("calendarId",)
        params = {n: (path_params.get(n) or query.get(n)) for n in names}
        try:
            return Resource.of(api, kind, **{k: v for k, v in params.items() if v})
        except ValueError:
            return None


def _calendar(kind: str, path: str) -> FeedRoute:
    def answer(
        drive: DriveData,
        calendar: CalendarData,
        path_params: dict[str, str],
        query: dict[str, str],
        override: int | None,
    ) -> Any:
        return calendar_routes.list_collection(
            calendar, kind, path_params.get("calendarId", ""), query, override
        )

    return FeedRoute(f"calendar.{kind}.list", f"calendar/v3/{path}", ("calendar", kind), answer)


#: Every read served.
FEED_ROUTES: tuple[FeedRoute, ...] = (
    FeedRoute(
        "drive.changes.getStartPageToken",
        "drive/v3/changes/startPageToken",
        ("drive", "changes"),
        lambda drive, calendar, path, query, override: drive_routes.start_page_token(drive, query, override),
    ),
    FeedRoute(
        "drive.changes.list",
        "drive/v3/changes",
        ("drive", "changes"),
        lambda drive, calendar, path, query, override: drive_routes.changes_list(drive, query, override),
    ),
    FeedRoute(
        "drive.files.get",
        "drive/v3/files/{fileId}",
        ("drive", "files"),
        lambda drive, calendar, path, query, override: drive_routes.files_get(drive, path["fileId"]),
    ),
    FeedRoute(
        "drive.files.list",
        "drive/v3/files",
        ("drive", "changes"),
        lambda drive, calendar, path, query, override: drive_routes.files_list(drive, query, override),
    ),
    _calendar("events", "calendars/{calendarId}/events"),
    _calendar("calendarList", "users/me/calendarList"),
    _calendar("acl", "calendars/{calendarId}/acl"),
    _calendar("settings", "users/me/settings"),
)
_PATTERNS = [(route.pattern, route) for route in FEED_ROUTES]


class FeedRoutes:
    """Finds the read a GET asks for and answers it from the simulator's Drive and Calendar data."""

    def __init__(
        self, drive: DriveData, calendar: CalendarData, page_size_override: Callable[[], int | None]
    ):
        self._drive, self._calendar = drive, calendar
        self._override = page_size_override

    @staticmethod
    def match(method: str, path: str) -> tuple[FeedRoute, dict[str, str]] | None:
        """The read and its (unquoted) path parameters; None when ``method path`` is none."""
        if method != "GET":
            return None
        for pattern, route in _PATTERNS:
            found = pattern.fullmatch(path)
            if found:
                return route, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
        return None

    def answer(self, route: FeedRoute, path_params: dict[str, str], query: dict[str, str]) -> Any:
        """The JSON answered; raises ``ApiError`` for Google's error answers."""
        return route.answer(self._drive, self._calendar, path_params, query, self._override())
