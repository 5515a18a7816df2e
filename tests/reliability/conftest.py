"""The reliability suite's scenarios at their small (CI) size, on the real emulator and server.

The repository root is made importable (``bench.reliability``). Scenarios use the
session's Firestore emulator (``firestore_host`` of tests/conftest.py: started once,
or the one ``.ci/run`` started); the outage scenario starts a private one of its own.
When an emulator cannot start, the test fails under ``CI=true`` and is skipped elsewhere.
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

from channelkit.testing.emulators import EmulatorError

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def run_scenario(firestore_host, monkeypatch):
    """``run_scenario(name)``: the scenario's result dict at size small."""
    import importlib

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_host)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    def run(name: str) -> dict:
        module = importlib.import_module(f"bench.reliability.{name}")
        try:
            return module.run("small", progress=None)
        except EmulatorError as exc:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"emulator required under CI: {exc}", pytrace=False)
            pytest.skip(f"firestore emulator unavailable: {exc}")

    return run
