"""The notifications themselves: Google's headers, message numbers that grow with gaps, and bodies.

``Notifier`` builds the notifications of a new channel (``sync``) and of a
change to a watched resource, passes them through the injected faults, and
hands them to delivery.
"""

from __future__ import annotations

import datetime
import email.utils
import json
from collections.abc import Mapping
from typing import Any

from channelkit.testing.simulator.delivery import DeliveryScheduler
from channelkit.testing.simulator.faults import Faults
from channelkit.testing.simulator.records import DROPPED
from channelkit.testing.simulator.resources import Resource, WatchKind, check_changed, check_state
from channelkit.testing.simulator.state import Channel, Message, State

__all__ = ["USER_AGENT", "Notifier", "http_date"]

USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"


def http_date(ms: int) -> str:
    """``Tue, 19 Nov 2013 01:13:52 GMT`` from Unix milliseconds."""
    return email.utils.formatdate(ms / 1000, usegmt=True)


class Notifier:
    """Makes notifications and sends them on: through ``faults``, then to ``delivery``."""

    def __init__(self, state: State, faults: Faults, delivery: DeliveryScheduler):
        self._state = state
        self._faults = faults
        self._delivery = delivery

    def sync(self, channel: Channel) -> Message:
        """Queue a new channel's ``sync`` notification and return it. Caller holds the lock."""
        message = self._new_message(channel, "sync", b"")
        self._submit(message)
        return message

    def change(
        self,
        resource: Resource,
        state: str,
        changed: list[str] | tuple[str, ...] | str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, int]:
        """Notify every live channel on ``resource`` (see ``Simulator.change``); {channel id: message number}."""
        spec = resource.spec
        check_state(spec, state)
        changed = check_changed(spec, changed)
        if body is not None and (spec.body is None or not isinstance(body, Mapping)):
            raise ValueError(f"{spec.api}/{spec.kind} notifications carry no body to set")
        with self._state.cond:
            now = self._state.clock.now_ms()
            payload = self._body(spec, resource, state, body, now)
            queued = {}
            for channel in list(self._state.channels.values()):
                if channel.resource != resource or not channel.live(now):
                    continue
                if channel.filter and channel.filter != state:
                    continue
                send_body = payload if (spec.body != "activity" or channel.payload) else b""
                message = self._new_message(channel, state, send_body, changed)
                self._submit(message)
                queued[channel.id] = message.number
            return queued

    def release_held(self) -> int:
        """Queue the notifications held for reordering, newest first; returns how many."""
        with self._state.cond:
            held = self._faults.release_held()
            for message in held:
                self._delivery.enqueue(message)
            return len(held)

    def _submit(self, message: Message) -> None:
        if self._faults.take_drop(message):  # lost, as Google sometimes loses one: its number is spent
            self._state.record_delivery(message, attempt=0, outcome=DROPPED, error="dropped by drop_next")
            message.done.set()
            return
        for each in self._faults.apply(message):
            self._delivery.enqueue(each)

    def _new_message(
        self, channel: Channel, state: str, body: bytes, changed: tuple[str, ...] = ()
    ) -> Message:
        number = 1 if channel.last_number == 0 else channel.last_number + self._state.rng.randint(2, 97)
        channel.last_number = number
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": http_date(channel.expiration_ms),
            "X-Goog-Message-Number": str(number),
            "X-Goog-Resource-ID": channel.resource.resource_id,
            "X-Goog-Resource-State": state,
            "X-Goog-Resource-URI": channel.resource_uri,
            "Content-Type": "application/json; charset=UTF-8",
            "User-Agent": USER_AGENT,
        }
        if channel.token:
            headers["X-Goog-Channel-Token"] = channel.token
        if changed:
            headers["X-Goog-Changed"] = ",".join(changed)
        return Message(channel, number, state, headers, body)

    def _body(
        self, spec: WatchKind, resource: Resource, state: str, override: Mapping[str, Any] | None, now_ms: int
    ) -> bytes:
        if spec.body is None:
            return b""
        rng, params = self._state.rng, dict(resource.params)
        if spec.body == "changes":
            data: dict[str, Any] = {"kind": "drive#changes"}
        elif spec.body == "user":
            user_id = str(rng.randrange(10**20, 10**21))
            domain = params.get("domain", "example.com")
            data = {
                "kind": "admin#directory#user",
                "id": user_id,
                "etag": f'"{rng.getrandbits(64):x}"',
                "primaryEmail": f"user{user_id[-6:]}@{domain}",
            }
        else:  # activity
            user = params["userKey"]
            data = {
                "kind": "admin#reports#activity",
                "id": {
                    "time": datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC)
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
                    "uniqueQualifier": str(rng.getrandbits(62)),
                    "applicationName": params["applicationName"],
                    "customerId": "C0000000",
                },
                "etag": f'"{rng.getrandbits(64):x}"',
                "actor": {
                    "callerType": "USER",
                    "email": user if "@" in user else "user@example.com",
                    "profileId": str(rng.randrange(10**20, 10**21)),
                },
                "ipAddress": "192.0.2.1",
                "events": [{"type": params["applicationName"], "name": state}],
            }
        data.update(override or {})
        return json.dumps(data, separators=(",", ":")).encode()
