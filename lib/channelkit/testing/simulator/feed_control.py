"""The control API of the feeds, under ``/_simulator/drive/`` and ``/_simulator/calendar/``.

Each endpoint calls the ``sim.drive`` or ``sim.calendar`` method of the same
name, with camelCase JSON fields for its arguments; ``fields`` holds the
resource's own fields as Google spells them. Answers are the resources made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from channelkit.testing.simulator.server import Simulator

__all__ = ["FEED_CONTROL_ROUTES"]


def _required(body: dict, name: str) -> str:
    if not body.get(name):
        raise ValueError(f"{name} is required")
    return str(body[name])


def _fields(body: dict) -> dict[str, Any]:
    fields = body.get("fields") or {}
    if not isinstance(fields, dict):
        raise ValueError("fields must be an object")
    return {str(k): v for k, v in fields.items()}


def _create_file(sim: Simulator, body: dict, query: dict) -> Any:
    parents = body.get("parents")
    if parents is not None and not isinstance(parents, list):
        raise ValueError("parents must be a list")
    return sim.drive.create_file(
        str(body.get("name") or "Untitled"),
        file_id=body.get("fileId"),
        mime_type=str(body.get("mimeType") or "text/plain"),
        parents=parents,
        drive_id=body.get("driveId"),
        **_fields(body),
    )


def _update_file(sim: Simulator, body: dict, query: dict) -> Any:
    return sim.drive.update_file(_required(body, "fileId"), changed=body.get("changed"), **_fields(body))


def _remove_file(sim: Simulator, body: dict, query: dict) -> Any:
    sim.drive.remove_file(_required(body, "fileId"))
    return {}


def _expire_page_tokens(sim: Simulator, body: dict, query: dict) -> Any:
    sim.drive.expire_page_tokens(body.get("driveId"))
    return {"startPageToken": sim.drive.start_page_token(body.get("driveId"))}


def _insert_event(sim: Simulator, body: dict, query: dict) -> Any:
    calendar_id = str(body.get("calendarId") or "primary")
    return sim.calendar.insert_event(calendar_id, event_id=body.get("eventId"), **_fields(body))


def _update_event(sim: Simulator, body: dict, query: dict) -> Any:
    return sim.calendar.update_event(
        _required(body, "calendarId"), _required(body, "eventId"), **_fields(body)
    )


def _set_acl_rule(sim: Simulator, body: dict, query: dict) -> Any:
    return sim.calendar.set_acl_rule(
        _required(body, "calendarId"),
        _required(body, "scopeValue"),
        _required(body, "role"),
        str(body.get("scopeType") or "user"),
    )


def _expire_sync_tokens(sim: Simulator, body: dict, query: dict) -> Any:
    return {"expired": sim.calendar.expire_sync_tokens(body.get("calendarId"), body.get("kind"))}


FEED_CONTROL_ROUTES: dict[tuple[str, str], Callable[[Simulator, dict, dict], Any]] = {
    ("POST", "drive/create_file"): _create_file,
    ("POST", "drive/update_file"): _update_file,
    ("POST", "drive/trash_file"): lambda sim, body, query: sim.drive.trash_file(_required(body, "fileId")),
    ("POST", "drive/untrash_file"): lambda sim, body, query: sim.drive.untrash_file(
        _required(body, "fileId")
    ),
    ("POST", "drive/remove_file"): _remove_file,
    ("POST", "drive/expire_page_tokens"): _expire_page_tokens,
    ("GET", "drive/files"): lambda sim, body, query: {"files": sim.drive.files(query.get("driveId") or None)},
    ("GET", "drive/changes"): lambda sim, body, query: {
        "changes": sim.drive.changes(query.get("driveId") or None, query.get("pageToken") or None)
    },
    ("POST", "calendar/add_calendar"): lambda sim, body, query: sim.calendar.add_calendar(
        _required(body, "calendarId"), body.get("summary")
    ),
    ("POST", "calendar/insert_event"): _insert_event,
    ("POST", "calendar/update_event"): _update_event,
    ("POST", "calendar/delete_event"): lambda sim, body, query: sim.calendar.delete_event(
        _required(body, "calendarId"), _required(body, "eventId")
    ),
    ("POST", "calendar/set_acl_rule"): _set_acl_rule,
    ("POST", "calendar/delete_acl_rule"): lambda sim, body, query: sim.calendar.delete_acl_rule(
        _required(body, "calendarId"), _required(body, "ruleId")
    ),
    ("POST", "calendar/remove_calendar_list_entry"): lambda sim, body, query: (
        sim.calendar.remove_calendar_list_entry(_required(body, "calendarId"))
    ),
    ("POST", "calendar/set_setting"): lambda sim, body, query: sim.calendar.set_setting(
        _required(body, "settingId"), str(body.get("value", ""))
    ),
    ("POST", "calendar/expire_sync_tokens"): _expire_sync_tokens,
    ("GET", "calendar/items"): lambda sim, body, query: {
        "items": sim.calendar.items(_required(query, "kind"), query.get("calendarId") or "")
    },
}
