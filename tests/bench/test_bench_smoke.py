"""``python -m bench --quick`` runs end to end and its counted figures hold.

Timings are never asserted here (they live in the benchmark's report); what is
asserted is what a run counts: no non-2xx answer from any webhook under load,
exactly two Firestore writes for each notification's claim and no reads for
channelkit once its channels are cached (lastNotificationAt, once a minute per
subscription, is the only other write), every renewal verified, and no googleapiclient import
in the webhook process; a forged channel id costs no read; the webhook at concurrency 8, 16 and
80 answers every notification with a 2xx.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_quick_benchmark_runs_and_counts_what_it_should(firestore_env, tmp_path):
    if shutil.which("wrk") is None:
        message = "wrk is needed for the webhook benchmark (apt-get install wrk)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    env = dict(
        os.environ, PYTHONPATH=str(ROOT), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (tmp_path / "latest-quick.md").read_text()
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
    results = json.loads((tmp_path / "latest-quick.json").read_text())["results"]
    for name, target in results["webhook"]["targets"].items():
        assert target["non_2xx"] == 0 and target["socket_errors"] == 0, name
    ck = results["webhook"]["targets"]["channelkit"]
    # A claim and its "done": two writes each (a transient retry could add a rare third). The
    # only other write is lastNotificationAt, once a minute per subscription, not per notification.
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


def test_the_quick_feeds_benchmark_counts_a_write_per_page_and_coalesces_a_burst(firestore_env, tmp_path):
    env = dict(
        os.environ, PYTHONPATH=str(ROOT), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "feeds", "--output", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (tmp_path / "latest-quick.md").read_text()
    for measure in (
        "changes handed over per second",
        "Firestore writes per page of changes",
        "Firestore writes per notification, a burst",
        "sync passes for a burst",
    ):
        assert measure in table
    feeds = json.loads((tmp_path / "latest-quick.json").read_text())["results"]["feeds"]
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
