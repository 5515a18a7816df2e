"""Start and stop Google's Firestore and Pub/Sub emulators (the real ones, via gcloud).

Used by channelkit's own tests and local run, and by users' tests. Each
emulator runs in its own process group: SIGTERM to the gcloud wrapper alone
would leave its Java child running, so ``stop()`` signals the whole group.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

KINDS = {
    "firestore": {
        "command": ["emulators", "firestore", "start"],
        "ready": "Dev App Server is now running",
        "env": "FIRESTORE_EMULATOR_HOST",
    },
    "pubsub": {
        "command": ["beta", "emulators", "pubsub", "start"],
        "ready": "Server started, listening on",
        "env": "PUBSUB_EMULATOR_HOST",
    },
}


class EmulatorError(RuntimeError):
    """The emulator could not be started (gcloud or the component missing, or too slow)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started.

    SIGTERM to the group, SIGKILL after ``timeout``, then a last SIGKILL to
    the group for children that outlive their parent (gcloud's Java child).
    """
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def gcloud_available() -> bool:
    return shutil.which("gcloud") is not None


class Emulator:
    """One emulator process: ``Emulator("firestore").start()`` ... ``.stop()``."""

    def __init__(self, kind: str, *, host: str = "127.0.0.1", port: int | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown emulator {kind!r}; choose from {sorted(KINDS)}")
        self.kind = kind
        self.host = host
        self.port = port or free_port(host)
        self._process: subprocess.Popen | None = None
        self._ready = threading.Event()
        self._log = tempfile.NamedTemporaryFile(
            "w+", prefix=f"channelkit-{kind}-", suffix=".log", delete=False
        )

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment variable that points client libraries at this emulator."""
        return {KINDS[self.kind]["env"]: self.host_port}

    @property
    def log_path(self) -> str:
        return self._log.name

    def start(self, timeout: float = 120.0) -> Emulator:
        """Start and wait for the ready line; EmulatorError if it does not come."""
        if not gcloud_available():
            raise EmulatorError("gcloud is not on PATH: install the Google Cloud SDK")
        spec = KINDS[self.kind]
        self._ready.clear()
        self._process = subprocess.Popen(
            ["gcloud", *spec["command"], f"--host-port={self.host_port}", "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, args=(spec["ready"],), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self._process.poll() is not None:
                raise EmulatorError(
                    f"{self.kind} emulator exited with {self._process.returncode}; log: {self.log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(f"{self.kind} emulator not ready in {timeout:.0f}s")
        return self

    def _pump(self, ready_line: str) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._log.write(line)
            self._log.flush()
            if ready_line in line:
                self._ready.set()

    def stop(self) -> None:
        """Stop the whole process group (gcloud wrapper and Java child)."""
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process)

    def reset(self, project: str) -> None:
        """Delete every document of ``project`` (Firestore only)."""
        reset_firestore(self.host_port, project)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def reset_firestore(host_port: str, project: str) -> None:
    """Delete every document of ``project`` in the Firestore emulator at ``host_port``."""
    url = f"http://{host_port}/emulator/v1/projects/{project}/databases/(default)/documents"
    request = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
