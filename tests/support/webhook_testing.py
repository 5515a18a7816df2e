"""Helpers for the webhook's end-to-end tests (functions-framework, Firestore emulator).

* ``new_channel`` / ``notification_headers``: a stored channel and Google's headers for it;
* ``Recording``: what ``support.recording_handler`` recorded;
* ``FunctionsFrameworkServer``: ``functions-framework --target=webhook`` as a real server
  process; ``http_post`` talks to it without any proxy;
* ``wait_until``: poll a condition instead of sleeping.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from channelkit.channel import Channel
from channelkit.testing.emulators import free_port, stop_process_group
from support.recording_handler import read_calls

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "functions" / "webhook.py"
TESTS = ROOT / "tests"
VENV_BIN = pathlib.Path(sys.executable).parent
HANDLER = "support.recording_handler:handle"
UTC = datetime.UTC


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = ""):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


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


def notification_headers(channel: Channel, number: int, state: str = "update", **overrides) -> dict:
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Message-Number": str(number),
        "X-Goog-Resource-ID": channel.resource_id or "res-1",
        "X-Goog-Resource-State": state,
        "X-Goog-Resource-URI": channel.resource_uri or "https://www.googleapis.com/x",
        "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
    }
    if channel.token:
        headers["X-Goog-Channel-Token"] = channel.token
    for name, value in overrides.items():
        key = "X-Goog-" + name.replace("_", "-")
        if value is None:
            headers.pop(key, None)
        else:
            headers[key] = value
    return headers


# --- a real functions-framework server ----------------------------------------------------


class FunctionsFrameworkServer:
    """``functions-framework --target=webhook`` in its own process group."""

    def __init__(self, env: dict[str, str], log_path: pathlib.Path, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        full_env = dict(os.environ)
        full_env.update(env)
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), full_env.get("PYTHONPATH", "")) if p)
        full_env["WORKERS"] = str(workers)
        full_env.setdefault("THREADS", "16")
        full_env["NO_PROXY"] = full_env["no_proxy"] = "127.0.0.1,localhost"
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [
                str(VENV_BIN / "functions-framework"),
                "--target=webhook",
                f"--source={SOURCE}",
                "--host=127.0.0.1",
                f"--port={self.port}",
            ],
            cwd=str(ROOT),
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        def answered():
            if self.process.poll() is not None:
                pytest.fail(f"webhook server exited: {self.log_path.read_text()[-3000:]}")
            try:
                status, _ = http_post(self.url, {}, b"", method="GET", timeout=2)
            except OSError:
                return False
            return status == 405

        wait_until(answered, timeout, 0.1, "the webhook server to answer")
        # Build the store and make a first Firestore read (slow on a cold emulator).
        warm = {
            "X-Goog-Channel-ID": "warm-up",
            "X-Goog-Message-Number": "1",
            "X-Goog-Resource-ID": "r",
            "X-Goog-Resource-State": "sync",
            "X-Goog-Resource-URI": "https://www.googleapis.com/x",
        }
        wait_until(
            lambda: http_post(self.url, warm, b"", timeout=30)[0] == 404,
            timeout,
            0.2,
            "the webhook server to reach Firestore",
        )

    def stop(self) -> None:
        stop_process_group(self.process, timeout=15)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text()


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_post(url: str, headers: dict, body: bytes = b"", *, method: str = "POST", timeout=30):
    """(status, body) of one request, without any proxy."""
    request = urllib.request.Request(
        url, data=body if method != "GET" else None, headers=headers, method=method
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read()
        finally:
            exc.close()
