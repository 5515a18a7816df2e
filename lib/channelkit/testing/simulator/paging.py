"""Page sizes and opaque tokens shared by the feed routes, and the feed errors in Google's words.

Calendar and ``files.list`` tokens are opaque to clients (URL-safe base64 of a
small JSON object) yet carry everything needed to answer the next page the same
way whatever changed since. Drive change tokens are plain numbers, as Drive's are.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from channelkit.testing.simulator.api_errors import ApiError

__all__ = ["decode_token", "encode_token", "invalid_parameter", "page_size"]


def invalid_parameter(name: str, message: str = "Invalid Value") -> ApiError:
    """Google's 400 for a bad query parameter (reason ``invalid``, location the parameter)."""
    return ApiError(400, "invalid", message, location=name)


def page_size(
    query: dict[str, str],
    name: str,
    default: int,
    maximum: int,
    override: int | None,
    *,
    clamp: bool,
) -> int:
    """Items per page: the request's ``name`` (or ``default``), at most ``maximum`` and ``override``.

    A value that is no integer or below 1 is refused; one above ``maximum`` is
    refused too, unless ``clamp`` (Calendar quietly lowers it).
    """
    raw = query.get(name)
    if raw in (None, ""):
        size = default
    else:
        try:
            size = int(str(raw))
        except ValueError:
            raise invalid_parameter(name) from None
        if size < 1 or (size > maximum and not clamp):
            raise invalid_parameter(name)
    size = min(size, maximum)
    return min(size, override) if override else size


def encode_token(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    """The object ``encode_token`` made, or None for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
