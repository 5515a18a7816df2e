"""The webhook core behind a plain local HTTP server, with an injectable clock.

functions/webhook.py itself is tested under functions-framework; renewal tests
need the same receiver judged on the simulator's clock (days pass in a test),
so they serve ``channelkit.receive.Receiver`` directly.
"""

from __future__ import annotations

import threading

from channelkit.receive import Receiver as ChannelReceiver
from channelkit.testing.harness import LoopbackReceiver, judged_by


class RecordingHandler:
    """An app handler that records what it was given (thread-safe)."""

    def __init__(self):
        self.calls = []
        self._lock = threading.Lock()

    def __call__(self, notification, channel):
        with self._lock:
            self.calls.append((notification, channel))

    dispatch = __call__

    def states(self):
        with self._lock:
            return [n.state for n, _ in self.calls]

    def numbers(self, channel_id):
        with self._lock:
            return [n.message_number for n, c in self.calls if n.channel_id == channel_id]


class WebhookServer(LoopbackReceiver):
    """``with WebhookServer(store, handler, clock) as hook:`` ... ``hook.url``; ``hook.statuses``."""

    def __init__(self, store, handler, clock, **receiver_options):
        self.receiver = ChannelReceiver(
            store=store, dispatcher=handler, clock=clock, cache=None, **receiver_options
        )
        self.statuses: list[tuple[str, int, int]] = []  # (channel id, message number, status)
        self._judge_by_receiver = judged_by(self.receiver)
        super().__init__(self._judge)

    def _judge(self, headers, body) -> int:
        status = self._judge_by_receiver(headers, body)
        self.statuses.append(
            (headers.get("X-Goog-Channel-ID"), int(headers.get("X-Goog-Message-Number") or 0), status)
        )
        return status
