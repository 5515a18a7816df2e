"""The handler of ``scripts/run-local --demo``: records each call for the narration.

Each call is printed, and appended as one JSON line to ``DEMO_HANDLER_LOG`` when
that is set; the demo reads the file to show what reached the app. A real app's handler has the same
signature (see "Writing a handler" in the README).
"""

from __future__ import annotations

import json
import os


def handle(notification, channel) -> None:
    record = {
        "channelId": channel.id,
        "subscriptionId": channel.subscription_id,
        "messageNumber": notification.message_number,
        "state": notification.state,
        "changed": list(notification.changed),
    }
    path = os.environ.get("DEMO_HANDLER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
    print(
        f"handler: message #{notification.message_number} {notification.state} on channel {channel.id}",
        flush=True,
    )
