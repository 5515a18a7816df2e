"""Shared pieces of the reliability suite: real processes, a Google-like sender, accounting.

* ``shared_firestore()`` — host:port of a Firestore emulator: the one named by
  ``FIRESTORE_EMULATOR_HOST``, else one started once for this process (stopped at exit).
  Each scenario works in a project of its own, so nothing needs resetting.
* ``TcpRelay`` — a TCP relay between the webhook and the emulator that can cut
  every connection at once (a store that went away at the network level).
* ``WebhookServer`` — the real ``functions/webhook.py`` under ``functions-framework``
  (gunicorn, several worker processes with threads), in its own process group,
  with the recording handler of ``bench.reliability.handler``.
* ``seed_channels`` — active channels with tokens and resource ids, stored as the kit stores them.
* ``Delivery`` / ``deliver_all`` — concurrent senders that retry 500/502/503/504 and
  dropped connections with exponential backoff and jitter, as Google does.
* ``account`` — sent / accepted / handler calls / lost / doubled from what was sent
  and what the handler recorded; ``format_table`` / ``write_results``.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import http.client
import json
import os
import pathlib
import queue
import random
import select
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from bench.reliability import SCENARIOS as SCENARIO_ORDER
from bench.reliability.handler import read_record
from channelkit.channel import Channel
from channelkit.signing import Signer
from channelkit.testing import harness
from channelkit.testing.emulators import Emulator
from channelkit.testing.harness import FunctionsFrameworkProcess, free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "functions" / "webhook.py"
RESULTS = ROOT / "bench" / "results"
HANDLER = "bench.reliability.handler:handle"
RETRIED = frozenset({500, 502, 503, 504})  # Google retries these (and dropped connections)
UTC = datetime.UTC

Progress = Callable[[str], None]


def say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


# --- Firestore emulator -----------------------------------------------------------------

_shared: Emulator | None = None
_shared_lock = threading.Lock()


def shared_firestore() -> str:
    """host:port of a running Firestore emulator (``FIRESTORE_EMULATOR_HOST``, else our own)."""
    global _shared
    external = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if external:
        return external
    with _shared_lock:
        if _shared is None:
            emulator = Emulator("firestore")
            emulator.start()
            atexit.register(emulator.stop)
            _shared = emulator
        return _shared.host_port


def new_project(scenario: str) -> str:
    """A project id of this run's own: a clean database on a shared emulator."""
    return f"rel-{scenario.replace('_', '-')}-{uuid.uuid4().hex[:8]}"


