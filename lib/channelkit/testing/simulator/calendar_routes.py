"""Calendar's list reads (``events``, ``calendarList``, ``acl``, ``settings``), answered as Calendar v3 does.

Without ``syncToken`` a listing returns the collection (deleted items only with
``showDeleted``); with one, every item changed since it was issued, deleted ones
included, each once in its latest state. Pages but the last carry
``nextPageToken``, the last ``nextSyncToken`` (the same token when nothing
changed). A listing is cut at its first page, so later changes never shift it.
An expired or unknown sync token answers 410 ``fullSyncRequired``; the filters
Calendar forbids beside a sync token answer 400 ``syncTokenWithRequestRestrictions``.
"""

from __future__ import annotations

from typing import Any

from channelkit.testing.simulator.api_errors import ApiError
from channelkit.testing.simulator.calendar_data import FEED_KINDS, CalendarData, is_deleted
from channelkit.testing.simulator.feed_log import rfc3339
from channelkit.testing.simulator.paging import decode_token, encode_token, invalid_parameter, page_size

__all__ = ["FULL_SYNC_REQUIRED", "list_collection"]

FULL_SYNC_REQUIRED = "Sync token is no longer valid, a full sync is required."
#: maxResults: (default, maximum); Calendar lowers a larger request to the maximum.
_PAGE_SIZES = {"events": (250, 2500), "calendarList": (100, 250), "acl": (100, 250), "settings": (100, 250)}
#: Query parameters refused beside a syncToken, and those that may not be ``false`` beside one.
_REFUSED_WITH_SYNC = {
    "events": (
        "iCalUID",
        "orderBy",
        "privateExtendedProperty",
        "q",
        "sharedExtendedProperty",
        "timeMin",
        "timeMax",
        "updatedMin",
    ),
    "calendarList": ("minAccessRole",),
}
_NOT_FALSE_WITH_SYNC = {
    "events": ("showDeleted",),
    "calendarList": ("showDeleted", "showHidden"),
    "acl": ("showDeleted",),
}
_TOKEN_FIELDS = ("g", "s", "u", "o")


def list_collection(
    calendar: CalendarData, kind: str, calendar_id: str, query: dict[str, str], override: int | None
) -> dict[str, Any]:
    """One page of collection ``kind`` (of ``calendar_id`` for ``events``/``acl``; ``""`` otherwise)."""
    if calendar_id and not calendar.has_calendar(calendar_id):
        raise ApiError(404, "notFound", "Not Found")
    default, maximum = _PAGE_SIZES[kind]
    size = page_size(query, "maxResults", default, maximum, override, clamp=True)
    if query.get("syncToken"):
        _check_sync_restrictions(kind, query)
    collection = f"{kind}:{calendar_id}"
    with calendar.lock:
        log = calendar.log(kind, calendar_id)
        if query.get("pageToken"):
            token = decode_token(query["pageToken"])
            if (
                token is None
                or token.get("c") != collection
                or not all(isinstance(token.get(f), int) for f in _TOKEN_FIELDS)
            ):
                raise invalid_parameter("pageToken")
            if token.get("i") and token["g"] != log.generation:
                raise _full_sync_required()
            generation, since, upto, offset = token["g"], token["s"], token["u"], token["o"]
            incremental, show_deleted = bool(token.get("i")), bool(token.get("d"))
        elif query.get("syncToken"):
            token = decode_token(query["syncToken"])
            if (
                token is None
                or token.get("c") != collection
                or token.get("g") != log.generation
                or not isinstance(token.get("u"), int)
                or token["u"] > log.last_seq
            ):
                raise _full_sync_required()
            generation, since, upto, offset, incremental, show_deleted = (
                log.generation,
                token["u"],
                log.last_seq,
                0,
                True,
                True,
            )
        else:
            generation, since, upto, offset, incremental = log.generation, 0, log.last_seq, 0, False
            show_deleted = (query.get("showDeleted") or "").lower() == "true"
        items = [
            e.item
            for e in log.latest_between(since, upto)
            if e.item is not None and (show_deleted or not is_deleted(kind, e.item))
        ]
        answer = _envelope(kind, calendar_id, upto, log.entries[upto - 1].time_ms if upto else 0)
        answer["items"] = [dict(item) for item in items[offset : offset + size]]
        if offset + size < len(items):
            following = {"c": collection, "g": generation, "s": since, "u": upto, "o": offset + size}
            answer["nextPageToken"] = encode_token(
                {**following, "i": int(incremental), "d": int(show_deleted)}
            )
        else:
            answer["nextSyncToken"] = encode_token({"c": collection, "g": generation, "u": upto})
        return answer


def _check_sync_restrictions(kind: str, query: dict[str, str]) -> None:
    for name in _REFUSED_WITH_SYNC.get(kind, ()):
        if query.get(name):
            raise _restricted(name)
    for name in _NOT_FALSE_WITH_SYNC.get(kind, ()):
        if (query.get(name) or "").lower() == "false":
            raise _restricted(name)


def _restricted(name: str) -> ApiError:
    message = f"Sync token cannot be used together with the {name} parameter."
    return ApiError(400, "syncTokenWithRequestRestrictions", message, domain="calendar", location=name)


def _full_sync_required() -> ApiError:
    return ApiError(410, "fullSyncRequired", FULL_SYNC_REQUIRED, domain="calendar", location="syncToken")


def _envelope(kind: str, calendar_id: str, upto: int, updated_ms: int) -> dict[str, Any]:
    """The list resource around the items: its ``kind``, ``etag`` and, for events, the calendar's fields."""
    answer: dict[str, Any] = {"kind": FEED_KINDS[kind][1], "etag": f'"p{upto:08d}"'}
    if kind == "events":
        answer.update(
            summary=calendar_id,
            updated=rfc3339(updated_ms),
            timeZone="UTC",
            accessRole="owner",
            defaultReminders=[],
        )
    return answer
