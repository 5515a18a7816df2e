"""A tiny local webhook that records what the simulator POSTs to it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """``with Receiver(on_post) as r:`` ... ``r.url``; ``r.requests`` holds (headers, body).

    ``headers`` is the case-insensitive ``email.message.Message`` of the request.
    """

    def __init__(self, on_post: Callable[[dict, bytes], int] | None = None):
        self.on_post = on_post or (lambda headers, body: 200)
        self.requests: list[tuple[dict, bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = self.headers  # case-insensitive, like real header handling
                with receiver._lock:
                    receiver.requests.append((headers, body))
                status = receiver.on_post(headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
