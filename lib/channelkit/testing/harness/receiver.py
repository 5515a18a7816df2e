"""A webhook on 127.0.0.1 that records each POST and answers what its callback says."""

from __future__ import annotations

import threading
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from channelkit.errors import ChannelkitError

__all__ = ["LoopbackReceiver", "judged_by"]


#: ``on_post(headers, body) -> status``; ``headers`` are case-insensitive, as a real server's.
OnPost = Callable[[Message, bytes], int]


class LoopbackReceiver:
    """``with LoopbackReceiver(on_post) as hook:`` ... ``hook.url``; ``hook.requests`` holds (headers, body).

    Without ``on_post`` every POST is answered 200.
    """

    def __init__(self, on_post: OnPost | None = None):
        self.on_post: OnPost = on_post or (lambda headers, body: 200)
        self.requests: list[tuple[Message, bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append((self.headers, body))
                status = receiver.on_post(self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass  # a test's output is no place for an access log

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> LoopbackReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def judged_by(receiver: Any) -> OnPost:
    """An ``on_post`` answering what a ``channelkit.receive.Receiver`` decides, as the webhook does.

    For tests that need the webhook's judgement on their own clock or store, without
    functions-framework.
    """
    from channelkit.receive import status_for  # the receiver's module, only when one is served

    def judge(headers: Message, body: bytes) -> int:
        try:
            return int(receiver.receive("POST", headers, body).status)
        except ChannelkitError as exc:
            return status_for(exc)

    return judge
