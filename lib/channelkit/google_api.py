"""Call ``watch`` and ``channels.stop`` on any Google API, from bundled discovery documents.

Clients are built with google-api-python-client from the discovery documents it
ships (no network fetch). ``CHANNELKIT_API_ROOT`` replaces Google's root URL
and keeps each API's service path, so the same code talks to Google or to the
local simulator; on a loopback root no credentials are needed.

Transient failures (429, 5xx, broken connections) are retried with backoff by
the client library itself (``execute(num_retries=...)``). What still fails is
mapped here, at this one boundary, to channelkit's typed errors.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from functools import lru_cache
from typing import Any

from channelkit import config
from channelkit._loopback import is_loopback_url
from channelkit.errors import (
    AuthError,
    GoogleApiError,
    InvalidRequestError,
    ResourceGoneError,
    TransientApiError,
    UnknownApiError,
)

__all__ = [
    "INVALID_GRANT",
    "NO_CREDENTIALS",
    "GoogleApi",
    "canonical",
    "check_watch_method",
    "discovery_document",
    "is_loopback_url",
    "method_description",
]


#: Friendly names accepted for the Admin SDK APIs (googleapiclient names them admin/*_v1).
ALIASES = {
    ("directory", "v1"): ("admin", "directory_v1"),
    ("reports", "v1"): ("admin", "reports_v1"),
    ("admin", "directory"): ("admin", "directory_v1"),
    ("admin", "reports"): ("admin", "reports_v1"),
}
HTTP_TIMEOUT = 30  # seconds per HTTP attempt
#: ``GoogleApiError.reason`` of a refused refresh token, and of a deployment with no credentials at all.
INVALID_GRANT = "invalid_grant"
NO_CREDENTIALS = "noCredentials"
_RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


def canonical(api: str, version: str) -> tuple[str, str]:
    """googleapiclient's (name, version) for an API, accepting the friendly aliases."""
    return ALIASES.get((api, version), (api, version))


@lru_cache(maxsize=32)
def discovery_document(api: str, version: str) -> dict[str, Any]:
    """The bundled discovery document; UnknownApiError if there is none."""
    from googleapiclient.discovery_cache import get_static_doc

    api, version = canonical(api, version)
    text = get_static_doc(api, version)
    if text is None:
        raise UnknownApiError(f"no bundled discovery document for API {api!r} version {version!r}")
    return json.loads(text)


def method_description(api: str, version: str, method: str) -> dict[str, Any]:
    """The discovery description of a dotted method (``files.watch``, ``users.aliases.watch``)."""
    doc = discovery_document(api, version)
    parts = method.split(".")
    if len(parts) < 2 or not all(parts):
        raise UnknownApiError(f"method must be RESOURCE.METHOD, got {method!r}")
    node: dict[str, Any] = doc
    for name in parts[:-1]:
        node = node.get("resources", {}).get(name)
        if node is None:
            raise UnknownApiError(f"{api} {version} has no resource {name!r} (in {method!r})")
    found = node.get("methods", {}).get(parts[-1])
    if found is None:
        raise UnknownApiError(f"{api} {version} has no method {method!r}")
    return found


def check_watch_method(
    api: str, version: str, method: str, params: dict[str, Any], *, optional: tuple[str, ...] = ()
) -> None:
    """Fail early (before anything is stored) on an unknown method or a missing parameter.

    ``optional`` names required parameters the caller fills in itself later (a sync's ``pageToken``).
    """
    description = method_description(api, version, method)
    if method.rsplit(".", 1)[-1] != "watch":
        raise UnknownApiError(f"{api} {version} {method} is not a watch method")
    if description.get("request", {}).get("$ref") != "Channel":
        # e.g. Gmail's users.watch: it publishes to Pub/Sub, it opens no push channel.
        raise UnknownApiError(f"{api} {version} {method} does not open a push channel")
    known = description.get("parameters", {})
    for name, spec in known.items():
        if spec.get("required") and name not in params and name not in optional:
            raise InvalidRequestError(f"{method} requires parameter {name!r}")
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidRequestError(f"{method} has no parameter(s) {', '.join(unknown)}")


