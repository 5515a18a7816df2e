"""``python -m bench --quick`` runs end to end and its counted figures hold.

Timings are never asserted here (they live in the benchmark's report); what is
asserted is what a run counts: no non-2xx answer from any webhook under load,
exactly two Firestore writes for each notification's claim and no reads for
channelkit once its channels are cached (lastNotificationAt, at most every 10 minutes per
subscription and instance, is the only other write), every renewal verified, no googleapiclient import
in the webhook process; a forged channel id costs no read; the webhook at concurrency 8, 16 and
80 answers every notification with a 2xx; the fan-out renews each subscription once; the feeds
hand every change over once, a write per page plus one per pass, and coalesce a burst. The quick
run is made once for the module.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from channelkit.testing.emulators import reset_firestore

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROJECT = "channelkit-test"  # the session emulator's project (tests/conftest.py)


@pytest.fixture(scope="module")
def quick_run(firestore_host, tmp_path_factory) -> tuple[str, dict]:
    """``python -m bench --quick`` once for this module: its table and its results."""
    if shutil.which("wrk") is None:
        message = "wrk is needed for the webhook benchmark (apt-get install wrk)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    reset_firestore(firestore_host, PROJECT)
    output = tmp_path_factory.mktemp("bench")
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        FIRESTORE_EMULATOR_HOST=firestore_host,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        CHANNELKIT_STORE="firestore",
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (output / "latest-quick.md").read_text()
    return table, json.loads((output / "latest-quick.json").read_text())["results"]


def test_the_quick_benchmark_runs_and_counts_what_it_should(quick_run):
    table, results = quick_run
    for measure in (
        "parse one notification",
        "webhook throughput vs (b)",
        "vs (c) claim floor",
        "Firestore writes per notification",
        "renew 200 due channels",
        "Firestore per renewal",
        "cold start: import the webhook module",
        "404 for a forged id vs 400",
        "fan-out: 2 renew-workers vs 1",
        "fan-out: subscriptions renewed once / twice / missed",
        "webhook per instance, concurrency 8",
        "webhook per instance, concurrency 80",
        "webhook CPU per notification, concurrency 80",
    ):
        assert measure in table
    for name, target in results["webhook"]["targets"].items():
        assert target["non_2xx"] == 0 and target["socket_errors"] == 0, name
    ck = results["webhook"]["targets"]["channelkit"]
    # A claim and its "done": two writes each (a transient retry could add a rare third). The
    # only other write is lastNotificationAt, at most every 10 minutes per subscription, not per notification.
    by_collection = ck["writes_per_notification_by_collection"]
    assert 1.99 <= by_collection["messages"] <= 2.01
    assert set(by_collection) <= {"messages", "subscriptions"}
    assert ck["reads_per_notification"] <= 0.01  # channels cached after priming
    assert results["renewal"]["all_renewed"] is True
    fanout = results["fanout"]  # every subscription published went to a worker and was renewed once
    assert (fanout["renewed_twice"], fanout["missed"]) == (0, 0) and fanout["renewed_once"] == 2 * fanout["n"]
    per_renewal = results["renewal"]["operations"]["per_channel"]
    assert per_renewal["writes"] >= 1 and per_renewal["commits"] >= 1  # counted in the bench process
    assert results["coldstart"]["targets"]["channelkit"]["googleapiclient_imported"] is False
    # Forged ids cost no read; an unknown id without a key costs one; every answer was checked.
    refusals = results["refusals"]
    assert refusals["problems"] == []
    assert refusals["targets"]["forged_id"]["reads_per_request"] == 0
    assert refusals["targets"]["forged_id"]["served"] > 0
    assert refusals["targets"]["unknown_id"]["reads_per_request"] >= 0.99
    # The concurrency part: one server per level, its THREADS (read back from the server's
    # processes) and wrk's connections the level,
    # every answer a 2xx, and its CPU counted over notifications it served.
    levels = results["concurrency"]["levels"]
    assert sorted(int(k) for k in levels) == [8, 16, 80]
    for key, level in levels.items():
        assert level["threads"] == level["connections"] == level["concurrency"] == int(key)
        assert level["non_2xx"] == 0 and level["socket_errors"] == 0, key
        assert level["served"] > 0 and level["cpu_ms_per_notification"] > 0, key


def test_the_quick_feeds_benchmark_counts_a_write_per_page_and_coalesces_a_burst(quick_run):
    table, results = quick_run
    for measure in (
        "changes handed over per second",
        "Firestore writes per page of changes",
        "Firestore writes per notification, a burst",
        "sync passes for a burst",
    ):
        assert measure in table
    feeds = results["feeds"]
    assert feeds["problems"] == [] and feeds["all_delivered"]
    # channelkit: a cursor write per page, plus one per pass for the lease; the loop: one per page.
    for run in feeds["channelkit_runs"]:
        assert run["outcome"] == "done" and run["writes"] == run["pages"] + run["passes"]
    assert feeds["baseline"]["writes"] == feeds["baseline"]["pages"]
    for name in ("burst", "single"):
        part = feeds[name]
        assert part["changes_delivered_once"], name
        assert part["claim_writes_per_notification"] == 2.0, name  # the notification's own: unchanged
    burst = feeds["burst"]
    # Notifications during a pass leave a mark instead of a sync: far fewer passes than notifications.
    assert burst["sync_calls"] == burst["notifications"]
    assert 1 <= burst["sync_passes"] <= burst["notifications"] // 10
