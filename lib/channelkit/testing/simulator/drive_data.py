"""Drive's side of the feeds: files, and one change log per drive (My Drive and each shared drive).

A test changes files through ``DriveData`` (``sim.drive``); each change is
appended to its drive's log **and** pushed, under one lock, to the channels
watching it: ``changes.watch`` channels of that drive get ``change``,
``files.watch`` channels of that file get ``add``/``update``/``trash``/
``untrash``/``remove``. So what ``changes.list`` answers and what is pushed agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from channelkit.testing.simulator.feed_log import ChangeLog, Entry, rfc3339
from channelkit.testing.simulator.resources import Resource
from channelkit.testing.simulator.state import State

__all__ = ["MY_DRIVE", "DriveData", "Notify"]

#: The log key of the user's own drive (a shared drive's key is its ``driveId``).
MY_DRIVE = ""

#: Sends the notifications of a change: (resource, state, X-Goog-Changed values) -> queued.
Notify = Callable[[Resource, str, tuple[str, ...]], dict[str, int]]


class DriveData:
    """Files by id and the change log of each drive. Every method takes the simulator's lock."""

    def __init__(self, state: State, notify: Notify):
        self._state = state
        self._notify = notify
        self._ids = itertools.count(1)
        self.clear()

    def clear(self) -> None:
        """Forget every file and change."""
        with self._state.cond:
            self._files: dict[str, dict[str, Any]] = {}
            self._logs: dict[str, ChangeLog] = {}
            self._queued: dict[str, int] = {}

    # what a test does

    def create_file(
        self,
        name: str = "Untitled",
        *,
        file_id: str | None = None,
        mime_type: str = "text/plain",
        parents: Iterable[str] | None = None,
        drive_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Add a file (in My Drive, or in shared drive ``drive_id``); returns its resource.

        ``fields`` are more file fields, as Drive spells them (``description``, …).
        ValueError if ``file_id`` exists.
        """
        with self._state.cond:
            file_id = file_id or f"file{next(self._ids):05d}{self._state.rng.getrandbits(32):08x}"
            if file_id in self._files:
                raise ValueError(f"file {file_id!r} exists")
            item: dict[str, Any] = {
                "kind": "drive#file",
                "id": file_id,
                "name": name,
                "mimeType": mime_type,
                "parents": list(parents) if parents is not None else [drive_id or "root"],
                "trashed": False,
                "version": "0",
                **fields,
            }
            if drive_id:
                item["driveId"] = drive_id
            return self._record(item, "add", ())

    def update_file(
        self, file_id: str, *, changed: Iterable[str] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Change a file's fields (none: its content); returns the new resource.

        ``changed`` (``X-Goog-Changed``) defaults to ``properties`` when fields
        are given, else ``content``. KeyError for an unknown file.
        """
        default = ("properties",) if fields else ("content",)
        return self._change(file_id, "update", tuple(changed) if changed is not None else default, fields)

    def trash_file(self, file_id: str) -> dict[str, Any]:
        """Move a file to the trash (it is still listed and fetched, ``trashed: true``)."""
        return self._change(file_id, "trash", (), {"trashed": True})

    def untrash_file(self, file_id: str) -> dict[str, Any]:
        """Take a file out of the trash."""
        return self._change(file_id, "untrash", (), {"trashed": False})

    def remove_file(self, file_id: str) -> None:
        """Delete a file for good: a ``removed`` change, and ``files.get`` answers 404 from now on."""
        with self._state.cond:
            item = self._get(file_id)
            del self._files[file_id]
            log = self.log(item.get("driveId"))
            log.append(file_id, None, self._state.clock.now_ms())
            self._notify_all(item, "remove", ())

    def apply_change(self, file_id: str, state: str, changed: tuple[str, ...]) -> dict[str, int] | None:
        """``sim.change("drive", "files", fileId=…, state=…)`` on a file kept here: change it, then notify.

        ``update``, ``trash``, ``untrash`` and ``remove`` do what the methods above
        do; returns ``{channel id: message number}`` of every notification queued.
        None (nothing done) for an unknown file or ``add``: ``change()`` then only notifies.
        """
        with self._state.cond:
            if file_id not in self._files or state == "add":
                return None
            if state == "remove":
                self.remove_file(file_id)
            else:
                fields = {"trash": {"trashed": True}, "untrash": {"trashed": False}}.get(state, {})
                self._change(file_id, state, changed, fields)
            return dict(self._queued)

    def file(self, file_id: str) -> dict[str, Any] | None:
        """The file's resource as ``files.get`` answers it; None when there is none."""
        with self._state.cond:
            item = self._files.get(file_id)
            return dict(item) if item else None

    def files(self, drive_id: str | None = None) -> list[dict[str, Any]]:
        """The files of one drive (My Drive when None), oldest change first."""
        with self._state.cond:
            return [dict(item) for item in self.log(drive_id).current.values()]

    def changes(self, drive_id: str | None = None, page_token: str | None = None) -> list[dict[str, Any]]:
        """The ``drive#change`` resources of a drive from ``page_token`` on (None: all), oldest first.

        What following ``changes.list`` to the end answers, on one page: a test
        compares it with what a sync handed over.
        """
        with self._state.cond:
            log = self.log(drive_id)
            start = int(page_token) if page_token else 1
            return [self.change_resource(e) for e in log.after(start - 1, log.last_seq)]

    def start_page_token(self, drive_id: str | None = None) -> str:
        """The page token ``changes.getStartPageToken`` answers now for this drive."""
        with self._state.cond:
            return str(self.log(drive_id).last_seq + 1)

    def expire_page_tokens(self, drive_id: str | None = None) -> None:
        """Make every page token issued so far for this drive unusable (400 ``invalid`` on ``pageToken``).

        Tokens taken afterwards (``changes.getStartPageToken``) work.
        """
        with self._state.cond:
            self.log(drive_id).expire()

    # what the routes read

    @property
    def lock(self) -> Any:
        """The simulator's lock: hold it across reads that must see one state."""
        return self._state.cond

    def log(self, drive_id: str | None) -> ChangeLog:
        """The change log of a drive, made empty on first use. Caller holds the lock."""
        return self._logs.setdefault(drive_id or MY_DRIVE, ChangeLog())

    def drive_ids(self) -> list[str]:
        """Every drive with a log, My Drive (``MY_DRIVE``) first."""
        with self._state.cond:
            return sorted(self._logs)

    @staticmethod
    def change_resource(entry: Entry) -> dict[str, Any]:
        """The ``drive#change`` of a log entry."""
        change: dict[str, Any] = {
            "kind": "drive#change",
            "changeType": "file",
            "time": rfc3339(entry.time_ms),
            "removed": entry.item is None,
            "fileId": entry.key,
        }
        if entry.item is not None:
            change["file"] = dict(entry.item)
        return change

    # inside

    def _get(self, file_id: str) -> dict[str, Any]:
        item = self._files.get(file_id)
        if item is None:
            raise KeyError(f"no file {file_id!r}")
        return item

    def _change(
        self, file_id: str, state: str, changed: tuple[str, ...], fields: dict[str, Any]
    ) -> dict[str, Any]:
        with self._state.cond:
            item = {**self._get(file_id), **fields}
            item["version"] = str(int(item.get("version", "0")) + 1)
            return self._record(item, state, changed)

    def _record(self, item: dict[str, Any], state: str, changed: tuple[str, ...]) -> dict[str, Any]:
        """Store ``item``, append it to its drive's log and notify; caller holds the lock."""
        now = self._state.clock.now_ms()
        item["modifiedTime"] = rfc3339(now)
        self._files[item["id"]] = item
        self.log(item.get("driveId")).append(item["id"], item, now)
        self._notify_all(item, state, changed)
        return dict(item)

    def _notify_all(self, item: dict[str, Any], state: str, changed: tuple[str, ...]) -> None:
        """Notify the drive's and the file's channels; ``_queued`` keeps what was queued."""
        self._queued = self._notify(
            Resource.of("drive", "changes", driveId=item.get("driveId")), "change", ()
        )
        self._queued.update(self._notify(Resource.of("drive", "files", fileId=item["id"]), state, changed))
