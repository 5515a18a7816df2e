"""Cold-start baseline: a bare function whose module imports google-cloud-firestore."""

from google.cloud import firestore  # noqa: F401  (the import is the point)


def webhook(request):
    return "OK\n", 200
