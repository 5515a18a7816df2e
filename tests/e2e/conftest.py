"""Fixtures for the webhook under functions-framework: its test client, or a real server.

Every fixture here uses the real Firestore emulator (``firestore_env``) and the
recording handler of ``tests/support/recording_handler.py``.
"""

from __future__ import annotations

import functions_framework
import pytest

from channelkit.dispatch import clear_handler_cache
from channelkit.store import open_store
from support.webhook_testing import HANDLER, SOURCE, Recording, WebhookProcess


@pytest.fixture
def recording(tmp_path, monkeypatch) -> Recording:
    path = tmp_path / "handler-calls.jsonl"
    monkeypatch.setenv("RECORDING_HANDLER_FILE", str(path))
    monkeypatch.delenv("RECORDING_HANDLER_FAIL_FIRST", raising=False)
    monkeypatch.delenv("RECORDING_HANDLER_DELAY", raising=False)
    return Recording(path)


@pytest.fixture
def store(firestore_env):
    """A store on the emulator for the test itself (seeding, checking)."""
    s = open_store("firestore", timeout=30)  # a cold emulator can be slow to answer once
    yield s
    s.close()


@pytest.fixture
def app_factory(recording, monkeypatch):
    """``app_factory(**env)``: a fresh webhook app (new module state) and its test client.

    Uses whatever Firestore the environment names; ``make_app`` is the same on the
    shared emulator.
    """

    def make(**env):
        monkeypatch.setenv("CHANNELKIT_HANDLER", HANDLER)
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))
        clear_handler_cache()
        app = functions_framework.create_app(target="webhook", source=str(SOURCE))
        return app.test_client()

    yield make
    clear_handler_cache()


@pytest.fixture
def make_app(firestore_env, app_factory):
    """``make_app(**env)``: a fresh webhook app on the shared Firestore emulator."""
    return app_factory


@pytest.fixture
def client(make_app):
    return make_app()


@pytest.fixture
def webhook_server(firestore_env, recording, tmp_path):
    """``webhook_server(**env)`` starts a real server on a free port; stopped after the test."""
    servers: list[WebhookProcess] = []

    def start(workers: int = 1, **env) -> WebhookProcess:
        settings = {
            "CHANNELKIT_HANDLER": HANDLER,
            "RECORDING_HANDLER_FILE": str(recording.path),
        }
        settings.update({k: str(v) for k, v in env.items()})
        server = WebhookProcess(settings, tmp_path / f"server-{len(servers)}.log", workers)
        servers.append(server)
        return server.start().wait_ready()

    yield start
    for server in servers:
        server.stop()
