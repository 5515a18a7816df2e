"""Fixtures of the emulator tier: a Firestore-backed store and a Google client on the simulator.

A test module may define its own ``store`` (the contract suite does, over every backend).
"""

import pytest

from channelkit.google_api import GoogleApi
from channelkit.store import open_store


@pytest.fixture
def store(firestore_env):
    """The Firestore store on the emulator, with an empty database."""
    s = open_store()
    yield s
    s.close()


@pytest.fixture
def google(simulator):
    """GoogleApi talking to this test's simulator, without retries."""
    return GoogleApi(root=simulator.url, retries=0)
