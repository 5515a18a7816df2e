"""Pure parts of channelkit.google_api: discovery lookups and error mapping."""

import json

import httplib2
import pytest
from googleapiclient.errors import HttpError

from channelkit import google_api
from channelkit.errors import (
    AuthError,
    GoogleApiError,
    InvalidRequestError,
    ResourceGoneError,
    TransientApiError,
    UnknownApiError,
)


def http_error(status, reason=None, message="nope"):
    body = {"error": {"code": status, "message": message}}
    if reason:
        body["error"]["errors"] = [{"reason": reason, "message": message}]
    return HttpError(httplib2.Response({"status": status}), json.dumps(body).encode())


@pytest.mark.parametrize(
    "status,reason,expected",
    [
        (404, None, ResourceGoneError),
        (410, None, ResourceGoneError),
        (401, None, AuthError),
        (403, "forbidden", AuthError),
        (403, "rateLimitExceeded", TransientApiError),
        (429, None, TransientApiError),
        (500, None, TransientApiError),
        (503, None, TransientApiError),
        (400, "push.webhookUrlUnauthorized", InvalidRequestError),
        (409, None, GoogleApiError),
    ],
)
def test_http_errors_map_to_typed_errors(status, reason, expected):
    error = google_api._map_http_error(http_error(status, reason), "drive v3 files.watch")
    assert type(error) is expected
    assert error.status == status and error.reason == reason
    assert "drive v3 files.watch" in str(error) and str(status) in str(error)


def test_aliases_name_the_admin_apis():
    assert google_api.canonical("directory", "v1") == ("admin", "directory_v1")
    assert google_api.canonical("reports", "v1") == ("admin", "reports_v1")
    assert google_api.canonical("drive", "v3") == ("drive", "v3")


@pytest.mark.parametrize(
    "api,version,method",
    [
        ("drive", "v3", "files.watch"),
        ("drive", "v3", "changes.watch"),
        ("calendar", "v3", "events.watch"),
        ("calendar", "v3", "calendarList.watch"),
        ("calendar", "v3", "acl.watch"),
        ("calendar", "v3", "settings.watch"),
        ("admin", "directory_v1", "users.watch"),
        ("admin", "reports_v1", "activities.watch"),
    ],
)
def test_every_supported_watch_method_is_found_in_the_bundled_documents(api, version, method):
    assert google_api.method_description(api, version, method)["httpMethod"] == "POST"


@pytest.mark.parametrize(
    "api,version,method,fragment",
    [
        ("nosuchapi", "v1", "files.watch", "no bundled discovery document"),
        ("drive", "v99", "files.watch", "no bundled discovery document"),
        ("drive", "v3", "folders.watch", "no resource 'folders'"),
        ("drive", "v3", "files.observe", "no method 'files.observe'"),
        ("drive", "v3", "watch", "RESOURCE.METHOD"),
    ],
)
def test_unknown_apis_and_methods_are_clear_errors(api, version, method, fragment):
    with pytest.raises(UnknownApiError) as info:
        google_api.method_description(api, version, method)
    assert fragment in str(info.value)


def test_non_watch_methods_are_refused():
    with pytest.raises(UnknownApiError):
        google_api.check_watch_method("drive", "v3", "files.get", {"fileId": "F"})


def test_watch_methods_that_open_no_push_channel_are_refused():
    with pytest.raises(UnknownApiError, match="does not open a push channel"):
        google_api.check_watch_method("gmail", "v1", "users.watch", {"userId": "me"})


def test_missing_required_and_unknown_parameters_are_refused():
    with pytest.raises(InvalidRequestError, match="pageToken"):
        google_api.check_watch_method("drive", "v3", "changes.watch", {})
    with pytest.raises(InvalidRequestError, match="colour"):
        google_api.check_watch_method("drive", "v3", "files.watch", {"fileId": "F", "colour": "r"})
    google_api.check_watch_method("drive", "v3", "changes.watch", {"pageToken": "1"})


@pytest.mark.parametrize(
    "url,loopback",
    [
        ("http://127.0.0.1:8080/", True),
        ("http://localhost/", True),
        ("http://[::1]:9/", True),
        ("http://127.9.9.9/", True),
        ("https://example.com/", False),
        ("http://10.0.0.1/", False),
    ],
)
def test_loopback_detection(url, loopback):
    assert google_api.is_loopback_url(url) is loopback


class _Request:
    """A googleapiclient request whose ``execute`` raises what google-auth raised."""

    def __init__(self, error: Exception):
        self.error = error

    def execute(self, num_retries=0):
        raise self.error


def test_a_refused_refresh_token_is_an_auth_error_with_reason_invalid_grant():
    from google.auth import exceptions as auth_exc

    from channelkit.errors import AuthError
    from channelkit.google_api import INVALID_GRANT

    refused = auth_exc.RefreshError(
        "invalid_grant: Token has been expired or revoked.", {"error": "invalid_grant"}
    )
    with pytest.raises(AuthError) as caught:
        google_api.GoogleApi(root="http://127.0.0.1:9/")._execute(_Request(refused), "drive v3 files.watch")
    assert caught.value.reason == INVALID_GRANT


def test_an_unreachable_token_endpoint_is_transient():
    from google.auth import exceptions as auth_exc

    from channelkit.errors import TransientApiError

    with pytest.raises(TransientApiError):
        google_api.GoogleApi(root="http://127.0.0.1:9/")._execute(
            _Request(auth_exc.TransportError("timed out")), "x"
        )


def test_no_credentials_at_all_carries_its_reason(monkeypatch):
    import google.auth
    from google.auth import exceptions as auth_exc

    from channelkit.errors import AuthError
    from channelkit.google_api import NO_CREDENTIALS

    def none(**kwargs):
        raise auth_exc.DefaultCredentialsError("Could not automatically determine credentials.")

    monkeypatch.setattr(google.auth, "default", none)
    with pytest.raises(AuthError) as caught:
        google_api.GoogleApi(root="https://www.googleapis.com/").identities.credentials("adc", ["scope"])
    assert caught.value.reason == NO_CREDENTIALS


def test_a_delegated_identity_is_built_once_per_user_and_reused():
    from channelkit.identities import Identities

    made: list[str] = []

    class ServiceAccount:
        def with_subject(self, email):
            made.append(email)
            return ("delegated", email)

    identities = Identities(base=ServiceAccount())
    first = identities.credentials("subject:ann@example.com", ["s"])
    assert identities.credentials("subject:ann@example.com", ["s"]) is first
    assert identities.credentials("subject:bob@example.com", ["s"]) == ("delegated", "bob@example.com")
    assert made == ["ann@example.com", "bob@example.com"]


def test_a_client_from_settings_takes_their_root_retries_and_subject():
    from channelkit.config import Settings

    google = google_api.GoogleApi.from_settings(
        Settings(api_root="http://127.0.0.1:9", api_retries=2, delegated_subject="admin@example.com")
    )
    assert (google.root, google.retries, google.subject) == ("http://127.0.0.1:9/", 2, "admin@example.com")
