"""Google's OAuth token endpoint, played: users, their grants, the access tokens issued, who owns what.

A user is registered with one or more grants (an OAuth client and a refresh
token, as Google's consent flow leaves them: ``add_user`` returns the
"authorized_user" info a client stores). ``POST /token`` with
``grant_type=refresh_token`` issues a fresh access token for a known, unrevoked
grant, as ``https://oauth2.googleapis.com/token`` does for google-auth's
``google.oauth2.credentials.Credentials``; refusals have OAuth's error shape
(``{"error", "error_description"}``).

The API side asks ``identify()`` who a request's ``Authorization: Bearer``
header names, and ``owner()`` who owns a watched resource: a watch of an owned
resource needs a valid token of its owner (see ``ApiRoutes``).
"""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from channelkit.testing.simulator.faults import Faults
from channelkit.testing.simulator.records import TokenRequest
from channelkit.testing.simulator.resources import Resource
from channelkit.testing.simulator.state import State

__all__ = [
    "AUTH_STATES",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "EXPIRED",
    "INVALID_GRANT",
    "NO_TOKEN",
    "REVOKED",
    "TOKEN_PATH",
    "UNKNOWN",
    "VALID",
    "Identity",
    "OAuth",
]

#: Where the token endpoint listens, below the simulator's root (as ``oauth2.googleapis.com/token``).
TOKEN_PATH = "/token"
DEFAULT_CLIENT_ID = "sim-client"
DEFAULT_CLIENT_SECRET = "sim-secret"
#: The OAuth error of a refresh token that is unknown, expired or revoked.
INVALID_GRANT = "invalid_grant"
#: What an API request's ``Authorization`` header held (``ApiCall.auth``).
NO_TOKEN, VALID, EXPIRED, REVOKED, UNKNOWN = "none", "valid", "expired", "revoked", "unknown"
AUTH_STATES = (NO_TOKEN, VALID, EXPIRED, REVOKED, UNKNOWN)

_REVOKED_DESCRIPTION = "Token has been expired or revoked."


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who an API request's bearer token names: ``user`` (None if no known token) and ``auth`` (its state)."""

    user: str | None
    auth: str

    @property
    def valid(self) -> bool:
        return self.auth == VALID


@dataclasses.dataclass
class _Grant:
    user: str
    client_id: str
    refresh_token: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclasses.dataclass
class _AccessToken:
    user: str
    refresh_token: str
    expires_ms: int
    revoked: bool = False


