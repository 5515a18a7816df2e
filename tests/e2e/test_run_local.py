"""scripts/run-local: the README's run command, end to end.

``--demo`` must run the whole loop (subscribe, sync, changes, renewal across an
expiry, stop) to completion on the real Firestore emulator and on SQLite; the
interactive mode must print its URLs, serve, and stop everything on Ctrl-C,
the emulator's Java child included.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import threading

import pytest

from channelkit.testing.emulators import gcloud_available
from channelkit.testing.harness import port_open, post, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN_LOCAL = ROOT / "scripts" / "run-local"


def _env() -> dict[str, str]:
    """The machine's environment without emulator or channelkit settings (run-local starts its own)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHANNELKIT_") and not k.endswith("_EMULATOR_HOST")
    }


def _require_gcloud() -> None:
    if not gcloud_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("gcloud (the Firestore emulator) is required under CI")
        pytest.skip("gcloud is not installed: the Firestore emulator cannot start")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


def _wait_gone(ports: list[int], emulator_port: int | None = None) -> None:
    """Every port closed and no emulator process left (a killed process lets go a moment later)."""
    emulator_port = emulator_port or ports[-1]
    wait_until(lambda: not [p for p in ports if port_open(p)], 30, 0.1, f"ports {ports} to close")
    wait_until(
        lambda: not _processes_mentioning(f"--port={emulator_port}"),
        30,
        0.1,
        "the emulator's Java child to be gone",
    )


def _run_demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(RUN_LOCAL), "--demo", "--free-ports", *args],
        env=_env(),
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )


def _check_demo_story(out: str) -> None:
    for step in (
        "[1] Subscribe",
        "[2] Sync",
        "[3] Changes",
        "[4] Renewal across an expiry",
        "[5] Stop",
        "[6] Done",
    ):
        assert step in out, f"missing step {step!r} in:\n{out}"
    assert "the handler got message #1, state 'sync'" in out
    assert re.search(r"message #\d+ was delivered 2 times \(answers 200, 200\) and handled 1 time", out)
    assert "is answered 403" in out
    assert "renewed 1:" in out and "'renewed' notification" in out
    assert "it is expired (and was stopped); the new one, made later with the same lifetime, is live" in out
    assert "the next change reaches the handler through" in out
    assert "is stopped; channels live at Google: 0" in out
    assert "The demo is complete" in out and out.rstrip().endswith("stopped.")


def test_the_demo_runs_the_whole_loop_on_the_firestore_emulator():
    _require_gcloud()
    result = _run_demo()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "store = the Firestore emulator on 127.0.0.1:" in out
    _check_demo_story(out)
    port = int(re.search(r"Firestore emulator on 127\.0\.0\.1:(\d+)", out).group(1))
    _wait_gone([port])


def test_the_demo_runs_on_sqlite_without_the_emulator():
    result = _run_demo("--store", "sqlite")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "store = the embedded SQLite store" in result.stdout
    _check_demo_story(result.stdout)


def test_ctrl_c_stops_everything_the_java_child_included():
    _require_gcloud()
    process = subprocess.Popen(
        ["bash", str(RUN_LOCAL), "--free-ports"],
        env=_env(),
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []

    def read():
        for line in process.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any("Ctrl-C stops everything" in line for line in lines) or process.poll() is not None,
            180,
            0.1,
            "run-local to print its URLs",
        )
        out = "".join(lines)
        assert process.poll() is None, out
        urls = dict(re.findall(r"^\s+(webhook|renew|Google)\s+(http://127\.0\.0\.1:\d+/)", out, re.M))
        assert set(urls) == {"webhook", "renew", "Google"}, out
        emulator_port = int(re.search(r"Firestore emulator on 127\.0\.0\.1:(\d+)", out).group(1))
        assert "python -m channelkit watch drive v3 files.watch" in out
        assert f"--address {urls['webhook']}" in out

        status, _ = post(urls["webhook"], {}, b"", method="GET")
        assert status == 405  # the webhook is serving
        ports = [int(u.rsplit(":", 1)[1].strip("/")) for u in urls.values()] + [emulator_port]
        assert all(port_open(p) for p in ports)

        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            returncode = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("run-local did not stop on SIGINT; its output:\n" + "".join(lines))
        assert returncode == 0, "".join(lines)
        reader.join(timeout=10)
        assert "stopped." in "".join(lines)
        assert "warning: something still listens" not in "".join(lines)
        _wait_gone(ports, emulator_port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_wrapper_is_shellcheck_clean():
    shellcheck = pathlib.Path(sys.executable).with_name("shellcheck")
    result = subprocess.run([str(shellcheck), str(RUN_LOCAL)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
