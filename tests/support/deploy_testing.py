"""Helpers for the deploy tests (tests/deploy): deploy.sh against the gcloud recorder,
and the uploaded artifact served by a clean virtualenv's functions-framework."""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
import subprocess
import zipfile

from channelkit.testing.harness import FunctionsFrameworkProcess, free_port
from support.gcloud_recorder import GcloudRecorder

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy.sh"
PROJECT = "channelkit-test"  # the Firestore emulator's project in tests/conftest.py
REGION = "europe-west1"  # set as gcloud's functions/region: deploy.sh must pick it up
TOPIC = "channel-events"
HANDLER = "deployed_handler:handle"
HANDLER_SOURCE = ROOT / "tests" / "deploy" / "deployed_handler.py"
RENEW_BEFORE = "7200"
MAX_INSTANCES = "7"
MEMORY = "512Mi"


def gcloud_env(recorder: GcloudRecorder, config_dir: pathlib.Path, **extra: str) -> dict[str, str]:
    """The machine's environment minus anything that could steer gcloud or deploy.sh,
    plus the recorder's endpoints, a fake token and dead proxies."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CHANNELKIT_", "CLOUDSDK_", "GOOGLE_", "GCLOUD_"))
        and name.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        and not name.endswith("_EMULATOR_HOST")
    }
    env.update(recorder.env(str(config_dir)))
    env.update(extra)
    return env


@dataclasses.dataclass
class Deployment:
    recorder: GcloudRecorder
    runs: list[subprocess.CompletedProcess]
    first_run_requests: int  # how many requests the first run sent
    handler_log: pathlib.Path
    gcloud_config: pathlib.Path  # gcloud's configuration directory: its logs are under logs/
    runtime_sa: str = f"channelkit-runtime@{PROJECT}.iam.gserviceaccount.com"
    scheduler_sa: str = f"channelkit-scheduler@{PROJECT}.iam.gserviceaccount.com"
    sync_trigger_sa: str = f"channelkit-sync-trigger@{PROJECT}.iam.gserviceaccount.com"
    trigger_sa: str = f"channelkit-renew-trigger@{PROJECT}.iam.gserviceaccount.com"

    def requests(self, run: int | None = None, **filters):
        found = self.recorder.find(**filters)
        everything = self.recorder.find()
        if run is None:
            return found
        window = everything[: self.first_run_requests] if run == 0 else everything[self.first_run_requests :]
        ids = {id(r) for r in window}
        return [r for r in found if id(r) in ids]


def run_deploy(
    env: dict[str, str], *args: str, timeout: float = 300, trace: bool = False
) -> subprocess.CompletedProcess:
    """deploy.sh ARGS; with ``trace``, under ``bash -x`` (every command traced on stderr)."""
    return subprocess.run(
        ["bash", *(["-x"] if trace else []), str(DEPLOY), *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        cwd=str(ROOT),
    )


def last_zip(deployment: Deployment, function: str) -> zipfile.ZipFile:
    sent = [
        r
        for r in deployment.requests(api="cloudfunctions")
        if r.method in ("POST", "PATCH")
        and r.json
        and r.json.get("name", "").endswith(f"/functions/{function}")
    ]
    assert sent, f"no deployment of {function} was sent:\n{deployment.recorder.log()}"
    return zipfile.ZipFile(io.BytesIO(deployment.recorder.source_zip(sent[-1].json)))


def artifact_server(
    venv_dir: pathlib.Path,
    source: pathlib.Path,
    target: str,
    env: dict[str, str],
    log_path: pathlib.Path,
    signature_type: str = "http",
) -> FunctionsFrameworkProcess:
    """functions-framework of the clean venv, serving an unzipped source directory (not started)."""
    return FunctionsFrameworkProcess(
        target,
        source / "main.py",
        env=env,
        log_path=log_path,
        executable=venv_dir / "bin" / "functions-framework",
        cwd=source,
        signature_type=signature_type,
    )


def artifact_env(function_env: dict[str, str], firestore_host: str) -> dict[str, str]:
    """What the artifact sees: the variables deploy.sh gave the function, the emulator,
    and no way off the machine. Nothing from the development virtualenv."""
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "FIRESTORE_EMULATOR_HOST": firestore_host,
        "NO_GCE_CHECK": "True",
        "http_proxy": dead,
        "https_proxy": dead,
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "no_proxy": "127.0.0.1,localhost",
        "NO_PROXY": "127.0.0.1,localhost",
        # Renewal talks to Google's APIs: here, to a closed loopback port.
        "CHANNELKIT_API_ROOT": f"http://127.0.0.1:{free_port()}/",
    }
    env.update(function_env)
    return env
