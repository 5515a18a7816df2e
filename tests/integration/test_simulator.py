"""The push simulator, driven through the real google-api-python-client.

Clients are built from the discovery documents bundled with googleapiclient, with
the simulator's root URL plus the API's service path as endpoint, so these tests
prove the simulator serves the paths real code calls. Notifications go to a tiny
recording webhook on 127.0.0.1. Every wait is on a condition, never a fixed sleep.
"""

from __future__ import annotations

import collections
import email.utils
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin

import httplib2
import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from channelkit.testing.fixtures import simulator  # noqa: F401  (the fixture under test)
from channelkit.testing.simulator import CANCELLED, DAY, HOUR, Resource, Simulator

SERVICE_PATHS = {
    ("drive", "v3"): "drive/v3/",
    ("calendar", "v3"): "calendar/v3/",
    ("admin", "directory_v1"): "",
    ("admin", "reports_v1"): "",
}
DRIVE, CALENDAR = ("drive", "v3"), ("calendar", "v3")
DIRECTORY, REPORTS = ("admin", "directory_v1"), ("admin", "reports_v1")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- helpers ----------------------------------------------------------------


class Received:
    def __init__(self, path, headers, body, watch_returned):
        self.path, self.headers, self.body = path, headers, body
        self.watch_returned = watch_returned  # value of Receiver.watch_returned at arrival

    @property
    def number(self) -> int:
        return int(self.headers["X-Goog-Message-Number"])

    @property
    def state(self) -> str:
        return self.headers["X-Goog-Resource-State"]


