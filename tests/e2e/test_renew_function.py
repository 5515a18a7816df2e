"""The renew function under functions-framework, and ``python -m channelkit renew``."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from functions_framework import create_app

from channelkit.google_api import GoogleApi
from channelkit.store import open_store
from channelkit.subscribe import subscribe
from support.pubsub_testing import pubsub, pull_all, topic  # noqa: F401 - fixtures

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOUR = 3600


@pytest.fixture
def env(firestore_env, simulator, monkeypatch):
    monkeypatch.setenv("CHANNELKIT_API_ROOT", simulator.url)
    monkeypatch.setenv("CHANNELKIT_API_RETRIES", "0")
    monkeypatch.setenv("CHANNELKIT_RENEW_BEFORE", str(3 * HOUR))
    return simulator


@pytest.fixture
def client(env):
    sys.modules.pop("main", None)
    app = create_app(target="renew", source=str(ROOT / "functions" / "renew.py"))
    return app.test_client()


def make_channels(simulator):
    google = GoogleApi(root=simulator.url, retries=0)
    near = subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://hooks.example.com/w",
        params={"fileId": "A"},
        ttl=HOUR,
        google=google,
    )
    far = subscribe(
        "drive",
        "v3",
        "files.watch",
        address="https://hooks.example.com/w",
        params={"fileId": "B"},
        ttl=20 * HOUR,
        google=google,
    )
    return near, far


def test_renew_function_answers_a_json_summary(client, env):
    near, far = make_channels(env)
    response = client.post("/")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["renewed"], body["failed"], body["skipped"], body["stopped"]) == (1, 0, 0, 1)
    [pair] = body["details"]["renewed"]
    assert pair["old"] == near.id and body["details"]["stopped"] == [near.id]
    assert open_store().get(pair["new"]).status == "active"
    assert {c.id for c in env.live_channels()} == {pair["new"], far.id}
    assert near.token not in response.get_data(as_text=True)


def test_renew_function_refuses_other_methods(client, env):
    assert client.put("/").status_code == 405


def test_renew_function_answers_503_when_the_store_is_down(env, monkeypatch):
    from channelkit.testing.harness import free_port

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("CHANNELKIT_STORE_TIMEOUT", "0.5")
    sys.modules.pop("main", None)
    app = create_app(target="renew", source=str(ROOT / "functions" / "renew.py"))
    response = app.test_client().post("/")
    assert response.status_code == 503
    assert "Traceback" not in response.get_data(as_text=True)


def test_cli_renew_prints_json(env):
    near, _ = make_channels(env)
    result = subprocess.run(
        [sys.executable, "-m", "channelkit", "renew", "--json"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["renewed"] == 1 and summary["details"]["renewed"][0]["old"] == near.id


def test_cli_renew_prints_a_readable_summary(env):
    near, _ = make_channels(env)
    result = subprocess.run(
        [sys.executable, "-m", "channelkit", "renew"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"renewed  {near.id} -> " in result.stdout
    assert "1 renewed, 0 failed, 0 skipped, 1 stopped, 0 deferred, 0 suspended" in result.stdout


@pytest.mark.parametrize(
    ("variable", "broken"),
    [
        ("CHANNELKIT_HANDLER", "no_such_module_anywhere:handle"),
        ("CHANNELKIT_PUBSUB_TOPIC", "topics/not-a-full-name"),
    ],
)
def test_a_broken_handler_or_topic_does_not_stop_renewal(env, monkeypatch, variable, broken):
    monkeypatch.setenv(variable, broken)
    sys.modules.pop("main", None)
    app = create_app(target="renew", source=str(ROOT / "functions" / "renew.py"))
    near, _ = make_channels(env)
    response = app.test_client().post("/")
    assert response.status_code == 200
    assert response.get_json()["renewed"] == 1


def test_renew_settings_are_resolved_at_the_first_request_and_kept(client, env, monkeypatch):
    assert client.post("/").get_json()["renewed"] == 0  # nothing yet: the settings are now resolved
    monkeypatch.setenv("CHANNELKIT_RENEW_BEFORE", "0")  # would renew nothing, were it read again
    near, _ = make_channels(env)
    body = client.post("/").get_json()
    assert body["renewed"] == 1 and body["details"]["renewed"][0]["old"] == near.id


def test_a_bad_renewal_setting_is_503_until_fixed(env, monkeypatch):
    monkeypatch.setenv("CHANNELKIT_RENEW_LEASE", "soon")
    sys.modules.pop("main", None)
    app = create_app(target="renew", source=str(ROOT / "functions" / "renew.py"))
    client = app.test_client()
    assert client.post("/").status_code == 503
    monkeypatch.setenv("CHANNELKIT_RENEW_LEASE", "600")
    assert client.post("/").status_code == 200


@pytest.mark.parametrize("key", [None, "c2lnbmluZy1rZXktZm9yLXRoZS10ZXN0cy0zMmJ5dGU="])
def test_the_renew_function_warns_once_when_it_has_no_key(env, monkeypatch, capsys, key):
    if key is None:
        monkeypatch.delenv("CHANNELKIT_CREDENTIALS_KEY", raising=False)
    else:
        monkeypatch.setenv("CHANNELKIT_CREDENTIALS_KEY", key)
    sys.modules.pop("renew", None)
    client = create_app(target="renew", source=str(ROOT / "functions" / "renew.py")).test_client()
    capsys.readouterr()
    assert client.post("/").status_code == 200 and client.post("/").status_code == 200
    warnings = [line for line in capsys.readouterr().out.splitlines() if "channel ids are not signed" in line]
    assert len(warnings) == (1 if key is None else 0)
    if warnings:
        assert json.loads(warnings[0])["severity"] == "WARNING"


def test_renew_function_publishes_past_the_inline_limit_to_the_renew_topic(env, monkeypatch, pubsub, topic):
    from channelkit.renewal.fanout import parse_shard

    topic_path, sub_path = topic
    monkeypatch.setenv("CHANNELKIT_RENEW_TOPIC", topic_path)
    monkeypatch.setenv("CHANNELKIT_RENEW_INLINE", "0")
    monkeypatch.setenv("FUNCTION_NAME", "renew")  # create_app sets these two: restored after the test
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "http")
    near, _ = make_channels(env)
    sys.modules.pop("main", None)
    app = create_app(target="renew", source=str(ROOT / "functions" / "renew.py"))
    body = app.test_client().post("/").get_json()
    assert (body["renewed"], body["published"]) == (0, 1)
    assert body["details"]["published"] == [near.subscription_id]
    [message] = pull_all(pubsub[1], sub_path, expected=1)
    assert parse_shard(message.data).subscriptions == (near.subscription_id,)
    sys.modules.pop("main", None)
