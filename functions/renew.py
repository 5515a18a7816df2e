"""Cloud Function (HTTP) run by Cloud Scheduler to renew channels: target ``renew``.

Thin on purpose: one call to ``channelkit.renewal.renew_due`` per request, its
summary as JSON. Deploy it without public access: only the scheduler's service
account may invoke it (Cloud Run IAM checks the OIDC token before the code
runs; see deploy.sh). A run never fails for one channel; the whole run answers
503 only when it cannot start (store unreachable, bad setting), so Cloud
Scheduler retries it.

Run locally::

    functions-framework --target=renew --source=functions/renew.py --port=8081
"""

from __future__ import annotations

import json
import threading

from channelkit import logs
from channelkit.errors import ChannelkitError
from channelkit.google_api import GoogleApi
from channelkit.renewal import renew_due, renewal_dispatcher
from channelkit.store import open_store

logs.configure()
log = logs.get_logger("renew")
JSON = {"Content-Type": "application/json"}

_parts: dict = {}
_lock = threading.Lock()


def _collaborators() -> dict:
    """Store, Google client and dispatcher, built at the first request and kept."""
    with _lock:
        if not _parts:
            _parts.update(store=open_store(), google=GoogleApi(), dispatcher=renewal_dispatcher())
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