def _error_details(exc: Any) -> tuple[int | None, str | None, str, str | None]:
    status = getattr(getattr(exc, "resp", None), "status", None)
    reason = location = None
    message = ""
    try:
        data = json.loads(exc.content.decode("utf-8"))
        error = data.get("error", {}) if isinstance(data, dict) else {}
        message = str(error.get("message", ""))
        errors = error.get("errors") or []
        if errors and isinstance(errors[0], dict):
            reason = errors[0].get("reason")
            location = errors[0].get("location")
    except (AttributeError, ValueError, UnicodeDecodeError):
        pass
    return (int(status) if status is not None else None), reason, message, location


def _map_http_error(exc: Any, what: str) -> GoogleApiError:
    status, reason, message, location = _error_details(exc)
    text = f"{what}: HTTP {status}" + (f" {reason}" if reason else "") + (f": {message}" if message else "")
    cls: type[GoogleApiError]
    if status in (404, 410):
        cls = ResourceGoneError
    elif status == 403 and reason in _RATE_LIMIT_REASONS:
        cls = TransientApiError
    elif status in (401, 403):
        cls = AuthError
    elif status == 429 or (status is not None and status >= 500):
        cls = TransientApiError
    elif status == 400:
        cls = InvalidRequestError
    else:
        cls = GoogleApiError
    return cls(text, status=status, reason=reason, location=location)


