"""Cloud Function (Pub/Sub CloudEvent) renewing one shard of a fanned-out run: target ``renew_worker``.

A renewal run with ``CHANNELKIT_RENEW_TOPIC`` set publishes the due
subscriptions it does not renew itself, a few hundred ids to a message
(``channelkit.renewal.fanout``); each message arrives here. Thin on purpose:
the shard is read from the event, ``renew_shard`` renews it under the same
leases as a run, and errors are mapped to what Pub/Sub should do:

* a malformed shard is logged and acknowledged (returning normally): no
  redelivery would ever make it readable;
* anything else (the store or Google unreachable for a subscription, a bad
  setting) is raised, so the function fails and Pub/Sub redelivers the shard
  (``deploy.sh`` deploys the trigger with ``--retry``); what was renewed is
  then no longer due and is skipped.

Deploy it without public access: only the trigger's service account may invoke
it. The settings, store, Google client and dispatcher are built at the first
event and kept for the life of the instance. Run locally::

    functions-framework --target=renew_worker --source=functions/renew_worker.py \\
        --signature-type=cloudevent --port=8082
"""

from __future__ import annotations

import os
import threading
from typing import Any

import functions_framework

from channelkit import logs
from channelkit.errors import MalformedShardError
from channelkit.renewal.fanout import renew_shard, shard_from_event
from channelkit.renewal.run import renewal_collaborators

logs.configure()
log = logs.get_logger("renew_worker")

_parts: dict[str, Any] = {}
_lock = threading.Lock()


def _collaborators() -> dict[str, Any]:
    """``renew_shard``'s arguments: settings, store, Google client and dispatcher, built once."""
    with _lock:
        if not _parts:
            _parts.update(renewal_collaborators(os.environ, logger=log))
        return dict(_parts)


@functions_framework.cloud_event
def renew_worker(cloud_event) -> None:
    """CloudEvent entry point (``google.cloud.pubsub.topic.v1.messagePublished``): renew one shard."""
    try:
        shard = shard_from_event(cloud_event.data)
    except MalformedShardError as exc:
        logs.event(log, "ERROR", "renewal shard dropped: malformed", outcome="malformed", error=str(exc))
        return  # acknowledged: redelivering it cannot help
    renew_shard(shard, **_collaborators())  # any error fails the event: Pub/Sub redelivers the shard
