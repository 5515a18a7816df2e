"""One Firestore client per baseline process, built at the first request (as channelkit does)."""

from __future__ import annotations

import os
import threading

_client = None
_lock = threading.Lock()


def channels():
    """The channels collection, on the project and collection the kit uses."""
    global _client
    with _lock:
        if _client is None:
            from google.cloud import firestore

            _client = firestore.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "channelkit-bench"))
    return _client.collection(os.environ.get("CHANNELKIT_COLLECTION", "channels"))