class Receiver:
    """A webhook on 127.0.0.1 that records each POST and answers scripted statuses (then 200)."""

    def __init__(self):
        self.requests: list[Received] = []
        self.watch_returned = threading.Event()
        self._statuses: collections.deque[int] = collections.deque()
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    receiver.requests.append(
                        Received(self.path, self.headers, body, receiver.watch_returned.is_set())
                    )
                    status = receiver._statuses.popleft() if receiver._statuses else 200
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self.address = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def answer(self, *statuses: int) -> None:
        with self._cond:
            self._statuses.extend(statuses)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} notifications arrived")
            return list(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def client(sim: Simulator, api: tuple[str, str]):
    return build(
        *api,
        static_discovery=True,
        http=httplib2.Http(proxy_info=None),
        client_options={"api_endpoint": urljoin(sim.url, SERVICE_PATHS[api])},
    )


def channel_body(receiver, channel_id="chan-1", **extra):
    return {"id": channel_id, "type": "web_hook", "address": receiver.address, **extra}


def watch_file(sim, receiver, channel_id="chan-1", file_id="file-1", **extra):
    return (
        client(sim, DRIVE)
        .files()
        .watch(fileId=file_id, body=channel_body(receiver, channel_id, **extra))
        .execute()
    )


def reason(error: HttpError) -> str:
    return json.loads(error.content)["error"]["errors"][0]["reason"]


def post_json(url: str, body=None, method="POST"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with NO_PROXY.open(request, timeout=5) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, (json.loads(raw) if raw else None)


# --- the eight watch methods ------------------------------------------------

WATCHES = [
    pytest.param(
        DRIVE,
        lambda s, b: s.files().watch(fileId="file-1", body=b),
        "/drive/v3/files/file-1/watch",
        Resource.of("drive", "files", fileId="file-1"),
        HOUR,
        id="drive.files",
    ),
    pytest.param(
        DRIVE,
        lambda s, b: s.changes().watch(pageToken="42", body=b),
        "/drive/v3/changes/watch",
        Resource.of("drive", "changes"),
        HOUR,
        id="drive.changes",
    ),
    pytest.param(
        CALENDAR,
        lambda s, b: s.events().watch(calendarId="team@example.com", body=b),
        "/calendar/v3/calendars/team%40example.com/events/watch",
        Resource.of("calendar", "events", calendarId="team@example.com"),
        HOUR,
        id="calendar.events",
    ),
    pytest.param(
        CALENDAR,
        lambda s, b: s.calendarList().watch(body=b),
        "/calendar/v3/users/me/calendarList/watch",
        Resource.of("calendar", "calendarList"),
        HOUR,
        id="calendar.calendarList",
    ),
    pytest.param(
        CALENDAR,
        lambda s, b: s.acl().watch(calendarId="primary", body=b),
        "/calendar/v3/calendars/primary/acl/watch",
        Resource.of("calendar", "acl", calendarId="primary"),
        HOUR,
        id="calendar.acl",
    ),
    pytest.param(
        CALENDAR,
        lambda s, b: s.settings().watch(body=b),
        "/calendar/v3/users/me/settings/watch",
        Resource.of("calendar", "settings"),
        HOUR,
        id="calendar.settings",
    ),
    pytest.param(
        DIRECTORY,
        lambda s, b: s.users().watch(customer="my_customer", body=b),
        "/admin/directory/v1/users/watch",
        Resource.of("directory", "users", customer="my_customer"),
        2 * HOUR,
        id="directory.users",
    ),
    pytest.param(
        REPORTS,
        lambda s, b: s.activities().watch(userKey="all", applicationName="drive", body=b),
        "/admin/reports/v1/activity/users/all/applications/drive/watch",
        Resource.of("reports", "activities", userKey="all", applicationName="drive"),
        HOUR,
        id="reports.activities",
    ),
]


@pytest.mark.parametrize("api, call, path, resource, default_ttl", WATCHES)
def test_each_watch_method_answers_like_google_and_sends_sync(
    simulator, receiver, api, call, path, resource, default_ttl
):
    simulator.clock.freeze()
    now = simulator.clock.now_ms()
    response = call(client(simulator, api), channel_body(receiver, token="tok-1")).execute()

    assert simulator.calls[-1].path == path and simulator.calls[-1].status == 200
    assert response["kind"] == "api#channel"
    assert response["id"] == "chan-1" and response["token"] == "tok-1"
    assert response["resourceId"] == resource.resource_id
    assert response["resourceUri"].startswith("https://") and "alt=json" in response["resourceUri"]
    assert isinstance(response["expiration"], str)
    assert int(response["expiration"]) == now + default_ttl * 1000  # no expiration asked: default

    [sync] = receiver.wait_for(1)
    assert sync.state == "sync" and sync.number == 1
    assert sync.headers["X-Goog-Channel-ID"] == "chan-1"
    assert sync.headers["X-Goog-Channel-Token"] == "tok-1"
    assert sync.headers["X-Goog-Resource-ID"] == response["resourceId"]
    assert sync.headers["X-Goog-Resource-URI"] == response["resourceUri"]
    expires = email.utils.parsedate_to_datetime(sync.headers["X-Goog-Channel-Expiration"])
    assert int(expires.timestamp()) == int(response["expiration"]) // 1000
    assert sync.body == b""


def test_resource_id_is_stable_per_resource_and_differs_between_resources(simulator, receiver):
    first = watch_file(simulator, receiver, "chan-1", "file-1")
    second = watch_file(simulator, receiver, "chan-2", "file-1")
    other = watch_file(simulator, receiver, "chan-3", "file-2")
    assert first["resourceId"] == second["resourceId"] != other["resourceId"]


def test_changes_watch_without_page_token_is_rejected_400(simulator, receiver):
    # googleapiclient refuses this client-side, so send the request by hand.
    status, body = post_json(simulator.url + "drive/v3/changes/watch", channel_body(receiver))
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["errors"][0]["reason"] == "required"
    assert "pageToken" in body["error"]["message"]
    assert simulator.live_channels() == []


def test_unknown_api_path_is_404_and_recorded(simulator):
    status, body = post_json(simulator.url + "drive/v3/files/watch", {})
    assert status == 404 and body["error"]["errors"][0]["reason"] == "notFound"
    assert simulator.calls[-1].status == 404


# --- notifications ----------------------------------------------------------


def test_drive_file_changes_carry_state_changed_token_and_gapped_numbers(simulator, receiver):
    response = watch_file(simulator, receiver, token="tok-1")
    simulator.change("drive", "files", fileId="file-1", state="update", changed=["content", "properties"])
    simulator.change("drive", "files", fileId="file-1", state="trash")
    simulator.change("drive", "files", fileId="file-1", state="untrash", changed=["parents"])

    got = receiver.wait_for(4)
    assert [r.state for r in got] == ["sync", "update", "trash", "untrash"]
    numbers = [r.number for r in got]
    assert numbers[0] == 1
    assert all(b - a >= 2 for a, b in zip(numbers, numbers[1:]))  # increasing, never consecutive
    assert got[1].headers["X-Goog-Changed"] == "content,properties"
    assert "X-Goog-Changed" not in got[2].headers
    assert got[3].headers["X-Goog-Changed"] == "parents"
    for r in got:
        assert r.headers["X-Goog-Channel-Token"] == "tok-1"
        assert r.headers["X-Goog-Resource-ID"] == response["resourceId"]
        assert r.body == b""


def test_channel_without_token_gets_no_token_header(simulator, receiver):
    watch_file(simulator, receiver)
    [sync] = receiver.wait_for(1)
    assert "X-Goog-Channel-Token" not in sync.headers


def test_message_numbers_are_per_channel(simulator, receiver):
    watch_file(simulator, receiver, "chan-1")
    watch_file(simulator, receiver, "chan-2")
    queued = simulator.change("drive", "files", fileId="file-1", state="update")
    assert set(queued) == {"chan-1", "chan-2"} and all(n > 2 for n in queued.values())
    got = receiver.wait_for(4)
    assert sorted(r.number for r in got if r.state == "sync") == [1, 1]


@pytest.mark.parametrize(
    "api, call, resource, state, extra, expected_body",
    [
        pytest.param(
            DRIVE,
            lambda s, b: s.changes().watch(pageToken="7", body=b),
            Resource.of("drive", "changes"),
            "change",
            {},
            {"kind": "drive#changes"},
            id="drive.changes",
        ),
        pytest.param(
            CALENDAR,
            lambda s, b: s.events().watch(calendarId="primary", body=b),
            Resource.of("calendar", "events", calendarId="primary"),
            "exists",
            {},
            None,
            id="calendar.events",
        ),
        pytest.param(
            DIRECTORY,
            lambda s, b: s.users().watch(domain="example.com", event="add", body=b),
            Resource.of("directory", "users", domain="example.com"),
            "add",
            {"body": {"primaryEmail": "ada@example.com"}},
            {"kind": "admin#directory#user", "primaryEmail": "ada@example.com"},
            id="directory.users",
        ),
        pytest.param(
            REPORTS,
            lambda s, b: s.activities().watch(
                userKey="all", applicationName="login", body={**b, "payload": True}
            ),
            Resource.of("reports", "activities", userKey="all", applicationName="login"),
            "login_success",
            {},
            {"kind": "admin#reports#activity"},
            id="reports.payload",
        ),
        pytest.param(
            REPORTS,
            lambda s, b: s.activities().watch(userKey="all", applicationName="login", body=b),
            Resource.of("reports", "activities", userKey="all", applicationName="login"),
            "login_success",
            {},
            None,
            id="reports.no-payload",
        ),
    ],
)
def test_each_api_sends_its_own_states_and_bodies(
    simulator, receiver, api, call, resource, state, extra, expected_body
):
    call(client(simulator, api), channel_body(receiver)).execute()
    assert list(simulator.change(resource, state=state, **extra)) == ["chan-1"]
    sync, change = receiver.wait_for(2)
    assert sync.body == b""
    assert change.state == state
    assert "X-Goog-Changed" not in change.headers
    if expected_body is None:
        assert change.body == b""
    else:
        body = json.loads(change.body)
        assert expected_body.items() <= body.items()
        if api == REPORTS:
            assert body["events"][0]["name"] == state
            assert body["id"]["applicationName"] == "login"


def test_directory_event_filter_delivers_only_that_event(simulator, receiver):
    client(simulator, DIRECTORY).users().watch(
        customer="my_customer", event="delete", body=channel_body(receiver)
    ).execute()
    assert simulator.change("directory", "users", customer="my_customer", state="add") == {}
    assert list(simulator.change("directory", "users", customer="my_customer", state="delete")) == ["chan-1"]
    assert [r.state for r in receiver.wait_for(2)] == ["sync", "delete"]


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("drive", "files"), {"fileId": "f", "state": "exists"}),
        (("drive", "changes"), {"state": "update"}),
        (("calendar", "events"), {"calendarId": "c", "state": "update"}),
        (("directory", "users"), {"customer": "c", "state": "remove"}),
        (("drive", "files"), {"fileId": "f", "state": "sync"}),
        (("drive", "files"), {"fileId": "f", "state": "update", "changed": ["colour"]}),
        (("calendar", "acl"), {"calendarId": "c", "state": "exists", "changed": ["content"]}),
        (("drive", "files"), {"fileId": "f", "state": "update", "body": {"x": 1}}),
        (("drive", "files"), {"file_id": "f", "state": "update"}),
        (("directory", "users"), {"state": "add"}),
        (("drive", "folders"), {"state": "add"}),
    ],
)
def test_change_rejects_what_the_api_would_never_send(simulator, args, kwargs):
    with pytest.raises(ValueError):
        simulator.change(*args, **kwargs)


