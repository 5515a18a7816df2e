"""Is an address on this machine? One answer for the API client and the push simulator.

Standard library only: the simulator imports it, and must run without channelkit's dependencies.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

__all__ = ["is_loopback_host", "is_loopback_url"]


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ``::1``, brackets allowed)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when the host of ``url`` is loopback (see ``is_loopback_host``)."""
    return is_loopback_host(urllib.parse.urlsplit(url).hostname)
