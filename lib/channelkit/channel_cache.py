"""A per-process cache of channel lookups, so that most notifications cost no channel read.

A cached channel may only say yes: the receiver reads the channel again before
it refuses a request (403, 410), so a stale entry can delay a stop or a renewal
by at most the cache's lifetime, never refuse a good notification.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from channelkit import config
from channelkit.channel import Channel

__all__ = ["ChannelCache"]

Clock = Callable[[], float]


class ChannelCache:
    """Channel lookups kept ``ttl`` seconds; at most ``max_size`` channels, the oldest dropped first.

    ``ttl`` defaults to ``CHANNELKIT_CACHE_TTL``, read once when the cache is
    built; 0 disables caching. Thread-safe. ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        ttl: float | None = None,
        *,
        max_size: int = 4096,
        clock: Clock = time.monotonic,
    ):
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.ttl: float = config.cache_ttl(ttl)
        self.max_size = max_size
        self._clock = clock
        self._entries: collections.OrderedDict[str, tuple[float, Channel]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, channel_id: str) -> Channel | None:
        """The cached channel if still fresh, else None."""
        ttl = self.ttl
        entry = self._entries.get(channel_id)  # one dict read: no lock needed to look
        if entry is None:
            return None
        stored_at, channel = entry
        age = self._clock() - stored_at
        if ttl <= 0 or age >= ttl or age < 0:
            with self._lock:
                if self._entries.get(channel_id) is entry:  # not replaced meanwhile
                    del self._entries[channel_id]
            return None
        return channel

    def put(self, channel: Channel) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[channel.id] = (self._clock(), channel)
            self._entries.move_to_end(channel.id)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def forget(self, channel_id: str) -> None:
        with self._lock:
            self._entries.pop(channel_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
