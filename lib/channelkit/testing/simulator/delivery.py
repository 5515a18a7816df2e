"""Sending notifications as Google does: per channel one at a time and in order, retried with backoff.

A notification answered 500/502/503/504, or not answered, is sent again after
``retry_base * 2**(attempt-1)`` seconds, at most ``max_attempts`` times in all;
one answered 2xx is delivered, any other answer fails it. A channel stopped or
expired before an attempt gets no more notifications.
"""

from __future__ import annotations

import collections
import heapq
import http.client
import itertools
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from channelkit.testing.simulator.records import CANCELLED, DELIVERED, FAILED, RETRY, UNDELIVERABLE
from channelkit.testing.simulator.state import Message, State

__all__ = ["RETRY_STATUSES", "DeliveryScheduler"]

#: Statuses after which a notification is sent again, as Google does.
RETRY_STATUSES = frozenset({500, 502, 503, 504})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Google does not follow redirects from a webhook; neither do we."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class DeliveryScheduler:
    """A queue per channel, a heap of when each channel's head is due, and one worker thread."""

    def __init__(self, state: State, ssl_context: Any = None):
        self._state = state
        self._cond = state.cond
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # never through a proxy: loopback only
            _NoRedirect(),
            urllib.request.HTTPSHandler(context=ssl_context),
        )
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._in_flight = 0  # survives clear(): a send may be under way
        self._queues: dict[str, collections.deque[Message]] = {}
        self._schedule: list[tuple[float, int, str]] = []  # (due, seq, channel id)
        self._seq = itertools.count()

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._deliver_loop, name="simulator-delivery", daemon=True)
        self._thread.start()

    def stop_soon(self) -> None:
        """Tell the worker to stop after its current send; queued notifications are dropped."""
        with self._cond:
            self._stopping = True
            self._drop_queued()
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def clear(self) -> None:
        """Drop every queued notification and every scheduled retry."""
        with self._cond:
            self._drop_queued()
            self._queues = {}
            self._schedule = []
            self._seq = itertools.count()
            self._cond.notify_all()

    def idle(self) -> bool:
        """Nothing queued, being sent or waiting to be retried. Caller holds the lock."""
        return not self._schedule and not self._in_flight

    def enqueue(self, message: Message) -> None:
        """Queue ``message`` behind its channel's others; an address off this machine is only recorded."""
        with self._cond:
            if not message.channel.deliverable:
                self._state.record_delivery(
                    message, attempt=0, outcome=UNDELIVERABLE, error="address not on this machine"
                )
                message.done.set()
                return
            queue = self._queues.setdefault(message.channel.id, collections.deque())
            queue.append(message)
            if len(queue) == 1:
                self._schedule_channel(message.channel.id, 0.0)

    # the worker

    def _drop_queued(self) -> None:
        for queue in self._queues.values():
            for message in queue:
                message.done.set()

    def _schedule_channel(self, channel_id: str, delay: float) -> None:
        heapq.heappush(self._schedule, (time.monotonic() + delay, next(self._seq), channel_id))
        self._cond.notify_all()

    def _finish(self, message: Message) -> None:
        """Drop the head of its channel's queue; schedule the next one."""
        queue = self._queues[message.channel.id]
        queue.popleft()
        message.done.set()
        if queue:
            self._schedule_channel(message.channel.id, 0.0)
        else:
            del self._queues[message.channel.id]

    def _deliver_loop(self) -> None:
        settings, record = self._state.settings, self._state.record_delivery
        while True:
            with self._cond:
                message = self._next_due()
                if message is None:
                    return
                channel = message.channel
                if not channel.live(self._state.clock.now_ms()):
                    reason = "channel stopped" if channel.stopped else "channel expired"
                    record(message, attempt=0, outcome=CANCELLED, error=reason)
                    self._finish(message)
                    continue
                message.attempt += 1
                self._in_flight += 1
            status, error = self._post(message)
            with self._cond:
                self._in_flight -= 1
                if self._queues.get(channel.id, [None])[0] is not message:
                    continue  # cleared while sending
                retryable = status in RETRY_STATUSES or status is None
                if status is not None and 200 <= status < 300:
                    record(message, attempt=message.attempt, outcome=DELIVERED, status=status)
                    self._finish(message)
                elif retryable and message.attempt < settings.max_attempts:
                    record(message, attempt=message.attempt, outcome=RETRY, status=status, error=error)
                    self._schedule_channel(channel.id, settings.retry_base * 2 ** (message.attempt - 1))
                else:
                    record(message, attempt=message.attempt, outcome=FAILED, status=status, error=error)
                    self._finish(message)

    def _next_due(self) -> Message | None:
        """Wait for the next channel whose head message is due. Caller holds the lock."""
        while not self._stopping:
            if self._schedule:
                due, _, channel_id = self._schedule[0]
                wait = due - time.monotonic()
                if wait <= 0:
                    heapq.heappop(self._schedule)
                    queue = self._queues.get(channel_id)
                    if queue:
                        return queue[0]
                    continue
                self._cond.wait(wait)
            else:
                self._cond.wait()
        return None

    def _post(self, message: Message) -> tuple[int | None, str | None]:
        request = urllib.request.Request(
            message.channel.address, data=message.body, headers=message.headers, method="POST"
        )
        try:
            with self._opener.open(request, timeout=self._state.settings.delivery_timeout) as response:
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