def test_change_channel_resource_reaches_every_channel_on_that_resource(simulator, receiver):
    watch_file(simulator, receiver, "chan-1", "file-1")
    watch_file(simulator, receiver, "chan-2", "file-1")
    watch_file(simulator, receiver, "chan-3", "file-2")
    queued = simulator.change_channel_resource("chan-1", state="update")
    assert set(queued) == {"chan-1", "chan-2"}
    with pytest.raises(KeyError):
        simulator.change_channel_resource("nope", state="update")


def test_sync_before_response_arrives_before_watch_returns(receiver):
    with Simulator(sync_before_response=True) as sim:
        watch_file(sim, receiver)
        receiver.watch_returned.set()
        assert len(receiver.requests) == 1  # already there when execute() returned
        assert receiver.requests[0].state == "sync"
        assert receiver.requests[0].watch_returned is False


# --- stop and expiry --------------------------------------------------------


def test_stop_ends_deliveries_for_that_channel_only(simulator, receiver):
    response = watch_file(simulator, receiver, "chan-1")
    watch_file(simulator, receiver, "chan-2")
    receiver.wait_for(2)
    drive = client(simulator, DRIVE)
    assert drive.channels().stop(body={"id": "chan-1", "resourceId": response["resourceId"]}).execute() == ""
    assert simulator.calls[-1].status == 204

    assert list(simulator.change("drive", "files", fileId="file-1", state="update")) == ["chan-2"]
    simulator.wait_idle()
    assert [(r.headers["X-Goog-Channel-ID"], r.state) for r in receiver.requests[2:]] == [
        ("chan-2", "update")
    ]
    assert [c.id for c in simulator.live_channels()] == ["chan-2"]
    with pytest.raises(HttpError) as stopped_twice:
        drive.channels().stop(body={"id": "chan-1", "resourceId": response["resourceId"]}).execute()
    assert stopped_twice.value.resp.status == 404 and reason(stopped_twice.value) == "notFound"


