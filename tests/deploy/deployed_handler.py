"""The app handler that the deploy test ships with ``deploy.sh --handler-source``.

It stands for a user's own module: deploy.sh copies it next to ``main.py`` in the
staged source, and the deployed artifact must import and call it. Each call is
appended as one JSON line to the file named by ``DEPLOYED_HANDLER_LOG``.
"""

from __future__ import annotations

import json
import os


def handle(notification, channel) -> None:
    record = {
        "channelId": channel.id,
        "messageNumber": notification.message_number,
        "state": notification.state,
        "resourceId": notification.resource_id,
    }
    with open(os.environ["DEPLOYED_HANDLER_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
