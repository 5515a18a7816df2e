"""The harness's functions-framework runner: ready without a line in the function's log, stopped whole."""

from __future__ import annotations

import os

import pytest

from channelkit.testing.harness import FunctionsFrameworkProcess, port_open, post, wait_until
from support.webhook_testing import ROOT, SOURCE


def test_ready_leaves_nothing_in_the_webhook_log_and_stop_frees_the_port(tmp_path):
    env = dict(os.environ, CHANNELKIT_STORE=f"sqlite:///{tmp_path / 'channels.db'}")
    with FunctionsFrameworkProcess(
        "webhook", SOURCE, env=env, log_path=tmp_path / "w.log", cwd=ROOT
    ) as server:
        assert "request refused" not in server.output()
        assert post(server.url, method="GET")[0] == 405
        # The log shows a refusal once there is one: the probe's silence is not a deaf log.
        wait_until(lambda: "request refused" in server.output(), 30, 0.05, "the refusal in the log")
    assert server.process is None
    wait_until(lambda: not port_open(server.port), 30, 0.05, f"port {server.port} to close")


def test_a_function_that_cannot_start_is_reported_with_the_end_of_its_log(tmp_path):
    missing = tmp_path / "nowhere.py"
    server = FunctionsFrameworkProcess("webhook", missing, log_path=tmp_path / "w.log", cwd=ROOT)
    with pytest.raises(RuntimeError, match="functions-framework --target=webhook exited") as failure:
        with server:
            pass
    assert str(missing) in str(failure.value)  # functions-framework names the missing source
