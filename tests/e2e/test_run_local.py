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
import socket
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


def _run_demo(tmp: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    """The demo, with ``tmp`` as its temporary directory: it must leave it empty."""
    return subprocess.run(
        ["bash", str(RUN_LOCAL), "--demo", "--free-ports", *args],
        env=dict(_env(), TMPDIR=str(tmp)),
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


def test_the_demo_runs_the_whole_loop_on_the_firestore_emulator(tmp_path):
    _require_gcloud()
    result = _run_demo(tmp_path)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "store = the Firestore emulator on 127.0.0.1:" in out
    _check_demo_story(out)
    port = int(re.search(r"Firestore emulator on 127\.0\.0\.1:(\d+)", out).group(1))
    _wait_gone([port])
    assert list(tmp_path.iterdir()) == []  # its logs and the emulator's removed


def test_the_demo_runs_on_sqlite_without_the_emulator(tmp_path):
    result = _run_demo(tmp_path, "--store", "sqlite")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "store = the embedded SQLite store" in result.stdout
    _check_demo_story(result.stdout)
    assert list(tmp_path.iterdir()) == []  # its logs and the SQLite file removed


class Interactive:
    """``scripts/run-local --free-ports`` serving until signalled; its output collected as it comes."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, sigint_ignored: bool = False):
        def ignore_sigint() -> None:  # what a shell's ``nohup … &`` does to a background job
            signal.signal(signal.SIGINT, signal.SIG_IGN)

        self.process = subprocess.Popen(
            ["bash", str(RUN_LOCAL), "--free-ports", *args],
            env=env or _env(),
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=ignore_sigint if sigint_ignored else None,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_banner(self) -> str:
        wait_until(
            lambda: "Ctrl-C stops everything" in self.output() or self.process.poll() is not None,
            180,
            0.1,
            "run-local to print its URLs",
        )
        out = self.output()
        assert self.process.poll() is None, out
        return out

    def urls(self) -> dict[str, str]:
        return dict(
            re.findall(r"^\s+(webhook|renew|Google)\s+(http://127\.0\.0\.1:\d+/)", self.output(), re.M)
        )

    def run_dir(self) -> pathlib.Path:
        return pathlib.Path(re.search(r"^\s+logs\s+(\S+)", self.output(), re.M).group(1))

    def stop(self, signum: int) -> None:
        self.process.send_signal(signum)
        try:
            returncode = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"run-local did not stop on {signal.Signals(signum).name}; its output:\n" + self.output()
            )
        self.reader.join(timeout=10)
        assert returncode == 0, self.output()
        assert self.output().rstrip().endswith("stopped."), self.output()
        assert "warning: something still listens" not in self.output()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _ports(urls: dict[str, str]) -> list[int]:
    return [int(u.rsplit(":", 1)[1].strip("/")) for u in urls.values()]


def test_ctrl_c_stops_everything_the_java_child_included():
    _require_gcloud()
    run = Interactive()
    try:
        out = run.wait_for_banner()
        urls = run.urls()
        assert set(urls) == {"webhook", "renew", "Google"}, out
        emulator_port = int(re.search(r"Firestore emulator on 127\.0\.0\.1:(\d+)", out).group(1))
        assert "python -m channelkit watch drive v3 files.watch" in out
        assert f"--address {urls['webhook']}" in out
        # Its readiness probe leaves nothing in the functions' logs (streamed here, prefixed).
        assert "request refused" not in out, out

        status, _ = post(urls["webhook"], {}, b"", method="GET")
        assert status == 405  # the webhook is serving
        ports = _ports(urls) + [emulator_port]
        assert all(port_open(p) for p in ports)

        run.stop(signal.SIGINT)  # what Ctrl-C sends
        _wait_gone(ports, emulator_port)
    finally:
        run.kill()


def test_sigterm_stops_everything_and_removes_what_the_run_wrote(tmp_path):
    env = dict(_env(), TMPDIR=str(tmp_path))  # what it creates, it creates here
    run = Interactive("--store", "sqlite", env=env)
    try:
        run.wait_for_banner()
        run_dir = run.run_dir()
        assert run_dir.parent == tmp_path and (run_dir / "webhook.log").exists()
        ports = _ports(run.urls())
        run.stop(signal.SIGTERM)  # what Cloud Run, containers and service managers send
        assert "SIGTERM: stopping everything" in run.output()
        assert not [p for p in ports if port_open(p)]
        assert list(tmp_path.iterdir()) == []
    finally:
        run.kill()


def test_sigint_stops_it_when_started_with_sigint_ignored():
    run = Interactive("--store", "sqlite", sigint_ignored=True)
    try:
        run.wait_for_banner()
        run_dir = run.run_dir()
        run.stop(signal.SIGINT)
        assert "SIGINT: stopping everything" in run.output()
        assert not run_dir.exists()
    finally:
        run.kill()


def _environ_of_processes_mentioning(text: str) -> list[dict[str, str]]:
    found = []
    for proc in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            if text not in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                continue
            pairs = (proc / "environ").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        found.append(dict(p.split("=", 1) for p in pairs if "=" in p))
    return found


def test_the_webhook_runs_one_worker_with_a_thread_per_concurrent_request():
    """As deploy.sh deploys it: functions-framework's gunicorn reads WORKERS and THREADS, and
    THREADS is the concurrency (--concurrency, else CHANNELKIT_CONCURRENCY, else 80)."""
    run = Interactive("--store", "sqlite", "--concurrency", "3")
    try:
        out = run.wait_for_banner()
        assert "3 threads, as --concurrency" in out
        urls = run.urls()
        webhook = _environ_of_processes_mentioning(f"--port={_ports({'w': urls['webhook']})[0]}")
        assert webhook, out  # the gunicorn arbiter and its worker
        assert all(e.get("THREADS") == "3" and e.get("WORKERS") == "1" for e in webhook), webhook
        renew = _environ_of_processes_mentioning(f"--port={_ports({'r': urls['renew']})[0]}")
        assert renew and not [e for e in renew if "THREADS" in e], renew  # functions-framework's default
        run.stop(signal.SIGTERM)
    finally:
        run.kill()
    helped = subprocess.run(
        ["bash", str(RUN_LOCAL), "--help"], env=_env(), cwd=str(ROOT), capture_output=True, text=True
    )
    assert helped.returncode == 0 and "CHANNELKIT_CONCURRENCY, else 80" in " ".join(helped.stdout.split())
    refused = subprocess.run(
        ["bash", str(RUN_LOCAL), "--concurrency", "0"],
        env=_env(),
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert refused.returncode == 2 and "CHANNELKIT_CONCURRENCY must be a whole number" in refused.stderr


def test_a_failed_run_keeps_its_logs_and_says_where(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = subprocess.run(
            ["bash", str(RUN_LOCAL), "--store", "sqlite", "--webhook-port", str(busy.getsockname()[1])],
            env=dict(_env(), TMPDIR=str(tmp_path)),
            cwd=str(ROOT),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is already in use" in result.stderr
    kept = re.search(r"its logs are kept in (\S+)", result.stderr)
    assert kept and pathlib.Path(kept.group(1)).parent == tmp_path, result.stderr
    assert pathlib.Path(kept.group(1)).is_dir()


def test_the_wrapper_is_shellcheck_clean():
    shellcheck = pathlib.Path(sys.executable).with_name("shellcheck")
    # -x follows the shared venv bootstrap it sources, which is checked with it.
    result = subprocess.run(
        [str(shellcheck), "-x", str(RUN_LOCAL), str(ROOT / "scripts" / "venv.sh")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
