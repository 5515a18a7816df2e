"""The HTTP server: reads each request, hands it to the control API, the token endpoint or the Google
API routes, records it."""

from __future__ import annotations

import json
import socket
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from channelkit.testing.simulator.control import CONTROL_PREFIX
from channelkit.testing.simulator.oauth import TOKEN_PATH, OAuth
from channelkit.testing.simulator.records import ApiCall
from channelkit.testing.simulator.routes import INVALID_JSON, ApiRoutes
from channelkit.testing.simulator.state import State

__all__ = ["ControlHandler", "HttpServer"]

#: Answers a control request: (method, name below the prefix, query, body) -> (status, JSON).
ControlHandler = Callable[[str, str, dict[str, str], Any], tuple[int, Any]]


class HttpServer(ThreadingHTTPServer):
    """Serves the simulator on ``host``:``port`` (an IPv6 address when ``host`` has a colon)."""

    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of parallel clients
    # (a renewal run) would overflow it, and each dropped SYN costs the client a
    # 1 s retransmission. Google's front ends take any number of connections.
    request_queue_size = 1024

    def __init__(
        self,
        host: str,
        port: int,
        *,
        routes: ApiRoutes,
        control: ControlHandler,
        state: State,
        oauth: OAuth,
    ):
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.routes, self.control, self.state, self.oauth = routes, control, state, oauth
        super().__init__((host, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: HttpServer
    server_version = "ESF"
    sys_version = ""
    # Keep-alive, as Google's front ends: a client's next call reuses its
    # connection (every answer carries a Content-Length).
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if parts.path == TOKEN_PATH:
            self._send(*self.server.oauth.handle(method, self.headers.get("Content-Type"), raw))
            return
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = INVALID_JSON
        if parts.path.startswith(CONTROL_PREFIX):
            self._send(*self.server.control(method, parts.path[len(CONTROL_PREFIX) :], query, body))
            return
        answer = self.server.routes.handle(method, parts.path, query, body, self.headers.get("Authorization"))
        if body is INVALID_JSON:
            body = raw.decode("utf-8", "replace")
        state = self.server.state
        state.record_call(
            ApiCall(
                method,
                parts.path,
                query,
                body,
                answer.status,
                answer.payload,
                answer.operation,
                state.clock.now_ms(),
                answer.resource,
                answer.reason,
                answer.refusal,
                answer.user,
                answer.auth,
            )
        )
        self._send(answer.status, answer.payload)

    def _send(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
