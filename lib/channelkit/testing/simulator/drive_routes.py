"""Drive's reads, answered from ``DriveData`` as Drive v3 answers them.

``changes.getStartPageToken``, ``changes.list``, ``files.get`` and
``files.list``. Change page tokens are numbers: the sequence number of the next
change to list. ``nextPageToken`` is on every page but the last, which carries
``newStartPageToken`` instead. A token from before ``expire_page_tokens``, or
one Drive never issued, is refused 400 ``invalid`` at ``pageToken``.
"""

from __future__ import annotations

import re
from typing import Any

from channelkit.testing.simulator.api_errors import ApiError
from channelkit.testing.simulator.drive_data import DriveData
from channelkit.testing.simulator.feed_log import Entry
from channelkit.testing.simulator.paging import decode_token, encode_token, invalid_parameter, page_size

__all__ = ["changes_list", "files_get", "files_list", "start_page_token"]

_DEFAULT_PAGE, _MAX_PAGE = 100, 1000
_Q_TERM = re.compile(
    r"\s*(?:(?P<trashed>trashed)\s*(?P<top>=|!=)\s*(?P<flag>true|false)"
    r"|'(?P<parent>(?:[^'\\]|\\.)*)'\s+in\s+parents"
    r"|(?P<field>name|mimeType)\s*(?P<fop>=|!=)\s*'(?P<value>(?:[^'\\]|\\.)*)')\s*",
    re.IGNORECASE,
)


def _flag(query: dict[str, str], name: str, default: bool) -> bool:
    value = query.get(name)
    return default if value in (None, "") else value.lower() == "true"


def start_page_token(drive: DriveData, query: dict[str, str], override: int | None) -> dict[str, Any]:
    return {
        "kind": "drive#startPageToken",
        "startPageToken": drive.start_page_token(query.get("driveId") or None),
    }


def changes_list(drive: DriveData, query: dict[str, str], override: int | None) -> dict[str, Any]:
    raw = query.get("pageToken")
    if not raw:
        raise ApiError(400, "required", "Required parameter: pageToken", location="pageToken")
    size = page_size(query, "pageSize", _DEFAULT_PAGE, _MAX_PAGE, override, clamp=False)
    include_removed = _flag(query, "includeRemoved", True)
    with drive.lock:
        log = drive.log(query.get("driveId") or None)
        if not raw.isdigit() or not log.floor <= int(raw) <= log.last_seq + 1:
            raise invalid_parameter("pageToken")
        start = int(raw)
        entries = log.after(start - 1, size)
        answer: dict[str, Any] = {
            "kind": "drive#changeList",
            "changes": [drive.change_resource(e) for e in entries if include_removed or e.item is not None],
        }
        following = start + len(entries)
        if following <= log.last_seq:
            answer["nextPageToken"] = str(following)
        else:
            answer["newStartPageToken"] = str(log.last_seq + 1)
        return answer


def files_get(drive: DriveData, file_id: str) -> dict[str, Any]:
    item = drive.file(file_id)
    if item is None:
        raise ApiError(404, "notFound", f"File not found: {file_id}.", location="fileId")
    return item


def files_list(drive: DriveData, query: dict[str, str], override: int | None) -> dict[str, Any]:
    """The files of the corpus, paged over a snapshot taken at the first page (stable under changes)."""
    size = page_size(query, "pageSize", _DEFAULT_PAGE, _MAX_PAGE, override, clamp=False)
    keep = _q_filter(query.get("q") or "")
    with drive.lock:
        raw = query.get("pageToken")
        if raw:
            token = decode_token(raw)
            if token is None or not isinstance(token.get("u"), dict) or not isinstance(token.get("o"), int):
                raise invalid_parameter("pageToken")
            upto, offset = {str(k): int(v) for k, v in token["u"].items()}, token["o"]
        else:
            upto, offset = {d: drive.log(d).last_seq for d in _corpus(drive, query)}, 0
        snapshot: list[Entry] = []
        for drive_key, seq in sorted(upto.items()):
            snapshot.extend(e for e in drive.log(drive_key).latest_between(0, seq) if e.item is not None)
        matching = [e.item for e in snapshot if e.item is not None and keep(e.item)]
        answer: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False}
        answer["files"] = [dict(item) for item in matching[offset : offset + size]]
        if offset + size < len(matching):
            answer["nextPageToken"] = encode_token({"u": upto, "o": offset + size})
        return answer


def _corpus(drive: DriveData, query: dict[str, str]) -> list[str]:
    """The drives a listing covers: ``driveId``'s, every one for ``corpora=allDrives``, else My Drive."""
    if query.get("driveId"):
        return [query["driveId"]]
    if query.get("corpora") == "allDrives":
        return drive.drive_ids()
    return [""]


def _q_filter(q: str) -> Any:
    """A predicate for the few ``q`` terms served (``trashed``, ``in parents``, ``name``, ``mimeType``)."""
    tests = []
    for term in re.split(r"\s+and\s+", q.strip(), flags=re.IGNORECASE) if q.strip() else []:
        match = _Q_TERM.fullmatch(term)
        if not match:
            raise invalid_parameter("q")
        tests.append(_term_test(match))
    return lambda item: all(test(item) for test in tests)


def _term_test(match: re.Match[str]) -> Any:
    if match["trashed"]:
        wanted = (match["flag"].lower() == "true") == (match["top"] == "=")
        return lambda item: bool(item.get("trashed")) == wanted
    if match["parent"] is not None:
        parent = match["parent"].replace("\\'", "'")
        return lambda item: parent in item.get("parents", [])
    field, value, equal = match["field"], match["value"].replace("\\'", "'"), match["fop"] == "="
    field = "mimeType" if field.lower() == "mimetype" else "name"
    return lambda item: (item.get(field) == value) == equal
