"""Calendar's side of the feeds: calendars with events and ACL rules, the calendar list, the settings.

Each collection has its own change log (``events`` and ``acl`` per calendar,
``calendarList`` and ``settings`` once). Deleting keeps the item, marked as
Calendar marks it (an event ``status: cancelled``, a rule ``role: none``, a
list entry ``deleted: true``), because incremental listings must return it.
Every change is appended and pushed (state ``exists``) under one lock.
"""

from __future__ import annotations

import itertools
from typing import Any

from channelkit.testing.simulator.drive_data import Notify
from channelkit.testing.simulator.feed_log import ChangeLog, rfc3339
from channelkit.testing.simulator.resources import Resource
from channelkit.testing.simulator.state import State

__all__ = ["FEED_KINDS", "CalendarData", "is_deleted"]

#: The listable collections: kind -> (item kind, list kind, whether it lives under a calendar).
FEED_KINDS = {
    "events": ("calendar#event", "calendar#events", True),
    "acl": ("calendar#aclRule", "calendar#acl", True),
    "calendarList": ("calendar#calendarListEntry", "calendar#calendarList", False),
    "settings": ("calendar#setting", "calendar#settings", False),
}
PRIMARY = "primary"


def is_deleted(kind: str, item: dict[str, Any]) -> bool:
    """Whether ``item`` of collection ``kind`` is a deleted one (listed only incrementally or with showDeleted)."""
    if kind == "events":
        return item.get("status") == "cancelled"
    if kind == "acl":
        return item.get("role") == "none"
    return bool(item.get("deleted"))


