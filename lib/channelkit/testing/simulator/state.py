"""What the simulator holds — settings, channels, records — and the one lock over all of it.

Every part (API routes, faults, notifications, delivery) shares one ``State``
and its condition variable, so ``wait_for`` sees each change as it happens.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from channelkit.testing.simulator.clock import Clock
from channelkit.testing.simulator.records import ApiCall, ChannelInfo, Delivery, TokenRequest
from channelkit.testing.simulator.resources import Resource

__all__ = ["Channel", "Message", "Settings", "State"]


@dataclasses.dataclass
class Settings:
    """The knobs a test may turn while the simulator runs (see ``Simulator``)."""

    sync_before_response: bool = False
    retry_base: float = 0.01
    max_attempts: int = 6
    delivery_timeout: float = 5.0
    latency: float = 0.0
    token_lifetime: int = 3600  #: seconds an issued access token is valid, on the simulator clock
    max_page_size: int | None = None  #: most items per page of a feed listing; None: the API's limits

    def sync_wait(self) -> float:
        """Longest a notification can take: every attempt timing out, plus every backoff."""
        backoff = sum(self.retry_base * 2**i for i in range(self.max_attempts))
        return self.max_attempts * self.delivery_timeout + backoff


@dataclasses.dataclass(eq=False)
class Channel:
    """A channel as the simulator holds it (``ChannelInfo`` is its snapshot)."""

    id: str
    resource: Resource
    resource_uri: str
    address: str
    token: str | None
    expiration_ms: int
    params: dict[str, str]
    payload: bool
    filter: str | None
    deliverable: bool
    last_number: int = 0
    stopped: bool = False
    user: str | None = None  #: the user whose valid token created it

    def expired(self, now_ms: int) -> bool:
        return now_ms >= self.expiration_ms

    def live(self, now_ms: int) -> bool:
        return not self.stopped and not self.expired(now_ms)

    def info(self, now_ms: int) -> ChannelInfo:
        return ChannelInfo(
            self.id,
            self.resource,
            self.resource.resource_id,
            self.resource_uri,
            self.address,
            self.token,
            self.expiration_ms,
            dict(self.params),
            self.payload,
            self.filter,
            self.deliverable,
            self.stopped,
            self.expired(now_ms),
            self.user,
        )


@dataclasses.dataclass(eq=False)
class Message:
    """One notification to send; ``done`` is set once it is delivered, given up or dropped."""

    channel: Channel
    number: int
    state: str
    headers: dict[str, str]
    body: bytes
    duplicate: bool = False
    attempt: int = 0
    done: threading.Event = dataclasses.field(default_factory=threading.Event)


class State:
    """Channels, records and settings, guarded by ``cond`` (a condition on a re-entrant lock)."""

    def __init__(self, settings: Settings, seed: int | None = None):
        self.settings = settings
        self.cond = threading.Condition(threading.RLock())
        self.clock = Clock(on_change=self.wake)
        self.rng = random.Random(seed)  #: message-number gaps and generated ids
        self.channels: dict[str, Channel] = {}
        self.calls: list[ApiCall] = []
        self.token_requests: list[TokenRequest] = []
        self.deliveries: list[Delivery] = []

    def clear(self) -> None:
        """Forget every channel and record."""
        with self.cond:
            self.channels = {}
            self.calls = []
            self.token_requests = []
            self.deliveries = []
            self.cond.notify_all()

    def wake(self) -> None:
        """Let every waiter look again (the clock moved, say)."""
        with self.cond:
            self.cond.notify_all()

    def record_call(self, call: ApiCall) -> None:
        with self.cond:
            self.calls.append(call)
            self.cond.notify_all()

    def record_token_request(self, request: TokenRequest) -> None:
        with self.cond:
            self.token_requests.append(request)
            self.cond.notify_all()

    def record_delivery(
        self,
        message: Message,
        *,
        attempt: int,
        outcome: str,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        with self.cond:
            self.deliveries.append(
                Delivery(
                    message.channel.id,
                    message.number,
                    message.state,
                    message.channel.address,
                    dict(message.headers),
                    message.body,
                    attempt,
                    outcome,
                    status,
                    error,
                    message.duplicate,
                    self.clock.now_ms(),
                )
            )
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` (called under the lock) is truthy and return it; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self.cond.wait(min(remaining, 0.05))
