"""Outage: the Firestore emulator is killed mid-run and restarted; nothing lost, nothing doubled.

How the outage is made, and why this way. The webhook reaches a private
Firestore emulator through a TCP relay. When about a third of the deliveries
are done:

1. the relay drops every connection and refuses new ones: from the webhook's
   side the store is gone, in the middle of whatever it was doing (a claim
   created but its answer lost, a handler run but not marked done, ...);
2. the emulator's data is exported through its own export endpoint;
3. the emulator's whole process group (gcloud wrapper and Java child) is SIGKILLed;
4. after the outage time it is started again on the same port from the export
   (``gcloud emulators firestore start --import-data``), and the relay lets
   connections through again.

The emulator keeps its data in memory: killed without an export, every channel
and every message claim would be gone, which real Firestore never does with a
committed write, and "nothing doubled" would then measure the emulator, not the
kit. Cutting the network first makes the export a complete picture of every write
the store acknowledged (and of some it committed without the answer arriving,
exactly the ambiguous case a real outage produces).

Senders retry 5xx and dropped connections with exponential backoff as Google does
(up to 3 s between tries). The webhook runs with ``CHANNELKIT_CLAIM_TIMEOUT=45``.
The kit's exactly-once promise holds when the store is away (outage plus the
client's reconnection) for less than the claim timeout: a message processed just
as the store went away is marked done as soon as it is back, before a duplicate
could take its claim over. 45 s is well above this outage, yet a claim left
``in_progress`` by a request cut off mid-way (created at the store, answer lost)
is taken over within the run instead of after the default 600 s.

Messages: as ``load_duplicates`` but every re-delivery comes later (none
concurrent), so that any 5xx outside the outage stands out. Check: lost = 0,
doubled = 0, calls of one message never overlap, no 500, no sender gave up,
no 5xx before the outage, and none later than the claim timeout (+ reconnect
slack) after the store came back.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time

from bench.reliability import common
from bench.reliability.load_duplicates import SENDERS, build
from channelkit.testing.emulators import Emulator

SIZES = {
    "small": {"messages": 500, "channels": 20, "down": 3.0},
    "full": {"messages": 4_000, "channels": 100, "down": 10.0},
}
CLAIM_TIMEOUT = 45.0
RECOVERY_SLACK = 20.0  # seconds after the claim timeout for gRPC reconnection backoff
KILL_AT = 0.35  # share of deliveries done when the store goes away


def run(size: str, *, progress=None) -> dict:
    name = "outage"
    spec = SIZES[size]
    started = time.monotonic()
    rng = random.Random(13)
    project = common.new_project(name)
    emulator = Emulator("firestore")  # private: to be exported, killed and restarted
    export_dir = tempfile.mkdtemp(prefix="reliability-export-")
    record = tempfile.NamedTemporaryFile(prefix="reliability-calls-", suffix=".jsonl", delete=False).name
    relay = server = None
    common.say(progress, f"{name}: starting a private Firestore emulator on {emulator.host_port}")
    emulator.start()
    try:
        relay = common.TcpRelay(emulator.port)
        channels = common.seed_channels(emulator.host_port, project, spec["channels"])
        items, expected = build(channels, spec["messages"], rng, concurrent_share=0.0)
        server = common.WebhookServer(
            firestore=relay.host_port,
            project=project,
            record=record,
            env={"CHANNELKIT_CLAIM_TIMEOUT": str(CLAIM_TIMEOUT)},
        ).wait_ready()
        timeline: dict[str, float] = {}
        chaos_error: list[BaseException] = []
        trigger = threading.Event()

        def on_tick(counters) -> None:
            if counters.done >= KILL_AT * len(items):
                trigger.set()

        def chaos() -> None:
            try:
                while not trigger.wait(0.05):
                    if sum(1 for d in items if d.status is not None) >= KILL_AT * len(items):
                        break
                timeline["cut"] = time.time()
                relay.cut()
                metadata = emulator.export(project, export_dir)
                emulator.kill()
                timeline["killed"] = time.time()
                common.say(
                    progress, f"{name}: store cut off and emulator killed; down for {spec['down']:.0f}s"
                )
                time.sleep(max(0.0, spec["down"] - (time.time() - timeline["cut"])))
                emulator.start(import_data=metadata)
                relay.resume()
                timeline["back"] = time.time()
                common.say(
                    progress,
                    f"{name}: emulator restarted from its export, store back after "
                    f"{timeline['back'] - timeline['cut']:.1f}s",
                )
            except BaseException as exc:
                chaos_error.append(exc)

        chaos_thread = threading.Thread(target=chaos, daemon=True)
        chaos_thread.start()
        common.say(
            progress, f"{name}: {len(items)} requests ({len(expected)} messages) from {SENDERS} senders"
        )
        common.deliver_all(
            server.url, items, senders=SENDERS, progress=progress, label=name, seed=3, on_tick=on_tick
        )
        trigger.set()
        chaos_thread.join()
        figures = common.account(items, record, expected=expected)
        unexpected = server.unexpected_errors()
    finally:
        if server is not None:
            server.stop()
        if relay is not None:
            relay.close()
        emulator.stop()
        shutil.rmtree(export_dir, ignore_errors=True)
    os.unlink(record)

    five = sorted(t for d in items for t, s in d.statuses if s is not None and s >= 500)
    dropped = sum(1 for d in items for _, s in d.statuses if s is None)
    cut, back = timeline.get("cut"), timeline.get("back")
    before = sum(1 for t in five if cut is None or t < cut)
    settled = (back or 0) + CLAIM_TIMEOUT + RECOVERY_SLACK
    late = sum(1 for t in five if back is not None and t > settled)
    last_after = max((t - back for t in five if back is not None and t > back), default=0.0)
    ok = (
        not chaos_error
        and cut is not None
        and back is not None
        and before == 0
        and late == 0
        and figures["status_500"] == 0
        and figures["overlapping"] == 0
        and figures["gave_up"] == 0
        and figures["unexpected_calls"] == 0
        and unexpected == 0
    )
    outage_s = (back - cut) if cut and back else 0.0
    notes = (
        f"{figures['messages']} messages + {len(items) - figures['messages']} later re-deliveries; "
        f"store cut off + emulator SIGKILLed at {KILL_AT:.0%}, restarted from its export on the same "
        f"port after {outage_s:.1f}s; 5xx: {before} before the outage, "
        f"{len(five) - before} during/after it (last {last_after:.1f}s after the store was back; "
        f"claim timeout {CLAIM_TIMEOUT:.0f}s), {late} later than that + {RECOVERY_SLACK:.0f}s; "
        f"{figures['status_500']} × 500; {dropped} dropped connections; "
        f"overlapping calls {figures['overlapping']}; senders gave up {figures['gave_up']}; "
        f"webhook unexpected errors {unexpected}"
        + (f"; chaos failed: {chaos_error[0]!r}" if chaos_error else "")
    )
    return common.result(
        name,
        figures,
        ok=ok,
        notes=notes,
        seconds=time.monotonic() - started,
        outage_seconds=round(outage_s, 1),
        five_xx_before=before,
        five_xx_late=late,
        last_5xx_after_back=round(last_after, 1),
        dropped_connections=dropped,
        webhook_unexpected_errors=unexpected,
    )
