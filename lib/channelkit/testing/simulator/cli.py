"""``python -m channelkit.testing.simulator``: print the root URL, serve until SIGTERM or SIGINT.

The command installs its own handlers for both signals, so it stops cleanly
(server closed, exit status 0) however it was started: from a terminal (Ctrl-C),
by a container or Cloud Run (SIGTERM), or as a background job whose SIGINT was
inherited as ignored (``nohup … &``), where Python's own Ctrl-C handling is off.
"""

from __future__ import annotations

import argparse
import signal
import socket
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from channelkit.testing.simulator.server import Simulator

__all__ = ["main"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_Handler = Callable[[int, FrameType | None], Any] | int | None


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGTERM or SIGINT; 0 when it stopped on one. Main thread only."""
    args = _parser().parse_args(argv)
    sim = Simulator(
        args.host,
        args.port,
        sync_before_response=args.sync_before_response,
        retry_base=args.retry_base,
        max_attempts=args.max_attempts,
        latency=args.latency,
        seed=args.seed,
        token_lifetime=args.token_lifetime,
        max_page_size=args.max_page_size,
    )
    with StopSignals() as stop:  # before start: a signal sent as soon as the URL is out is not lost
        sim.start()
        try:
            print(sim.url, flush=True)
            stop.wait()
        finally:
            sim.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m channelkit.testing.simulator",
        description=(
            "Local Google push-notification simulator (watch, stop, notifications, OAuth tokens,"
            " Drive and Calendar change feeds)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument(
        "--sync-before-response",
        action="store_true",
        help="deliver each sync notification before answering its watch call",
    )
    parser.add_argument("--retry-base", type=float, default=0.01, help="backoff base in seconds")
    parser.add_argument("--max-attempts", type=int, default=6, help="delivery attempts per notification")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API answer")
    parser.add_argument("--seed", type=int, default=None, help="seed for message numbers and ids")
    parser.add_argument(
        "--token-lifetime",
        type=int,
        default=3600,
        help="seconds an access token from /token is valid, on the simulator clock (default 3600)",
    )
    parser.add_argument(
        "--max-page-size",
        type=int,
        default=None,
        help="most items on one page of a feed listing (default: the API's own limits)",
    )
    return parser


class StopSignals:
    """While entered, SIGTERM and SIGINT are noted instead of acting; ``wait()`` returns on the first.

    The handlers only note the signal: no exception is raised into whatever the
    main thread is doing (starting or stopping the server), and no lock is taken
    inside a handler. Python's wakeup file descriptor ends the wait: the
    interpreter writes to it as soon as a handled signal arrives. The previous
    handlers are put back on exit.
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._wakeup_reader, self._wakeup_writer = socket.socketpair()
        self._previous_handlers: dict[signal.Signals, _Handler] = {}
        self._previous_wakeup_fd = -1

    def __enter__(self) -> StopSignals:
        self._wakeup_writer.setblocking(False)
        self._previous_wakeup_fd = signal.set_wakeup_fd(
            self._wakeup_writer.fileno(), warn_on_full_buffer=False
        )
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        self._wakeup_reader.close()
        self._wakeup_writer.close()

    def wait(self) -> signal.Signals:
        """Block until SIGTERM or SIGINT has arrived (maybe already); return which."""
        while self.received is None:
            self._wakeup_reader.recv(64)  # woken by any handled signal; the loop checks which
        return self.received

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)
