"""Fixtures for the end-to-end tests of change feeds: the simulator, the CLI, the recorded changes.

Import the fixtures by name (``from support.sync_testing import cli, changes_file, sim``).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from channelkit.testing.simulator import Simulator
from support import recording_changes

CHANGES = "support.recording_changes:handle"
TESTS = pathlib.Path(__file__).parents[1]  # makes support.* importable by the CLI


@pytest.fixture
def sim():
    with Simulator(sync_before_response=True, seed=3, retry_base=0.01, delivery_timeout=30) as simulator:
        yield simulator


@pytest.fixture
def changes_file(tmp_path):
    return tmp_path / "changes.jsonl"


@pytest.fixture
def cli(firestore_env, sim, changes_file):
    """``cli(*args, expect=0)``: ``python -m channelkit`` against the simulator, changes recorded."""
    env = dict(
        os.environ,
        CHANNELKIT_API_ROOT=sim.url,
        CHANNELKIT_API_RETRIES="0",
        CHANNELKIT_CHANGE_HANDLER=CHANGES,
        RECORDING_CHANGES_FILE=str(changes_file),
        PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    )

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "channelkit", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == expect, result.stderr
        return result

    return run


def delivered(changes_file) -> list[dict]:
    """Every item the recording change handler returned from, in order."""
    return [item for batch in recording_changes.read(changes_file) for item in batch["items"]]
