"""A push relay: one Pub/Sub push endpoint in front of several function processes.

In the cloud, a Pub/Sub-triggered function is one push target and Cloud Run
spreads the deliveries over its instances. The Pub/Sub emulator pushes each
subscription to one URL, so ``PushRelay`` plays the load balancer: each
delivery goes to the live target with the fewest deliveries in flight (ties in
turn), and the target's status goes back to the emulator, which redelivers on
anything but 2xx. A target that refuses connections is left out from then on
(a dead instance); a delivery cut off mid-way (the instance died) answers 503.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from channelkit.testing.harness.loopback import post

__all__ = ["PushRelay"]

#: Request headers passed on to the target (the rest are the relay's own connection's).
FORWARDED = ("Content-Type", "Ce-Id", "Ce-Source", "Ce-Type", "Ce-Specversion", "Ce-Time", "Ce-Subject")


class PushRelay:
    """An HTTP endpoint on 127.0.0.1 forwarding each POST to one of ``targets`` (URLs)."""

    def __init__(self, targets: Sequence[str], *, timeout: float = 600.0):
        self.targets = list(targets)
        self.timeout = timeout
        self.in_flight: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()  # 2xx answers, per target
        self.failed: Counter[str] = Counter()  # other answers and broken deliveries, per target
        self.dead: set[str] = set()
        self._lock = threading.Lock()
        self._turn = itertools.count()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items() if k.title() in FORWARDED}
                status = relay.forward(body, headers)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _pick(self) -> str | None:
        with self._lock:
            live = [t for t in self.targets if t not in self.dead]
            if not live:
                return None
            turn = next(self._turn)
            order = live[turn % len(live) :] + live[: turn % len(live)]
            target = min(order, key=lambda t: self.in_flight[t])
            self.in_flight[target] += 1
            return target

    def forward(self, body: bytes, headers: dict[str, str]) -> int:
        """Deliver one push to a live target; its status, or 503 when none took it."""
        while True:
            target = self._pick()
            if target is None:
                return 503
            try:
                status, _ = post(target, headers, body, timeout=self.timeout)
            except OSError as exc:
                if _refused(exc):
                    with self._lock:
                        self.in_flight[target] -= 1
                        self.dead.add(target)
                    continue  # never reached it: another instance takes it
                status = 503  # cut off mid-way: the emulator redelivers
            with self._lock:
                self.in_flight[target] -= 1
                (self.delivered if 200 <= status < 300 else self.failed)[target] += 1
            return status

    def start(self) -> PushRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PushRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _refused(exc: OSError) -> bool:
    """Whether the connection was refused (urllib wraps the socket's error in ``URLError``)."""
    return isinstance(exc, ConnectionRefusedError) or isinstance(
        getattr(exc, "reason", None), ConnectionRefusedError
    )
