"""What a test reads back: API calls, token requests, delivery attempts and channel snapshots."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from channelkit.testing.simulator.resources import Resource

__all__ = [
    "CANCELLED",
    "DELIVERED",
    "DROPPED",
    "FAILED",
    "RETRY",
    "UNDELIVERABLE",
    "ApiCall",
    "ChannelInfo",
    "Delivery",
    "TokenRequest",
]

#: Delivery outcomes, one per attempt record.
DELIVERED, RETRY, FAILED, UNDELIVERABLE, CANCELLED, DROPPED = (
    "delivered",
    "retry",
    "failed",
    "undeliverable",
    "cancelled",
    "dropped",
)


@dataclasses.dataclass(frozen=True)
class ApiCall:
    """One request to the API side (watch, stop, a feed read, or an unknown path)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  #: parsed JSON, or the raw text when it is not JSON
    status: int
    response: Any  #: the JSON returned, None for an empty body
    operation: str | None  #: e.g. "drive.files.watch", "drive.channels.stop", "drive.changes.list"
    time_ms: int  #: on the simulator clock
    resource: Resource | None = None  #: the resource a watch call names, or whose changes a read reads
    reason: str | None = None  #: ``error.errors[0].reason`` of an error answer
    refusal: str | None = (
        None  #: the named refusal answered (``refuse_next``, ``refuse``, an ownership check)
    )
    #: the user the call's bearer token was issued to by the token endpoint, valid or not;
    #: None without a token or with one the simulator never issued
    user: str | None = None
    #: what the ``Authorization`` header held: ``none``, ``valid``, ``expired``, ``revoked`` or ``unknown``
    auth: str = "none"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["resource"] = self.resource.to_json() if self.resource else None
        return data


@dataclasses.dataclass(frozen=True)
class TokenRequest:
    """One request to the OAuth token endpoint (``POST /token``), answered or refused."""

    time_ms: int  #: on the simulator clock
    status: int
    user: str | None  #: the owner of the grant its refresh token names; None for an unknown one
    client_id: str | None
    refresh_token: str | None
    scope: str | None  #: as requested (space-separated), None when none was
    error: str | None = None  #: the OAuth ``error`` of a refusal (``invalid_grant``, …)
    access_token: str | None = None  #: the token issued; None when refused
    expires_ms: int | None = None  #: when that token expires, on the simulator clock

    @property
    def issued(self) -> bool:
        """An access token was issued."""
        return self.access_token is not None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["issued"] = self.issued
        return data


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One attempt to deliver a notification (or a decision not to send it).

    ``outcome`` is ``delivered`` (2xx), ``retry`` (5xx or connection error, sent
    again later), ``failed`` (other status, or out of attempts),
    ``undeliverable`` (address not on this machine: never sent),
    ``cancelled`` (channel stopped or expired before this attempt: not sent) or
    ``dropped`` (lost on purpose by ``drop_next``: never sent).
    """

    channel_id: str
    message_number: int
    state: str
    address: str
    headers: dict[str, str]
    body: bytes
    attempt: int  #: 1 for the first send; 0 when nothing was sent
    outcome: str
    status: int | None = None
    error: str | None = None
    duplicate: bool = False  #: a second copy injected by ``duplicate_next``
    time_ms: int = 0  #: on the simulator clock

    @property
    def body_json(self) -> Any:
        """The body parsed as JSON, or None when empty."""
        return json.loads(self.body) if self.body else None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["body"] = self.body.decode("utf-8", "replace")
        return data


@dataclasses.dataclass(frozen=True)
class ChannelInfo:
    """A snapshot of one channel as the simulator holds it."""

    id: str
    resource: Resource
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration_ms: int
    params: dict[str, str]
    payload: bool
    filter: str | None  #: Directory ``event`` / Reports ``eventName`` of the watch call
    deliverable: bool  #: the address is on this machine
    stopped: bool
    expired: bool
    #: the user whose valid token created it (only that user may stop it); None if created without one
    user: str | None = None

    @property
    def live(self) -> bool:
        return not (self.stopped or self.expired)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["resource"] = self.resource.to_json()
        data["live"] = self.live
        return data
