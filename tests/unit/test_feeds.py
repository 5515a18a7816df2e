"""The feeds: which call lists each watch method's changes, and what each response means."""

import pytest

from channelkit.errors import GoogleApiError, ResourceGoneError, UnsupportedFeedError
from channelkit.feeds import BODY, GET, LIST, Batch, Call, Cursor, batch_from_body, feed_for, rewatch_params


def test_a_plain_cursor_is_googles_token_and_others_round_trip():
    assert Cursor(token="123").encode() == "123"
    assert Cursor.decode("123") == Cursor(token="123")
    for cursor in (Cursor("s", "p"), Cursor(resync=True), Cursor("start", "page2", resync=True)):
        assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode(None) == Cursor(resync=True)


def test_unsupported_method_is_refused_with_a_typed_error():
    with pytest.raises(UnsupportedFeedError, match=r"gmail v1 users\.watch has no change feed"):
        feed_for("gmail", "v1", "users.watch", {})
    with pytest.raises(UnsupportedFeedError):
        feed_for("drive", "v3", "drives.watch", {})
    assert issubclass(UnsupportedFeedError, ValueError)


def test_drive_changes_lists_from_the_page_token_with_the_watch_drive_params():
    feed = feed_for(
        "drive",
        "v3",
        "changes.watch",
        {
            "pageToken": "10",
            "driveId": "D",
            "supportsAllDrives": True,
            "includeItemsFromAllDrives": True,
            "spaces": "drive",
            "includeRemoved": False,
            "pageSize": 5,
        },
    )
    assert feed.kind == LIST
    assert feed.call(Cursor(token="42")) == Call(
        "changes.list",
        {
            "pageToken": "42",
            "driveId": "D",
            "supportsAllDrives": True,
            "includeItemsFromAllDrives": True,
            "spaces": "drive",
            "includeRemoved": False,
            "pageSize": 5,
        },
    )


def test_drive_changes_pages_then_new_start_token():
    feed = feed_for("drive", "v3", "changes.watch", {"pageToken": "1"})
    first = feed.step(Cursor(token="1"), {"changes": [{"fileId": "a"}], "nextPageToken": "2"})
    assert first.items == [{"fileId": "a"}] and first.cursor == Cursor(token="2") and not first.end
    last = feed.step(Cursor(token="2"), {"changes": [{"fileId": "b"}], "newStartPageToken": "3"})
    assert last.cursor == Cursor(token="3") and last.end and not last.resync_complete


def test_drive_resync_takes_a_start_token_first_then_lists_files_over_the_same_corpus():
    feed = feed_for(
        "drive", "v3", "changes.watch", {"driveId": "D", "supportsAllDrives": True, "pageSize": 2}
    )
    begin = Cursor(resync=True)
    assert feed.call(begin) == Call("changes.getStartPageToken", {"driveId": "D", "supportsAllDrives": True})
    started = feed.step(begin, {"startPageToken": "S"})
    assert started.cursor == Cursor(token="S", resync=True) and started.items == []
    assert feed.call(started.cursor) == Call(
        "files.list", {"driveId": "D", "supportsAllDrives": True, "pageSize": 2, "corpora": "drive"}
    )
    page = feed.step(started.cursor, {"files": [{"id": "f1", "modifiedTime": "T"}], "nextPageToken": "P2"})
    assert page.items == [
        {
            "kind": "drive#change",
            "changeType": "file",
            "removed": False,
            "fileId": "f1",
            "time": "T",
            "file": {"id": "f1", "modifiedTime": "T"},
        }
    ]
    assert page.cursor == Cursor("S", "P2", resync=True) and not page.resync_complete
    assert feed.call(page.cursor).params["pageToken"] == "P2"
    done = feed.step(page.cursor, {"files": []})
    # The listing is complete; the changes since the start token come next, in the same pass.
    assert done.resync_complete and done.cursor == Cursor(token="S") and not done.end
    assert feed.call(done.cursor).method == "changes.list"


def test_drive_recognises_an_invalid_page_token():
    feed = feed_for("drive", "v3", "changes.watch", {})
    assert feed.restarts(GoogleApiError("HTTP 400 invalid: Invalid Value: pageToken", status=400))
    assert feed.restarts(ResourceGoneError("HTTP 410", status=410))
    assert feed.restarts(GoogleApiError("HTTP 400 invalid: Invalid Value", status=400, location="pageToken"))
    assert not feed.restarts(ResourceGoneError("HTTP 404 notFound: File not found", status=404))
    assert not feed.restarts(GoogleApiError("HTTP 400 badRequest", status=400))


def test_calendar_events_keep_the_query_shape_and_always_ask_for_deleted_items():
    feed = feed_for(
        "calendar", "v3", "events.watch", {"calendarId": "cal@x", "singleEvents": True, "showDeleted": False}
    )
    normal = feed.call(Cursor(token="ST"))
    assert normal == Call(
        "events.list", {"calendarId": "cal@x", "singleEvents": True, "showDeleted": True, "syncToken": "ST"}
    )
    full = feed.call(Cursor(resync=True))
    assert full == Call("events.list", {"calendarId": "cal@x", "singleEvents": True, "showDeleted": True})
    mid = feed.call(Cursor(token="ST", page="P"))
    assert mid.params["syncToken"] == "ST" and mid.params["pageToken"] == "P"


