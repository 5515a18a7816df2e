"""Google's error body, the error a handler raises to answer with it, and the answer an API request gets.

Shared by the watch routes (``routes``) and the feed routes (``feed_routes``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from channelkit.testing.simulator.oauth import NO_TOKEN
from channelkit.testing.simulator.refusals import default_reason
from channelkit.testing.simulator.resources import Resource

__all__ = ["ApiAnswer", "ApiError", "FinishedAnswer", "google_error"]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_error(
    status: int,
    message: str,
    reason: str | None = None,
    domain: str = "global",
    location: str | None = None,
) -> dict[str, Any]:
    """Google's JSON error body; ``reason`` defaults to the one Google most often gives with ``status``.

    ``location`` names the query parameter at fault (``locationType`` ``parameter``).
    """
    reason = reason or default_reason(status)
    detail = {"message": message, "domain": domain, "reason": reason}
    if location:
        detail.update(locationType="parameter", location=location)
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [detail],
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }


class ApiError(Exception):
    """Raised inside a request handler; answered with Google's error shape.

    ``refusal`` names the refusal answered (``REFUSALS``), when it is one;
    ``domain`` and ``location`` go into the body as ``google_error`` puts them.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        refusal: str | None = None,
        *,
        domain: str = "global",
        location: str | None = None,
    ):
        super().__init__(message)
        self.status, self.reason, self.message, self.refusal = status, reason, message, refusal
        self.domain, self.location = domain, location

    def body(self) -> dict[str, Any]:
        """The JSON error body of this error."""
        return google_error(self.status, self.message, self.reason, self.domain, self.location)


@dataclasses.dataclass(frozen=True)
class ApiAnswer:
    """How an API request was answered, and what the call record keeps of it."""

    status: int
    payload: Any  #: the JSON answered, None for an empty body
    operation: str | None = None  #: e.g. "drive.files.watch"; None for an unknown path
    resource: Resource | None = None  #: the resource a watch call names, or whose changes a read reads
    refusal: str | None = None  #: the named refusal answered (see ``REFUSALS``), if any
    user: str | None = None  #: the user the request's bearer token was issued to
    auth: str = NO_TOKEN  #: the state of that token (``ApiCall.auth``)

    @property
    def reason(self) -> str | None:
        """``error.errors[0].reason`` of an error answer."""
        try:
            reason = self.payload["error"]["errors"][0]["reason"]
        except (TypeError, KeyError, IndexError):
            return None
        return reason if isinstance(reason, str) else None


class FinishedAnswer(Exception):
    """A finished answer raised from deep inside a handler."""

    def __init__(self, answer: ApiAnswer):
        super().__init__(answer.status)
        self.answer = answer
