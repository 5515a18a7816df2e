"""Helpers for the webhook's end-to-end tests (functions-framework, Firestore emulator).

* ``new_channel``: a channel to store (its headers: ``channelkit.testing.harness.notification_headers``);
* ``Recording``: what ``support.recording_handler`` recorded;
* ``WebhookProcess``: ``functions/webhook.py`` under functions-framework with the recording
  handler, ready once it reaches Firestore;
* ``SyncFunctionProcess``: ``functions/sync.py`` under functions-framework, a CloudEvent function.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import time
import uuid

from channelkit.channel import Channel
from channelkit.testing.harness import FunctionsFrameworkProcess, notification_headers, post, wait_until
from support.recording_handler import read_calls

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "functions" / "webhook.py"
SYNC_SOURCE = ROOT / "functions" / "sync.py"
TESTS = ROOT / "tests"
HANDLER = "support.recording_handler:handle"
UTC = datetime.UTC


class Recording:
    """The recording handler's calls, for assertions."""

    def __init__(self, path: pathlib.Path):
        self.path = path

    def calls(self) -> list[dict]:
        return read_calls(str(self.path))

    def ok(self) -> list[dict]:
        return [c for c in self.calls() if c["ok"]]

    def ok_numbers(self, channel_id: str | None = None) -> list[int]:
        return [c["messageNumber"] for c in self.ok() if channel_id is None or c["channelId"] == channel_id]


def new_channel(
    *,
    status: str = "active",
    token: str | None = None,
    resource_id: str = "res-1",
    expiration_ms: int | None = None,
    **fields,
) -> Channel:
    now_ms = int(time.time() * 1000)
    return Channel(
        "web_hook",
        str(uuid.uuid4()),
        token if token is not None else "tok-" + uuid.uuid4().hex,
        "https://hook.example/webhook",
        expiration=expiration_ms if expiration_ms is not None else now_ms + 3_600_000,
        resource_id=resource_id,
        resource_uri="https://www.googleapis.com/drive/v3/files/F?alt=json",
        api="drive",
        version="v3",
        method="files.watch",
        method_params={"fileId": "F"},
        subscription_id="sub-" + uuid.uuid4().hex[:8],
        status=status,
        created_at=datetime.datetime.now(UTC),
        **fields,
    )


# --- a real functions-framework server ----------------------------------------------------


def server_env(env: dict[str, str], workers: int = 1) -> dict[str, str]:
    """Ours, with ``env`` over it, ``tests`` importable (the recording handlers), no proxy on loopback."""
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), full_env.get("PYTHONPATH", "")) if p)
    full_env["WORKERS"] = str(workers)
    full_env.setdefault("THREADS", "16")
    full_env["NO_PROXY"] = full_env["no_proxy"] = "127.0.0.1,localhost"
    return full_env


class WebhookProcess(FunctionsFrameworkProcess):
    """``functions-framework --target=webhook`` with ``tests`` importable (the recording handler)."""

    def __init__(self, env: dict[str, str], log_path: pathlib.Path, workers: int = 1):
        super().__init__("webhook", SOURCE, env=server_env(env, workers), log_path=log_path, cwd=ROOT)

    def wait_ready(self, timeout: float = 30.0) -> WebhookProcess:
        """Serving, and past its first Firestore read (slow on a cold emulator)."""
        super().wait_ready(timeout)
        unknown = Channel("web_hook", "warm-up", None, "", resource_id="r")
        warm = notification_headers(unknown, 1, "sync")
        wait_until(
            lambda: post(self.url, warm, timeout=30)[0] == 404,
            timeout,
            0.2,
            "the webhook server to reach Firestore",
        )
        return self


class SyncFunctionProcess(FunctionsFrameworkProcess):
    """``functions-framework --target=sync --signature-type=cloudevent``: Pub/Sub pushes to ``url``."""

    def __init__(self, env: dict[str, str], log_path: pathlib.Path):
        super().__init__(
            "sync",
            SYNC_SOURCE,
            env=server_env(env),
            log_path=log_path,
            cwd=ROOT,
            signature_type="cloudevent",
        )
