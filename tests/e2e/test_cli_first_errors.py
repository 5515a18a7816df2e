"""``python -m channelkit list`` as a newcomer first runs it: one line naming the fix, exit 1."""

import os
import socket
import subprocess
import sys

import pytest


@pytest.fixture
def bare_env(tmp_path):
    """An environment with no Google credentials, no project and no gcloud configuration."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CHANNELKIT_", "GOOGLE_", "GCLOUD_", "FIRESTORE_", "CLOUDSDK_"))
    }
    env.update(
        HOME=str(tmp_path),
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        NO_GCE_CHECK="True",
        CHANNELKIT_STORE_TIMEOUT="1",
    )
    return env


def _list(env):
    done = subprocess.run(
        [sys.executable, "-m", "channelkit", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr.strip()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_credentials(bare_env):
    code, stderr = _list(dict(bare_env, GOOGLE_CLOUD_PROJECT="p"))
    assert code == 1
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
    assert "gcloud auth application-default login" in stderr


def test_no_project(bare_env, tmp_path):
    key = tmp_path / "adc.json"
    key.write_text(
        '{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}'
    )
    code, stderr = _list(dict(bare_env, GOOGLE_APPLICATION_CREDENTIALS=str(key)))
    assert code == 1
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
    assert "GOOGLE_CLOUD_PROJECT" in stderr


def test_emulator_variable_pointing_at_nothing(bare_env):
    host = f"127.0.0.1:{_closed_port()}"
    code, stderr = _list(dict(bare_env, FIRESTORE_EMULATOR_HOST=host))
    assert code == 1
    assert len(stderr.splitlines()) == 1
    assert f"gcloud emulators firestore start --host-port={host}" in stderr


def test_the_sqlite_store_needs_nothing(bare_env, tmp_path):
    env = dict(bare_env, CHANNELKIT_STORE=f"sqlite:///{tmp_path}/channels.sqlite3")
    code, stderr = _list(env)
    assert code == 0, stderr