@pytest.mark.parametrize(
    "api, stop_body",
    [
        pytest.param(DRIVE, {"id": "chan-1", "resourceId": "wrong"}, id="wrong-resource-id"),
        pytest.param(DRIVE, {"id": "chan-1"}, id="no-resource-id"),
        pytest.param(DRIVE, {"id": "unknown", "resourceId": "x"}, id="unknown-id"),
        pytest.param(CALENDAR, None, id="other-api"),
    ],
)
def test_stop_that_does_not_name_a_live_channel_of_this_api_is_404(simulator, receiver, api, stop_body):
    response = watch_file(simulator, receiver)
    stop_body = stop_body or {"id": "chan-1", "resourceId": response["resourceId"]}
    with pytest.raises(HttpError) as error:
        client(simulator, api).channels().stop(body=stop_body).execute()
    assert error.value.resp.status == 404 and reason(error.value) == "notFound"
    assert [c.id for c in simulator.live_channels()] == ["chan-1"]


def test_notifications_queued_before_stop_are_never_sent(simulator, receiver):
    response = watch_file(simulator, receiver)
    receiver.wait_for(1)
    simulator.reorder_next(2)
    simulator.change("drive", "files", fileId="file-1", state="update")  # held
    client(simulator, DRIVE).channels().stop(
        body={"id": "chan-1", "resourceId": response["resourceId"]}
    ).execute()
    assert simulator.release_held() == 1
    [cancelled] = simulator.wait_for_deliveries(outcome=CANCELLED)
    assert cancelled.state == "update" and cancelled.attempt == 0
    simulator.wait_idle()
    assert len(receiver.requests) == 1


