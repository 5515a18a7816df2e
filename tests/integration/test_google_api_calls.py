"""GoogleApi against the local simulator, through the real google-api-python-client."""

import pytest

from channelkit.errors import AuthError, InvalidRequestError, ResourceGoneError, TransientApiError
from channelkit.google_api import GoogleApi
from channelkit.testing.harness import free_port

CASES = [
    ("drive", "v3", "files.watch", {"fileId": "F1"}, "/drive/v3/files/F1/watch"),
    ("drive", "v3", "changes.watch", {"pageToken": "42"}, "/drive/v3/changes/watch"),
    (
        "calendar",
        "v3",
        "events.watch",
        {"calendarId": "primary"},
        "/calendar/v3/calendars/primary/events/watch",
    ),
    ("calendar", "v3", "calendarList.watch", {}, "/calendar/v3/users/me/calendarList/watch"),
    ("calendar", "v3", "acl.watch", {"calendarId": "c1"}, "/calendar/v3/calendars/c1/acl/watch"),
    ("calendar", "v3", "settings.watch", {}, "/calendar/v3/users/me/settings/watch"),
    (
        "directory",
        "v1",
        "users.watch",
        {"customer": "my_customer", "event": "add"},
        "/admin/directory/v1/users/watch",
    ),
    (
        "reports",
        "v1",
        "activities.watch",
        {"userKey": "all", "applicationName": "admin"},
        "/admin/reports/v1/activity/users/all/applications/admin/watch",
    ),
]


def body(cid):
    return {"id": cid, "type": "web_hook", "address": "https://hooks.example.com/x", "token": "t"}


@pytest.mark.parametrize("api,version,method,params,path", CASES, ids=[c[2] + "-" + c[0] for c in CASES])
def test_watch_and_stop_reach_the_discovery_paths(simulator, api, version, method, params, path):
    google = GoogleApi(root=simulator.url, retries=0)
    resp = google.watch(api, version, method, params, body("ch-" + method.replace(".", "-")))
    assert resp["id"] == "ch-" + method.replace(".", "-")
    assert resp["resourceId"] and isinstance(resp["expiration"], str)
    watch_call = simulator.calls[-1]
    assert watch_call.path == path and watch_call.status == 200
    google.stop(api, version, resp["id"], resp["resourceId"])
    assert simulator.calls[-1].operation.endswith("channels.stop")
    assert simulator.calls[-1].status == 204
    assert simulator.live_channels() == []


def test_stop_of_an_unknown_channel_is_resource_gone(simulator):
    with pytest.raises(ResourceGoneError):
        GoogleApi(root=simulator.url, retries=0).stop("drive", "v3", "nope", "res")


@pytest.mark.parametrize(
    "status,error",
    [
        (404, ResourceGoneError),
        (410, ResourceGoneError),
        (401, AuthError),
        (403, AuthError),
        (400, InvalidRequestError),
    ],
)
def test_watch_failures_are_typed(simulator, status, error):
    simulator.fail_next("watch", status=status)
    with pytest.raises(error) as info:
        GoogleApi(root=simulator.url, retries=3).watch(
            "drive", "v3", "files.watch", {"fileId": "F"}, body("c1")
        )
    assert info.value.status == status
    assert simulator.live_channels() == []
    assert len([c for c in simulator.calls if c.operation == "drive.files.watch"]) == 1  # not retried


def test_transient_failures_are_retried_by_the_client_library(simulator):
    simulator.fail_next("watch", status=503, count=1)
    resp = GoogleApi(root=simulator.url, retries=2).watch(
        "drive", "v3", "files.watch", {"fileId": "F"}, body("c-retry")
    )
    assert resp["id"] == "c-retry"
    statuses = [c.status for c in simulator.calls if c.operation == "drive.files.watch"]
    assert statuses == [503, 200]


def test_transient_failure_after_retries_is_transient_error(simulator):
    simulator.fail_next("watch", status=500, count=5)
    with pytest.raises(TransientApiError):
        GoogleApi(root=simulator.url, retries=0).watch(
            "drive", "v3", "files.watch", {"fileId": "F"}, body("c")
        )


def test_unreachable_root_is_transient_error():
    google = GoogleApi(root=f"http://127.0.0.1:{free_port()}/", retries=0)
    with pytest.raises(TransientApiError):
        google.watch("drive", "v3", "files.watch", {"fileId": "F"}, body("c"))


def test_api_root_from_the_environment(simulator, monkeypatch):
    monkeypatch.setenv("CHANNELKIT_API_ROOT", simulator.url.rstrip("/"))
    resp = GoogleApi(retries=0).watch("calendar", "v3", "events.watch", {"calendarId": "x"}, body("env"))
    assert resp["id"] == "env"
