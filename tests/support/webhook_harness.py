"""The webhook core behind a plain local HTTP server, with an injectable clock.

functions/webhook.py itself is tested under functions-framework; renewal tests
need the same receiver judged on the simulator's clock (days pass in a test),
so they serve ``channelkit.receive.Receiver`` directly.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from channelkit.errors import ChannelkitError
from channelkit.receive import Receiver, status_for


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


class WebhookServer:
    """``with WebhookServer(store, handler, clock) as hook:`` ... ``hook.url``; ``hook.statuses``."""

    def __init__(self, store, handler, clock, **receiver_options):
        self.receiver = Receiver(store=store, dispatcher=handler, clock=clock, cache=None,
                                 **receiver_options)
        self.statuses: list[tuple[str, int, int]] = []  # (channel id, message number, status)
        harness = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    status = harness.receiver.receive("POST", self.headers, body).status
                except ChannelkitError as exc:
                    status = status_for(exc)
                harness.statuses.append((self.headers.get("X-Goog-Channel-ID"),
                                         int(self.headers.get("X-Goog-Message-Number") or 0), status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhook"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
