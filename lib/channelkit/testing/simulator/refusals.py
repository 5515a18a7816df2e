"""Named refusals: each class of error Google answers a ``watch`` (or ``stop``) with, as one table.

A test names the class (``sim.refuse_next("permission")``) instead of spelling
a status, a reason and a message; the simulator answers with Google's error
body. A message may name the channel's address (``{address}``) or the watched
resource (``{target}``, e.g. ``file F1``); both are filled from the request.

An expired or revoked refresh token (``invalid_grant``) is not here: Google's
token endpoint refuses it, before any API call is made. The simulator plays that
endpoint too (``oauth``): ``revoke()`` a grant, or ``fail_next("token", status)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from channelkit.testing.simulator.resources import Resource

__all__ = ["REASONS", "REFUSALS", "Refusal", "default_reason", "describe_target", "refusal"]

#: The reason Google most often gives with each status, for failures injected without one.
REASONS: Mapping[int, str] = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    410: "deleted",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
    504: "backendError",
}


#: The OAuth ``error`` the token endpoint answers a ``fail_next("token", status)`` with, by default.
_TOKEN_ERRORS: Mapping[int, str] = {400: "invalid_request", 401: "invalid_client", 403: "access_denied"}


@dataclasses.dataclass(frozen=True)
class Refusal:
    """One class of refusal: the HTTP status, the reason in ``error.errors[0]`` and its message.

    ``fail_next`` makes unnamed ones (``name`` None) from its arguments.
    """

    name: str | None
    status: int
    reason: str
    message: str  #: may hold ``{address}`` and ``{target}``, filled from the request
    domain: str = "global"  #: ``error.errors[0].domain``

    def message_for(self, *, address: str | None, target: str) -> str:
        """The message with the request's address and resource filled in."""
        return self.message.replace("{address}", address or "(none)").replace("{target}", target)


#: Every named refusal. Statuses, reasons and messages are Google's (Drive v3's
#: wording where the APIs differ); ``webhook_unauthorized`` is answered 400
#: here (Google has also answered it 401): pass ``status=`` to change it.
REFUSALS: dict[str, Refusal] = {
    r.name: r
    for r in (
        Refusal(
            "unauthorized",
            401,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token,"
            " login cookie or other valid authentication credential."
            " See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        ),
        Refusal(
            "permission",
            403,
            "insufficientPermissions",
            "The user does not have sufficient permissions for {target}.",
        ),
        Refusal(
            "rate_limit",
            403,
            "userRateLimitExceeded",
            "User Rate Limit Exceeded. Rate of requests for user exceed configured project quota.",
            "usageLimits",
        ),
        Refusal("too_many", 429, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"),
        Refusal("not_found", 404, "notFound", "Not found: {target}."),
        Refusal("gone", 410, "deleted", "Resource has been deleted: {target}."),
        Refusal(
            "webhook_unauthorized",
            400,
            "push.webhookUrlUnauthorized",
            "Unauthorized WebHook callback channel: {address}",
        ),
        Refusal(
            "webhook_not_https",
            400,
            "push.webhookUrlNotHttps",
            "WebHook callback must be HTTPS: {address}",
        ),
        Refusal("backend", 503, "backendError", "Backend Error"),
    )
    if r.name
}

#: How a watch parameter names its resource in a message ("file F1", "calendar c@x").
_NOUNS: Mapping[str, str] = {
    "fileId": "file",
    "driveId": "shared drive",
    "calendarId": "calendar",
    "customer": "customer",
    "domain": "domain",
    "userKey": "user",
}


def refusal(name: str, status: int | None = None) -> Refusal:
    """The refusal named ``name``, answered with ``status`` when given; ValueError if unknown."""
    try:
        found = REFUSALS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown refusal {name!r}; known: {', '.join(REFUSALS)}") from None
    if status is None:
        return found
    if not 400 <= int(status) <= 599:
        raise ValueError("status must be an HTTP error status (400-599)")
    return dataclasses.replace(found, status=int(status))


def default_reason(status: int, operation: str = "watch") -> str:
    """``REASONS[status]``, or ``unknown``; for ``operation="token"``, an OAuth ``error``.

    The token endpoint's: ``internal_failure`` for 5xx, ``invalid_request`` (400),
    ``invalid_client`` (401), ``access_denied`` (403), else ``invalid_request``.
    """
    if operation == "token":
        return "internal_failure" if status >= 500 else _TOKEN_ERRORS.get(status, "invalid_request")
    return REASONS.get(status, "unknown")


def describe_target(resource: Resource | None, channel_id: str | None = None) -> str:
    """What a message calls the resource: ``file F1``, ``calendar primary``, ``channel C`` (stop)."""
    if resource is None:
        return f"channel {channel_id}" if channel_id else "this resource"
    for name, value in resource.params:
        if name in _NOUNS:
            return f"{_NOUNS[name]} {value}"
    return f"{resource.api} {resource.kind}"
