"""Requests a server's own parser rejects mid-body, sent raw to a real webhook server.

A malformed chunked body is the client's fault: 400, never 503 (Google would
retry it for ever) and never a traceback in the logs.
"""

from __future__ import annotations

import socket

from channelkit.testing.harness import notification_headers
from support.webhook_testing import new_channel


def _raw(server, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_malformed_chunked_body_is_400_without_a_traceback(webhook_server, store, recording):
    channel = new_channel()
    store.create(channel)
    server = webhook_server()
    headers = "".join(f"{k}: {v}\r\n" for k, v in notification_headers(channel, 3, "update").items())
    answer = _raw(
        server,
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + headers + "\r\nzz\r\n").encode(),
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert recording.calls() == []
    log = server.log_path.read_text()
    assert "unreadable_body" in log and "Traceback" not in log