class CalendarData:
    """The Calendar collections and their logs. Every method takes the simulator's lock."""

    def __init__(self, state: State, notify: Notify):
        self._state = state
        self._notify = notify
        self._ids = itertools.count(1)
        self.clear()

    def clear(self) -> None:
        """Forget every calendar (``primary`` aside, which always exists, empty) and change."""
        with self._state.cond:
            self._calendars: set[str] = {PRIMARY}
            self._logs: dict[tuple[str, str], ChangeLog] = {}

    # calendars and events

    def add_calendar(self, calendar_id: str, summary: str | None = None) -> dict[str, Any]:
        """Create a calendar and put it in the calendar list; returns the list entry."""
        with self._state.cond:
            if calendar_id in self._calendars and calendar_id != PRIMARY:
                raise ValueError(f"calendar {calendar_id!r} exists")
            self._calendars.add(calendar_id)
            entry = {"id": calendar_id, "summary": summary or calendar_id, "accessRole": "owner"}
            return self._put("calendarList", "", calendar_id, entry)

    def insert_event(
        self, calendar_id: str = PRIMARY, *, event_id: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Add an event (``summary``, ``start``, ``end``, … as Calendar spells them); returns it.

        An unknown calendar is created first. ValueError if ``event_id`` exists.
        """
        with self._state.cond:
            self._calendars.add(calendar_id)
            event_id = event_id or f"ev{next(self._ids):06d}{self._state.rng.getrandbits(32):08x}"
            if event_id in self.log("events", calendar_id).current:
                raise ValueError(f"event {event_id!r} exists in {calendar_id!r}")
            now = rfc3339(self._state.clock.now_ms())
            event = {
                "id": event_id,
                "status": "confirmed",
                "summary": "Event",
                "created": now,
                "iCalUID": f"{event_id}@google.com",
                "sequence": 0,
                "start": {"dateTime": now},
                "end": {"dateTime": now},
                **fields,
            }
            return self._put("events", calendar_id, event_id, event)

    def update_event(self, calendar_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
        """Change an event's fields; KeyError for an unknown (or deleted) event."""
        with self._state.cond:
            event = self._existing("events", calendar_id, event_id)
            return self._put(
                "events", calendar_id, event_id, {**event, **fields, "sequence": event["sequence"] + 1}
            )

    def delete_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """Delete an event: it becomes ``status: cancelled`` (listed incrementally, or with showDeleted)."""
        with self._state.cond:
            event = self._existing("events", calendar_id, event_id)
            return self._put("events", calendar_id, event_id, {**event, "status": "cancelled"})

    # ACL, calendar list, settings

    def set_acl_rule(
        self, calendar_id: str, scope_value: str, role: str, scope_type: str = "user"
    ) -> dict[str, Any]:
        """Grant ``role`` (``reader``, ``writer``, ``owner``, …) to a scope; returns the rule."""
        with self._state.cond:
            self._calendar(calendar_id)
            rule_id = f"{scope_type}:{scope_value}" if scope_type != "default" else "default"
            rule = {"id": rule_id, "scope": {"type": scope_type, "value": scope_value}, "role": role}
            return self._put("acl", calendar_id, rule_id, rule)

    def delete_acl_rule(self, calendar_id: str, rule_id: str) -> dict[str, Any]:
        """Delete a rule: it becomes ``role: none``."""
        with self._state.cond:
            rule = self._existing("acl", calendar_id, rule_id)
            return self._put("acl", calendar_id, rule_id, {**rule, "role": "none"})

    def remove_calendar_list_entry(self, calendar_id: str) -> dict[str, Any]:
        """Take a calendar off the user's list: its entry becomes ``deleted: true``."""
        with self._state.cond:
            entry = self._existing("calendarList", "", calendar_id)
            return self._put("calendarList", "", calendar_id, {**entry, "deleted": True})

    def set_setting(self, setting_id: str, value: str) -> dict[str, Any]:
        """Set a user setting (``timezone``, ``locale``, …); returns it."""
        with self._state.cond:
            return self._put("settings", "", setting_id, {"id": setting_id, "value": str(value)})

    def expire_sync_tokens(self, calendar_id: str | None = None, kind: str | None = None) -> int:
        """Make the sync tokens issued so far answer 410 ``fullSyncRequired``; how many logs this touched.

        ``calendar_id`` limits it to that calendar's ``events``/``acl``;
        ``kind`` to one collection (``events``, ``acl``, ``calendarList``,
        ``settings``). None: all. Listing again without a sync token gives working ones.
        """
        if kind is not None and kind not in FEED_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FEED_KINDS)}")
        with self._state.cond:
            touched = 0
            for (each_kind, owner), log in self._logs.items():
                if (kind is None or each_kind == kind) and (calendar_id is None or owner == calendar_id):
                    log.expire()
                    touched += 1
            return touched

    # what the routes read

    @property
    def lock(self) -> Any:
        """The simulator's lock: hold it across reads that must see one state."""
        return self._state.cond

    def has_calendar(self, calendar_id: str) -> bool:
        with self._state.cond:
            return calendar_id in self._calendars

    def log(self, kind: str, owner: str) -> ChangeLog:
        """The log of collection ``kind`` of calendar ``owner`` (``""`` for the user's own); caller holds the lock."""
        return self._logs.setdefault((kind, owner), ChangeLog())

    def items(self, kind: str, calendar_id: str = "") -> list[dict[str, Any]]:
        """The current items of a collection, deleted ones included, oldest change first."""
        if kind not in FEED_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FEED_KINDS)}")
        with self._state.cond:
            return [dict(item) for item in self.log(kind, calendar_id).current.values()]

    # inside

    def _calendar(self, calendar_id: str) -> None:
        if calendar_id not in self._calendars:
            raise KeyError(f"no calendar {calendar_id!r}")

    def _existing(self, kind: str, owner: str, key: str) -> dict[str, Any]:
        item = self.log(kind, owner).current.get(key)
        if item is None or is_deleted(kind, item):
            raise KeyError(f"no {kind} item {key!r}" + (f" in {owner!r}" if owner else ""))
        return item

    def _put(self, kind: str, owner: str, key: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Store the new state of an item, append it to its log and notify; caller holds the lock."""
        now = self._state.clock.now_ms()
        log = self.log(kind, owner)
        item = {"kind": FEED_KINDS[kind][0], "etag": f'"{now}{log.last_seq + 1:06d}"', **fields}
        if kind == "events":
            item["updated"] = rfc3339(now)
        log.append(key, item, now)
        params = {"calendarId": owner} if owner else {}
        self._notify(Resource.of("calendar", kind, **params), "exists", ())
        return dict(item)
