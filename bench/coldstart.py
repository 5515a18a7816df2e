"""Cold start: importing the webhook module, and memory after its first request.

Each sample is a fresh interpreter that imports functions-framework, loads the
target module with ``create_app`` (timed: the module's own import cost), then
serves one valid notification through the framework's test client and reports
its resident memory and whether googleapiclient was ever imported. The
baseline is a bare function whose module imports google-cloud-firestore (the
one dependency every Firestore webhook needs). channelkit imports Firestore
only at its first request, so the time to the first answered notification is
also compared with the claim floor's (a function that imports Firestore and
makes the same two writes). Samples rotate the order of the targets; medians
are reported.

    .venv/bin/python -m bench.coldstart [--samples 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import uuid

from bench._support import BENCH, PYTHON, ROOT, firestore_emulator, median, progress, progress_done
from channelkit.testing.harness import notification_headers

TARGETS = {
    "channelkit": ROOT / "functions" / "webhook.py",
    "firestore_import": BENCH / "baselines" / "firestore_import.py",
    "claim_floor": BENCH / "baselines" / "claim_floor.py",
}

SAMPLE = """
    import json, sys, time
    started = time.perf_counter()
    import functions_framework
    framework_done = time.perf_counter()
    app = functions_framework.create_app(target="webhook", source=sys.argv[1])
    imported = time.perf_counter()
    response = app.test_client().post("/", headers=json.loads(sys.argv[2]))
    answered = time.perf_counter()
    rss_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    print(json.dumps({
        "status": response.status_code,
        "import_ms": (imported - framework_done) * 1000,
        "first_request_ms": (answered - imported) * 1000,
        "total_ms": (answered - started) * 1000,
        "rss_mb": rss_kb / 1024,
        "googleapiclient": any(m.startswith("googleapiclient") for m in sys.modules),
    }))
"""


def _sample(source, headers) -> dict:
    env = dict(os.environ, CHANNELKIT_HANDLER="noop_handler:handle", PYTHONPATH=str(BENCH / "baselines"))
    done = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(SAMPLE), str(source), json.dumps(headers)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start sample failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(*, samples: int = 5) -> dict:
    from bench.webhook_load import bench_channel, seed_channels

    results: dict[str, list[dict]] = {name: [] for name in TARGETS}
    with firestore_emulator():
        tag = uuid.uuid4().hex[:6]
        seed_channels(f"cold-{tag}", samples)
        seed_channels(f"floor-{tag}", samples)
        for i in range(samples):
            names = list(TARGETS)
            for name in names[i % len(names) :] + names[: i % len(names)]:
                progress(f"cold start: sample {i + 1}/{samples}: {name}")
                prefix = f"floor-{tag}" if name == "claim_floor" else f"cold-{tag}"
                result = _sample(TARGETS[name], notification_headers(bench_channel(prefix, i), 7))
                if result["status"] != 200:
                    raise RuntimeError(f"{name} answered {result['status']} to its first request")
                results[name].append(result)
    progress_done()
    summary = {
        name: {
            key: median([r[key] for r in rows])
            for key in ("import_ms", "first_request_ms", "total_ms", "rss_mb")
        }
        | {"googleapiclient_imported": any(r["googleapiclient"] for r in rows)}
        for name, rows in results.items()
    }
    ours, base, floor = summary["channelkit"], summary["firestore_import"], summary["claim_floor"]
    return {
        "samples": samples,
        "targets": summary,
        "ratios": {
            "import_vs_firestore_import": ours["import_ms"] / base["import_ms"],
            "rss_vs_firestore_import": ours["rss_mb"] / base["rss_mb"],
            "first_answer_vs_claim_floor": (
                (ours["import_ms"] + ours["first_request_ms"])
                / (floor["import_ms"] + floor["first_request_ms"])
            ),
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(run(samples=args.samples), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
