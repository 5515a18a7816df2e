"""``status``, ``reactivate``, ``migrate`` and ``stop`` as a user runs them; the renew function's health line.

The Firestore emulator stores, the simulator plays Google (on real time here:
the CLI runs in its own process), and each command runs as ``python -m channelkit``.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest
from functions_framework import create_app

from channelkit.channel import Channel
from channelkit.google_api import GoogleApi
from channelkit.store import open_store
from channelkit.subscribe import subscribe

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOUR = 3600
ADDRESS = "https://hooks.example.com/w"


@pytest.fixture
def env(firestore_env, simulator, monkeypatch):
    monkeypatch.setenv("CHANNELKIT_API_ROOT", simulator.url)
    monkeypatch.setenv("CHANNELKIT_API_RETRIES", "0")
    monkeypatch.setenv("CHANNELKIT_RENEW_BEFORE", str(3 * HOUR))
    return simulator


def cli(*args: str, code: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "channelkit", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return result


def watch(simulator, file_id: str, ttl: float) -> Channel:
    google = GoogleApi(root=simulator.url, retries=0)
    params = {"fileId": file_id}
    return subscribe("drive", "v3", "files.watch", address=ADDRESS, params=params, ttl=ttl, google=google)


def status() -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "channelkit", "status", "--json"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    assert result.returncode == (0 if report["healthy"] else 1), result.stderr
    return report


def test_status_exit_codes_through_suspension_and_reactivation(env):
    empty = status()
    assert empty["healthy"] and empty["counts"] == {"active": 0, "suspended": 0, "expired": 0, "stopped": 0}
    channel = watch(env, "F1", ttl=2 * HOUR)
    healthy = status()
    assert healthy["healthy"] and healthy["counts"]["active"] == 1
    assert healthy["soonestExpiry"]["channelId"] == channel.id
    assert "healthy: 1 active" in cli("status").stdout

    env.refuse("unauthorized", {"fileId": "F1"})
    renewed = json.loads(cli("renew", "--json").stdout)
    assert renewed["suspended"] == 1
    suspended = status()
    assert not suspended["healthy"] and suspended["counts"]["suspended"] == 1
    [problem] = suspended["problems"]
    assert (problem["id"], problem["reason"]) == (channel.subscription_id, "CREDENTIALS_INVALID")
    assert suspended["lastRenewalRun"]["suspended"] == 1
    text = cli("status", code=1).stdout
    assert (
        text.startswith("UNHEALTHY")
        and f"suspended CREDENTIALS_INVALID: subscription {channel.subscription_id}" in text
    )
    listed = json.loads(cli("list", "--json").stdout)
    assert (listed[0]["subscriptionState"], listed[0]["subscriptionReason"]) == (
        "suspended",
        "CREDENTIALS_INVALID",
    )
    assert "suspended (CREDENTIALS_INVALID)" in cli("list").stdout

    refused = cli("reactivate", channel.subscription_id, code=1)
    assert refused.stdout == "" and len(refused.stderr.strip().splitlines()) == 1 and "401" in refused.stderr
    env.unrefuse()
    new_id = cli("reactivate", channel.subscription_id).stdout.strip()
    assert open_store().get(new_id).status == "active" and new_id != channel.id
    assert status()["healthy"]
    assert cli("reactivate", channel.subscription_id, code=1).stderr.count("\n") == 1  # active already


def test_status_is_unhealthy_for_an_expired_subscription(env):
    channel = watch(env, "F1", ttl=1)
    env.refuse("backend", {"fileId": "F1"})
    time.sleep(1.2)  # its channel ends with renewal failing
    summary = json.loads(cli("renew", "--json").stdout)
    assert summary["failed"] == 1 and "expired" in summary["details"]["failed"][0]["reason"]
    report = status()
    assert not report["healthy"] and report["counts"]["expired"] == 1
    assert report["problems"][0]["id"] == channel.subscription_id


def test_status_is_unhealthy_when_a_live_channel_ends_within_the_warning_window(env):
    watch(env, "F1", ttl=1800)  # renewal (3 h before) should have replaced it already
    report = status()
    assert not report["healthy"] and report["counts"]["active"] == 1
    assert len(report["expiringSoon"]) == 1


def test_stop_by_subscription_id_records_stopped(env):
    channel = watch(env, "F1", ttl=2 * HOUR)
    cli("stop", channel.subscription_id)
    assert open_store().get_subscription(channel.subscription_id).state == "stopped"
    assert not env.channel(channel.id).live
    assert status()["counts"]["stopped"] == 1


def test_migrate_creates_the_records_a_previous_version_never_wrote(env):
    store = open_store()
    live = watch(env, "F1", ttl=2 * HOUR)
    stopped = watch(env, "F2", ttl=2 * HOUR)
    cli("stop", stopped.id)
    # Documents as the previous version left them: channels only, no subscription records.
    for subscription_id in (live.subscription_id, stopped.subscription_id):
        store.client.collection("subscriptions").document(subscription_id).delete()
    assert store.find_subscription(live.subscription_id) is None
    assert json.loads(cli("migrate", "--json").stdout) == {"created": 2, "existing": 0, "skipped": 0}
    assert store.get_subscription(live.subscription_id).state == "active"
    assert store.get_subscription(stopped.subscription_id).state == "stopped"
    assert store.get_subscription(live.subscription_id).events == []  # no transition, no event
    assert "0 subscription records created, 2 already there" in cli("migrate").stdout


def test_a_renewal_creates_the_missing_record_of_an_unmigrated_subscription(env):
    store = open_store()
    channel = watch(env, "F1", ttl=HOUR)
    store.client.collection("subscriptions").document(channel.subscription_id).delete()
    assert json.loads(cli("renew", "--json").stdout)["renewed"] == 1
    record = store.get_subscription(channel.subscription_id)
    assert record.state == "active" and record.channel_id != channel.id


def test_the_renew_function_logs_one_health_line_per_run(env, capfd):
    sys.modules.pop("main", None)
    app = create_app(target="renew", source=str(ROOT / "functions" / "renew.py"))
    watch(env, "F1", ttl=2 * HOUR)  # due (3 h before), not yet within the hour's warning
    env.refuse("permission", {"fileId": "F1"})
    client = app.test_client()
    capfd.readouterr()
    for _ in range(3):  # CHANNELKIT_SUSPEND_AFTER: the third failed run suspends
        assert client.post("/").status_code == 200
    lines = [
        json.loads(line) for line in capfd.readouterr().out.splitlines() if '"channelkit health"' in line
    ]
    assert len(lines) == 3
    assert [(line["suspended"], line["active"], line["healthy"]) for line in lines] == [
        (0, 1, True),
        (0, 1, True),
        (1, 0, False),
    ]
    assert lines[-1]["severity"] == "WARNING" and lines[-1]["renewalFailures"] == 1
