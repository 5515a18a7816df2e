"""Child processes that stop with everything they started, and a function under functions-framework."""

from __future__ import annotations

import atexit
import os
import pathlib
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping

from channelkit.testing.harness.loopback import free_port, post
from channelkit.testing.harness.waiting import wait_until

__all__ = ["READY_PROBE", "FunctionsFrameworkProcess", "stop_process_group"]


#: A path functions-framework answers itself (404) without calling the function:
#: probing it proves a worker serves HTTP and leaves no line in the function's log.
READY_PROBE = "robots.txt"


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


class FunctionsFrameworkProcess:
    """``functions-framework --target=... --source=...`` on a loopback port, in its own process group.

    As deployed (gunicorn; ``WORKERS`` and ``THREADS`` from ``env``), its output in
    ``log_path``. ``signature_type`` is ``http`` (the default) or ``cloudevent`` (an
    event function, e.g. Pub/Sub-triggered: it takes a CloudEvent, or a Pub/Sub push body). ``env`` is the whole environment of the process (default: ours).
    ``echo`` is called with each line of output as it is written (a terminal's view).
    Stopped by ``stop()`` or on leaving ``with``, and at the latest when our interpreter
    exits: in a session of its own it would otherwise outlive us.
    """

    def __init__(
        self,
        target: str,
        source: str | os.PathLike[str],
        *,
        log_path: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        executable: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        echo: Callable[[str], None] | None = None,
        signature_type: str = "http",
    ):
        if signature_type not in ("http", "cloudevent"):
            raise ValueError(f"signature_type: http or cloudevent, not {signature_type!r}")
        self.signature_type = signature_type
        self.target = target
        self.source = pathlib.Path(source)
        self.log_path = pathlib.Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.executable = str(executable or pathlib.Path(sys.executable).with_name("functions-framework"))
        self.cwd = cwd
        self.echo = echo
        self.process: subprocess.Popen | None = None
        self._stopped = threading.Event()
        self._follower: threading.Thread | None = None

    def start(self) -> FunctionsFrameworkProcess:
        with open(self.log_path, "wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [
                    self.executable,
                    f"--target={self.target}",
                    f"--source={self.source}",
                    "--host=127.0.0.1",
                    f"--port={self.port}",
                    f"--signature-type={self.signature_type}",
                ],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)
        if self.echo is not None:
            self._follower = threading.Thread(target=self._follow, daemon=True)
            self._follower.start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> FunctionsFrameworkProcess:
        """Return once a worker answers; ``RuntimeError`` with the log's end if the process exits."""

        def answers() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(
                    f"functions-framework --target={self.target} exited; "
                    f"the end of its log ({self.log_path}):\n{self.output()[-3000:]}"
                )
            try:
                post(self.url + READY_PROBE, method="GET", timeout=2)
            except OSError:
                return False
            return True

        wait_until(answers, timeout, 0.1, f"functions-framework --target={self.target} on {self.url}")
        return self

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process_group(process, timeout)
            atexit.unregister(self.stop)
        self._stopped.set()
        if self._follower is not None:
            self._follower.join(timeout=5)

    def _follow(self) -> None:
        """Hand each complete line to ``echo`` as it reaches the log, until stopped."""
        assert self.echo is not None
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            pending = ""
            while True:
                stopping = self._stopped.is_set()  # read what is left once more after the stop
                pending += log.read()
                *lines, pending = pending.split("\n")
                for line in lines:
                    self.echo(line + "\n")
                if stopping:
                    if pending:
                        self.echo(pending + "\n")
                    return
                self._stopped.wait(0.1)

    def __enter__(self) -> FunctionsFrameworkProcess:
        try:
            return self.start().wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