def test_expiry_on_the_simulator_clock_ends_deliveries(simulator, receiver):
    expiration = simulator.clock.now_ms() + 10 * 60 * 1000
    response = watch_file(simulator, receiver, expiration=expiration)
    assert int(response["expiration"]) == expiration
    receiver.wait_for(1)
    simulator.reorder_next(2)
    simulator.change("drive", "files", fileId="file-1", state="update")  # held across expiry

    simulator.clock.advance(11 * 60)
    assert simulator.live_channels() == []
    assert simulator.channel("chan-1").expired
    assert simulator.change("drive", "files", fileId="file-1", state="update") == {}
    simulator.release_held()
    simulator.wait_for_deliveries(outcome=CANCELLED)
    simulator.wait_idle()
    assert len(receiver.requests) == 1
    # Stopping an expired channel is a 404; its id may be used again.
    with pytest.raises(HttpError) as error:
        client(simulator, DRIVE).channels().stop(
            body={"id": "chan-1", "resourceId": response["resourceId"]}
        ).execute()
    assert error.value.resp.status == 404
    watch_file(simulator, receiver, expiration=simulator.clock.now_ms() + 60_000)
    assert [c.id for c in simulator.live_channels()] == ["chan-1"]


@pytest.mark.parametrize(
    "api, call, max_ttl",
    [
        pytest.param(DRIVE, lambda s, b: s.files().watch(fileId="f", body=b), DAY, id="drive.files"),
        pytest.param(
            DRIVE, lambda s, b: s.changes().watch(pageToken="1", body=b), 7 * DAY, id="drive.changes"
        ),
        pytest.param(CALENDAR, lambda s, b: s.settings().watch(body=b), 30 * DAY, id="calendar"),
        pytest.param(DIRECTORY, lambda s, b: s.users().watch(customer="c", body=b), 2 * DAY, id="directory"),
        pytest.param(
            REPORTS,
            lambda s, b: s.activities().watch(userKey="all", applicationName="admin", body=b),
            6 * HOUR,
            id="reports",
        ),
    ],
)
def test_requested_expiration_is_clamped_to_the_api_maximum(simulator, receiver, api, call, max_ttl):
    simulator.clock.freeze()
    now = simulator.clock.now_ms()
    far = str(now + 365 * DAY * 1000)
    response = call(client(simulator, api), channel_body(receiver, expiration=far)).execute()
    assert response["expiration"] == str(now + max_ttl * 1000)
    response = call(client(simulator, api), channel_body(receiver, "chan-2", params={"ttl": "600"})).execute()
    assert response["expiration"] == str(now + 600_000)


# --- retries ----------------------------------------------------------------


def test_receiver_5xx_is_retried_with_backoff_until_accepted(simulator, receiver):
    receiver.answer(503, 500, 504)
    watch_file(simulator, receiver)
    [delivered] = simulator.wait_for_deliveries(state="sync")
    assert delivered.attempt == 4 and delivered.status == 200
    attempts = [d for d in simulator.deliveries if d.state == "sync"]
    assert [(d.attempt, d.outcome, d.status) for d in attempts] == [
        (1, "retry", 503),
        (2, "retry", 500),
        (3, "retry", 504),
        (4, "delivered", 200),
    ]
    assert [r.number for r in receiver.wait_for(4)] == [1, 1, 1, 1]


def test_receiver_4xx_is_a_failure_and_not_retried(simulator, receiver):
    receiver.answer(400)
    watch_file(simulator, receiver)
    [failed] = simulator.wait_for_deliveries(outcome="failed")
    assert (failed.attempt, failed.status) == (1, 400)
    simulator.change("drive", "files", fileId="file-1", state="update")
    simulator.wait_for_deliveries(state="update")
    assert [r.state for r in receiver.requests] == ["sync", "update"]  # sync sent once only


def test_unreachable_receiver_is_retried_then_given_up(receiver):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    with Simulator(max_attempts=3) as sim:
        client(sim, DRIVE).files().watch(
            fileId="f", body={"id": "c", "type": "web_hook", "address": dead}
        ).execute()
        [failed] = sim.wait_for_deliveries(outcome="failed")
        assert [d.outcome for d in sim.deliveries] == ["retry", "retry", "failed"]
        assert failed.attempt == 3 and failed.status is None and failed.error


def test_later_notifications_wait_for_a_retried_one(simulator, receiver):
    receiver.answer(503, 503)
    watch_file(simulator, receiver)
    simulator.change("drive", "files", fileId="file-1", state="update")
    simulator.wait_for_deliveries(state="update")
    assert [r.state for r in receiver.requests] == ["sync", "sync", "sync", "update"]


