"""Ports and requests on this machine's loopback interface, never through a proxy.

A developer's ``http_proxy`` would otherwise catch requests to 127.0.0.1 (urllib
honours it unless ``no_proxy`` says otherwise), so every request here goes
through an opener without proxies.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Mapping

__all__ = ["free_port", "port_open", "post"]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_BODYLESS = ("GET", "HEAD")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port`` now."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def post(
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    *,
    method: str = "POST",
    timeout: float = 30.0,
) -> tuple[int, bytes]:
    """``(status, body)`` of one request; an HTTP error status is an answer, not an exception.

    Network failures (refused, reset, timed out) raise ``OSError`` as urllib does.
    """
    request = urllib.request.Request(
        url,
        data=None if method in _BODYLESS else body,
        headers=dict(headers or {}),
        method=method,
    )
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()
