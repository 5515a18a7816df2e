"""Baseline (b): the careful handler a user writes alone.

googleapiclient's parser, the channel read from Firestore, and a transaction
that records the message number, so that a re-delivery is dropped.
"""

from _firestore import channels
from google.cloud import firestore
from googleapiclient import channel as google_channel
from googleapiclient.errors import InvalidNotificationError


@firestore.transactional
def _first_delivery(transaction, message_ref) -> bool:
    if message_ref.get(transaction=transaction).exists:
        return False
    transaction.create(message_ref, {"receivedAt": firestore.SERVER_TIMESTAMP})
    return True


def webhook(request):
    channel_id = request.headers.get("X-Goog-Channel-ID", "")
    channel_ref = channels().document(channel_id)
    snapshot = channel_ref.get()
    if not snapshot.exists:
        return "Not Found\n", 404
    stored = snapshot.to_dict()
    channel = google_channel.Channel("web_hook", stored["id"], stored.get("token"), stored["address"])
    try:
        notification = google_channel.notification_from_headers(channel, request.headers)
    except (InvalidNotificationError, ValueError, KeyError):
        return "Bad Request\n", 400
    if request.headers.get("X-Goog-Channel-Token") != stored.get("token"):
        return "Forbidden\n", 403
    message_ref = channel_ref.collection("messages").document(str(notification.message_number))
    if _first_delivery(channel_ref._client.transaction(), message_ref):
        pass  # the application's work would go here
    return "OK\n", 200
