"""The simulator's change feeds (Drive changes/files, Calendar lists), driven through the real client.

Clients come from the discovery documents bundled with google-api-python-client,
so these tests prove the simulator answers the paths, parameters and fields a
sync engine really sends and reads. Notifications go to a loopback receiver;
waits are on conditions, never on sleeps.
"""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urljoin

import httplib2
import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from channelkit.testing.fixtures import simulator  # noqa: F401  (the fixture under test)
from channelkit.testing.harness import LoopbackReceiver
from channelkit.testing.simulator import Resource, Simulator

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def drive_client(sim: Simulator):
    return build(
        "drive",
        "v3",
        static_discovery=True,
        http=httplib2.Http(proxy_info=None),
        client_options={"api_endpoint": urljoin(sim.url, "drive/v3/")},
    )


def calendar_client(sim: Simulator):
    return build(
        "calendar",
        "v3",
        static_discovery=True,
        http=httplib2.Http(proxy_info=None),
        client_options={"api_endpoint": urljoin(sim.url, "calendar/v3/")},
    )


def error_of(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


def all_changes(drive, token: str, **params) -> tuple[list[dict], list[dict]]:
    """Follow nextPageToken to the end: (every change, every page)."""
    pages = []
    while True:
        page = drive.changes().list(pageToken=token, **params).execute()
        pages.append(page)
        if "nextPageToken" not in page:
            return [c for p in pages for c in p["changes"]], pages
        token = page["nextPageToken"]


def all_events(calendar, **params) -> tuple[list[dict], list[dict]]:
    pages = []
    while True:
        page = calendar.events().list(**params).execute()
        pages.append(page)
        if "nextPageToken" not in page:
            return [e for p in pages for e in p["items"]], pages
        params["pageToken"] = page["nextPageToken"]


def control(sim: Simulator, method: str, name: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(urljoin(sim.url, f"_simulator/{name}"), data=data, method=method)
    with NO_PROXY.open(request, timeout=10) as response:
        return json.loads(response.read())


# --- Drive changes ----------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["request", "simulator"])
def test_changes_are_paged_with_next_page_token_until_the_last_page_carries_the_new_start(simulator, limit):
    drive = drive_client(simulator)
    start = drive.changes().getStartPageToken().execute()
    assert start["kind"] == "drive#startPageToken"
    for i in range(7):
        simulator.drive.create_file(f"n{i}", file_id=f"F{i}")
    params = {"pageSize": 3} if limit == "request" else {}
    if limit == "simulator":
        simulator.max_page_size = 3

    changes, pages = all_changes(drive, start["startPageToken"], **params)

    assert [len(p["changes"]) for p in pages] == [3, 3, 1]
    assert all("nextPageToken" in p and "newStartPageToken" not in p for p in pages[:-1])
    assert "newStartPageToken" in pages[-1] and "nextPageToken" not in pages[-1]
    assert all(p["kind"] == "drive#changeList" for p in pages)
    assert [c["fileId"] for c in changes] == [f"F{i}" for i in range(7)]
    first = changes[0]
    assert first["kind"] == "drive#change" and first["changeType"] == "file" and first["removed"] is False
    assert first["file"]["name"] == "n0" and first["time"].endswith("Z")
    # the new start token lists nothing until something changes, then just that
    again, _ = all_changes(drive, pages[-1]["newStartPageToken"])
    assert again == []
    simulator.drive.update_file("F3", name="renamed")
    later, _ = all_changes(drive, pages[-1]["newStartPageToken"])
    assert [(c["fileId"], c["file"]["name"]) for c in later] == [("F3", "renamed")]


def test_a_page_full_to_the_end_is_the_last_page(simulator):
    drive = drive_client(simulator)
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    for i in range(4):
        simulator.drive.create_file(file_id=f"F{i}")
    _, pages = all_changes(drive, token, pageSize=2)
    assert [len(p["changes"]) for p in pages] == [2, 2]
    assert "newStartPageToken" in pages[1]


def test_removed_changes_carry_no_file_and_include_removed_false_leaves_them_out(simulator):
    drive = drive_client(simulator)
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    simulator.drive.create_file("a", file_id="A")
    simulator.drive.trash_file("A")
    simulator.drive.remove_file("A")

    changes, _ = all_changes(drive, token)
    assert [(c["removed"], "file" in c) for c in changes] == [(False, True), (False, True), (True, False)]
    assert changes[1]["file"]["trashed"] is True
    assert changes[2]["fileId"] == "A"
    kept, _ = all_changes(drive, token, includeRemoved=False)
    assert [c["removed"] for c in kept] == [False, False]


def test_an_invalid_or_expired_page_token_is_refused_as_drive_does(simulator):
    drive = drive_client(simulator)
    old = drive.changes().getStartPageToken().execute()["startPageToken"]
    simulator.drive.create_file(file_id="A")
    for bad in ("not-a-token", "999"):
        with pytest.raises(HttpError) as caught:
            drive.changes().list(pageToken=bad).execute()
        assert caught.value.resp.status == 400
        error = error_of(caught.value)
        assert error["errors"][0]["reason"] == "invalid"
        assert error["errors"][0]["location"] == "pageToken"

    simulator.drive.expire_page_tokens()
    with pytest.raises(HttpError) as caught:
        drive.changes().list(pageToken=old).execute()
    assert caught.value.resp.status == 400
    fresh = drive.changes().getStartPageToken().execute()["startPageToken"]
    simulator.drive.update_file("A")
    changes, _ = all_changes(drive, fresh)
    assert [c["fileId"] for c in changes] == ["A"]


def test_each_shared_drive_has_its_own_change_log(simulator):
    drive = drive_client(simulator)
    mine = drive.changes().getStartPageToken().execute()["startPageToken"]
    shared = (
        drive.changes().getStartPageToken(driveId="D1", supportsAllDrives=True).execute()["startPageToken"]
    )
    simulator.drive.create_file(file_id="M")
    simulator.drive.create_file(file_id="S", drive_id="D1")

    in_mine, _ = all_changes(drive, mine)
    in_shared, _ = all_changes(
        drive, shared, driveId="D1", supportsAllDrives=True, includeItemsFromAllDrives=True
    )
    assert [c["fileId"] for c in in_mine] == ["M"]
    assert [(c["fileId"], c["file"]["driveId"]) for c in in_shared] == [("S", "D1")]


def test_page_size_beyond_drives_maximum_is_refused(simulator):
    drive = drive_client(simulator)
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    with pytest.raises(HttpError) as caught:
        drive.changes().list(pageToken=token, pageSize=1001).execute()
    assert caught.value.resp.status == 400
    assert error_of(caught.value)["errors"][0]["location"] == "pageSize"


# --- Drive files -----------------------------------------------------------------------


def test_files_get_answers_the_file_and_404_for_an_unknown_or_removed_one(simulator):
    drive = drive_client(simulator)
    simulator.drive.create_file("doc", file_id="A", mime_type="text/csv")
    simulator.drive.trash_file("A")
    got = drive.files().get(fileId="A").execute()
    assert (got["id"], got["name"], got["mimeType"], got["trashed"]) == ("A", "doc", "text/csv", True)

    simulator.drive.remove_file("A")
    for file_id in ("A", "never"):
        with pytest.raises(HttpError) as caught:
            drive.files().get(fileId=file_id).execute()
        assert caught.value.resp.status == 404
        error = error_of(caught.value)
        assert error["errors"][0]["reason"] == "notFound"
        assert error["message"] == f"File not found: {file_id}."


def test_files_list_pages_over_a_snapshot_that_later_changes_do_not_shift(simulator):
    drive = drive_client(simulator)
    for i in range(5):
        simulator.drive.create_file(f"n{i}", file_id=f"F{i}")
    simulator.drive.trash_file("F4")
    first = drive.files().list(pageSize=2, q="trashed = false").execute()
    assert first["kind"] == "drive#fileList"
    simulator.drive.remove_file("F0")  # during the listing: must not push F2 off the next page
    simulator.drive.create_file(file_id="NEW")
    rest = drive.files().list(pageSize=2, q="trashed = false", pageToken=first["nextPageToken"]).execute()

    assert [f["id"] for f in first["files"] + rest["files"]] == ["F0", "F1", "F2", "F3"]
    assert "nextPageToken" not in rest
    now = drive.files().list(q="trashed = false").execute()
    assert [f["id"] for f in now["files"]] == ["F1", "F2", "F3", "NEW"]


def test_files_list_covers_the_corpus_asked_for(simulator):
    drive = drive_client(simulator)
    simulator.drive.create_file(file_id="M", parents=["folder"])
    simulator.drive.create_file(file_id="S", drive_id="D1")
    listed = drive.files().list(
        corpora="drive", driveId="D1", includeItemsFromAllDrives=True, supportsAllDrives=True
    )
    assert [f["id"] for f in listed.execute()["files"]] == ["S"]
    assert [f["id"] for f in drive.files().list(q="'folder' in parents").execute()["files"]] == ["M"]
    everywhere = drive.files().list(
        corpora="allDrives", includeItemsFromAllDrives=True, supportsAllDrives=True
    )
    assert sorted(f["id"] for f in everywhere.execute()["files"]) == ["M", "S"]
    with pytest.raises(HttpError) as caught:
        drive.files().list(q="fullText contains 'x'").execute()
    assert caught.value.resp.status == 400


# --- Calendar events ---------------------------------------------------------------------


def test_events_are_paged_and_only_the_last_page_carries_the_sync_token(simulator):
    calendar = calendar_client(simulator)
    for i in range(5):
        simulator.calendar.insert_event("primary", event_id=f"e{i}", summary=f"s{i}")
    simulator.max_page_size = 2

    events, pages = all_events(calendar, calendarId="primary", singleEvents=True)

    assert [e["id"] for e in events] == [f"e{i}" for i in range(5)]
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert all("nextPageToken" in p and "nextSyncToken" not in p for p in pages[:-1])
    assert "nextSyncToken" in pages[-1] and "nextPageToken" not in pages[-1]
    assert pages[0]["kind"] == "calendar#events" and events[0]["kind"] == "calendar#event"


def test_an_incremental_listing_returns_what_changed_with_deleted_events_cancelled(simulator):
    calendar = calendar_client(simulator)
    simulator.calendar.insert_event("primary", event_id="keep")
    simulator.calendar.insert_event("primary", event_id="gone")
    _, pages = all_events(calendar, calendarId="primary")
    token = pages[-1]["nextSyncToken"]

    simulator.calendar.delete_event("primary", "gone")
    simulator.calendar.insert_event("primary", event_id="new", summary="first")
    simulator.calendar.update_event("primary", "new", summary="second")

    changed, pages = all_events(calendar, calendarId="primary", syncToken=token)
    assert [(e["id"], e["status"]) for e in changed] == [("gone", "cancelled"), ("new", "confirmed")]
    assert changed[1]["summary"] == "second"  # each item once, in its latest state
    # a full listing leaves deleted events out unless showDeleted
    full, _ = all_events(calendar, calendarId="primary")
    assert [e["id"] for e in full] == ["keep", "new"]
    with_deleted, _ = all_events(calendar, calendarId="primary", showDeleted=True)
    assert [e["id"] for e in with_deleted] == ["keep", "gone", "new"]


def test_an_empty_incremental_listing_returns_a_sync_token_that_still_works(simulator):
    calendar = calendar_client(simulator)
    simulator.calendar.insert_event("primary", event_id="a")
    token = all_events(calendar, calendarId="primary")[1][-1]["nextSyncToken"]

    empty = calendar.events().list(calendarId="primary", syncToken=token).execute()
    assert empty["items"] == [] and empty["nextSyncToken"] == token
    simulator.calendar.insert_event("primary", event_id="b")
    changed, _ = all_events(calendar, calendarId="primary", syncToken=empty["nextSyncToken"])
    assert [e["id"] for e in changed] == ["b"]


def test_an_incremental_listing_is_paged_on_a_cut_that_later_changes_do_not_move(simulator):
    calendar = calendar_client(simulator)
    token = calendar.events().list(calendarId="primary").execute()["nextSyncToken"]
    for i in range(4):
        simulator.calendar.insert_event("primary", event_id=f"e{i}")
    first = calendar.events().list(calendarId="primary", syncToken=token, maxResults=2).execute()
    simulator.calendar.update_event("primary", "e0", summary="later")  # after the cut
    rest = (
        calendar.events()
        .list(calendarId="primary", syncToken=token, maxResults=2, pageToken=first["nextPageToken"])
        .execute()
    )
    assert [e["id"] for e in first["items"] + rest["items"]] == ["e0", "e1", "e2", "e3"]
    after, _ = all_events(calendar, calendarId="primary", syncToken=rest["nextSyncToken"])
    assert [(e["id"], e["summary"]) for e in after] == [("e0", "later")]


def test_expired_sync_tokens_answer_410_full_sync_required_until_a_full_listing(simulator):
    calendar = calendar_client(simulator)
    simulator.calendar.insert_event("primary", event_id="a")
    token = all_events(calendar, calendarId="primary")[1][-1]["nextSyncToken"]

    assert simulator.calendar.expire_sync_tokens(calendar_id="primary") == 1
    for stale in (token, "made-up"):
        with pytest.raises(HttpError) as caught:
            calendar.events().list(calendarId="primary", syncToken=stale).execute()
        assert caught.value.resp.status == 410
        error = error_of(caught.value)
        assert error["errors"][0]["reason"] == "fullSyncRequired"
        assert error["message"] == "Sync token is no longer valid, a full sync is required."

    fresh = all_events(calendar, calendarId="primary")[1][-1]["nextSyncToken"]
    assert calendar.events().list(calendarId="primary", syncToken=fresh).execute()["items"] == []


@pytest.mark.parametrize(
    "restriction",
    [{"timeMin": "2026-01-01T00:00:00Z"}, {"q": "x"}, {"orderBy": "updated"}, {"showDeleted": False}],
)
def test_a_sync_token_with_a_forbidden_filter_is_refused(simulator, restriction):
    calendar = calendar_client(simulator)
    token = calendar.events().list(calendarId="primary").execute()["nextSyncToken"]
    with pytest.raises(HttpError) as caught:
        calendar.events().list(calendarId="primary", syncToken=token, **restriction).execute()
    assert caught.value.resp.status == 400
    assert error_of(caught.value)["errors"][0]["reason"] == "syncTokenWithRequestRestrictions"
    # singleEvents keeps the query's shape and is allowed
    calendar.events().list(calendarId="primary", syncToken=token, singleEvents=True).execute()


def test_an_unknown_calendar_is_not_found_and_max_results_is_lowered_to_the_maximum(simulator):
    calendar = calendar_client(simulator)
    with pytest.raises(HttpError) as caught:
        calendar.events().list(calendarId="nobody@example.com").execute()
    assert caught.value.resp.status == 404
    simulator.calendar.insert_event("team@example.com", event_id="x")
    page = calendar.events().list(calendarId="team@example.com", maxResults=5000).execute()
    assert [e["id"] for e in page["items"]] == ["x"]


# --- calendarList, acl, settings ----------------------------------------------------------


def test_calendar_list_acl_and_settings_sync_with_their_deleted_items(simulator):
    calendar = calendar_client(simulator)
    simulator.calendar.add_calendar("team@example.com", "Team")
    simulator.calendar.set_acl_rule("team@example.com", "ada@example.com", "reader")
    simulator.calendar.set_setting("timezone", "Europe/Paris")
    tokens = {
        "calendarList": calendar.calendarList().list().execute()["nextSyncToken"],
        "acl": calendar.acl().list(calendarId="team@example.com").execute()["nextSyncToken"],
        "settings": calendar.settings().list().execute()["nextSyncToken"],
    }

    simulator.calendar.remove_calendar_list_entry("team@example.com")
    simulator.calendar.delete_acl_rule("team@example.com", "user:ada@example.com")
    simulator.calendar.set_setting("timezone", "UTC")

    entries = calendar.calendarList().list(syncToken=tokens["calendarList"]).execute()
    assert [(e["id"], e.get("deleted")) for e in entries["items"]] == [("team@example.com", True)]
    rules = calendar.acl().list(calendarId="team@example.com", syncToken=tokens["acl"]).execute()
    assert [(r["id"], r["role"]) for r in rules["items"]] == [("user:ada@example.com", "none")]
    settings = calendar.settings().list(syncToken=tokens["settings"]).execute()
    assert [(s["id"], s["value"]) for s in settings["items"]] == [("timezone", "UTC")]
    assert calendar.calendarList().list().execute()["items"] == []
    assert entries["kind"] == "calendar#calendarList" and rules["kind"] == "calendar#acl"


# --- what is pushed agrees with what is listed -------------------------------------------------


def watch_body(channel_id: str, address: str) -> dict:
    return {"id": channel_id, "type": "web_hook", "address": address}


def test_each_change_is_logged_then_pushed_to_the_channels_watching_it(simulator):
    drive, calendar = drive_client(simulator), calendar_client(simulator)
    with LoopbackReceiver() as hook:
        token = drive.changes().getStartPageToken().execute()["startPageToken"]
        drive.changes().watch(pageToken=token, body=watch_body("changes", hook.url)).execute()
        drive.files().watch(fileId="A", body=watch_body("file-a", hook.url)).execute()
        calendar.events().watch(calendarId="primary", body=watch_body("events", hook.url)).execute()
        calendar.acl().watch(calendarId="primary", body=watch_body("acl", hook.url)).execute()
        simulator.wait_for_deliveries(4, state="sync")

        simulator.drive.create_file(file_id="A")
        simulator.drive.update_file("A", name="renamed")
        simulator.drive.trash_file("A")
        simulator.drive.create_file(file_id="B")  # nobody watches B itself
        simulator.calendar.insert_event("primary", event_id="e")
        simulator.wait_idle()

        pushed = {
            c: [(d.state, d.headers.get("X-Goog-Changed")) for d in simulator.deliveries if d.channel_id == c]
            for c in ("changes", "file-a", "events", "acl")
        }
        assert pushed["changes"] == [("sync", None)] + [("change", None)] * 4
        assert pushed["file-a"] == [("sync", None), ("add", None), ("update", "properties"), ("trash", None)]
        assert pushed["events"] == [("sync", None), ("exists", None)]
        assert pushed["acl"] == [("sync", None)]
        changes, _ = all_changes(drive, token)
        assert len(changes) == len(pushed["changes"]) - 1
        assert [c["fileId"] for c in changes] == ["A", "A", "A", "B"]


def test_list_calls_are_recorded_and_read_faults_apply_to_them(simulator):
    drive = drive_client(simulator)
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    simulator.fail_next("read", status=503)
    with pytest.raises(HttpError) as caught:
        drive.changes().list(pageToken=token).execute()
    assert caught.value.resp.status == 503
    drive.changes().list(pageToken=token).execute()
    simulator.refuse("not_found", {"calendarId": "lost@example.com"}, operation="read")
    with pytest.raises(HttpError) as caught:
        calendar_client(simulator).events().list(calendarId="lost@example.com").execute()
    assert caught.value.resp.status == 404

    lists = [c for c in simulator.calls if c.operation == "drive.changes.list"]
    assert [c.status for c in lists] == [503, 200]
    assert lists[0].resource == Resource.of("drive", "changes")
    assert lists[1].query["pageToken"] == token


def test_a_read_of_an_owned_resource_needs_its_owners_token(simulator):
    simulator.add_user("ada@example.com")
    simulator.set_owner(Resource.of("calendar", "events", calendarId="primary"), "ada@example.com")
    with pytest.raises(HttpError) as caught:
        calendar_client(simulator).events().list(calendarId="primary").execute()
    assert caught.value.resp.status == 401


def test_the_feed_controls_over_http(simulator):
    drive = drive_client(simulator)
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    assert control(simulator, "POST", "config", {"maxPageSize": 1})["maxPageSize"] == 1
    control(
        simulator, "POST", "drive/create_file", {"fileId": "A", "name": "a", "fields": {"description": "d"}}
    )
    control(simulator, "POST", "drive/update_file", {"fileId": "A", "fields": {"name": "b"}})
    control(simulator, "POST", "drive/remove_file", {"fileId": "A"})
    changes, pages = all_changes(drive, token)
    assert [(c["removed"], c.get("file", {}).get("name")) for c in changes] == [
        (False, "a"),
        (False, "b"),
        (True, None),
    ]
    assert len(pages) == 3
    assert control(simulator, "GET", "drive/files") == {"files": []}
    assert control(simulator, "GET", f"drive/changes?pageToken={token}")["changes"] == changes
    assert simulator.drive.changes(page_token=token) == changes
    fresh = control(simulator, "POST", "drive/expire_page_tokens", {})["startPageToken"]
    assert fresh == drive.changes().getStartPageToken().execute()["startPageToken"]

    calendar = calendar_client(simulator)
    control(simulator, "POST", "calendar/insert_event", {"eventId": "e", "fields": {"summary": "s"}})
    sync = all_events(calendar, calendarId="primary")[1][-1]["nextSyncToken"]
    control(simulator, "POST", "calendar/delete_event", {"calendarId": "primary", "eventId": "e"})
    assert control(simulator, "POST", "calendar/expire_sync_tokens", {"calendarId": "primary"}) == {
        "expired": 1
    }
    with pytest.raises(HttpError) as caught:
        calendar.events().list(calendarId="primary", syncToken=sync).execute()
    assert caught.value.resp.status == 410
    items = control(simulator, "GET", "calendar/items?kind=events&calendarId=primary")["items"]
    assert [(e["id"], e["status"]) for e in items] == [("e", "cancelled")]


def test_change_on_a_kept_drive_file_changes_it_too(simulator):
    drive = drive_client(simulator)
    simulator.drive.create_file(file_id="A")
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    with LoopbackReceiver() as hook:
        drive.changes().watch(pageToken=token, body=watch_body("changes", hook.url)).execute()
        drive.files().watch(fileId="A", body=watch_body("file-a", hook.url)).execute()
        simulator.wait_for_deliveries(2, state="sync")

        queued = simulator.change("drive", "files", fileId="A", state="trash")
        assert sorted(queued) == ["changes", "file-a"]
        assert drive.files().get(fileId="A").execute()["trashed"] is True
        changes, _ = all_changes(drive, token)
        assert [(c["fileId"], c["file"]["trashed"]) for c in changes] == [("A", True)]
        # a file the simulator does not keep: notified only, as before
        assert simulator.change("drive", "files", fileId="unkept", state="update") == {}
        simulator.wait_idle()
        assert [d.state for d in simulator.deliveries if d.channel_id == "file-a"] == ["sync", "trash"]


def test_reset_forgets_files_calendars_and_their_logs(simulator):
    simulator.drive.create_file(file_id="A")
    simulator.calendar.insert_event("team@example.com", event_id="e")
    simulator.reset()
    assert simulator.drive.file("A") is None and simulator.drive.changes() == []
    assert simulator.drive.start_page_token() == "1"
    assert not simulator.calendar.has_calendar("team@example.com")
    assert simulator.calendar.items("events", "primary") == []


def test_a_dropped_notification_leaves_its_change_listed(simulator):
    drive = drive_client(simulator)
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    with LoopbackReceiver() as hook:
        drive.changes().watch(pageToken=token, body=watch_body("changes", hook.url)).execute()
        simulator.wait_for_deliveries(1, state="sync")
        simulator.drop_next(1)
        simulator.drive.create_file(file_id="A")
        simulator.drive.create_file(file_id="B")
        simulator.wait_idle()

        outcomes = [(d.state, d.outcome) for d in simulator.deliveries if d.channel_id == "changes"]
        assert outcomes == [("sync", "delivered"), ("change", "dropped"), ("change", "delivered")]
        assert len(hook.requests) == 2
        changes, _ = all_changes(drive, token)
        assert [c["fileId"] for c in changes] == ["A", "B"]
        control(simulator, "POST", "drop_next", {"count": 1})
        simulator.calendar.insert_event("primary")  # nobody watches: the drop is still pending
        simulator.drive.create_file(file_id="C")
        simulator.wait_idle()
        assert [d.outcome for d in simulator.deliveries if d.channel_id == "changes"][-1] == "dropped"
