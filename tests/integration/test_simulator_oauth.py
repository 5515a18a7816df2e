"""The simulator as Google's OAuth token endpoint, and its API side acting for users.

Clients here are the real ones: google-auth's ``google.oauth2.credentials.Credentials``
refreshing against ``sim.token_uri``, and google-api-python-client clients built from
the bundled discovery documents with those credentials (``AuthorizedHttp`` underneath:
it sends ``Authorization: Bearer`` and refreshes once on a 401, as in production).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import google.auth.transport.requests
import httplib2
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError

from channelkit.google_api import discovery_document
from channelkit.testing.simulator import Resource, Simulator

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ADDRESS = "https://hooks.example.com/push"
A, B = "ada@example.com", "bob@example.com"
F1 = Resource.of("drive", "files", fileId="F1")
CAL_A = Resource.of("calendar", "events", calendarId=A)


# --- helpers ------------------------------------------------------------------------


def credentials(info: dict) -> Credentials:
    """The stored "authorized_user" info as google-auth credentials that refresh at its token_uri.

    ``from_authorized_user_info`` always sets Google's token endpoint (see the test
    below), so the stored ``token_uri`` is applied with ``with_token_uri``.
    """
    return Credentials.from_authorized_user_info(info).with_token_uri(info["token_uri"])


def refresh(creds: Credentials) -> Credentials:
    creds.refresh(google.auth.transport.requests.Request())
    return creds


def client(sim: Simulator, api: str, version: str, creds: Credentials | None = None):
    """A googleapiclient client on the simulator: with ``creds`` (AuthorizedHttp) or none at all."""
    doc = discovery_document(api, version)
    options = {"api_endpoint": urllib.parse.urljoin(sim.url, doc.get("servicePath", ""))}
    if creds is None:
        return build_from_document(doc, http=httplib2.Http(timeout=10), client_options=options)
    return build_from_document(doc, credentials=creds, client_options=options)


def channel_body(channel_id: str) -> dict:
    return {"id": channel_id, "type": "web_hook", "address": ADDRESS}


def watch_file(drive, channel_id: str, file_id: str = "F1") -> dict:
    return drive.files().watch(fileId=file_id, body=channel_body(channel_id)).execute()


def stop(drive, channel: dict) -> None:
    drive.channels().stop(body={"id": channel["id"], "resourceId": channel["resourceId"]}).execute()


def http(method: str, url: str, payload=None, *, token: str | None = None, form: dict | None = None):
    """(status, JSON) of one raw request: JSON ``payload`` or a urlencoded ``form``."""
    headers = {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif payload is not None:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with NO_PROXY.open(request, timeout=5) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, (json.loads(raw) if raw else None)


def raw_watch(sim: Simulator, channel_id: str, token: str | None = None, file_id: str = "F1"):
    return http("POST", f"{sim.url}drive/v3/files/{file_id}/watch", channel_body(channel_id), token=token)


@pytest.fixture
def users(simulator):
    """Ada and Bob, each with one grant; Ada owns file F1 and her calendar."""
    infos = {A: simulator.add_user(A), B: simulator.add_user(B)}
    simulator.set_owner(F1, A)
    simulator.set_owner(CAL_A, A)
    return infos


# --- the token endpoint ---------------------------------------------------------------


def test_add_user_returns_authorized_user_info_for_this_token_endpoint(simulator):
    info = simulator.add_user(A)
    assert simulator.token_uri == simulator.url + "token"
    assert info == {
        "type": "authorized_user",
        "client_id": "sim-client",
        "client_secret": "sim-secret",
        "refresh_token": info["refresh_token"],
        "token_uri": simulator.token_uri,
    }
    assert info["refresh_token"]
    assert simulator.users() == [A]


def test_google_auth_ignores_the_token_uri_of_authorized_user_info(simulator):
    """Pinned: google-auth's from_authorized_user_info always targets Google's endpoint.

    A client that honours a stored ``token_uri`` must apply it (``with_token_uri``).
    """
    info = simulator.add_user(A)
    assert Credentials.from_authorized_user_info(info).token_uri == "https://oauth2.googleapis.com/token"
    assert credentials(info).token_uri == simulator.token_uri


def test_a_refresh_issues_a_fresh_token_and_is_counted(simulator):
    info = simulator.add_user(A)
    creds = refresh(credentials(info))
    first = creds.token
    assert first and creds.valid
    refresh(creds)
    assert creds.token != first  # a new random token each time

    assert simulator.refreshes() == simulator.refreshes(A) == 2
    assert simulator.refreshes(B) == 0
    [one, two] = simulator.token_requests
    assert (one.status, one.user, one.client_id, one.refresh_token, one.error) == (
        200,
        A,
        "sim-client",
        info["refresh_token"],
        None,
    )
    assert (one.access_token, two.access_token) == (first, creds.token)
    assert one.expires_ms - one.time_ms == pytest.approx(3600 * 1000, abs=50)


def test_the_token_lifetime_is_configurable_and_judged_on_the_simulator_clock(simulator):
    simulator.token_lifetime = 120
    info = simulator.add_user(A)
    status, answer = http("POST", simulator.token_uri, form=_refresh_form(info))
    assert status == 200
    assert answer["expires_in"] == 120 and answer["token_type"] == "Bearer"
    [issued] = simulator.token_requests
    assert issued.expires_ms == issued.time_ms + 120_000


def test_refreshes_of_several_users_are_counted_per_user(simulator):
    infos = {user: simulator.add_user(user) for user in (A, B)}
    for _ in range(3):
        refresh(credentials(infos[A]))
    refresh(credentials(infos[B]))
    assert (simulator.refreshes(A), simulator.refreshes(B), simulator.refreshes()) == (3, 1, 4)


def test_a_revoked_grant_answers_invalid_grant(simulator):
    info = simulator.add_user(A)
    creds = refresh(credentials(info))
    assert simulator.revoke(A) == 1

    with pytest.raises(RefreshError, match="invalid_grant") as raised:
        refresh(creds)
    assert "Token has been expired or revoked." in str(raised.value)
    assert simulator.refreshes(A) == 1  # tokens issued
    assert simulator.refreshes(A, all_attempts=True) == 2  # and the refused attempt
    refused = simulator.token_requests[-1]
    assert (refused.status, refused.error, refused.user, refused.access_token) == (
        400,
        "invalid_grant",
        A,
        None,
    )
    assert simulator.revoke(A) == 0  # nothing left to revoke


def test_a_reconnect_is_a_new_grant_and_revoking_one_grant_leaves_the_other(simulator):
    old = simulator.add_user(A)
    new = simulator.add_user(A)  # the user connected again: a new refresh token
    assert new["refresh_token"] != old["refresh_token"]
    assert simulator.revoke(old["refresh_token"]) == 1
    with pytest.raises(RefreshError, match="invalid_grant"):
        refresh(credentials(old))
    assert refresh(credentials(new)).valid
    assert simulator.users() == [A]


@pytest.mark.parametrize(
    "change, status, error",
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"refresh_token": "1//never-issued"}, 400, "invalid_grant"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"refresh_token": ""}, 400, "invalid_request"),
    ],
)
def test_the_token_endpoint_refuses_as_google_does(simulator, change, status, error):
    info = simulator.add_user(A)
    answer = http("POST", simulator.token_uri, form={**_refresh_form(info), **change})
    assert answer[0] == status and answer[1]["error"] == error
    assert answer[1]["error_description"]
    assert simulator.refreshes() == 0
    assert simulator.refreshes(all_attempts=True) == 1


def test_a_wrong_client_secret_is_a_refresh_error_from_google_auth(simulator):
    info = simulator.add_user(A)
    with pytest.raises(RefreshError, match="invalid_client"):
        refresh(credentials({**info, "client_secret": "wrong"}))
    assert simulator.token_requests[-1].status == 401


def test_a_refresh_token_works_only_with_the_client_it_was_issued_to(simulator):
    simulator.add_user(B, client_id="other-app", client_secret="other-secret")
    info = simulator.add_user(A)
    form = {**_refresh_form(info), "client_id": "other-app", "client_secret": "other-secret"}
    assert http("POST", simulator.token_uri, form=form)[1]["error"] == "unauthorized_client"
    with pytest.raises(ValueError, match="another secret"):
        simulator.add_user(A, client_id="other-app", client_secret="not-the-same")


def test_scopes_of_a_grant_limit_what_a_refresh_may_ask(simulator):
    drive = "https://www.googleapis.com/auth/drive"
    info = simulator.add_user(A, scopes=[drive])
    assert info["scopes"] == [drive]
    creds = refresh(credentials(info))  # google-auth asks for the info's scopes
    assert creds.granted_scopes == [drive]
    assert simulator.token_requests[-1].scope == drive
    with pytest.raises(RefreshError, match="invalid_scope"):
        refresh(
            Credentials.from_authorized_user_info(info, scopes=[drive, "x"]).with_token_uri(info["token_uri"])
        )


def test_json_bodies_are_accepted_and_other_methods_refused(simulator):
    info = simulator.add_user(A)
    status, answer = http("POST", simulator.token_uri, _refresh_form(info))
    assert status == 200 and answer["access_token"].startswith("ya29.")
    assert http("GET", simulator.token_uri)[0] == 405


def test_a_transient_refresh_failure_is_retried_by_google_auth(simulator):
    info = simulator.add_user(A)
    simulator.fail_next("token", 503)
    started = time.monotonic()
    assert refresh(credentials(info)).valid  # google-auth retried after about a second
    assert time.monotonic() - started >= 0.8
    assert [(r.status, r.error) for r in simulator.token_requests] == [
        (503, "internal_failure"),
        (200, None),
    ]
    assert (simulator.refreshes(A), simulator.refreshes(A, all_attempts=True)) == (1, 2)


def test_an_injected_refusal_of_a_refresh_is_not_retried(simulator):
    info = simulator.add_user(A)
    simulator.fail_next("token", 400, reason="invalid_grant", message="Token has been expired or revoked.")
    with pytest.raises(RefreshError, match="invalid_grant"):
        refresh(credentials(info))
    assert len(simulator.token_requests) == 1
    assert refresh(credentials(info)).valid  # used up


def test_named_refusals_do_not_apply_to_the_token_endpoint_and_clear_faults_counts_it(simulator):
    with pytest.raises(ValueError, match="fail_next"):
        simulator.refuse_next("permission", operation="token")
    with pytest.raises(ValueError, match="fail_next"):
        simulator.refuse("backend", operation="token")
    simulator.fail_next("token", 503, count=2)
    assert simulator.clear_faults() == {"watch": 0, "stop": 0, "read": 0, "token": 2}


# --- the API side: tokens and owners ------------------------------------------------


def test_the_owner_watches_an_owned_file_with_their_token(simulator, users):
    channel = watch_file(client(simulator, "drive", "v3", credentials(users[A])), "c1")
    assert channel["id"] == "c1"
    [call] = simulator.calls
    assert (call.status, call.user, call.auth, call.resource) == (200, A, "valid", F1)
    assert simulator.channel("c1").user == A
    assert simulator.refreshes(A) == 1  # the client refreshed once before the call


def test_another_users_token_is_refused_403(simulator, users):
    with pytest.raises(HttpError) as raised:
        watch_file(client(simulator, "drive", "v3", credentials(users[B])), "c1")
    assert raised.value.resp.status == 403
    [call] = simulator.calls
    assert (call.status, call.reason, call.refusal, call.user, call.auth) == (
        403,
        "insufficientPermissions",
        "permission",
        B,
        "valid",
    )
    assert "sufficient permissions for file F1" in call.response["error"]["message"]
    assert simulator.live_channels() == []


def test_no_token_is_refused_401(simulator, users):
    with pytest.raises(HttpError) as raised:
        watch_file(client(simulator, "drive", "v3"), "c1")
    assert raised.value.resp.status == 401
    [call] = simulator.calls
    assert (call.status, call.reason, call.refusal, call.user, call.auth) == (
        401,
        "authError",
        "unauthorized",
        None,
        "none",
    )
    assert (
        http("POST", simulator.url + "drive/v3/files/F1/watch", channel_body("c2"), token="made-up")[0] == 401
    )
    assert simulator.calls[-1].auth == "unknown"


def test_an_owned_calendar_is_watched_only_by_its_owner(simulator, users):
    def watch(creds, channel_id):
        calendar = client(simulator, "calendar", "v3", creds)
        return calendar.events().watch(calendarId=A, body=channel_body(channel_id)).execute()

    assert watch(credentials(users[A]), "c1")["id"] == "c1"
    with pytest.raises(HttpError) as raised:
        watch(credentials(users[B]), "c2")
    assert raised.value.resp.status == 403
    assert [(c.status, c.user) for c in simulator.calls] == [(200, A), (403, B)]


def test_unowned_resources_accept_any_caller_as_before(simulator, users):
    assert watch_file(client(simulator, "drive", "v3"), "c1", file_id="F2")["id"] == "c1"
    assert (
        watch_file(client(simulator, "drive", "v3", credentials(users[B])), "c2", file_id="F2")["id"] == "c2"
    )
    assert raw_watch(simulator, "c3", token="made-up", file_id="F2")[0] == 200
    assert [(c.status, c.user, c.auth) for c in simulator.calls] == [
        (200, None, "none"),
        (200, B, "valid"),
        (200, None, "unknown"),
    ]
    assert [simulator.channel(c).user for c in ("c1", "c2", "c3")] == [None, B, None]


def test_each_users_calls_carry_their_own_token(simulator, users):
    simulator.set_owner(Resource.of("drive", "files", fileId="G1"), B)
    ada, bob = (client(simulator, "drive", "v3", credentials(users[u])) for u in (A, B))
    for n in range(3):  # interleaved, as a renewal run of both users' subscriptions
        watch_file(ada, f"a{n}", "F1")
        watch_file(bob, f"b{n}", "G1")
    assert all(c.status == 200 for c in simulator.calls)
    by_channel = {c.body["id"]: c.user for c in simulator.calls}
    assert by_channel == {f"{p}{n}": u for p, u in (("a", A), ("b", B)) for n in range(3)}
    assert (simulator.refreshes(A), simulator.refreshes(B)) == (1, 1)  # each client refreshed once


def test_the_owner_may_be_changed_or_removed_and_must_be_a_user(simulator, users):
    assert simulator.owner(F1) == A
    simulator.set_owner(F1, B)
    assert raw_watch(simulator, "c1", token=refresh(credentials(users[A])).token)[0] == 403
    simulator.set_owner(F1, None)
    assert simulator.owner(F1) is None
    assert raw_watch(simulator, "c1")[0] == 200
    with pytest.raises(ValueError, match="unknown user"):
        simulator.set_owner(F1, "eve@example.com")


# --- stop -------------------------------------------------------------------------


def test_a_channel_created_by_a_user_is_stopped_only_by_that_user(simulator, users):
    ada, bob = (client(simulator, "drive", "v3", credentials(users[u])) for u in (A, B))
    channel = watch_file(ada, "c1")
    with pytest.raises(HttpError) as by_bob:
        stop(bob, channel)
    assert by_bob.value.resp.status == 403
    with pytest.raises(HttpError) as by_nobody:
        stop(client(simulator, "drive", "v3"), channel)
    assert by_nobody.value.resp.status == 401
    assert simulator.channel("c1").live

    stop(ada, channel)
    assert not simulator.channel("c1").live
    stops = [c for c in simulator.calls if c.operation == "drive.channels.stop"]
    assert [(c.status, c.user, c.refusal) for c in stops] == [
        (403, B, "permission"),
        (401, None, "unauthorized"),
        (204, A, None),
    ]
    assert "sufficient permissions for channel c1" in stops[0].response["error"]["message"]


def test_a_channel_created_without_a_token_is_stopped_by_anyone(simulator, users):
    anonymous = client(simulator, "drive", "v3")
    first = watch_file(anonymous, "c1", file_id="F2")
    second = watch_file(anonymous, "c2", file_id="F2")
    stop(client(simulator, "drive", "v3", credentials(users[B])), first)
    stop(anonymous, second)
    assert simulator.live_channels() == []


# --- expiry and revocation of access tokens -----------------------------------------


def test_an_expired_token_is_refused_401_until_refreshed(simulator, users):
    creds = refresh(credentials(users[A]))
    assert raw_watch(simulator, "c1", token=creds.token)[0] == 200
    simulator.clock.advance(3600)  # the token's life, on the simulator clock
    status, answer = raw_watch(simulator, "c2", token=creds.token)
    assert (status, answer["error"]["errors"][0]["reason"]) == (401, "authError")
    assert (simulator.calls[-1].auth, simulator.calls[-1].user) == ("expired", A)

    refresh(creds)
    assert raw_watch(simulator, "c2", token=creds.token)[0] == 200


def test_google_auth_refreshes_on_the_401_of_an_expired_token(simulator, users):
    drive = client(simulator, "drive", "v3", credentials(users[A]))
    watch_file(drive, "c1")
    simulator.clock.advance(2 * 3600)  # google-auth still thinks its token is good (real time)
    assert watch_file(drive, "c2")["id"] == "c2"
    assert [(c.status, c.auth) for c in simulator.calls] == [(200, "valid"), (401, "expired"), (200, "valid")]
    assert simulator.refreshes(A) == 2


def test_revoking_a_grant_ends_its_access_tokens_too(simulator, users):
    token = refresh(credentials(users[A])).token
    simulator.revoke(A)
    assert raw_watch(simulator, "c1", token=token)[0] == 401
    assert simulator.calls[-1].auth == "revoked"


def test_revoke_can_leave_access_tokens_working_until_they_expire(simulator, users):
    creds = refresh(credentials(users[A]))
    simulator.revoke(users[A]["refresh_token"], access_tokens=False)
    assert raw_watch(simulator, "c1", token=creds.token)[0] == 200
    simulator.clock.advance(3600)
    assert raw_watch(simulator, "c2", token=creds.token)[0] == 401
    with pytest.raises(RefreshError, match="invalid_grant"):
        refresh(creds)


def test_a_revoked_user_gets_invalid_grant_through_the_api_client(simulator, users):
    drive = client(simulator, "drive", "v3", credentials(users[A]))
    watch_file(drive, "c1")
    simulator.revoke(A)
    with pytest.raises(RefreshError, match="invalid_grant"):
        watch_file(drive, "c2")  # 401, then the client's refresh is refused
    assert [(c.status, c.auth) for c in simulator.calls] == [(200, "valid"), (401, "revoked")]
    assert (simulator.refreshes(A), simulator.refreshes(A, all_attempts=True)) == (1, 2)


def test_revoke_needs_a_user_or_a_refresh_token(simulator):
    with pytest.raises(ValueError, match="neither"):
        simulator.revoke("nobody")


def test_reset_forgets_users_tokens_and_owners(simulator, users):
    token = refresh(credentials(users[A])).token
    simulator.reset()
    assert simulator.users() == [] and simulator.owner(F1) is None
    assert simulator.token_requests == [] and simulator.refreshes() == 0
    assert raw_watch(simulator, "c1", token=token)[0] == 200  # unowned now; the token is unknown
    assert simulator.calls[-1].auth == "unknown"


# --- the control API ----------------------------------------------------------------


def test_users_owners_revocation_and_counts_over_the_control_api(simulator):
    control = simulator.url + "_simulator/"
    status, info = http("POST", control + "users", {"user": A, "scopes": ["s1"]})
    assert status == 200 and info["token_uri"] == simulator.token_uri and info["scopes"] == ["s1"]
    status, other = http(
        "POST", control + "users", {"user": B, "clientId": "c2", "clientSecret": "s2", "refreshToken": "rt-b"}
    )
    assert (other["client_id"], other["client_secret"], other["refresh_token"]) == ("c2", "s2", "rt-b")
    assert http("GET", control + "users") == (200, {"users": [A, B]})

    owner = {"api": "drive", "kind": "files", "params": {"fileId": "F1"}, "user": A}
    assert http("POST", control + "owner", owner) == (
        200,
        {"resource": {"api": "drive", "kind": "files", "params": {"fileId": "F1"}}, "user": A},
    )
    assert simulator.owner(F1) == A
    assert http("POST", control + "owner", {**owner, "user": "eve@example.com"})[0] == 400

    refresh(credentials(info))
    refresh(credentials(other))
    assert http("GET", control + "refreshes") == (200, {"refreshes": 2})
    assert http("GET", control + f"refreshes?user={urllib.parse.quote(A)}") == (200, {"refreshes": 1})

    assert http("POST", control + "revoke", {"user": A}) == (200, {"revoked": 1})
    assert http("POST", control + "revoke", {"refreshToken": "rt-b", "accessTokens": False}) == (
        200,
        {"revoked": 1},
    )
    assert http("POST", control + "revoke", {})[0] == 400
    with pytest.raises(RefreshError, match="invalid_grant"):
        refresh(credentials(info))
    assert http("GET", control + "refreshes?all=1") == (200, {"refreshes": 3})
    _, records = http("GET", control + "token_requests")
    assert [(r["user"], r["status"], r["issued"]) for r in records["tokenRequests"]] == [
        (A, 200, True),
        (B, 200, True),
        (A, 400, False),
    ]

    assert http("POST", control + "config", {"tokenLifetime": 60})[1]["tokenLifetime"] == 60
    assert simulator.token_lifetime == 60
    assert http("POST", control + "fail_next", {"operation": "token", "status": 400})[0] == 200
    assert http("POST", simulator.token_uri, form=_refresh_form(other))[1]["error"] == "invalid_request"

    _, calls = http("GET", control + "calls")
    assert calls == {"calls": []}
    raw_watch(simulator, "c1")
    _, calls = http("GET", control + "calls")
    assert (calls["calls"][0]["user"], calls["calls"][0]["auth"]) == (None, "none")


def _refresh_form(info: dict) -> dict:
    return {
        "grant_type": "refresh_token",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "refresh_token": info["refresh_token"],
    }
