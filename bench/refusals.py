"""What a refused request costs the webhook, and what signing costs an accepted one.

The webhook is public: anyone may send it requests with made-up channel ids.
This part loads the real ``functions/webhook.py`` (functions-framework,
gunicorn, one worker, against the Firestore emulator) with five kinds of
request, in interleaved rounds, from two servers in the same run:

* keyed (``CHANNELKIT_CREDENTIALS_KEY`` set, unsigned ids refused):
  ``missing_header`` (a 400 decided on the headers), ``forged_id`` (a 404 for an
  id of signed shape whose MAC fails), ``accepted_signed`` (valid notifications
  on channels with signed ids and derived tokens);
* keyless: ``unknown_id`` (a 404 for an id the store does not have: one read
  each, the cost before ids were signed), ``accepted_unsigned`` (valid
  notifications, as the webhook benchmark sends them).

The cost of a refusal is the inverse of the rate the server sustains answering
it; ratios are per round, their median reported. Firestore reads are counted
inside each server (``bench/opcount``) over the measured windows.

    .venv/bin/python -m bench --only refusals
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench._support import BENCH, ROOT, firestore_emulator, median, progress, webhook_process
from bench.webhook_load import load_channel
from channelkit.channel import Channel
from channelkit.crypto import Keyring, new_key
from channelkit.signing import Signer
from channelkit.testing.harness import post

SOURCE = ROOT / "functions" / "webhook.py"
#: load -> (server, expected status, label)
LOADS = {
    "missing_header": ("keyed", 400, "400: a required header missing"),
    "forged_id": ("keyed", 404, "404: forged signed id (key set)"),
    "unknown_id": ("keyless", 404, "404: unknown id, no key (a read each)"),
    "accepted_signed": ("keyed", 200, "200: signed ids, derived tokens"),
    "accepted_unsigned": ("keyless", 200, "200: unsigned ids, tokens in clear"),
}


def _seed(count: int, keyring: Keyring) -> dict:
    """Channels for each load: signed (stored under the key) and unsigned (stored without)."""
    from channelkit.store import open_store

    signer = Signer(keyring)
    tag = uuid.uuid4().hex[:8]
    signed, unsigned = [], []
    for i in range(count):
        subscription = f"sub-{tag}-{i}"
        token = signer.derive_token(subscription) or ""
        signed.append(load_channel(signer.new_channel_id(), token, i, subscription))
        unsigned.append(load_channel(f"plain-{tag}-{i:03d}", "tok-" + "t" * 40, i, f"sub-{tag}-u{i}"))
    with_key = open_store("firestore", timeout=30, keyring=keyring)
    without = open_store("firestore", timeout=30, keyring=False)
    try:
        for c in signed:
            with_key.create(c)
        for c in unsigned:
            without.create(c)
    finally:
        with_key.close()
        without.close()
    other = Signer(Keyring.parse(new_key()))  # ids that look signed, under a key not ours
    forged = [load_channel(other.new_channel_id(), "x", i, "none") for i in range(count)]
    strangers = [load_channel(f"stranger-{tag}-{i:03d}", "x", i, "none") for i in range(count)]
    return {
        "missing_header": signed,
        "forged_id": forged,
        "unknown_id": strangers,
        "accepted_signed": signed,
        "accepted_unsigned": unsigned,
    }


def _wrk(url: str, channels: list[Channel], omit: str, base: int, seconds: float, connections: int) -> dict:
    env = dict(
        os.environ,
        BENCH_IDS=",".join(c.id for c in channels),
        BENCH_TOKENS=",".join(c.token or "x" for c in channels),
        BENCH_OMIT=omit,
        BENCH_BASE=str(base),
    )
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s"]
        + ["-s", str(BENCH / "load.lua"), url],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("JSON "))
    result = json.loads(line[5:])
    answered = result["requests"] - result["read"]
    result["rps"] = answered / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout"))
    return result


def _probe(url: str, channel: Channel, omit: str) -> int:
    from channelkit.testing.harness import notification_headers

    headers = notification_headers(channel, 10**15 + int(time.time() * 1000), "update")
    if omit:
        headers.pop(omit, None)
    status, _ = post(url, headers, timeout=60)
    return status


def _counts(path: Path) -> dict:
    for _ in range(30):
        try:
            return json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            time.sleep(0.1)
    return {}


def run(*, seconds: float = 6, rounds: int = 5, connections: int = 16, channels: int = 50, warmup: float = 2):
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="channelkit-refusals-"))
    key = new_key()
    samples: dict[str, list[dict]] = {name: [] for name in LOADS}
    problems: list[str] = []
    with firestore_emulator():
        progress("refusals: seeding channels ...")
        loads = _seed(channels, Keyring.parse(key))
        servers = {}
        try:
            for name, extra in (
                ("keyed", {"CHANNELKIT_CREDENTIALS_KEY": key, "CHANNELKIT_ACCEPT_UNSIGNED_IDS": "false"}),
                ("keyless", {"CHANNELKIT_CREDENTIALS_KEY": ""}),
            ):
                env = {
                    "PYTHONPATH": os.pathsep.join([str(BENCH / "opcount"), str(BENCH / "baselines")]),
                    "BENCH_OPCOUNT_FILE": str(work / f"{name}.ops.json"),
                    "CHANNELKIT_HANDLER": "noop_handler:handle",
                    **extra,
                }
                servers[name] = webhook_process(SOURCE, env, work / f"{name}.log").start()
            for server in servers.values():
                server.wait_ready()
            base = 1
            for name, (server, status, _) in LOADS.items():
                omit = "X-Goog-Resource-State" if name == "missing_header" else ""
                url = servers[server].url
                for channel in loads[name]:  # warm the channel cache, then check the answer
                    _probe(url, channel, omit)
                answered = _probe(url, loads[name][0], omit)
                if answered != status:
                    problems.append(f"{name} answered {answered}, expected {status}")
                progress(f"refusals: warming {name} ...")
                _wrk(url, loads[name], omit, base * 10**10, warmup, connections)
                base += 1
            order = list(LOADS)
            for round_no in range(rounds):
                rotated = order[round_no % len(order) :] + order[: round_no % len(order)]
                for name in rotated:
                    server, _, _ = LOADS[name]
                    omit = "X-Goog-Resource-State" if name == "missing_header" else ""
                    progress(f"refusals: round {round_no + 1}/{rounds}: {name} ({seconds:g} s)")
                    path = work / f"{server}.ops.json"
                    time.sleep(0.4)  # let the counts of the last window land
                    before = _counts(path)
                    sample = _wrk(servers[server].url, loads[name], omit, base * 10**10, seconds, connections)
                    base += 1
                    time.sleep(0.6)
                    after = _counts(path)
                    sample["served"] = after.get("requests", 0) - before.get("requests", 0)
                    sample["reads"] = after.get("reads", 0) - before.get("reads", 0)
                    samples[name].append(sample)
        finally:
            for server in servers.values():
                server.stop()
    shutil.rmtree(work, ignore_errors=True)

    def cost_ratio(name: str, reference: str) -> float:
        """How many times the reference's rate this load's requests cost (per round, median)."""
        return median([r["rps"] / s["rps"] for s, r in zip(samples[name], samples[reference]) if s["rps"]])

    targets = {}
    for name, (server, status, label) in LOADS.items():
        served = sum(s["served"] for s in samples[name])
        targets[name] = {
            "label": label,
            "server": server,
            "status": status,
            "rps": median([s["rps"] for s in samples[name]]),
            "p50_ms": median([s["p50_us"] / 1000 for s in samples[name]]),
            "p99_ms": median([s["p99_us"] / 1000 for s in samples[name]]),
            "socket_errors": sum(s["errors"] for s in samples[name]),
            "served": served,
            "reads_per_request": sum(s["reads"] for s in samples[name]) / served if served else None,
        }
    ratios = {
        "forged_404_cost_vs_400": cost_ratio("forged_id", "missing_header"),
        "unknown_404_keyless_cost_vs_400": cost_ratio("unknown_id", "missing_header"),
        "accepted_signed_vs_unsigned_throughput": median(
            [s["rps"] / u["rps"] for s, u in zip(samples["accepted_signed"], samples["accepted_unsigned"])]
        ),
        "accepted_signed_vs_unsigned_p99": median(
            [
                s["p99_us"] / u["p99_us"]
                for s, u in zip(samples["accepted_signed"], samples["accepted_unsigned"])
                if u["p99_us"]
            ]
        ),
    }
    return {
        "settings": {"seconds": seconds, "rounds": rounds, "connections": connections, "channels": channels},
        "targets": targets,
        "ratios": ratios,
        "problems": problems,
    }
