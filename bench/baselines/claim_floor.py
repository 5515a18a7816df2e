"""Baseline (c): only the two Firestore writes of a dedupe claim (create, then mark done).

No parsing, no checks, no channel read: the least any exactly-once webhook on
Firestore must do, so the kit's own overhead is what lies above it.
"""

import datetime

from _firestore import channels


def webhook(request):
    channel_id = request.headers.get("X-Goog-Channel-ID", "")
    number = request.headers.get("X-Goog-Message-Number", "")
    message_ref = channels().document(channel_id).collection("messages").document(number)
    now = datetime.datetime.now(datetime.UTC)
    result = message_ref.create({"status": "in_progress", "claimedAt": now})
    message_ref.update(
        {"status": "done"}, option=message_ref._client.write_option(last_update_time=result.update_time)
    )
    return "OK\n", 200
