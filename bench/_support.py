"""Shared pieces of ``python -m bench``: the Firestore emulator, a function's server, progress, stats."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
from pathlib import Path

from channelkit.testing.emulators import Emulator
from channelkit.testing.harness import FunctionsFrameworkProcess

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
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


def webhook_process(source: Path, env: dict[str, str], log_path: Path) -> FunctionsFrameworkProcess:
    """Target ``webhook`` of ``source`` under functions-framework (gunicorn, as deployed), on a
    free port, with ``env`` on top of ours; not started."""
    return FunctionsFrameworkProcess(
        "webhook", source, env={**os.environ, **env}, log_path=log_path, cwd=ROOT
    )


def median(values):
    return statistics.median(values) if values else float("nan")


_STAT_FIELDS = {
    "pgrp": 2,
    "session": 3,
}  # after the process name in /proc/PID/stat: state, ppid, pgrp, session


def cpu_seconds(group: int, *, of: str = "pgrp") -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group
    (``of="pgrp"``) or a session (``of="session"``), from /proc."""
    index, total = _STAT_FIELDS[of], 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[index]) == group:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")
