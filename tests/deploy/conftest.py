"""Fixtures for the deploy tests: the real deploy.sh and the real gcloud against a recorder.

``deployment`` runs ``deploy.sh`` twice (create, then update) against one
``GcloudRecorder``, with gcloud's configuration in a temporary directory and
every proxy pointed at a dead local port: nothing leaves the machine.
``clean_venv`` builds a virtualenv from the uploaded zip's own requirements.txt.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import venv
import zipfile

import pytest

from channelkit.testing.harness import FunctionsFrameworkProcess
from support.deploy_testing import (
    HANDLER,
    HANDLER_SOURCE,
    MAX_INSTANCES,
    MEMORY,
    PROJECT,
    REGION,
    RENEW_BEFORE,
    TOPIC,
    Deployment,
    artifact_server,
    gcloud_env,
    last_zip,
    run_deploy,
)
from support.gcloud_recorder import GcloudRecorder


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: runs gcloud many times, or builds a virtualenv from the package registry"
    )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    """deploy.sh run twice against one recorder: the first run creates, the second updates.
    The first runs under ``bash -x``: the credentials key must not show even in a trace."""
    tmp = tmp_path_factory.mktemp("deploy")
    handler_log = tmp / "handler-calls.jsonl"
    with GcloudRecorder(PROJECT) as recorder:
        env = gcloud_env(
            recorder,
            tmp / "gcloud-config",
            # Settings from the environment (the rest come as flags below).
            CLOUDSDK_FUNCTIONS_REGION=REGION,
            CHANNELKIT_HANDLER=HANDLER,
            CHANNELKIT_RENEW_BEFORE=RENEW_BEFORE,
            CHANNELKIT_MEMORY=MEMORY,
        )
        args = [
            f"--handler-source={HANDLER_SOURCE}",
            "--pubsub-topic",
            TOPIC,
            "--max-instances",
            MAX_INSTANCES,
            "--env",
            f"DEPLOYED_HANDLER_LOG={handler_log}",
        ]
        runs = [run_deploy(env, *args, trace=True)]
        first = len(recorder.find())
        runs.append(run_deploy(env, *args))
        yield Deployment(recorder, runs, first, handler_log, tmp / "gcloud-config")


@pytest.fixture(scope="module")
def webhook_zip(deployment) -> zipfile.ZipFile:
    """The source zip gcloud uploaded in the last deployment of the webhook."""
    return last_zip(deployment, "channelkit-webhook")


@pytest.fixture(scope="module")
def renew_zip(deployment) -> zipfile.ZipFile:
    return last_zip(deployment, "channelkit-renew")


@pytest.fixture(scope="module")
def sync_zip(deployment) -> zipfile.ZipFile:
    return last_zip(deployment, "channelkit-sync")


@pytest.fixture(scope="module")
def worker_zip(deployment) -> zipfile.ZipFile:
    return last_zip(deployment, "channelkit-renew-worker")


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory, webhook_zip) -> pathlib.Path:
    """A fresh virtualenv with only the uploaded zip's requirements.txt installed."""
    directory = tmp_path_factory.mktemp("artifact-venv") / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(directory)
    requirements = directory.parent / "requirements.txt"
    requirements.write_bytes(webhook_zip.read("requirements.txt"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        [str(directory / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"pip install -r requirements.txt failed:\n{result.stderr[-4000:]}"
    return directory


@pytest.fixture
def serve_artifact(tmp_path, clean_venv):
    """``serve_artifact(zip, target, env, signature_type="http")``: unzip and serve it; stopped after the test."""
    servers: list[FunctionsFrameworkProcess] = []

    def serve(
        archive: zipfile.ZipFile, target: str, env: dict[str, str], signature_type: str = "http"
    ) -> FunctionsFrameworkProcess:
        source = tmp_path / f"{target}-source"
        if source.exists():
            shutil.rmtree(source)
        archive.extractall(source)
        server = artifact_server(
            clean_venv, source, target, env, tmp_path / f"{target}.log", signature_type=signature_type
        )
        servers.append(server)
        return server.start().wait_ready()

    yield serve
    for server in servers:
        server.stop()
