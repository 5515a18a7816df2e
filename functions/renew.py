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
from channelkit.config import Settings
from channelkit.errors import ChannelkitError
from channelkit.google_api import GoogleApi
from channelkit.renewal import renew_due, renewal_dispatcher
from channelkit.renewal.fanout import ShardPublisher
from channelkit.signing import NO_KEY_WARNING
from channelkit.store import open_store

logs.configure()
log = logs.get_logger("renew")
JSON = {"Content-Type": "application/json"}

#: Read by ``renewal_dispatcher()`` alone, which logs a broken handler or topic and renews
#: anyway: a bad one must not stop the run (channels would expire), so the settings skip them.
DISPATCH_VARIABLES = ("CHANNELKIT_HANDLER", "CHANNELKIT_PUBSUB_TOPIC")

_parts: dict[str, Any] = {}
_lock = threading.Lock()


def _resolve_settings() -> Settings:
    environ = {k: v for k, v in os.environ.items() if k not in DISPATCH_VARIABLES}
    return Settings.from_env(environ)


def _collaborators() -> dict[str, Any]:
    """``renew_due``'s arguments: settings, store, Google client, dispatcher and shard publisher, built once."""
    with _lock:
        if not _parts:
            settings = _resolve_settings()
            store = open_store(settings.store_url, **settings.store_options())
            if store.signer is None:
                logs.event(log, "WARNING", NO_KEY_WARNING)
            _parts.update(
                store=store,
                google=GoogleApi.from_settings(settings, store=store),
                dispatcher=renewal_dispatcher(),
                settings=settings,
                # Due channels past CHANNELKIT_RENEW_INLINE go to the renew-worker function.
                publisher=ShardPublisher(settings.renew_topic) if settings.renew_topic else None,
            )
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