class _Refused(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class OAuth:
    """Users, grants, access tokens and owners, under the simulator's lock; the token endpoint.

    ``token_uri`` is called when ``add_user`` writes the info dict (the server
    must be listening by then).
    """

    def __init__(self, state: State, faults: Faults, token_uri: Callable[[], str]):
        self._state = state
        self._faults = faults
        self._token_uri = token_uri
        self._clients: dict[str, str] = {}
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._owners: dict[Resource, str] = {}

    def clear(self) -> None:
        """Forget every client, user, grant, access token and owner."""
        with self._state.cond:
            self._clients, self._grants, self._tokens, self._owners = {}, {}, {}, {}

    # set-up

    def add_user(
        self,
        user: str,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        refresh_token: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Register a grant of ``user`` (a new one each call); its "authorized_user" info."""
        if not user or not isinstance(user, str):
            raise ValueError("user must be a non-empty string")
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret must be non-empty")
        scope_list = tuple(scopes or ())
        token_uri = self._token_uri()
        with self._state.cond:
            known_secret = self._clients.get(client_id)
            if known_secret is not None and known_secret != client_secret:
                raise ValueError(f"client {client_id!r} is already registered with another secret")
            if refresh_token is None:
                refresh_token = self._new_secret("1//sim-")
            elif refresh_token in self._grants:
                raise ValueError("that refresh token is already registered")
            self._clients[client_id] = client_secret
            self._grants[refresh_token] = _Grant(user, client_id, refresh_token, scope_list)
        info: dict[str, Any] = {
            "type": "authorized_user",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "token_uri": token_uri,
        }
        if scope_list:
            info["scopes"] = list(scope_list)
        return info

    def users(self) -> list[str]:
        """Every registered user, in the order first added."""
        with self._state.cond:
            return list(dict.fromkeys(g.user for g in self._grants.values()))

    def revoke(self, target: str, *, access_tokens: bool = True) -> int:
        """Revoke one grant (``target`` is its refresh token) or every grant of a user.

        Their access tokens stop working too unless ``access_tokens`` is False.
        Returns how many grants were revoked now; ValueError when ``target``
        names neither a refresh token nor a user.
        """
        with self._state.cond:
            if target in self._grants:
                grants = [self._grants[target]]
            else:
                grants = [g for g in self._grants.values() if g.user == target]
                if not grants:
                    raise ValueError(f"{target!r} is neither a registered user nor a refresh token")
            newly = [g for g in grants if not g.revoked]
            for grant in grants:
                grant.revoked = True
            if access_tokens:
                dead = {g.refresh_token for g in grants}
                for token in self._tokens.values():
                    if token.refresh_token in dead:
                        token.revoked = True
            return len(newly)

    def set_owner(self, resource: Resource, user: str | None) -> None:
        """Make ``user`` the owner of ``resource`` (None: unowned again); ValueError for an unknown user."""
        if not isinstance(resource, Resource):
            raise TypeError("resource must be a Resource")
        with self._state.cond:
            if user is None:
                self._owners.pop(resource, None)
                return
            if not any(g.user == user for g in self._grants.values()):
                raise ValueError(f"unknown user {user!r}: add_user() first")
            self._owners[resource] = user

    def owner(self, resource: Resource | None) -> str | None:
        """The owner of ``resource``; None when unowned."""
        if resource is None:
            return None
        with self._state.cond:
            return self._owners.get(resource)

    # the API side

    def identify(self, authorization: str | None) -> Identity:
        """Who an ``Authorization`` header names, judged on the simulator clock."""
        if not authorization or not authorization.strip():
            return Identity(None, NO_TOKEN)
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return Identity(None, UNKNOWN)
        with self._state.cond:
            token = self._tokens.get(value.strip())
            if token is None:
                return Identity(None, UNKNOWN)
            if token.revoked:
                return Identity(token.user, REVOKED)
            if self._state.clock.now_ms() >= token.expires_ms:
                return Identity(token.user, EXPIRED)
            return Identity(token.user, VALID)

    # the token endpoint

    def handle(self, method: str, content_type: str | None, raw: bytes) -> tuple[int, Any]:
        """The token endpoint's (status, JSON) for one request; every request is recorded."""
        form = _form(content_type, raw)
        refresh_token = form.get("refresh_token") or None
        client_id = form.get("client_id") or None
        scope = form.get("scope") or None
        with self._state.cond:
            grant = self._grants.get(refresh_token) if refresh_token else None
            user = grant.user if grant else None
        issued: tuple[str, int] | None = None
        try:
            if method != "POST":
                raise _Refused(405, "invalid_request", f"{method} is not supported: POST the form")
            failure = self._faults.take_failure("token")
            if failure is not None:
                raise _Refused(failure.status, failure.reason, failure.message)
            issued = self._refresh(form)
            status, payload = 200, self._answer(issued, scope, grant)
        except _Refused as refused:
            status, payload = (
                refused.status,
                {"error": refused.error, "error_description": refused.description},
            )
        self._state.record_token_request(
            TokenRequest(
                self._state.clock.now_ms(),
                status,
                user,
                client_id,
                refresh_token,
                scope,
                None if status == 200 else payload["error"],
                issued[0] if issued else None,
                issued[1] if issued else None,
            )
        )
        return status, payload

    def _refresh(self, form: dict[str, str]) -> tuple[str, int]:
        """Check the refresh request as Google does; the access token issued and its expiry (ms)."""
        grant_type = form.get("grant_type")
        if grant_type != "refresh_token":
            if not grant_type:
                raise _Refused(400, "invalid_request", "Missing required parameter: grant_type")
            raise _Refused(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        client_id, secret = form.get("client_id"), form.get("client_secret")
        refresh_token = form.get("refresh_token")
        with self._state.cond:
            known_secret = self._clients.get(client_id or "")
            if known_secret is None:
                raise _Refused(401, "invalid_client", "The OAuth client was not found.")
            if secret != known_secret:
                raise _Refused(401, "invalid_client", "Unauthorized")
            if not refresh_token:
                raise _Refused(400, "invalid_request", "Missing required parameter: refresh_token")
            grant = self._grants.get(refresh_token)
            if grant is None:
                raise _Refused(400, INVALID_GRANT, "Bad Request")
            if grant.revoked:
                raise _Refused(400, INVALID_GRANT, _REVOKED_DESCRIPTION)
            if grant.client_id != client_id:
                raise _Refused(400, "unauthorized_client", "Unauthorized")
            wanted = (form.get("scope") or "").split()
            if grant.scopes and not set(wanted) <= set(grant.scopes):
                missing = " ".join(sorted(set(wanted) - set(grant.scopes)))
                raise _Refused(400, "invalid_scope", f"Some requested scopes were not granted: {missing}")
            token = self._new_secret("ya29.sim-")
            expires_ms = self._state.clock.now_ms() + self._state.settings.token_lifetime * 1000
            self._tokens[token] = _AccessToken(grant.user, refresh_token, expires_ms)
            return token, expires_ms

    def _answer(self, issued: tuple[str, int], scope: str | None, grant: _Grant | None) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "access_token": issued[0],
            "expires_in": self._state.settings.token_lifetime,
            "token_type": "Bearer",
        }
        granted = scope or (" ".join(grant.scopes) if grant else "")
        if granted:
            answer["scope"] = granted
        return answer

    def _new_secret(self, prefix: str) -> str:
        with self._state.cond:  # the seeded generator is shared
            return f"{prefix}{self._state.rng.getrandbits(160):040x}"

    # records

    def refreshes(self, user: str | None = None, *, all_attempts: bool = False) -> int:
        """Access tokens issued (to ``user``, or to anyone); every refresh request with ``all_attempts``."""
        with self._state.cond:
            return sum(
                1
                for r in self._state.token_requests
                if (user is None or r.user == user) and (all_attempts or r.issued)
            )


def _form(content_type: str | None, raw: bytes) -> dict[str, str]:
    """The request's parameters: a form (what google-auth sends) or a JSON object."""
    text = raw.decode("utf-8", "replace")
    if (content_type or "").split(";")[0].strip().lower() == "application/json":
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
