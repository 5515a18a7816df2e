"""``python -m channelkit credentials ...`` and ``watch --credentials`` as a user runs them.

The Firestore emulator stores, the simulator plays Google and its token
endpoint; every command runs in its own process. No secret may reach stdout,
stderr or JSON output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from channelkit.crypto import new_key
from channelkit.store import open_store
from channelkit.testing.simulator import Resource

KEY = new_key()


@pytest.fixture
def env(firestore_env, simulator, monkeypatch):
    monkeypatch.setenv("CHANNELKIT_API_ROOT", simulator.url)
    monkeypatch.setenv("CHANNELKIT_API_RETRIES", "0")
    monkeypatch.setenv("CHANNELKIT_CREDENTIALS_KEY", KEY)
    simulator.token_lifetime = 86_400
    return simulator


def cli(*args: str, code: int = 0, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "channelkit", *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return result


def grant_file(tmp_path, simulator, user):
    info = simulator.add_user(user)
    path = tmp_path / f"{user}.json"
    path.write_text(json.dumps(info))
    return path, info


def test_add_list_watch_and_remove_without_ever_showing_a_secret(env, tmp_path):
    path, info = grant_file(tmp_path, env, "alice")
    env.set_owner(Resource.of("drive", "files", fileId="FA"), "alice")
    outputs = [cli("credentials", "add", "alice", "--from-file", str(path))]
    channel_id = cli(
        *("watch", "drive", "v3", "files.watch", "--address", "https://h.example/w"),
        *("--param", "fileId=FA", "--ttl", "7200", "--credentials", "user:alice"),
    ).stdout.strip()
    assert [c.user for c in env.calls if c.operation == "drive.files.watch"] == ["alice"]
    outputs.append(cli("credentials", "list", "--json"))
    [listed] = json.loads(outputs[-1].stdout)
    assert (listed["key"], listed["inUse"], listed["revoked"]) == ("alice", 1, False)
    outputs.append(cli("credentials", "list"))
    outputs.append(cli("list", "--json"))
    assert json.loads(outputs[-1].stdout)[0]["credentials"] == "user:alice"
    outputs.append(cli("status", "--json"))
    refused = cli("credentials", "remove", "alice", code=1)
    assert "--stop" in refused.stderr
    outputs += [refused, cli("credentials", "remove", "alice", "--stop")]
    assert open_store().get(channel_id).status == "stopped"
    for output in outputs:
        for secret in (info["refresh_token"], info["client_secret"], KEY):
            assert secret not in output.stdout and secret not in output.stderr


def test_without_the_key_storing_is_refused_with_exit_2(env, tmp_path):
    path, info = grant_file(tmp_path, env, "bob")
    keyless = {k: v for k, v in os.environ.items() if k != "CHANNELKIT_CREDENTIALS_KEY"}
    result = cli("credentials", "add", "bob", "--from-file", str(path), code=2, env=keyless)
    assert "CHANNELKIT_CREDENTIALS_KEY" in result.stderr and info["refresh_token"] not in result.stderr
    assert open_store().find_credential("bob") is None


def test_a_bad_file_and_an_unknown_key_are_one_line_errors(env, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "authorized_user", "client_id": "x"}))
    assert (
        "lacks client_secret, refresh_token"
        in cli("credentials", "add", "x", "--from-file", str(bad), code=2).stderr
    )
    result = cli(
        *("watch", "drive", "v3", "files.watch", "--address", "https://h.example/w"),
        *("--param", "fileId=F", "--credentials", "user:nobody"),
        code=1,
    )
    assert "no stored credentials 'nobody'" in result.stderr and len(result.stderr.splitlines()) == 1


def test_rotate_reencrypts_under_the_first_key(env, tmp_path, monkeypatch):
    path, _ = grant_file(tmp_path, env, "carol")
    cli("credentials", "add", "carol", "--from-file", str(path))
    monkeypatch.setenv("CHANNELKIT_CREDENTIALS_KEY", f"{new_key()},{KEY}")
    assert "1 credentials re-encrypted" in cli("credentials", "rotate").stderr
    assert open_store().get_credential("carol").version == 2
