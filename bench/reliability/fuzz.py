"""Fuzz: generated requests, valid and invalid mixed; no 5xx, no handler call for an invalid one.

full: 10,000 requests from a seeded generator (``random.Random(SEED)``, so a
failure can be replayed), sent by 16 senders to the real webhook (the store is up
the whole time). Every request is built with an expectation:

* ``valid`` — a real notification (header-name case changed, extra headers,
  optional headers missing, odd paths, any body including non-ASCII, X-Goog-Changed
  spelled any way, an exact re-delivery later in the run): answered 2xx, handled
  exactly once, the handler sees the state, resource id and body that were sent;
* ``invalid`` — wrong / missing / non-ASCII / over-long / other channel's token,
  wrong resource id, unknown or malformed channel id (incl. non-ASCII), each
  required header missing or empty, bad message numbers (0, negative, decimal,
  non-ASCII digits, > int64, hex...), stopped and expired channels, odd methods
  (GET, PUT, DELETE, PATCH, HEAD, OPTIONS, TRACE, made-up), bodies over the 1 MiB
  limit, malformed HTTP sent raw: never handled, never answered 2xx (OPTIONS,
  answered by the framework itself without calling the function, excepted);
* ``either`` — the protocol leaves it open (unknown or non-ASCII resource state,
  an unreadable expiration date, a header sent twice, a header over the server's
  size limit): at most one handler call, and answered 2xx exactly when handled.

Invalid requests that name a real channel use message numbers from a range that
no valid request uses, so a handler call for one of them cannot hide behind a
valid message. Check: no 5xx for anything, every valid request answered 2xx (an
invalid one may be closed by gunicorn without an answer: header names with
underscores, non-ASCII header values, broken HTTP), no handler call for a message
that was not sent validly, lost = doubled = 0 over the valid messages.

The webhook runs with a deployment key and unsigned ids refused
(``CHANNELKIT_ACCEPT_UNSIGNED_IDS=false``); every channel has a signed id. Unknown
ids include forgeries of signed shape (one character off, signed under another
key), and none of the ids that do not verify may cost a store read: each one's
log line must say it was refused on the key alone.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
import uuid
from collections import Counter

from bench.reliability import common
from bench.reliability.handler import body_digest, read_record
from channelkit.channel import validate_channel_id
from channelkit.crypto import Keyring, new_key
from channelkit.judge import UNVERIFIED
from channelkit.signing import IdCheck, Signer

SIZES = {"small": {"requests": 1_500, "channels": 10}, "full": {"requests": 10_000, "channels": 40}}
SEED = 20240607
SENDERS = 16
INVALID_BASE = 10**12  # message numbers of invalid requests on real channels
MAX_BODY = 1_048_576
STATES = ("update", "add", "remove", "trash", "untrash", "change", "exists", "not_exists")
METHODS = ("GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO", "post")
BAD_NUMBERS = (
    "0",
    "-3",
    "1.5",
    "abc",
    "1e3",
    "\u0663",
    "99999999999999999999999",
    "0x10",
    "",
    "   ",
    "+7",
    "9223372036854775808",
    "1 2",
    "\u00b2",
)
NASTY = ("\u00e9t\u00e9", "\u65e5\u672c", "\U0001f600", "\x00", "a\tb", "\u202e", "\ufeff")


class Generator:
    def __init__(self, rng: random.Random, live, stopped, expired, forged=()):
        self.rng = rng
        self.live, self.stopped, self.expired = live, stopped, expired
        self.forged = list(forged) or ["ck1-" + "A" * 44]  # ids of signed shape that no key of ours made
        self.next_number = {c.id: 1 for c in live}
        self.next_invalid = INVALID_BASE
        self.valid_sent: list[common.Delivery] = []
        self.expect: dict = {}  # key -> "valid" | "either"
        self.sent_fields: dict = {}  # key -> (state, resource id, body digest)

    # --- helpers ---------------------------------------------------------------

    def fresh_key(self, channel):
        n = self.next_number[channel.id]
        self.next_number[channel.id] = n + self.rng.randint(1, 4)
        return n

    def invalid_number(self) -> int:
        self.next_invalid += 1
        return self.next_invalid

    def body(self) -> bytes:
        kind = self.rng.random()
        if kind < 0.5:
            return b""
        if kind < 0.7:
            return b'{"kind":"drive#changes"}'
        if kind < 0.85:
            return ('{"name":"' + self.rng.choice(NASTY) * self.rng.randint(1, 50) + '"}').encode()
        return self.rng.randbytes(self.rng.randint(1, 20_000))

    def base(self, channel, number, state=None):
        return common.notification_headers(channel, number, state or self.rng.choice(STATES))

    def recase(self, headers: dict) -> list:
        out = []
        for name, value in headers.items():
            style = self.rng.random()
            if style < 0.3:
                name = name.lower()
            elif style < 0.5:
                name = name.upper()
            elif style < 0.6:
                name = "".join(ch.upper() if self.rng.random() < 0.5 else ch.lower() for ch in name)
            out.append((name, value))
        self.rng.shuffle(out)
        return out

    # --- kinds -------------------------------------------------------------------

    def valid(self) -> common.Delivery:
        channel = self.rng.choice(self.live)
        n = self.fresh_key(channel)
        h = self.base(channel, n)
        r = self.rng.random()
        if r < 0.2:
            h["X-Goog-Changed"] = self.rng.choice(
                ("content, properties", "", "permissions,parents", " children ", "a,,b")
            )
        elif r < 0.3:
            h.pop("X-Goog-Changed")
            h.pop("X-Goog-Channel-Expiration")
        elif r < 0.4:
            h["X-Goog-Unknown-Thing"] = self.rng.choice(("1", "x" * 500, "\u00e9".encode()))
            h["User-Agent"] = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
        body = self.body()
        headers = self.recase(h) if self.rng.random() < 0.5 else h
        path = self.rng.choice(("/", "/", "/webhook", "/a/b?x=1&y=%00", "/%C3%A9?q=%FF"))
        d = common.Delivery(headers, body, path=path, key=(channel.id, n))
        self.expect[d.key] = "valid"
        self.sent_fields[d.key] = (h["X-Goog-Resource-State"], h["X-Goog-Resource-ID"], body_digest(body))
        self.valid_sent.append(d)
        return d

    def redelivery(self) -> common.Delivery:
        if len(self.valid_sent) < 300:
            return self.valid()
        # far enough back that the original has been answered (no "in progress" 503)
        old = self.rng.choice(self.valid_sent[:-250])
        return common.Delivery(old.headers, old.body, path=old.path, key=old.key)

    def either(self) -> common.Delivery:
        channel = self.rng.choice(self.live)
        n = self.fresh_key(channel)
        h = self.base(channel, n)
        kind = self.rng.randrange(4)
        headers: list | dict = h
        if kind == 0:
            h["X-Goog-Resource-State"] = self.rng.choice(
                ("weird", "SYNC", "\u00fcber".encode(), "x" * 300, "sync; drop table")
            )
        elif kind == 1:
            h["X-Goog-Channel-Expiration"] = self.rng.choice(
                ("not a date", "Tue, 19 Nov 1913 01:13:52 GMT", "0", "\u00e9".encode(), "")
            )
        elif kind == 2:
            headers = list(h.items()) + [self.rng.choice(list(h.items()))]
        else:
            h["X-Goog-Resource-URI"] = "https://www.googleapis.com/" + "x" * self.rng.choice(
                (5000, 9000, 20000)
            )
        d = common.Delivery(headers, self.body(), key=(channel.id, n), retry=False)
        self.expect[d.key] = "either"
        return d

    def invalid(self) -> common.Delivery:
        rng = self.rng
        channel = rng.choice(self.live)
        n = self.invalid_number()
        h = self.base(channel, n)
        kind = rng.randrange(12)
        body, method, raw = self.body(), "POST", None
        headers: list | dict = h
        if kind == 0:  # token
            h["X-Goog-Channel-Token"] = rng.choice(
                (
                    "",
                    "tok-" + uuid.uuid4().hex,
                    channel.token[:-1],
                    channel.token + "x",
                    "x" * 300,
                    channel.token.upper(),
                    rng.choice(self.live).token if len(self.live) > 1 else "t",
                    ("\u00e9" + channel.token).encode(),
                    " " + channel.token[1:],
                )
            )
            if h["X-Goog-Channel-Token"] == channel.token:
                h["X-Goog-Channel-Token"] = "nope"
        elif kind == 1:
            h.pop("X-Goog-Channel-Token")
        elif kind == 2:
            h["X-Goog-Resource-ID"] = rng.choice(
                ("res-other", "", channel.resource_id + "x", "\u65e5".encode(), "R" * 5000)
            )
        elif kind == 3:  # unknown or malformed channel id
            h["X-Goog-Channel-ID"] = rng.choice(
                (
                    str(uuid.uuid4()),
                    "",
                    "a" * 65,
                    "has space",
                    "bad/../id?",
                    "\u00e9t\u00e9".encode(),
                    channel.id + "\x01",
                    "%s" % ("Z" * 64),
                    "../" + channel.id,
                    channel.id[:-1] + ("A" if channel.id[-1] != "A" else "B"),  # one character off
                    rng.choice(self.forged),
                )
            )
        elif kind == 4:  # a required header missing or empty
            name = rng.choice(
                (
                    "X-Goog-Channel-ID",
                    "X-Goog-Message-Number",
                    "X-Goog-Resource-ID",
                    "X-Goog-Resource-State",
                    "X-Goog-Resource-URI",
                )
            )
            if rng.random() < 0.5:
                h.pop(name)
            else:
                h[name] = rng.choice(("", "   "))
        elif kind == 5:
            h["X-Goog-Message-Number"] = rng.choice(BAD_NUMBERS)
            if h["X-Goog-Message-Number"].strip() == "":
                h["X-Goog-Message-Number"] = "-1"
            h["X-Goog-Message-Number"] = h["X-Goog-Message-Number"].encode()
        elif kind == 6:  # stopped or expired channel
            gone = rng.choice(self.stopped + self.expired)
            h = self.base(gone, n)
            headers = h
        elif kind == 7:
            method = rng.choice(METHODS)
            if method == "post":
                method = "PUT"
        elif kind == 8:
            if rng.random() < 0.1:
                body = b"x" * (MAX_BODY + rng.randint(1, 2 * MAX_BODY))
            else:  # another channel's id with this channel's token
                other = rng.choice([c for c in self.live if c.id != channel.id] or self.stopped)
                h["X-Goog-Channel-ID"] = other.id
        elif kind == 9:  # header names mangled: no longer the X-Goog headers
            headers = [
                (name.replace("-", "_") if rng.random() < 0.5 else name + "x", value)
                for name, value in h.items()
            ]
        elif kind == 10:  # no headers at all, or only garbage
            headers = rng.choice(([], [("X-Goog", "1")], [("Content-Type", "application/json")]))
        else:  # malformed HTTP, sent raw
            raw = rng.choice(
                (
                    b"GARBAGE\r\n\r\n",
                    b"POST / HTTP/1.1\r\nHost: x\r\nX-Goog-Channel-ID\r\n\r\n",
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                    b"POST / HTTP/9.9\r\nHost: x\r\n\r\n",
                    b"POST /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"POST / HTTP/1.1\r\nHost: x\r\nX-Goog-Channel-ID: "
                    + channel.id.encode()
                    + b"\x00\r\nX-Goog-Message-Number: 5\r\n\r\n",
                    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # a TLS hello
                )
            )
        return common.Delivery(headers, body, method=method, raw=raw, retry=False, key=None)

    def next(self) -> tuple[str, common.Delivery]:
        r = self.rng.random()
        if r < 0.35:
            return "valid", self.valid()
        if r < 0.45:
            return "valid", self.redelivery()
        if r < 0.55:
            return "either", self.either()
        return "invalid", self.invalid()


def _gone_channels(firestore, project, count, keyring):
    """Channels that must be refused 410: stopped by hand, and expired long ago."""
    signer = Signer(keyring)
    stopped = [common.make_channel(1000 + i, signer) for i in range(count)]
    expired = [common.make_channel(2000 + i, signer) for i in range(count)]
    for c in stopped:
        c.status = "stopped"
    for c in expired:
        c.expiration = int(time.time() * 1000) - 86_400_000
    store = common.open_firestore(firestore, project, keyring)
    try:
        for c in stopped + expired:
            store.create(c)
    finally:
        store.close()
    return stopped, expired


def run(size: str, *, progress=None) -> dict:
    name = "fuzz"
    spec = SIZES[size]
    started = time.monotonic()
    rng = random.Random(SEED)
    firestore = common.shared_firestore()
    project = common.new_project(name)
    common.say(progress, f"{name}: seeding channels in {project}")
    # Signed ids, unsigned ones refused: a request whose id does not verify must cost no read.
    key = new_key()
    keyring = Keyring.parse(key)
    live = common.seed_channels(firestore, project, spec["channels"], keyring)
    stopped, expired = _gone_channels(firestore, project, 3, keyring)
    other = Signer(Keyring.parse(new_key()))
    gen = Generator(rng, live, stopped, expired, forged=[other.new_channel_id() for _ in range(5)])
    kinds, items = [], []
    for _ in range(spec["requests"]):
        kind, d = gen.next()
        kinds.append(kind)
        items.append(d)
    record = tempfile.NamedTemporaryFile(prefix="reliability-calls-", suffix=".jsonl", delete=False).name
    server = common.WebhookServer(
        firestore=firestore,
        project=project,
        record=record,
        env={"CHANNELKIT_CREDENTIALS_KEY": key, "CHANNELKIT_ACCEPT_UNSIGNED_IDS": "false"},
    )
    try:
        server.wait_ready()
        common.say(
            progress,
            f"{name}: {len(items)} generated requests (seed {SEED}): "
            + ", ".join(f"{v} {k}" for k, v in sorted(Counter(kinds).items())),
        )
        common.deliver_all(server.url, items, senders=SENDERS, progress=progress, label=name, seed=4)
        unexpected = server.unexpected_errors()
        output = server.output()
        tracebacks = output.count("Traceback")
        log_path = server.log_path
        server.keep_log = bool(tracebacks)  # the notes name it then
    finally:
        server.stop()
    calls = read_record(record)
    expected_valid = {k for k, v in gen.expect.items() if v == "valid"}
    figures = common.account(items, record, expected=expected_valid)
    os.unlink(record)

    # handler calls that no valid (or open) request stands for
    ok_calls = Counter((c["c"], c["n"]) for c in calls if c["ok"])
    invalid_calls = sum(v for k, v in ok_calls.items() if k not in gen.expect)
    either_doubled = sum(1 for k, v in ok_calls.items() if gen.expect.get(k) == "either" and v > 1)
    mismatched = sum(
        1
        for c in calls
        if (c["c"], c["n"]) in gen.sent_fields
        and gen.sent_fields[(c["c"], c["n"])] != (c["s"], c["r"], c["b"])
    )
    bad_status = Counter()
    examples: dict[str, list[str]] = {}

    def problem(label: str, d) -> None:
        bad_status[label] += 1
        if len(examples.setdefault(label, [])) < 3:
            what = d.raw if d.raw is not None else (d.method, d.path, d.headers, len(d.body))
            examples[label].append(repr(what)[:400])

    for kind, d in zip(kinds, items):
        s = d.status
        two = s is not None and 200 <= s < 300
        if s is not None and s >= 500:
            problem(f"{kind} 5xx", d)
        elif kind == "valid" and not two:
            problem(f"valid answered {s}", d)
        elif kind == "invalid" and two and d.method != "OPTIONS":
            problem(f"invalid {d.method} answered {s}", d)
        elif kind == "either" and two != bool(ok_calls.get(d.key)):
            problem(f"either answered {s}, handled {ok_calls.get(d.key, 0)}", d)
        elif s is None and kind == "valid":
            problem(f"{kind} no answer", d)
    unread, read_unverified = _unverified_refusals(output, Signer(keyring))
    statuses = Counter(str(d.status) for d in items)
    # gunicorn itself closes the connection on some malformed requests (header names with
    # underscores, non-ASCII header values, broken HTTP): no answer, which is no 5xx either
    closed = sum(1 for kind, d in zip(kinds, items) if d.status is None and kind != "valid")
    ok = (
        figures["status_5xx"] == 0
        and invalid_calls == 0
        and either_doubled == 0
        and mismatched == 0
        and not bad_status
        and unexpected == 0
        and figures["overlapping"] == 0
        and read_unverified == 0
        and unread > 0
    )
    notes = (
        f"seed {SEED}; "
        + ", ".join(f"{v} {k}" for k, v in sorted(Counter(kinds).items()))
        + f"; answers {dict(sorted(statuses.items()))}; handler calls for invalid requests "
        f"{invalid_calls}; fields differing from what was sent {mismatched}; "
        f"'either' handled twice {either_doubled}; invalid requests closed by the server without "
        f"an answer {closed}; ids that do not verify refused unread {unread}, read "
        f"{read_unverified}; status problems "
        f"{dict(bad_status) if bad_status else 'none'}; webhook unexpected errors {unexpected}, "
        f"tracebacks in its log {tracebacks}" + (f" (log: {log_path})" if tracebacks or unexpected else "")
    )
    return common.result(
        name,
        figures,
        ok=ok,
        notes=notes,
        seconds=time.monotonic() - started,
        invalid_handler_calls=invalid_calls,
        field_mismatches=mismatched,
        status_problems=dict(bad_status),
        problem_examples=examples,
        answers=dict(statuses),
        webhook_unexpected_errors=unexpected,
        webhook_tracebacks=tracebacks,
        unverified_refused_unread=unread,
        unverified_read=read_unverified,
    )


def _unverified_refusals(output: str, signer: Signer) -> tuple[int, int]:
    """404s for ids that do not verify: (refused on the key alone, refused after a store read).

    The webhook logs ``reason: "unverified id"`` for an id refused before any
    read (``channelkit.judge.UNVERIFIED``) and ``"unknown channel"`` for one the
    store did not have (or one no channel could have, refused unread too).
    """
    unread = read = 0
    for line in output.splitlines():
        if not line.startswith("{") or '"unknown_channel"' not in line:
            continue
        entry = json.loads(line)
        channel_id = entry.get("channelId") or ""
        if entry.get("reason") == UNVERIFIED:
            unread += 1
        elif _storable(channel_id) and signer.check_channel_id(channel_id) is not IdCheck.SIGNED:
            read += 1
    return unread, read


def _storable(channel_id: str) -> bool:
    try:
        validate_channel_id(channel_id)
    except ValueError:
        return False
    return True