# --- faults -----------------------------------------------------------------


def test_fail_next_watch_gives_http_error_with_that_status(simulator, receiver):
    simulator.fail_next("watch", status=503, count=2)
    for _ in range(2):
        with pytest.raises(HttpError) as error:
            watch_file(simulator, receiver)
        assert error.value.resp.status == 503
        assert json.loads(error.value.content)["error"]["status"] == "UNAVAILABLE"
    assert simulator.live_channels() == []
    response = watch_file(simulator, receiver)
    assert [c.status for c in simulator.calls] == [503, 503, 200]

    simulator.fail_next("stop", status=500)
    stop = (
        client(simulator, DRIVE).channels().stop(body={"id": "chan-1", "resourceId": response["resourceId"]})
    )
    with pytest.raises(HttpError) as error:
        stop.execute()
    assert error.value.resp.status == 500
    stop.execute()
    assert simulator.live_channels() == []


def test_duplicate_channel_id_is_rejected_with_channel_id_not_unique(simulator, receiver):
    watch_file(simulator, receiver, "chan-1", "file-1")
    with pytest.raises(HttpError) as error:
        watch_file(simulator, receiver, "chan-1", "file-2")
    assert error.value.resp.status == 400 and reason(error.value) == "channelIdNotUnique"


@pytest.mark.parametrize(
    "body, expected_reason",
    [
        pytest.param({"type": "web_hook", "address": "https://example.com/h"}, "required", id="no-id"),
        pytest.param(
            {"id": "bad id!", "type": "web_hook", "address": "https://example.com/h"}, "invalid", id="bad-id"
        ),
        pytest.param(
            {"id": "x" * 65, "type": "web_hook", "address": "https://example.com/h"}, "invalid", id="long-id"
        ),
        pytest.param({"id": "c", "type": "email", "address": "https://example.com/h"}, "invalid", id="type"),
        pytest.param(
            {"id": "c", "type": "web_hook", "address": "http://example.com/h"},
            "push.webhookUrlNotHttps",
            id="http-off-machine",
        ),
        pytest.param(
            {"id": "c", "type": "web_hook", "address": "http://10.0.0.1/h"},
            "push.webhookUrlNotHttps",
            id="http-private-ip",
        ),
        pytest.param(
            {"id": "c", "type": "web_hook", "address": "ftp://127.0.0.1/h"},
            "push.webhookUrlNotHttps",
            id="ftp",
        ),
    ],
)
def test_invalid_channels_are_refused_with_googles_error_shape(simulator, body, expected_reason):
    with pytest.raises(HttpError) as error:
        client(simulator, DRIVE).files().watch(fileId="f", body=body).execute()
    assert error.value.resp.status == 400
    detail = json.loads(error.value.content)["error"]
    assert detail["code"] == 400 and detail["status"] == "INVALID_ARGUMENT"
    assert detail["errors"][0]["reason"] == expected_reason and detail["message"]
    assert simulator.channels() == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2", "[::1]"])
def test_http_is_accepted_for_loopback_addresses(simulator, host):
    client(simulator, DRIVE).files().watch(
        fileId="f", body={"id": "c", "type": "webhook", "address": f"http://{host}:9/hook"}
    ).execute()
    assert simulator.channel("c").deliverable


def test_https_address_off_this_machine_is_accepted_but_never_sent(simulator):
    client(simulator, DRIVE).files().watch(
        fileId="f", body={"id": "c", "type": "web_hook", "address": "https://example.com/hook"}
    ).execute()
    simulator.change("drive", "files", fileId="f", state="update")
    simulator.wait_idle()
    assert [(d.state, d.outcome, d.attempt) for d in simulator.deliveries] == [
        ("sync", "undeliverable", 0),
        ("update", "undeliverable", 0),
    ]
    assert not simulator.channel("c").deliverable


def test_duplicate_next_sends_the_same_message_twice(simulator, receiver):
    watch_file(simulator, receiver)
    receiver.wait_for(1)
    simulator.duplicate_next()
    simulator.change("drive", "files", fileId="file-1", state="update")
    first, second = receiver.wait_for(3)[1:]
    assert first.number == second.number and first.state == second.state == "update"
    assert [d.duplicate for d in simulator.wait_for_deliveries(2, state="update")] == [False, True]


