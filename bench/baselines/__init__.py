"""Baseline Cloud Functions the webhook is measured against (``python -m bench``).

Each module defines ``webhook(request)`` and is served by functions-framework
exactly like ``functions/webhook.py``, against the same Firestore emulator and
the same channel documents (``channels/{id}``, as channelkit stores them):

* ``bare``: answers 200 and does nothing: the framework's ceiling.
* ``user_plain``: what a user writes without deduplication: googleapiclient's
  ``notification_from_headers`` after one read of the channel document.
* ``user_dedupe``: the same, plus a Firestore transaction that records the
  message number and drops a duplicate: the careful handler of a user alone.
* ``claim_floor``: the floor of channelkit's own design: only the two writes of a
  dedupe claim (create the message document, then mark it done).
"""
