"""Isolate every test from the developer's environment.

channelkit resolves its settings from the environment (the functions once per
instance, the CLI and library helpers when called), so a stray CHANNELKIT_* or
emulator variable on the developer's machine would change what
a test sees. Each test starts from a clean slate; fixtures that need an
emulator set its variable themselves.
"""

import os

import pytest

_ISOLATED_PREFIXES = ("CHANNELKIT_",)
_ISOLATED = (
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "GOOGLE_APPLICATION_CREDENTIALS",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES) or name in _ISOLATED:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "channelkit-test")
    # Never reach a real Google endpoint from a test.
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    yield
