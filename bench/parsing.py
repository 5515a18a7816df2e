"""Parsing one notification: channelkit against googleapiclient, same inputs, same process.

``channelkit.channel.notification_from_headers`` does more than
googleapiclient's (a constant-time token check, message-number validation,
blank-header checks, the optional headers kept). Both parse the same headers
for the same channel, in two forms: a dict spelled as Google sends the headers,
and the ``request.headers`` a functions-framework function receives (Werkzeug's
``EnvironHeaders``). Rounds alternate the two libraries; the median of the
per-round speed ratios is reported (above 1: channelkit is faster).

    .venv/bin/python -m bench.parsing
"""

from __future__ import annotations

import json
import statistics
import timeit

from googleapiclient import channel as google_channel
from werkzeug.datastructures import EnvironHeaders

from channelkit import channel as ck_channel

TOKEN = "tok-" + "x" * 40
HEADERS = {
    "X-Goog-Channel-ID": "chan-1",
    "X-Goog-Message-Number": "12345",
    "X-Goog-Resource-ID": "res-1",
    "X-Goog-Resource-State": "update",
    "X-Goog-Resource-URI": "https://www.googleapis.com/drive/v3/files/F?alt=json",
    "X-Goog-Channel-Token": TOKEN,
    "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
    "X-Goog-Changed": "content,properties",
}


def _environ_headers() -> EnvironHeaders:
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": "0",
        "HTTP_HOST": "example.com",
        "HTTP_USER_AGENT": "APIs-Google",
        "HTTP_ACCEPT_ENCODING": "gzip",
    }
    for name, value in HEADERS.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return EnvironHeaders(environ)


def run(*, rounds: int = 21, number: int = 5000) -> dict:
    ours = ck_channel.Channel("web_hook", "chan-1", TOKEN, "https://example.com/webhook")
    theirs = google_channel.Channel("web_hook", "chan-1", TOKEN, "https://example.com/webhook")
    inputs = {"dict": HEADERS, "request.headers": _environ_headers()}
    result = {}
    for form, headers in inputs.items():
        assert ck_channel.notification_from_headers(ours, headers).message_number == 12345
        assert google_channel.notification_from_headers(theirs, headers).message_number == 12345
        ratios, ck_us, g_us = [], [], []
        for i in range(rounds):
            pair = [
                ("ck", lambda headers=headers: ck_channel.notification_from_headers(ours, headers)),
                ("g", lambda headers=headers: google_channel.notification_from_headers(theirs, headers)),
            ]
            times = {}
            for name, fn in pair if i % 2 == 0 else pair[::-1]:
                times[name] = min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6
            ck_us.append(times["ck"])
            g_us.append(times["g"])
            ratios.append(times["g"] / times["ck"])
        result[form] = {
            "googleapiclient_us": statistics.median(g_us),
            "channelkit_us": statistics.median(ck_us),
            "speed_ratio": statistics.median(ratios),
        }
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
