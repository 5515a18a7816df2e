"""Named refusals: the simulator answers ``watch`` with each class of Google's errors, and
channelkit's real ``GoogleApi`` (google-api-python-client underneath) types each one.

The expected status, reason and error class of every refusal are spelled out here,
apart from the simulator's table, so a change to that table is a change made on purpose.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from channelkit.errors import AuthError, InvalidRequestError, ResourceGoneError, TransientApiError
from channelkit.google_api import GoogleApi
from channelkit.testing.simulator import REFUSALS, Resource

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ADDRESS = "https://hooks.example.com/push"
F1 = Resource.of("drive", "files", fileId="F1")

#: name: (status, reason, channelkit's error, words of the message)
EXPECTED = {
    "unauthorized": (401, "authError", AuthError, "invalid authentication credentials"),
    "permission": (
        403,
        "insufficientPermissions",
        AuthError,
        "does not have sufficient permissions for file F1",
    ),
    "rate_limit": (403, "userRateLimitExceeded", TransientApiError, "User Rate Limit Exceeded"),
    "too_many": (429, "rateLimitExceeded", TransientApiError, "Rate Limit Exceeded"),
    "not_found": (404, "notFound", ResourceGoneError, "file F1"),
    "gone": (410, "deleted", ResourceGoneError, "deleted: file F1"),
    "webhook_unauthorized": (
        400,
        "push.webhookUrlUnauthorized",
        InvalidRequestError,
        f"Unauthorized WebHook callback channel: {ADDRESS}",
    ),
    "webhook_not_https": (
        400,
        "push.webhookUrlNotHttps",
        InvalidRequestError,
        f"WebHook callback must be HTTPS: {ADDRESS}",
    ),
    "backend": (503, "backendError", TransientApiError, "Backend Error"),
}


def body(channel_id: str, address: str = ADDRESS) -> dict:
    return {"id": channel_id, "type": "web_hook", "address": address}


def watch_file(google: GoogleApi, file_id: str, channel_id: str, address: str = ADDRESS) -> dict:
    return google.watch("drive", "v3", "files.watch", {"fileId": file_id}, body(channel_id, address))


def watch_calls(simulator, resource: Resource | None = None) -> list:
    return [
        c
        for c in simulator.calls
        if c.operation and c.operation.endswith(".watch") and (resource is None or c.resource == resource)
    ]


def post_json(url: str, payload=None, method="POST"):
    data = None if payload is None else json.dumps(payload).encode()
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


def test_every_refusal_is_tested():
    assert sorted(REFUSALS) == sorted(EXPECTED)


# --- once: refuse_next --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_refusal_reaches_google_api_as_its_typed_error(simulator, google, name):
    status, reason, error, words = EXPECTED[name]
    simulator.refuse_next(name)
    with pytest.raises(error) as info:
        watch_file(google, "F1", "c1")
    assert (info.value.status, info.value.reason) == (status, reason)
    assert words in str(info.value)
    assert simulator.live_channels() == []
    [call] = watch_calls(simulator)
    assert (call.status, call.reason, call.refusal, call.resource) == (status, reason, name, F1)
    assert call.response["error"]["code"] == status

    assert watch_file(google, "F1", "c1")["id"] == "c1"  # used up: the next watch is answered
    assert watch_calls(simulator)[-1].refusal is None


def test_refuse_next_counts_and_fills_in_the_resource_of_any_api(simulator, google):
    simulator.refuse_next("permission", count=2)
    for _ in range(2):
        with pytest.raises(AuthError) as info:
            google.watch("calendar", "v3", "events.watch", {"calendarId": "c@x"}, body("c1"))
        assert "sufficient permissions for calendar c@x" in str(info.value)
    google.watch("calendar", "v3", "events.watch", {"calendarId": "c@x"}, body("c1"))
    assert [c.status for c in watch_calls(simulator)] == [403, 403, 200]


def test_a_refusal_can_be_answered_with_another_status(simulator, google):
    simulator.refuse_next("webhook_unauthorized", status=401)  # as Google has also answered it
    with pytest.raises(AuthError) as info:
        watch_file(google, "F1", "c1")
    assert (info.value.status, info.value.reason) == (401, "push.webhookUrlUnauthorized")


def test_the_client_library_retries_a_rate_limit_refusal(simulator):
    simulator.refuse_next("rate_limit")
    response = watch_file(GoogleApi(root=simulator.url, retries=2), "F1", "c1")
    assert response["id"] == "c1"
    assert [(c.status, c.reason) for c in watch_calls(simulator)] == [
        (403, "userRateLimitExceeded"),
        (200, None),
    ]


def test_refuse_next_can_refuse_a_stop(simulator, google):
    channel = watch_file(google, "F1", "c1")
    simulator.refuse_next("permission", operation="stop")
    with pytest.raises(AuthError) as info:
        google.stop("drive", "v3", "c1", channel["resourceId"])
    assert "sufficient permissions for channel c1" in str(info.value)
    google.stop("drive", "v3", "c1", channel["resourceId"])
    assert simulator.live_channels() == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"refusal": "nope"}, "unknown refusal 'nope'"),
        ({"refusal": "permission", "operation": "list"}, "operation must be"),
        ({"refusal": "permission", "status": 200}, "status must be"),
    ],
)
def test_refuse_next_rejects_what_it_cannot_do(simulator, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulator.refuse_next(**kwargs)


# --- any status and reason: fail_next -------------------------------------------


@pytest.mark.parametrize(
    "status, reason, error",
    [
        (403, "quotaExceeded", TransientApiError),
        (403, None, AuthError),  # the status's usual reason: forbidden
        (400, "push.webhookUrlUnauthorized", InvalidRequestError),
    ],
)
def test_fail_next_takes_any_reason(simulator, google, status, reason, error):
    simulator.fail_next("watch", status=status, reason=reason, message="told so")
    with pytest.raises(error) as info:
        watch_file(google, "F1", "c1")
    assert (info.value.status, info.value.reason) == (status, reason or "forbidden")
    assert "told so" in str(info.value)
    assert watch_calls(simulator)[-1].refusal is None  # not a named refusal


# --- standing: refuse, until lifted ---------------------------------------------


def test_a_standing_refusal_refuses_its_resource_on_every_call_until_cleared(simulator, google):
    simulator.refuse("permission", {"fileId": "F1"})  # permission on F1 revoked
    for attempt in range(3):
        with pytest.raises(AuthError):
            watch_file(google, "F1", f"c1-{attempt}")
        assert watch_file(google, "F2", f"c2-{attempt}")["id"] == f"c2-{attempt}"  # others unaffected
    refused = [c for c in watch_calls(simulator, F1) if c.refusal == "permission"]
    assert [c.status for c in refused] == [403, 403, 403]
    assert all(c.status == 200 for c in watch_calls(simulator, Resource.of("drive", "files", fileId="F2")))
    assert [r.match for r in simulator.refusals()] == [{"fileId": "F1"}]

    assert simulator.clear_faults() == {"watch": 0, "stop": 0, "read": 0, "token": 0}  # lifts it too
    assert simulator.refusals() == []
    assert watch_file(google, "F1", "c1")["id"] == "c1"


def test_unrefuse_lifts_only_what_it_names(simulator, google):
    calendar = {"calendarId": "c@x"}
    simulator.refuse("not_found", calendar)
    simulator.refuse("permission", {"calendarId": "other@x"})
    with pytest.raises(ResourceGoneError):
        google.watch("calendar", "v3", "events.watch", calendar, body("c1"))
    assert simulator.unrefuse("not_found", {"calendarId": "nope"}) == 0
    assert simulator.unrefuse("not_found", calendar) == 1
    assert google.watch("calendar", "v3", "events.watch", calendar, body("c1"))["id"] == "c1"
    with pytest.raises(AuthError):
        google.watch("calendar", "v3", "events.watch", {"calendarId": "other@x"}, body("c2"))
    assert simulator.unrefuse() == 1
    assert simulator.refusals() == []


def test_a_standing_refusal_with_no_match_refuses_every_watch_and_reset_lifts_it(simulator, google):
    simulator.refuse("backend")
    with pytest.raises(TransientApiError):
        watch_file(google, "F1", "c1")
    with pytest.raises(TransientApiError):
        google.watch("directory", "v1", "users.watch", {"customer": "my_customer"}, body("c2"))
    simulator.reset()
    assert watch_file(google, "F1", "c1")["id"] == "c1"


def test_a_standing_refusal_can_match_the_channel_address(simulator, google):
    unverified = "https://unverified.example.com/push"
    simulator.refuse("webhook_unauthorized", {"address": unverified})
    with pytest.raises(InvalidRequestError) as info:
        watch_file(google, "F1", "c1", address=unverified)
    assert info.value.reason == "push.webhookUrlUnauthorized"
    assert f"channel: {unverified}" in str(info.value)
    assert watch_file(google, "F1", "c1")["id"] == "c1"  # another address is accepted


def test_a_standing_refusal_can_refuse_the_stop_of_one_channel(simulator, google):
    first, second = watch_file(google, "F1", "c1"), watch_file(google, "F2", "c2")
    simulator.refuse("permission", {"id": "c1"}, operation="stop")
    for _ in range(2):
        with pytest.raises(AuthError):
            google.stop("drive", "v3", "c1", first["resourceId"])
    google.stop("drive", "v3", "c2", second["resourceId"])
    assert [c.id for c in simulator.live_channels()] == ["c1"]
    assert watch_file(google, "F1", "c3")["id"] == "c3"  # watch is not refused


def test_a_pending_one_off_failure_is_answered_before_a_standing_refusal(simulator, google):
    simulator.refuse("permission", {"fileId": "F1"})
    simulator.refuse_next("backend")
    with pytest.raises(TransientApiError):
        watch_file(google, "F1", "c1")
    with pytest.raises(AuthError):
        watch_file(google, "F1", "c1")


def test_a_standing_refusal_rejects_a_match_that_is_not_a_mapping(simulator):
    with pytest.raises(ValueError, match="match must be"):
        simulator.refuse("permission", ["fileId", "F1"])


# --- over HTTP ----------------------------------------------------------------


def test_refusals_over_the_http_control_api(simulator, google):
    control = simulator.url + "_simulator/"

    assert post_json(control + "refuse_next", {"refusal": "gone", "count": 2, "operation": "watch"}) == (
        200,
        {},
    )
    for _ in range(2):
        with pytest.raises(ResourceGoneError):
            watch_file(google, "F1", "c1")

    assert (
        post_json(control + "fail_next", {"operation": "watch", "status": 403, "reason": "quotaExceeded"})[0]
        == 200
    )
    with pytest.raises(TransientApiError) as info:
        watch_file(google, "F1", "c1")
    assert info.value.reason == "quotaExceeded"

    status, standing = post_json(control + "refuse", {"refusal": "permission", "match": {"fileId": "F1"}})
    assert status == 200
    assert standing == {
        "refusal": "permission",
        "status": 403,
        "reason": "insufficientPermissions",
        "operation": "watch",
        "match": {"fileId": "F1"},
    }
    assert post_json(control + "refusals", method="GET") == (200, {"refusals": [standing]})
    with pytest.raises(AuthError):
        watch_file(google, "F1", "c1")
    assert watch_file(google, "F2", "c2")["id"] == "c2"

    calls = post_json(control + "calls", method="GET")[1]["calls"]
    assert [(c["status"], c["reason"], c["refusal"]) for c in calls] == [
        (410, "deleted", "gone"),
        (410, "deleted", "gone"),
        (403, "quotaExceeded", None),
        (403, "insufficientPermissions", "permission"),
        (200, None, None),
    ]
    assert calls[-1]["resource"] == {"api": "drive", "kind": "files", "params": {"fileId": "F2"}}

    assert post_json(control + "unrefuse", {"refusal": "permission"}) == (200, {"lifted": 1})
    assert watch_file(google, "F1", "c1")["id"] == "c1"

    status, error = post_json(control + "refuse_next", {"refusal": "nope"})
    assert status == 400 and "unknown refusal 'nope'" in error["error"]["message"]
    assert post_json(control + "refuse", {})[0] == 400
    assert post_json(control + "refuse", {"refusal": "permission", "match": ["F1"]})[0] == 400
    assert post_json(control + "unrefuse", {"match": "F1"})[0] == 400
