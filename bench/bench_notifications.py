"""Benchmarks, each run side by side with its baseline in one process, reported as ratios.

1. Parsing: ``channelkit.channel.notification_from_headers`` (which also checks
   the token in constant time, parses the expiration date and X-Goog-Changed)
   against ``googleapiclient.channel.notification_from_headers``.
2. Receiving: ``channelkit.receive.Receiver`` on the Firestore emulator with the
   per-instance channel cache against the same receiver without it (one
   Firestore read saved per notification).

    .venv/bin/python bench/bench_notifications.py            # starts its own emulator
    FIRESTORE_EMULATOR_HOST=127.0.0.1:PORT .venv/bin/python bench/bench_notifications.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import timeit

from googleapiclient import channel as google_channel

from channelkit import channel as ck_channel

HEADERS = {
    "X-Goog-Channel-ID": "chan-1",
    "X-Goog-Message-Number": "12345",
    "X-Goog-Resource-ID": "res-1",
    "X-Goog-Resource-State": "update",
    "X-Goog-Resource-URI": "https://www.googleapis.com/drive/v3/files/F?alt=json",
    "X-Goog-Channel-Token": "tok-" + "x" * 40,
    "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
    "X-Goog-Changed": "content,properties",
}


def bench_parsing(rounds: int = 7, number: int = 20_000) -> dict:
    ours_channel = ck_channel.Channel("web_hook", "chan-1", HEADERS["X-Goog-Channel-Token"], "https://x")
    theirs_channel = google_channel.Channel("web_hook", "chan-1", HEADERS["X-Goog-Channel-Token"], "https://x")
    results = {}
    for name, fn in (
        ("googleapiclient", lambda: google_channel.notification_from_headers(theirs_channel, HEADERS)),
        ("channelkit", lambda: ck_channel.notification_from_headers(ours_channel, HEADERS)),
    ):
        times = timeit.repeat(fn, number=number, repeat=rounds)
        results[name] = statistics.median(times) / number * 1e6  # µs per call
    return results


def bench_receiving(n: int = 300) -> dict:
    from channelkit.receive import ChannelCache, Receiver
    from channelkit.store import open_store

    store = open_store("firestore")
    results = {}
    for label, cache in (("uncached", None), ("cached", ChannelCache())):
        channel = ck_channel.Channel("web_hook", f"bench-{label}-{time.time_ns()}", "tok", "https://x",
                                     status="active", expiration=int(time.time() * 1000) + 3_600_000,
                                     resource_id="res-1")
        store.create(channel)
        receiver = Receiver(store=store, dispatcher=lambda notification, ch: None, cache=cache)
        headers = dict(HEADERS, **{"X-Goog-Channel-ID": channel.id, "X-Goog-Channel-Token": "tok"})
        for warm in range(1, 21):  # warm the emulator and the cache
            receiver.receive("POST", dict(headers, **{"X-Goog-Message-Number": str(warm)}))
        latencies = []
        for number in range(100, 100 + n):
            started = time.perf_counter()
            receiver.receive("POST", dict(headers, **{"X-Goog-Message-Number": str(number)}))
            latencies.append((time.perf_counter() - started) * 1000)
        results[label] = {"median_ms": statistics.median(latencies),
                          "p95_ms": statistics.quantiles(latencies, n=20)[18]}
    return results


def main() -> int:
    parsing = bench_parsing()
    print("parse+validate one notification (median of 7 x 20k):")
    print(f"  googleapiclient {parsing['googleapiclient']:.2f} us, channelkit {parsing['channelkit']:.2f} us, "
          f"ratio channelkit/googleapiclient = {parsing['channelkit'] / parsing['googleapiclient']:.2f}")
    emulator = None
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        from channelkit.testing.emulators import Emulator

        emulator = Emulator("firestore").start()
        os.environ.update(emulator.env)
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "channelkit-bench")
    try:
        receiving = bench_receiving()
    finally:
        if emulator:
            emulator.stop()
    u, c = receiving["uncached"], receiving["cached"]
    print("receive one notification on the Firestore emulator (300 sequential, after warm-up):")
    print(f"  uncached median {u['median_ms']:.2f} ms p95 {u['p95_ms']:.2f} ms; "
          f"cached median {c['median_ms']:.2f} ms p95 {c['p95_ms']:.2f} ms; "
          f"ratio cached/uncached median = {c['median_ms'] / u['median_ms']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
