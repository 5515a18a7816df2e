"""Emulator fixtures: each emulator starts once per session; data resets per test.

An emulator already running (``FIRESTORE_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST``
set when pytest starts, as ``.ci/run`` does) is used as it is; otherwise the
fixture starts one with gcloud. When it cannot start, the test fails under
``CI=true`` and is skipped elsewhere, with the reason.
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

from channelkit.testing.emulators import Emulator, EmulatorError, reset_firestore

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # makes tests/support importable as support.*

PROJECT = "channelkit-test"


#: Emulators started before pytest (by .ci/run), read before any test changes the environment.
_EXTERNAL = {name: os.environ.get(name) for name in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")}


def _external(name: str) -> str | None:
    return _EXTERNAL.get(name) or None


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"emulator required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _emulator_host(kind: str, env_name: str, request) -> str:
    external = _external(env_name)
    if external:
        return external
    emulator = Emulator(kind)
    try:
        emulator.start()
    except EmulatorError as exc:
        _unavailable(f"{kind} emulator unavailable: {exc}")
    request.addfinalizer(emulator.stop)
    return emulator.host_port


@pytest.fixture(scope="session")
def firestore_host(request) -> str:
    """host:port of a running Firestore emulator (started once per session)."""
    return _emulator_host("firestore", "FIRESTORE_EMULATOR_HOST", request)


@pytest.fixture(scope="session")
def pubsub_host(request) -> str:
    """host:port of a running Pub/Sub emulator (started once per session)."""
    return _emulator_host("pubsub", "PUBSUB_EMULATOR_HOST", request)


@pytest.fixture
def private_emulator(monkeypatch):
    """A Firestore emulator of this test's own, to stop and restart (outage tests).

    The shared session emulator keeps running for every other test.
    """
    emulator = Emulator("firestore")
    try:
        emulator.start()
    except EmulatorError as exc:
        _unavailable(f"firestore emulator unavailable: {exc}")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host_port)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    yield emulator
    emulator.stop()


@pytest.fixture
def firestore_env(firestore_host, monkeypatch) -> str:
    """Point this test at the emulator, with an empty database."""
    reset_firestore(firestore_host, PROJECT)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("CHANNELKIT_STORE", "firestore")
    return firestore_host


@pytest.fixture
def pubsub_env(pubsub_host, monkeypatch) -> str:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_host)
    return pubsub_host


# The local Google push simulator, as shipped for users' tests.
from channelkit.testing.fixtures import simulator  # noqa: E402,F401
