"""Start and stop Google's Firestore and Pub/Sub emulators (the real ones, via gcloud).

Used by channelkit's own tests and local run, and by users' tests. Each
emulator runs in its own process group: SIGTERM to the gcloud wrapper alone
would leave its Java child running, so ``stop()`` signals the whole group.
Its output goes to a temporary directory of its own, removed by ``stop()``
unless the start failed (the error names the log). The reliability suite's
outage also kills one (``kill()``) and brings it back from an ``export()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import TypedDict

# free_port and stop_process_group live in the harness now; still importable from here, as before.
from channelkit.testing.harness.loopback import free_port, port_open, post
from channelkit.testing.harness.processes import stop_process_group
from channelkit.testing.harness.waiting import wait_until

__all__ = [
    "KINDS",
    "Emulator",
    "EmulatorError",
    "free_port",
    "gcloud_available",
    "reset_firestore",
    "stop_process_group",
]


class _Kind(TypedDict):
    command: list[str]
    ready: str
    env: str


KINDS: dict[str, _Kind] = {
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
        self._pump_thread: threading.Thread | None = None
        self._log_dir: Path | None = None  # a directory of this run's own, removed by stop()
        self._keep_log = False  # kept after a failed start: the error names it

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment variable that points client libraries at this emulator."""
        return {KINDS[self.kind]["env"]: self.host_port}

    @property
    def log_path(self) -> str:
        """The emulator's output ("" before ``start``); removed by ``stop`` unless the start failed."""
        return str(self._log_dir / "emulator.log") if self._log_dir else ""

    def start(self, timeout: float = 120.0, *, import_data: str | None = None) -> Emulator:
        """Start and wait for the ready line; EmulatorError if it does not come.

        ``import_data``: the metadata file of an ``export`` to load (Firestore), to bring a
        killed emulator back with the data it held, as real Firestore keeps committed writes.
        """
        if not gcloud_available():
            raise EmulatorError("gcloud is not on PATH: install the Google Cloud SDK")
        spec = KINDS[self.kind]
        command = ["gcloud", *spec["command"], f"--host-port={self.host_port}", "--quiet"]
        if import_data:
            command.append(f"--import-data={import_data}")
        self._ready.clear()
        if self._log_dir is None:  # a restart after ``kill`` goes on writing the same log
            self._log_dir = Path(tempfile.mkdtemp(prefix=f"channelkit-{self.kind}-"))
        process = self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self._pump_thread = threading.Thread(
            target=self._pump, args=(process, self.log_path, spec["ready"]), daemon=True
        )
        self._pump_thread.start()

        def ready() -> bool:
            if self._ready.wait(0.1):
                return True
            if process.poll() is not None:
                self._fail()
                raise EmulatorError(
                    f"{self.kind} emulator exited with {process.returncode}; log: {self.log_path}"
                )
            return False

        try:
            wait_until(ready, timeout, 0, f"the {self.kind} emulator's ready line")
        except TimeoutError:
            self._fail()
            raise EmulatorError(
                f"{self.kind} emulator not ready in {timeout:.0f}s; log: {self.log_path}"
            ) from None
        return self

    def _pump(self, process: subprocess.Popen, log_path: str, ready_line: str) -> None:
        assert process.stdout is not None
        with open(log_path, "a") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if ready_line in line:
                    self._ready.set()

    def _fail(self) -> None:
        """Stop what a failed start left running, and keep the log the error points to."""
        self._keep_log = True
        self.stop()

    def export(self, project: str, directory: str) -> str:
        """Export ``project`` (Firestore) into ``directory``; the path of the export's metadata file."""
        os.makedirs(directory, exist_ok=True)
        before = set(os.listdir(directory))
        body = json.dumps(
            {"database": f"projects/{project}/databases/(default)", "export_directory": directory}
        ).encode()
        url = f"http://{self.host_port}/emulator/v1/projects/{project}:export"
        status, answer = post(url, {"Content-Type": "application/json"}, body, timeout=120)
        if status != 200:
            raise EmulatorError(f"the emulator's export answered {status}: {answer[:300]!r}")
        new = sorted(set(os.listdir(directory)) - before)
        if not new:
            raise EmulatorError("the emulator's export wrote nothing")
        folder = os.path.join(directory, new[-1])
        for name in os.listdir(folder):
            if name.endswith(".overall_export_metadata"):
                return os.path.join(folder, name)
        raise EmulatorError(f"no export metadata in {folder}")

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash would; return once its port is free.

        The log stays for a restart (``start`` again); ``stop`` removes it.
        """
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

        def gone() -> bool:  # the Java child too, and the port free again for a restart on it
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return not port_open(self.port, self.host)
            return False

        with contextlib.suppress(TimeoutError):  # a restart on the port then fails, and says so
            wait_until(gone, 30, 0.05, "the killed emulator to let go of its port")
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=10)
            self._pump_thread = None

    def stop(self) -> None:
        """Stop the whole process group (gcloud wrapper and Java child); remove the log."""
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process)
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=10)  # it ends at the output's end: the log is closed
            self._pump_thread = None
        if self._log_dir is not None and not self._keep_log:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

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