def test_calendar_pages_keep_their_sync_token_and_the_last_gives_the_next():
    feed = feed_for("calendar", "v3", "events.watch", {"calendarId": "c"})
    page = feed.step(Cursor(token="ST"), {"items": [{"id": "e1"}], "nextPageToken": "P"})
    assert page.cursor == Cursor(token="ST", page="P") and not page.end
    last = feed.step(page.cursor, {"items": [{"id": "e2", "status": "cancelled"}], "nextSyncToken": "ST2"})
    assert last.cursor == Cursor(token="ST2") and last.end and not last.resync_complete
    full = feed.step(Cursor(resync=True, page="P"), {"items": [], "nextSyncToken": "ST3"})
    assert full.resync_complete and full.cursor == Cursor(token="ST3")


def test_calendar_410_means_full_resync_and_404_does_not():
    feed = feed_for("calendar", "v3", "events.watch", {"calendarId": "c"})
    assert feed.restarts(
        ResourceGoneError("HTTP 410 fullSyncRequired", status=410, reason="fullSyncRequired")
    )
    assert not feed.restarts(ResourceGoneError("HTTP 404 notFound", status=404))


def test_calendar_refuses_params_google_refuses_beside_a_sync_token():
    with pytest.raises(UnsupportedFeedError, match="timeMin"):
        feed_for("calendar", "v3", "events.watch", {"calendarId": "c", "timeMin": "2026-01-01T00:00:00Z"})


@pytest.mark.parametrize(
    ("method", "params", "listed"),
    [
        ("calendarList.watch", {"showHidden": True}, "calendarList.list"),
        ("acl.watch", {"calendarId": "c"}, "acl.list"),
    ],
)
def test_other_calendar_collections_list_their_own_items(method, params, listed):
    call = feed_for("calendar", "v3", method, params).call(Cursor(token="T"))
    assert call == Call(listed, {**params, "showDeleted": True, "syncToken": "T"})


def test_calendar_settings_have_no_show_deleted():
    call = feed_for("calendar", "v3", "settings.watch", {}).call(Cursor(token="T"))
    assert call == Call("settings.list", {"syncToken": "T"})


def test_drive_files_watch_gets_the_file_as_a_batch_of_one():
    feed = feed_for("drive", "v3", "files.watch", {"fileId": "F", "supportsAllDrives": True})
    assert feed.kind == GET
    assert feed.call(Cursor()) == Call("files.get", {"fileId": "F", "supportsAllDrives": True})
    step = feed.step(Cursor(), {"id": "F", "name": "n"})
    assert step.items == [{"id": "F", "name": "n"}] and step.end


def test_directory_and_reports_hand_over_the_body_without_a_fetch():
    assert feed_for("directory", "v1", "users.watch", {"customer": "c", "event": "add"}).kind == BODY
    assert feed_for("admin", "reports_v1", "activities.watch", {}).kind == BODY
    assert batch_from_body("S", b'{"kind": "admin#directory#user", "id": "u1"}') == Batch(
        "S", None, [{"kind": "admin#directory#user", "id": "u1"}]
    )
    assert batch_from_body("S", b"") is None
    assert batch_from_body("S", b"not json") is None


def test_a_renewed_drive_changes_watch_starts_from_the_cursor_reached_not_the_first_token():
    params = {"pageToken": "first", "driveId": "D", "supportsAllDrives": True}
    moved = rewatch_params("drive", "v3", "changes.watch", params, "t-42")
    assert moved == {"pageToken": "t-42", "driveId": "D", "supportsAllDrives": True}
    assert params["pageToken"] == "first"  # the stored parameters are not changed in place
    # Mid-listing or mid-resync, the cursor's token is still where the feed goes on from.
    during = Cursor(token="t-7", page="p-3", resync=True).encode()
    assert rewatch_params("drive", "v3", "changes.watch", params, during)["pageToken"] == "t-7"


def test_rewatch_keeps_the_parameters_when_there_is_no_token_to_move_to():
    params = {"pageToken": "first"}
    assert rewatch_params("drive", "v3", "changes.watch", params, None) == params  # not a --sync one
    assert rewatch_params("drive", "v3", "changes.watch", params, "") == params  # no cursor yet
    # Calendar's sync token is not a watch parameter; a method without a feed is left alone.
    calendar = {"calendarId": "primary"}
    assert rewatch_params("calendar", "v3", "events.watch", calendar, "sync-9") == calendar
    assert rewatch_params("drive", "v3", "files.watch", {"fileId": "F"}, "x") == {"fileId": "F"}
    assert rewatch_params("gmail", "v1", "users.watch", {"userId": "me"}, "x") == {"userId": "me"}
