"""``python -m channelkit`` as a user runs it: Firestore emulator as the store, simulator as Google."""

import json
import os
import subprocess
import sys

import pytest

from channelkit.store import open_store
from channelkit.testing.harness import LoopbackReceiver


@pytest.fixture
def cli(firestore_env, simulator):
    env = dict(os.environ)
    env.update(CHANNELKIT_API_ROOT=simulator.url, CHANNELKIT_API_RETRIES="0")

    def run(*args, ok=True):
        result = subprocess.run(
            [sys.executable, "-m", "channelkit", *args], env=env, capture_output=True, text=True, timeout=120
        )
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    return run


WATCHES = [
    ("drive", "v3", "files.watch", ["fileId=F1"], ("drive", "files", {"fileId": "F1"}, "update")),
    ("drive", "v3", "changes.watch", ["pageToken=7"], ("drive", "changes", {}, "change")),
    (
        "calendar",
        "v3",
        "events.watch",
        ["calendarId=primary"],
        ("calendar", "events", {"calendarId": "primary"}, "exists"),
    ),
    (
        "admin",
        "directory_v1",
        "users.watch",
        ["customer=my_customer", "event=add"],
        ("admin", "users", {"customer": "my_customer"}, "add"),
    ),
]


@pytest.mark.parametrize(
    "api,version,method,params,change", WATCHES, ids=[w[2] + "-" + w[0] for w in WATCHES]
)
def test_watch_prints_the_id_and_notifications_flow(cli, simulator, api, version, method, params, change):
    with LoopbackReceiver() as hook:
        args = ["watch", api, version, method, "--address", hook.url, "--ttl", "3600"]
        for p in params:
            args += ["--param", p]
        out = cli(*args).stdout
        channel_id = out.strip()
        assert out == channel_id + "\n" and len(channel_id) == 36
        stored = open_store().get(channel_id)
        assert stored.status == "active" and stored.method == method
        assert simulator.channel(channel_id).live
        change_api, kind, change_params, state = change
        simulator.change_channel_resource(channel_id, state=state)
        simulator.wait_for_deliveries(2, channel_id=channel_id)
        states = [h["X-Goog-Resource-State"] for h, _ in hook.requests]
        assert states == ["sync", state]
        assert all(h["X-Goog-Channel-Token"] == stored.token for h, _ in hook.requests)


def test_list_shows_a_table_and_json_without_tokens(cli):
    first = cli(
        "watch",
        "drive",
        "v3",
        "files.watch",
        "--address",
        "https://x.example/h",
        "--param",
        "fileId=A",
        "--token",
        "secret-token-1",
    ).stdout.strip()
    second = cli(
        "watch",
        "calendar",
        "v3",
        "events.watch",
        "--address",
        "https://x.example/h",
        "--param",
        "calendarId=c",
        "--ttl",
        "7200",
    ).stdout.strip()
    table = cli("list").stdout
    header, *rows = table.splitlines()
    assert header.split()[:4] == ["ID", "STATUS", "API", "METHOD"]
    by_id = {row.split()[0]: row for row in rows}
    assert "active" in by_id[first] and "files.watch" in by_id[first]
    assert "events.watch" in by_id[second] and ("1h 59m" in by_id[second] or "2h 0m" in by_id[second])
    listing = json.loads(cli("list", "--json").stdout)
    assert {c["id"] for c in listing} == {first, second}
    assert all(c["status"] == "active" and c["expiresInSeconds"] > 0 for c in listing)
    assert "secret-token-1" not in table and "secret-token-1" not in json.dumps(listing)


def test_empty_list(cli):
    assert "(no channels)" in cli("list").stdout
    assert json.loads(cli("list", "--json").stdout) == []


def test_stop_ends_the_channel(cli, simulator):
    channel_id = cli(
        "watch", "drive", "v3", "files.watch", "--address", "https://x.example/h", "--param", "fileId=A"
    ).stdout.strip()
    cli("stop", channel_id)
    assert open_store().get(channel_id).status == "stopped"
    assert simulator.live_channels() == []
    assert "stopped" in cli("list").stdout


@pytest.mark.parametrize(
    "args,code,fragment",
    [
        (
            ["watch", "nosuch", "v1", "files.watch", "--address", "https://x/h"],
            2,
            "no bundled discovery document",
        ),
        (["watch", "drive", "v3", "files.nope", "--address", "https://x/h"], 2, "no method"),
        (["watch", "drive", "v3", "changes.watch", "--address", "https://x/h"], 2, "pageToken"),
        (
            [
                "watch",
                "drive",
                "v3",
                "files.watch",
                "--address",
                "http://example.com/h",
                "--param",
                "fileId=F",
            ],
            2,
            "https",
        ),
        (["watch", "drive", "v3", "files.watch", "--param", "fileId=F"], 2, "--address"),
        (["watch", "drive", "v3", "files.watch", "--address", "https://x/h", "--param", "nokey"], 2, "K=V"),
        (["watch", "drive", "v3", "files.watch", "--address", "https://x/h", "--ttl", "-5"], 2, "positive"),
        (
            [
                "watch",
                "drive",
                "v3",
                "files.watch",
                "--address",
                "https://x/h",
                "--param",
                "fileId=F",
                "--token",
                "t" * 300,
            ],
            2,
            "token",
        ),
        (["watch", "drive", "v3", "files.watch", "--address", "https://x/h", "--ttl", "inf"], 2, "positive"),
        (["watch", "drive", "v3", "files.watch", "--address", "https://x/h", "--ttl", "1e300"], 2, "at most"),
        (["stop", "no-such-channel"], 1, "no channel"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(cli, args, code, fragment):
    result = cli(*args, ok=False)
    assert result.returncode == code
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_api_failure_exits_1_and_records_the_failure(cli, simulator):
    simulator.fail_next("watch", status=403, message="The caller does not have permission")
    result = cli(
        "watch", "drive", "v3", "files.watch", "--address", "https://x/h", "--param", "fileId=F", ok=False
    )
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "403" in result.stderr
    [failed] = json.loads(cli("list", "--json").stdout)
    assert failed["status"] == "failed" and "403" in failed["lastError"]
    assert simulator.live_channels() == []


def test_store_unavailable_is_a_one_line_failure(simulator, monkeypatch):
    from channelkit.testing.harness import free_port

    env = dict(
        os.environ,
        FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{free_port()}",
        CHANNELKIT_STORE_TIMEOUT="0.5",
        CHANNELKIT_API_ROOT=simulator.url,
    )
    result = subprocess.run(
        [sys.executable, "-m", "channelkit", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Firestore emulator" in result.stderr and env["FIRESTORE_EMULATOR_HOST"] in result.stderr
