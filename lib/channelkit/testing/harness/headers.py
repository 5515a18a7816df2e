"""The headers of one push notification, as Google sends them, for posting by hand.

The simulator (``channelkit.testing.simulator``) builds its own from the channels
it holds; this builder serves tests, benchmarks and scripts that post a
notification for a ``Channel`` they stored themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from channelkit.channel import Channel

__all__ = ["FAR_EXPIRATION", "notification_headers"]


#: A fixed, far ``X-Goog-Channel-Expiration``: the receiver judges expiry by the stored channel.
FAR_EXPIRATION = "Tue, 19 Nov 2030 01:13:52 GMT"


def notification_headers(
    channel: Channel,
    number: int | str,
    state: str = "update",
    *,
    changed: Iterable[str] = (),
    **overrides: str | None,
) -> dict[str, str]:
    """Google's ``X-Goog-*`` headers of message ``number`` on ``channel``.

    ``overrides`` name a header without its ``X-Goog-`` prefix, ``_`` for ``-``
    (``Channel_Token="wrong"``, ``Message_Number="x"``); ``None`` leaves it out.
    """
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Message-Number": str(number),
        "X-Goog-Resource-ID": channel.resource_id or "res-1",
        "X-Goog-Resource-State": state,
        "X-Goog-Resource-URI": channel.resource_uri or "https://www.googleapis.com/x",
        "X-Goog-Channel-Expiration": FAR_EXPIRATION,
    }
    if channel.token:
        headers["X-Goog-Channel-Token"] = channel.token
    if changed:
        headers["X-Goog-Changed"] = ",".join(changed)
    for name, value in overrides.items():
        key = "X-Goog-" + name.replace("_", "-")
        if value is None:
            headers.pop(key, None)
        else:
            headers[key] = value
    return headers