def test_reorder_next_sends_the_held_batch_in_reverse(simulator, receiver):
    watch_file(simulator, receiver)
    receiver.wait_for(1)
    simulator.reorder_next(3)
    queued = [
        simulator.change("drive", "files", fileId="file-1", state=s)["chan-1"]
        for s in ("add", "update", "trash")
    ]
    got = receiver.wait_for(4)[1:]
    assert [r.number for r in got] == list(reversed(queued))
    assert [r.state for r in got] == ["trash", "update", "add"]


def test_latency_delays_api_answers(simulator, receiver):
    simulator.latency = 0.2
    started = time.monotonic()
    watch_file(simulator, receiver)
    assert time.monotonic() - started >= 0.2


# --- records and the HTTP control API ---------------------------------------


def test_calls_and_live_channels_are_recorded(simulator, receiver):
    response = watch_file(simulator, receiver, token="t")
    [call] = simulator.calls
    assert (call.method, call.operation, call.status) == ("POST", "drive.files.watch", 200)
    assert call.query.get("alt") == "json"
    assert call.body["id"] == "chan-1" and call.response == response
    assert call.resource == Resource.of("drive", "files", fileId="file-1")
    assert (call.reason, call.refusal) == (None, None)
    with pytest.raises(HttpError):
        watch_file(simulator, receiver, token="t")  # the same channel id again
    assert (simulator.calls[-1].status, simulator.calls[-1].reason) == (400, "channelIdNotUnique")
    [live] = simulator.live_channels()
    assert (live.id, live.resource_id, live.address) == ("chan-1", response["resourceId"], receiver.address)
    assert live.resource == Resource.of("drive", "files", fileId="file-1")


def test_http_control_api_drives_the_simulator(simulator, receiver):
    control = simulator.url + "_simulator/"
    watch_file(simulator, receiver, "chan-1")

    status, body = post_json(
        control + "change",
        {
            "api": "drive",
            "kind": "files",
            "params": {"fileId": "file-1"},
            "state": "update",
            "changed": ["content"],
        },
    )
    assert status == 200 and [m["channelId"] for m in body["messages"]] == ["chan-1"]
    status, body = post_json(control + "change", {"channelId": "chan-1", "state": "remove"})
    assert status == 200
    assert post_json(control + "wait_idle", {"timeout": 5}) == (200, {"idle": True})
    assert [r.state for r in receiver.requests] == ["sync", "update", "remove"]
    status, body = post_json(control + "deliveries", method="GET")
    assert [d["state"] for d in body["deliveries"]] == ["sync", "update", "remove"]

    status, body = post_json(control + "change", {"channelId": "chan-1", "state": "exists"})
    assert status == 400 and "exists" in body["error"]["message"]

    assert post_json(control + "fail_next", {"operation": "watch", "status": 429})[0] == 200
    with pytest.raises(HttpError) as error:
        watch_file(simulator, receiver, "chan-2")
    assert error.value.resp.status == 429

    now = post_json(control + "clock", method="GET")[1]["nowMs"]
    status, body = post_json(control + "clock", {"advanceSeconds": 2 * HOUR})
    assert body["nowMs"] >= now + 2 * HOUR * 1000
    assert post_json(control + "channels", method="GET")[1] == {"channels": []}
    assert len(post_json(control + "channels?all=1", method="GET")[1]["channels"]) == 1

    assert post_json(control + "nothing")[0] == 404


def test_cli_prints_root_url_and_serves_until_interrupted():
    process = subprocess.Popen(
        [sys.executable, "-m", "channelkit.testing.simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        status, body = post_json(url + "_simulator/clock", method="GET")
        assert status == 200 and body["nowMs"] > 0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_started_with_sigint_ignored_stops_cleanly_on(stop_with):
    # A background job (``nohup … &``) inherits SIGINT as ignored, and Python then
    # has no Ctrl-C handling of its own; containers and Cloud Run stop with SIGTERM.
    process = subprocess.Popen(
        [sys.executable, "-m", "channelkit.testing.simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert post_json(url + "_simulator/clock", method="GET")[0] == 200
        process.send_signal(stop_with)
        assert process.wait(timeout=10) == 0
        assert process.stderr.read() == ""  # no traceback
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
