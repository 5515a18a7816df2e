"""Baseline (d): googleapiclient's parser after one read of the channel; no deduplication."""

from _firestore import channels
from googleapiclient import channel as google_channel
from googleapiclient.errors import InvalidNotificationError


def webhook(request):
    channel_id = request.headers.get("X-Goog-Channel-ID", "")
    snapshot = channels().document(channel_id).get()
    if not snapshot.exists:
        return "Not Found\n", 404
    stored = snapshot.to_dict()
    channel = google_channel.Channel("web_hook", stored["id"], stored.get("token"), stored["address"])
    try:
        google_channel.notification_from_headers(channel, request.headers)
    except (InvalidNotificationError, ValueError, KeyError):
        return "Bad Request\n", 400
    if request.headers.get("X-Goog-Channel-Token") != stored.get("token"):
        return "Forbidden\n", 403
    return "OK\n", 200
