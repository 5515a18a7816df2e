"""Cloud Function (Pub/Sub CloudEvent) that syncs one ``--sync`` subscription per message: target ``sync``.

Deployed with ``CHANNELKIT_SYNC_TOPIC`` on the webhook, which then publishes
"sync subscription S" there instead of syncing inside its request (see
``channelkit.sync_requests``). Thin on purpose: it reads the message, hands it to
``channelkit.sync_requests.run_requested`` (which runs ``channelkit.sync.sync``,
the function the webhook's inline sync runs) and turns the answer into what
Pub/Sub does with the message:

* returning acknowledges it: the sync is done, or another sync holds the lease
  and makes one more pass, or the message is not a sync request
  (``BadSyncRequestError``: logged; no retry could change it);
* raising has it redelivered (deployed with ``--retry``): ``SyncIncompleteError``
  (store unavailable, Google's 429/5xx left over after the client's retries, the
  budget spent, the change handler raised), a setting that cannot work, a bug.

The settings (``channelkit.config.Settings``), the store, the Google client and
the change sink are built at the first message and kept for the life of the
instance. Not public: only the trigger's service account may invoke it.

Run locally::

    functions-framework --target=sync --source=functions/sync.py --signature-type=cloudevent --port=8082
"""

from __future__ import annotations

import threading
from typing import Any

import functions_framework

from channelkit import logs
from channelkit.change_sink import load_change_sink
from channelkit.config import Settings
from channelkit.errors import BadSyncRequestError, ConfigError, SyncIncompleteError
from channelkit.google_api import GoogleApi
from channelkit.signing import NO_KEY_WARNING
from channelkit.store import open_store
from channelkit.sync_requests import run_requested, subscription_of

logs.configure()
log = logs.get_logger("sync")

_parts: dict[str, Any] = {}
_lock = threading.Lock()
_reported: set[str] = set()


def _collaborators() -> dict[str, Any]:
    """``channelkit.sync.sync``'s arguments, built at the first message; a bad setting is tried again."""
    with _lock:
        if not _parts:
            settings = Settings.resolve()
            sink = load_change_sink(settings)
            if sink is None:
                raise ConfigError(
                    "the sync function needs CHANNELKIT_CHANGE_HANDLER or CHANNELKIT_PUBSUB_TOPIC"
                )
            sink.prepare()  # a handler that cannot be imported fails here, before any lease
            store = open_store(settings.store_url, **settings.store_options())
            if store.signer is None:
                logs.event(log, "WARNING", NO_KEY_WARNING)
            _parts.update(
                store=store,
                google=GoogleApi.from_settings(settings, store=store),
                sink=sink,
                budget=settings.sync_budget,
                lease=settings.sync_lease,
                settings=settings,
            )
        return dict(_parts)


@functions_framework.cloud_event
def sync(event) -> None:
    """CloudEvent entry point: one sync request per Pub/Sub message."""
    fields: dict[str, Any] = {"messageId": _event_id(event)}
    try:
        fields["subscriptionId"] = subscription_of(event.data)
        result = run_requested(fields["subscriptionId"], **_collaborators())
    except BadSyncRequestError as exc:
        logs.event(log, "WARNING", "sync request dropped", outcome="bad_request", reason=str(exc), **fields)
        return
    except SyncIncompleteError as exc:
        logs.event(log, "WARNING", "sync incomplete: retried", outcome="retry", reason=str(exc), **fields)
        raise
    except ConfigError as exc:
        _report(exc, fields)
        raise
    except Exception:
        logs.event(log, "ERROR", "sync crashed: retried", outcome="error", exc_info=True, **fields)
        raise
    logs.event(log, "INFO", f"sync {result.outcome}", **{**fields, **result.to_json()})


def _event_id(event) -> str | None:
    try:
        return str(event["id"])
    except (KeyError, TypeError):
        return None


def _report(exc: ConfigError, fields: dict[str, Any]) -> None:
    """A setting that cannot work: CRITICAL once per instance, then ERROR for each message."""
    with _lock:
        first = str(exc) not in _reported
        _reported.add(str(exc))
    logs.event(
        log,
        "CRITICAL" if first else "ERROR",
        f"sync function misconfigured, every request is retried until this is fixed: {exc}",
        outcome="config_error",
        **fields,
    )
