"""Shared pieces of ``python -m bench``: the Firestore emulator, servers, progress, stats."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from channelkit.testing.emulators import Emulator, free_port, stop_process_group

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
FUNCTIONS_FRAMEWORK = str(Path(sys.executable).with_name("functions-framework"))
PROJECT = "channelkit-bench"


def progress(message: str) -> None:
    """One progress line on stderr (overwritten in place on a terminal)."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + message)
    else:
        sys.stderr.write(message + "\n")
    sys.stderr.flush()


def progress_done() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


@contextlib.contextmanager
def firestore_emulator():
    """The emulator named by FIRESTORE_EMULATOR_HOST, or a private one for this run."""
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", PROJECT)
        yield os.environ["FIRESTORE_EMULATOR_HOST"]
        return
    progress("starting the Firestore emulator ...")
    emulator = Emulator("firestore").start()
    saved = {k: os.environ.get(k) for k in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}
    os.environ.update(emulator.env)
    os.environ["GOOGLE_CLOUD_PROJECT"] = PROJECT
    try:
        yield emulator.host_port
    finally:
        emulator.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Server:
    """One function (target ``webhook``) served by functions-framework (gunicorn, as
    deployed) on a free port, in its own process group, its output in ``log_path``."""

    def __init__(self, name: str, source: Path, env: dict[str, str], log_path: Path):
        self.name, self.source = name, source
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = Path(log_path)
        full_env = dict(os.environ)
        full_env.update(env)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                FUNCTIONS_FRAMEWORK,
                "--target=webhook",
                f"--source={source}",
                f"--port={self.port}",
                "--host=127.0.0.1",
            ],
            cwd=str(ROOT),
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            try:
                urllib.request.urlopen(urllib.request.Request(self.url, method="GET"), timeout=2)
                return self
            except urllib.error.HTTPError:
                return self  # any HTTP answer means it is serving
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start; see {self.log_path}")

    def stop(self) -> None:
        stop_process_group(self.process)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def median(values):
    return statistics.median(values) if values else float("nan")
