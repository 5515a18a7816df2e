"""The body of ``scripts/test``: emulators when none are running, lint and types, then pytest.

Arguments are passed to pytest, except ``--no-lint`` (skip ruff and mypy). The
emulators started here are stopped on exit, also on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from channelkit.testing.emulators import Emulator, EmulatorError

ROOT = Path(__file__).resolve().parent.parent
LINT = (
    ("ruff check", ["-m", "ruff", "check", "."]),
    ("ruff format --check", ["-m", "ruff", "format", "--check", "."]),
    ("mypy", ["-m", "mypy"]),
)


def _say(message: str) -> None:
    print(f"[test] {message}", file=sys.stderr, flush=True)


def _start_missing_emulators(started: list[Emulator]) -> None:
    for kind, variable in (("firestore", "FIRESTORE_EMULATOR_HOST"), ("pubsub", "PUBSUB_EMULATOR_HOST")):
        if os.environ.get(variable):
            _say(f"{kind} emulator: using {variable}={os.environ[variable]}")
            continue
        emulator = Emulator(kind)
        emulator.start()
        started.append(emulator)
        os.environ.update(emulator.env)
        _say(f"{kind} emulator started on {emulator.host_port}")


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)  # also when inherited as ignored (nohup ... &)
    lint = "--no-lint" not in argv
    pytest_args = [arg for arg in argv if arg != "--no-lint"]
    if lint:
        for name, command in LINT:
            _say(name)
            if subprocess.run([sys.executable, *command], cwd=ROOT, check=False).returncode != 0:
                _say(f"{name} failed")
                return 1
    started: list[Emulator] = []
    try:
        _start_missing_emulators(started)
        _say("pytest " + " ".join(pytest_args))
        pytest = subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT)
        try:
            return pytest.wait()
        finally:
            if pytest.poll() is None:  # interrupted: stop pytest before its emulators
                pytest.terminate()
                pytest.wait()
    except EmulatorError as exc:
        _say(f"an emulator could not start: {exc} (gcloud and Java 11+ are needed; see README)")
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    finally:
        for emulator in started:
            emulator.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