class TcpRelay:
    """Forwards ``listen_port`` to ``target``; ``cut()`` drops every connection and refuses new
    ones until ``resume()``. Threads, one pair per connection (gRPC keeps few connections)."""

    def __init__(self, target_port: int, listen_port: int | None = None):
        self.target_port = target_port
        self.port = listen_port or free_port()
        self.host_port = f"127.0.0.1:{self.port}"
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._closed = False
        self.resume()

    def resume(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()  # RST
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
                with self._lock:
                    if a not in self._conns:
                        return
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._conns.discard(a)
                self._conns.discard(b)
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass


# --- the webhook under functions-framework ------------------------------------------------


class WebhookServer(FunctionsFrameworkProcess):
    """The real ``functions/webhook.py`` under functions-framework, with the recording handler.

    Started when made, like the scenarios' other parts; its log is removed on ``stop``
    unless it shows unexpected errors or ``keep_log`` is set (then the scenario's notes name it).
    """

    keep_log = False

    def __init__(
        self,
        *,
        firestore: str,
        project: str,
        record: str,
        workers: int = 2,
        threads: int = 8,
        env: dict[str, str] | None = None,
    ):
        log_path = tempfile.mkstemp(prefix="reliability-webhook-", suffix=".log")[1]
        settings = dict(os.environ)
        settings.update(
            {
                "FIRESTORE_EMULATOR_HOST": firestore,
                "GOOGLE_CLOUD_PROJECT": project,
                "CHANNELKIT_STORE": "firestore",
                "CHANNELKIT_HANDLER": HANDLER,
                "RELIABILITY_RECORD": record,
                "WORKERS": str(workers),
                "THREADS": str(threads),
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        settings.update(env or {})
        super().__init__("webhook", SOURCE, env=settings, log_path=log_path, cwd=ROOT)
        self.start()

    def unexpected_errors(self) -> int:
        """Lines where the webhook caught an error it did not expect (a bug: answered 503)."""
        return self.output().count("unexpected error while handling a notification")

    def stop(self, timeout: float = 15.0) -> None:
        super().stop(timeout)
        if self.log_path.exists() and not (self.keep_log or self.unexpected_errors()):
            self.log_path.unlink()

    def __enter__(self) -> WebhookServer:
        self.wait_ready()
        return self


# --- channels -------------------------------------------------------------------------------


def make_channel(index: int, signer: Any = None) -> Channel:
    """A live channel; its id signed by ``signer`` (a ``channelkit.signing.Signer``) when given."""
    now_ms = int(time.time() * 1000)
    return Channel(
        "web_hook",
        signer.new_channel_id() if signer is not None else f"rel-{index:04d}-{uuid.uuid4().hex[:12]}",
        "tok-" + uuid.uuid4().hex,
        "https://hook.example/webhook",
        expiration=now_ms + 6 * 3_600_000,
        resource_id=f"res-{index}",
        resource_uri=f"https://www.googleapis.com/drive/v3/files/F{index}?alt=json",
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": f"F{index}"},
        subscription_id=f"sub-{index}",
        status="active",
        created_at=datetime.datetime.now(UTC),
    )


def seed_channels(firestore: str, project: str, count: int, keyring: Any = None) -> list[Channel]:
    """``count`` active channels stored in ``project`` on the emulator at ``firestore``.

    With a ``keyring`` (a ``channelkit.crypto.Keyring``) their ids are signed and
    their tokens stored sealed, as a deployment with that key makes them.
    """
    signer = Signer(keyring) if keyring is not None else None
    channels = [make_channel(i, signer) for i in range(count)]
    store = open_firestore(firestore, project, keyring)
    try:
        for channel in channels:
            store.create(channel)
    finally:
        store.close()
    return channels


def open_firestore(firestore: str, project: str, keyring: Any = None):
    from channelkit.store.firestore import FirestoreStore

    saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = firestore
    try:
        keys = keyring if keyring is not None else False  # never a key from this process's environment
        return FirestoreStore(project=project, collection="channels", timeout=30, keyring=keys)
    finally:
        if saved is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = saved


def notification_headers(channel: Channel, number: int, state: str = "update") -> dict[str, str]:
    """A valid notification for a seeded channel: every header Google sends, ``X-Goog-Changed`` too."""
    return harness.notification_headers(channel, number, state, changed=("content", "properties"))


def message_numbers(rng: random.Random, count: int) -> list[int]:
    """1 (sync), then increasing with gaps, as Google numbers a channel's messages."""
    numbers, n = [], 1
    for _ in range(count):
        numbers.append(n)
        n += rng.randint(1, 5)
    return numbers


# --- sending --------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Delivery:
    """One push request. ``key`` is the (channel id, message number) it stands for, if any."""

    headers: list[tuple[str, str | bytes]] | dict
    body: bytes = b""
    method: str = "POST"
    path: str = "/"
    key: tuple[str, int] | None = None
    retry: bool = True  # retry 5xx / dropped connections like Google
    together: threading.Barrier | None = None  # sent at the same moment as its twin
    raw: bytes | None = None  # a raw HTTP request instead (malformed on purpose)
    # results
    status: int | None = None  # the final answer (None: never answered / gave up)
    attempts: int = 0
    statuses: list = dataclasses.field(default_factory=list)  # (time, status or None)


class Sender:
    """One sender thread's keep-alive connection to the webhook."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def once(self, d: Delivery) -> int | None:
        """One attempt: the status, or None when the connection failed."""
        if d.raw is not None:
            return self._raw(d.raw)
        conn = self._connection()
        try:
            conn.putrequest(d.method, d.path, skip_accept_encoding=True)
            items = d.headers.items() if isinstance(d.headers, dict) else d.headers
            for name, value in items:
                conn.putheader(name, value)
            if d.body or d.method not in ("GET", "HEAD", "OPTIONS", "DELETE", "TRACE"):
                conn.putheader("Content-Length", str(len(d.body)))
            conn.endheaders(d.body or None)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                self.close()
            return response.status
        except (OSError, http.client.HTTPException):
            self.close()
            return None
        except Exception as exc:
            self.close()
            print(f"client could not send {d.method} {d.path!r}: {exc!r}", file=sys.stderr)
            return None

    def _raw(self, data: bytes) -> int | None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as s:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                reply = b""
                while len(reply) < 64:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
        except OSError:
            return None
        parts = reply.split(b" ", 2)
        if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
            return int(parts[1])
        return None


@dataclasses.dataclass
class RetryPolicy:
    """Google-like: retry 500/502/503/504 and dropped connections, exponential backoff, jitter."""

    initial: float = 0.1
    multiplier: float = 2.0
    maximum: float = 3.0
    deadline: float = 300.0  # then the sender gives up on the message (it counts as lost)

    def pause(self, attempt: int, rng: random.Random) -> float:
        base = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        return base * rng.uniform(0.5, 1.0)


def deliver(sender: Sender, d: Delivery, policy: RetryPolicy, rng: random.Random) -> None:
    started = time.monotonic()
    if d.together is not None:
        try:
            d.together.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
    while True:
        d.attempts += 1
        status = sender.once(d)
        d.statuses.append((time.time(), status))
        d.status = status
        if not d.retry or (status is not None and status not in RETRIED):
            return
        if time.monotonic() - started > policy.deadline:
            return
        time.sleep(policy.pause(d.attempts, rng))


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.done = 0
        self.attempts = 0
        self.five_xx = 0


def deliver_all(
    url: str,
    items: list[Delivery],
    *,
    senders: int = 16,
    policy: RetryPolicy | None = None,
    progress: Progress | None = None,
    label: str = "",
    seed: int = 0,
    on_tick: Callable[[Counters], None] | None = None,
) -> Counters:
    """Send every delivery with ``senders`` concurrent senders, in the order given."""
    policy = policy or RetryPolicy()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    work: queue.Queue = queue.Queue()
    for d in items:
        work.put(d)
    counters = Counters()
    stop = threading.Event()

    def sender_loop(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        sender = Sender(port)
        try:
            while True:
                try:
                    d = work.get_nowait()
                except queue.Empty:
                    return
                deliver(sender, d, policy, rng)
                with counters.lock:
                    counters.done += 1
                    counters.attempts += d.attempts
                    counters.five_xx += sum(1 for _, s in d.statuses if s is not None and s >= 500)
        finally:
            sender.close()

    def ticker() -> None:
        started = time.monotonic()
        while not stop.wait(2.0):
            if on_tick is not None:
                on_tick(counters)
            say(
                progress,
                f"{label}: {counters.done}/{len(items)} delivered, "
                f"{counters.five_xx} 5xx so far, {time.monotonic() - started:.0f}s",
            )

    threads = [threading.Thread(target=sender_loop, args=(i,), daemon=True) for i in range(senders)]
    tick = threading.Thread(target=ticker, daemon=True)
    tick.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    tick.join()
    return counters


# --- accounting -----------------------------------------------------------------------------


def account(items: Iterable[Delivery], record_path: str, *, expected: set | None = None) -> dict:
    """Figures from what was sent and what the handler recorded.

    ``expected``: the (channel, number) keys that must each be handled exactly
    once (default: the keys of every delivery that has one).
    lost = expected keys with no successful handler call; doubled = keys with more
    than one; overlapping = keys whose calls (failed ones included) ran at the same time.
    """
    items = list(items)
    calls = read_record(record_path)
    if expected is None:
        expected = {d.key for d in items if d.key is not None}
    ok = Counter((c["c"], c["n"]) for c in calls if c["ok"])
    by_key = defaultdict(list)
    for c in calls:
        by_key[(c["c"], c["n"])].append((c["t0"], c["t1"]))
    overlapping = 0
    for spans in by_key.values():
        spans.sort()
        if any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
            overlapping += 1
    statuses = Counter(d.status for d in items)
    return {
        "sent": len(items),
        "accepted": sum(1 for d in items if d.status is not None and 200 <= d.status < 300),
        "handler_calls": len(calls),
        "handler_failures": sum(1 for c in calls if not c["ok"]),
        "lost": sum(1 for k in expected if ok[k] == 0),
        "doubled": sum(1 for k in expected if ok[k] > 1)
        + sum(1 for k, v in ok.items() if k not in expected and v > 1),
        "unexpected_calls": sum(v for k, v in ok.items() if k not in expected),
        "overlapping": overlapping,
        "status_5xx": sum(1 for d in items for _, s in d.statuses if s is not None and s >= 500),
        "status_500": sum(1 for d in items for _, s in d.statuses if s == 500),
        "attempts": sum(d.attempts for d in items),
        "gave_up": sum(1 for d in items if d.retry and (d.status is None or d.status in RETRIED)),
        "final_statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "messages": len(expected),
    }


def result(scenario: str, figures: dict, *, ok: bool, notes: str, seconds: float, **extra) -> dict:
    out = {
        "scenario": scenario,
        "sent": figures["sent"],
        "accepted": figures["accepted"],
        "handler_calls": figures["handler_calls"],
        "lost": figures["lost"],
        "doubled": figures["doubled"],
        "status_5xx": figures["status_5xx"],
        "ok": bool(ok and figures["lost"] == 0 and figures["doubled"] == 0),
        "notes": notes,
        "seconds": round(seconds, 1),
        "details": {**figures, **extra},
    }
    return out


COLUMNS = (
    ("scenario", "scenario"),
    ("sent", "sent"),
    ("accepted", "accepted"),
    ("handler_calls", "handler calls"),
    ("lost", "lost"),
    ("doubled", "doubled"),
    ("status_5xx", "5xx"),
    ("result", "result"),
    ("seconds", "seconds"),
)


def format_table(results: list[dict]) -> str:
    """A Markdown table (readable as plain text too), then one line of notes per scenario."""
    rows = []
    for r in results:
        row = dict(r)
        row["result"] = "PASS" if r.get("ok") else "FAIL"
        rows.append([str(row.get(key, "")) for key, _ in COLUMNS])
    heads = [title for _, title in COLUMNS]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(heads)]
    numeric = {i for i, (key, _) in enumerate(COLUMNS) if key not in ("scenario", "result")}

    def line(cells):
        return (
            "| "
            + " | ".join(
                c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
            )
            + " |"
        )

    out = [
        line(heads),
        "|"
        + "|".join(("-" * (w + 1) + ":") if i in numeric else ("-" * (w + 2)) for i, w in enumerate(widths))
        + "|",
    ]
    out += [line(row) for row in rows]
    notes = [f"- **{r['scenario']}**: {r.get('notes', '')}" for r in results if r.get("notes")]
    return "\n".join(out) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def machine() -> str:
    import platform

    return f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def write_results(
    size: str, results: list[dict], directory: pathlib.Path = RESULTS, *, merge: bool = False
) -> pathlib.Path:
    """Write the table; with ``merge``, rows of scenarios not run now are kept from the
    last file, each row carrying the time it was measured (``when``)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    for result in results:
        result.setdefault("when", stamp)
    path = directory / f"reliability-{size}.json"
    if merge and path.exists():
        ran = {r["scenario"] for r in results}
        earlier = json.loads(path.read_text()).get("results", [])
        for row in earlier:
            row.setdefault("when", json.loads(path.read_text()).get("when"))
        results = [r for r in earlier if r["scenario"] not in ran] + results
        order = {name: i for i, name in enumerate(SCENARIO_ORDER)}
        results.sort(key=lambda r: order.get(r["scenario"], len(order)))
    whens = sorted({r["when"] for r in results if r.get("when")})
    md = directory / f"reliability-{size}.md"
    md.write_text(
        f"# channelkit reliability suite, size {size}\n\n"
        f"`.venv/bin/python -m bench.reliability --size {size}` — {', '.join(whens) or stamp}, {machine()}\n\n"
        + format_table(results)
    )
    path.write_text(
        json.dumps({"size": size, "when": stamp, "machine": machine(), "results": results}, indent=2) + "\n"
    )
    return md
