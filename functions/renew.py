"""Cloud Function (HTTP) run by Cloud Scheduler to renew channels: target ``renew``.

Thin on purpose: one call to ``channelkit.renewal.renew_due`` per request, its
summary as JSON. Deploy it without public access: only the scheduler's service
account may invoke it (Cloud Run IAM checks the OIDC token before the code
runs; see deploy.sh). A run never fails for one channel; the whole run answers
503 only when it cannot start (store unreachable, bad setting), so Cloud
Scheduler retries it. The settings (``channelkit.config.Settings``) are
resolved at the first request, with the store, the Google client and the
dispatcher, and kept for the life of the instance.

Run locally::

    functions-framework --target=renew --source=functions/renew.py --port=8081
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from channelkit import logs
from channelkit.errors import ChannelkitError
from channelkit.renewal import renew_due
from channelkit.renewal.fanout import ShardPublisher
from channelkit.renewal.run import renewal_collaborators

logs.configure()
log = logs.get_logger("renew")
JSON = {"Content-Type": "application/json"}

_parts: dict[str, Any] = {}
_lock = threading.Lock()


def _collaborators() -> dict[str, Any]:
    """``renew_due``'s arguments: settings, store, Google client, dispatcher and shard publisher, built once."""
    with _lock:
        if not _parts:
            parts = renewal_collaborators(os.environ, logger=log)
            # Due channels past CHANNELKIT_RENEW_INLINE go to the renew-worker function.
            topic = parts["settings"].renew_topic
            _parts.update(parts, publisher=ShardPublisher(topic) if topic else None)
        return dict(_parts)


def renew(request):
    """HTTP entry point: one renewal run; answers its JSON summary."""
    if request.method not in ("POST", "GET"):
        return json.dumps({"error": "method not allowed"}), 405, dict(JSON, Allow="POST, GET")
    try:
        summary = renew_due(**_collaborators())
    except ChannelkitError as exc:
        logs.event(
            log, "ERROR", "renewal run could not start", outcome="unavailable", error=type(exc).__name__
        )
        return json.dumps({"error": "renewal unavailable, retry later"}), 503, JSON
    except Exception:
        log.exception("renewal run crashed")
        return json.dumps({"error": "renewal failed, retry later"}), 503, JSON
    return json.dumps(summary.to_json()), 200, JSON
