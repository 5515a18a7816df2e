"""Fixtures of the emulator tier: a Firestore-backed store and a Google client on the simulator.

A test module may define its own ``store`` (the contract suite does, over every backend).
"""

import pytest

from channelkit.google_api import GoogleApi
from channelkit.renewal import renew_due
from channelkit.store import open_store
from channelkit.subscribe import subscribe
from support.webhook_harness import RecordingHandler, WebhookServer

HOUR = 3600
DAY = 24 * HOUR
#: The renewal lease the ``run`` fixture uses (seconds on the simulator's clock).
LEASE = 600


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


# --- renewal on the simulator's clock: a webhook, a subscriber and a renewal run ---------


@pytest.fixture
def clock(simulator):
    return lambda: simulator.clock.now_ms() / 1000


@pytest.fixture
def handler():
    return RecordingHandler()


@pytest.fixture
def hook(store, handler, clock):
    with WebhookServer(store, handler, clock, grace=60) as server:
        yield server


@pytest.fixture
def run(store, google, handler, clock):
    def run_once(**options):
        options.setdefault("google", google)
        options.setdefault("lease_seconds", LEASE)
        options.setdefault("dispatcher", handler)
        return renew_due(store=store, clock=clock, **options)

    return run_once


@pytest.fixture
def watch(store, google, clock, hook):
    def make(file_id="F1", ttl=DAY, address=None):
        return subscribe(
            "drive",
            "v3",
            "files.watch",
            address=address or hook.url,
            params={"fileId": file_id},
            ttl=ttl,
            store=store,
            google=google,
            clock=clock,
        )

    return make