class GoogleApi:
    """Watch and stop for any API with a bundled discovery document.

    Thread-safe: each thread gets its own clients (httplib2 is not thread-safe).
    """

    def __init__(
        self,
        *,
        root: str | None = None,
        subject: str | None = None,
        credentials: Any = None,
        retries: int | None = None,
        identities: Any = None,
        store: Any = None,
        credentials_key: str | None = None,
    ):
        """``credentials`` replaces ADC. ``identities`` (a ``channelkit.identities.Identities``)
        gives the credentials of each reference; by default one is made from ``store`` (where
        stored user credentials are) and ``credentials_key`` (else ``CHANNELKIT_CREDENTIALS_KEY``)."""
        from channelkit.identities import Identities

        self.root = config.api_root(root)
        self.subject = config.delegated_subject(subject)
        self.retries = config.api_retries(retries)
        if identities is None:
            text = config.credentials_key(credentials_key)
            keyring = None
            if text is not None:
                from channelkit.crypto import Keyring

                keyring = Keyring.parse(text)
            identities = Identities(store=store, keyring=keyring, subject=self.subject, base=credentials)
        self.identities = identities
        self._local = threading.local()

    # --- clients --------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: config.Settings | None, *, store: Any = None) -> GoogleApi:
        """A client with the API root, retries, subject and credentials key of ``settings``
        (None: each read from the environment)."""
        if settings is None:
            return cls(store=store)
        return cls(
            root=settings.api_root,
            subject=settings.delegated_subject,
            retries=settings.api_retries,
            store=store,
            credentials_key=settings.credentials_key,
        )

    def client(self, api: str, version: str, credentials: str | None = None) -> Any:
        """A googleapiclient Resource for the API acting as ``credentials`` (a reference; default ADC).

        Built once per thread and identity. Each call also asks the identity for
        credentials valid now: a stored user's token is refreshed here, under its
        lock, never inside a request.
        """
        import httplib2
        from googleapiclient.discovery import build_from_document

        api, version = canonical(api, version)
        reference = credentials or "adc"
        local = self.root is not None and is_loopback_url(self.root)
        doc = discovery_document(api, version)
        creds = None
        if not (local and reference == "adc"):  # the simulator needs no ADC
            scopes = sorted(doc.get("auth", {}).get("oauth2", {}).get("scopes", {}))[:1]
            creds = self.identities.credentials(reference, scopes)
        cache = self._local.__dict__.setdefault("clients", {})
        cached = cache.get((api, version, reference))
        if cached is not None and cached[0] is creds:
            return cached[1]
        options = {}
        if self.root:
            options["client_options"] = {
                "api_endpoint": urllib.parse.urljoin(self.root, doc.get("servicePath", ""))
            }
        if creds is None:
            service = build_from_document(doc, http=httplib2.Http(timeout=HTTP_TIMEOUT), **options)
        else:
            from google_auth_httplib2 import AuthorizedHttp

            # No refresh on a 401 here: the identity refreshed already, and a 401 with a fresh
            # token means the grant is gone (a second refresh would only hide it).
            http = AuthorizedHttp(creds, http=httplib2.Http(timeout=HTTP_TIMEOUT), refresh_status_codes=())
            service = build_from_document(doc, http=http, **options)
        cache[(api, version, reference)] = (creds, service)
        self._local.__dict__.setdefault("methods", {}).clear()
        return service

    def _execute(self, request: Any, what: str) -> Any:
        import httplib2
        from google.auth import exceptions as auth_exc
        from googleapiclient.errors import HttpError

        try:
            return request.execute(num_retries=self.retries)
        except HttpError as exc:
            raise _map_http_error(exc, what) from exc
        except auth_exc.TransportError as exc:  # the token endpoint could not be reached
            raise TransientApiError(f"{what}: credentials could not be refreshed: {exc}") from exc
        except auth_exc.RefreshError as exc:
            if getattr(exc, "retryable", False):  # the token endpoint answered 5xx / timed out
                raise TransientApiError(f"{what}: credentials could not be refreshed now: {exc}") from exc
            # A refresh token revoked or expired: the token endpoint answers invalid_grant.
            reason = INVALID_GRANT if INVALID_GRANT in str(exc) else None
            raise AuthError(f"{what}: credentials failed: {exc}", reason=reason) from exc
        except auth_exc.GoogleAuthError as exc:
            reason = INVALID_GRANT if INVALID_GRANT in str(exc) else None
            raise AuthError(f"{what}: credentials failed: {exc}", reason=reason) from exc
        except (TimeoutError, httplib2.HttpLib2Error, OSError) as exc:
            raise TransientApiError(f"{what}: connection failed: {exc}") from exc

    # --- calls ----------------------------------------------------------------

    def watch(
        self,
        api: str | None,
        version: str | None,
        method: str | None,
        params: dict[str, Any],
        body: dict[str, Any],
        *,
        credentials: str | None = None,
    ) -> dict[str, Any]:
        """Call ``API.METHOD(**params, body=body)``; the channel Google returned.

        ``api``, ``version`` and ``method`` are a stored channel's (None on a channel
        channelkit did not store: ``UnknownApiError``).
        """
        if not (api and version and method):
            raise UnknownApiError(f"no API method to call: api={api!r} version={version!r} method={method!r}")
        check_watch_method(api, version, method, params)
        try:
            request = self._method(api, version, method, credentials)(**params, body=body)
        except TypeError as exc:  # googleapiclient's own parameter checks
            raise InvalidRequestError(f"{method}: {exc}") from exc
        return self._execute(request, f"{api} {version} {method}") or {}

    def call(
        self,
        api: str,
        version: str,
        method: str,
        params: dict[str, Any],
        *,
        credentials: str | None = None,
    ) -> dict[str, Any]:
        """Call any method (``changes.list``, ``events.list``, ``files.get``) as ``credentials``; its JSON.

        Transient failures are retried with backoff (``num_retries``); what still fails
        is a typed ``GoogleApiError``, as for ``watch``.
        """
        try:
            request = self._method(api, version, method, credentials)(**params)
        except TypeError as exc:  # googleapiclient's own parameter checks
            raise InvalidRequestError(f"{method}: {exc}") from exc
        return self._execute(request, f"{api} {version} {method}") or {}

    def stop(
        self,
        api: str | None,
        version: str | None,
        channel_id: str,
        resource_id: str,
        *,
        credentials: str | None = None,
    ) -> None:
        """``channels.stop`` of the API, as ``credentials``; ResourceGoneError if Google no longer knows it."""
        if not (api and version):
            raise UnknownApiError(f"no API to stop the channel with: api={api!r} version={version!r}")
        request = self._method(api, version, "channels.stop", credentials)(
            body={"id": channel_id, "resourceId": resource_id}
        )
        self._execute(request, f"{api} {version} channels.stop")

    def _method(self, api: str, version: str, method: str, credentials: str | None = None) -> Any:
        """The client's callable for a dotted method, kept per thread.

        googleapiclient builds a new Resource object, with every method of the
        resource, each time ``service.files()`` is called: keeping the final
        callable saves that on every watch and stop.
        """
        api, version = canonical(api, version)
        node = self.client(api, version, credentials)  # identity checked (and refreshed) on every call
        methods = self._local.__dict__.setdefault("methods", {})
        key = (api, version, method, credentials or "adc")
        found = methods.get(key)
        if found is None:
            *resources, name = method.split(".")
            for resource in resources:
                node = getattr(node, resource)()
            found = methods[key] = getattr(node, name)
        return found
