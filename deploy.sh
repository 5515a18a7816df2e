#!/usr/bin/env bash
# Deploy channelkit to Google Cloud: the webhook, renew, sync and renew-worker Cloud Functions
# (2nd gen), the Cloud Scheduler job that runs renewals, the Pub/Sub topics that feed the sync
# and renew-worker functions, Firestore TTL, log-based metrics for alerting, the Secret Manager
# secret holding the key of stored user credentials, and an optional Pub/Sub topic for
# notifications.
# Run ./deploy.sh --help for every setting. Safe to run again: it updates what exists.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=${0##*/}

usage() {
  cat <<EOF
Usage: $PROG [options]

Deploys channelkit to a Google Cloud project with gcloud:
  1. enables the APIs it needs (Cloud Functions, Cloud Run, Cloud Build, Artifact
     Registry, Cloud Scheduler, Firestore, IAM; Pub/Sub and Eventarc unless both
     --no-sync-function and --no-fanout; Secret Manager unless --no-credentials-key;
     Cloud Logging unless --no-metrics; Pub/Sub when a topic is set);
  2. creates the Firestore database (Native mode) if the project has none;
  3. creates a runtime service account for the functions (read/write Firestore,
     publish to the topics);
  4. creates the Secret Manager secret that holds CHANNELKIT_CREDENTIALS_KEY (the key
     that encrypts stored user OAuth credentials), with a freshly generated key, if it
     does not exist (an existing secret is never replaced or given a new version), and
     lets the runtime service account read that secret (and no other);
  5. creates the Pub/Sub topics: the sync topic (unless --no-sync-function), the renew
     topic (unless --no-fanout) and the notification topic when one is configured; the
     runtime account may publish to them;
  6. deploys the sync function (unless --no-sync-function): 2nd gen, python312,
     triggered by each message on the sync topic (a CloudEvent), retried while it
     fails (--retry), NOT public: a trigger service account of its own may invoke it
     (and nothing else). It runs the syncs of --sync subscriptions. Then the
     renew-worker function (unless --no-fanout), the same way on the renew
     topic with its own trigger account (channelkit-renew-trigger): a renewal run
     renews CHANNELKIT_RENEW_INLINE due channels itself and publishes the rest there,
     a few hundred subscriptions to a message (the renew function gets the topic as
     CHANNELKIT_RENEW_TOPIC); a shard whose worker failed is redelivered;
  7. deploys the webhook function: 2nd gen, python312, HTTP, public (Google's
     push delivery cannot authenticate; every request is checked against its
     stored channel instead), with CHANNELKIT_SYNC_TOPIC set: it publishes "sync
     subscription S" there instead of syncing inside its requests (deployed after
     the sync function: a message on a topic nobody subscribes to is lost);
  8. deploys the renew function: 2nd gen, python312, HTTP, NOT public;
     every function gets the secret's latest version as CHANNELKIT_CREDENTIALS_KEY;
  9. creates a scheduler service account, lets it invoke the renew function
     (and nothing else), and creates or updates a Cloud Scheduler job that
     calls the renew function with an OIDC token for that account;
 10. enables Firestore TTL on 'expireAt' for the channel collection group and
     the 'messages' collection group (old records delete themselves);
 11. creates or updates three log-based metrics on the health line that each renewal
     run logs (subscriptions suspended, subscriptions expired, renewals failed in the
     run), for Cloud Monitoring alerts: PREFIX/suspended_subscriptions,
     PREFIX/expired_subscriptions, PREFIX/renewal_failures (see --metric-prefix);
 12. prints the webhook URL to use as a channel address, and the next command.

Each function is staged in its own build directory, as gcloud wants it:
main.py (functions/webhook.py, renew.py, sync.py or renew_worker.py), the
channelkit package (lib/channelkit) and requirements.txt. The repository is
never modified.

Options (each can also be set by the environment variable shown; a flag wins):
  --project ID               CHANNELKIT_PROJECT      default: gcloud config get-value project
  --region REGION            CHANNELKIT_REGION       default: gcloud config get-value functions/region,
                                                     else us-central1
  --webhook-name NAME        CHANNELKIT_WEBHOOK_NAME default: channelkit-webhook
  --renew-name NAME          CHANNELKIT_RENEW_NAME   default: channelkit-renew
  --job-name NAME            CHANNELKIT_JOB_NAME     default: channelkit-renew (Cloud Scheduler job)
  --memory SIZE              CHANNELKIT_MEMORY       default: 256Mi (every function)
  --max-instances N          CHANNELKIT_MAX_INSTANCES default: 100 (webhook)
  --concurrency N            CHANNELKIT_CONCURRENCY  default: 80 (webhook: notifications one instance
                                                     serves at once, 1 to 1000; its gunicorn gets as
                                                     many threads, THREADS=N)
  --cpu N                    CHANNELKIT_CPU          default: 1 (webhook vCPUs: 1, 2, 4, 6 or 8; a
                                                     fraction like 0.5 only with --concurrency 1)
  --renew-max-instances N    CHANNELKIT_RENEW_MAX_INSTANCES default: 2
  --renew-timeout DURATION   CHANNELKIT_RENEW_TIMEOUT default: 540s (one renewal run)
  --sync-name NAME           CHANNELKIT_SYNC_NAME    default: channelkit-sync (the sync function)
  --sync-topic TOPIC         CHANNELKIT_SYNC_TOPIC   default: channelkit-sync (a topic name, or
                                                     projects/PROJECT/topics/T of this project;
                                                     created if missing)
  --sync-max-instances N     CHANNELKIT_SYNC_MAX_INSTANCES default: 20
  --sync-trigger-sa NAME|EMAIL CHANNELKIT_SYNC_TRIGGER_SA default: channelkit-sync-trigger (created
                                                     if missing): Pub/Sub pushes to the sync
                                                     function as this account, the only one
                                                     that may invoke it
  --no-sync-function         CHANNELKIT_SYNC_FUNCTION=0  neither the sync function nor its topic:
                                                     the webhook syncs inside its requests
                                                     (within CHANNELKIT_SYNC_BUDGET)
  --renew-topic TOPIC        CHANNELKIT_RENEW_TOPIC  default: channelkit-renew (a topic of the
                                                     project, by name or projects/P/topics/T:
                                                     renewal shards for the renew-worker
                                                     function; created if missing)
  --worker-name NAME         CHANNELKIT_WORKER_NAME  default: channelkit-renew-worker
  --worker-max-instances N   CHANNELKIT_WORKER_MAX_INSTANCES default: 10 (renew-worker)
  --trigger-sa NAME|EMAIL    CHANNELKIT_TRIGGER_SA   default: channelkit-renew-trigger (created if
                                                     missing; may invoke the renew-worker only)
  --no-fanout                CHANNELKIT_FANOUT=0     no topic, no renew-worker: every run renews
                                                     all it can within its budget itself
  --schedule CRON            CHANNELKIT_SCHEDULE     default: "0 * * * *" (hourly)
  --time-zone TZ             CHANNELKIT_TIME_ZONE    default: Etc/UTC
  --renew-before SECONDS     CHANNELKIT_RENEW_BEFORE default: 10800 (renew channels that expire
                                                     within 3 hours; keep it well above the
                                                     schedule's interval)
  --handler MODULE:FUNCTION  CHANNELKIT_HANDLER      your handler, called for each notification
                                                     (default: none, notifications are logged)
  --handler-source PATH      CHANNELKIT_HANDLER_SOURCE  a file or directory holding the handler's
                                                     module, copied next to main.py
  --requirements FILE        CHANNELKIT_EXTRA_REQUIREMENTS  extra requirements for your handler,
                                                     appended to requirements.txt
  --pubsub-topic TOPIC       CHANNELKIT_PUBSUB_TOPIC a topic name or projects/P/topics/T: publish
                                                     each notification there (created if missing)
  --collection NAME          CHANNELKIT_COLLECTION   default: channels (Firestore collection)
  --firestore-location LOC   CHANNELKIT_FIRESTORE_LOCATION  where to create the Firestore database
                                                     if there is none (default: the region)
  --runtime-sa NAME|EMAIL    CHANNELKIT_RUNTIME_SA   default: channelkit-runtime (created if missing)
  --scheduler-sa NAME|EMAIL  CHANNELKIT_SCHEDULER_SA default: channelkit-scheduler (created if missing)
  --metric-prefix PREFIX     CHANNELKIT_METRIC_PREFIX default: channelkit (the log-based metrics'
                                                     names start with PREFIX/; give each
                                                     deployment in a project its own)
  --no-metrics               CHANNELKIT_METRICS=0    do not create or update the log-based metrics
  --credentials-secret NAME  CHANNELKIT_CREDENTIALS_SECRET  default: channelkit-credentials-key (the
                                                     Secret Manager secret mounted as
                                                     CHANNELKIT_CREDENTIALS_KEY; created with a new
                                                     key if missing, never replaced)
  --no-credentials-key       neither create nor mount the secret (stored user credentials
                             then cannot be used: docs/deploy.md, "The credentials key")
  --env KEY=VALUE            more environment variables for every function (repeatable), e.g.
                             CHANNELKIT_CHANGE_HANDLER=myapp.sync:on_changes
  --build-dir DIR            CHANNELKIT_BUILD_DIR    stage here and keep it (default: a temporary
                                                     directory, removed at the end)
  --dry-run                  print every gcloud command instead of running it (only the local
                             gcloud configuration is read, for the defaults)
  -h, --help                 this help

Examples:
  ./deploy.sh --project my-project --region europe-west1
  CHANNELKIT_HANDLER=myapp.hooks:handle ./deploy.sh --handler-source ./myapp --pubsub-topic changes
  ./deploy.sh --handler-source ./myapp --env CHANNELKIT_CHANGE_HANDLER=myapp.sync:on_changes
  ./deploy.sh --dry-run
EOF
}

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }

# -- settings: flag, else environment, else default ---------------------------------------

PROJECT=${CHANNELKIT_PROJECT:-}
REGION=${CHANNELKIT_REGION:-}
WEBHOOK_NAME=${CHANNELKIT_WEBHOOK_NAME:-channelkit-webhook}
RENEW_NAME=${CHANNELKIT_RENEW_NAME:-channelkit-renew}
JOB_NAME=${CHANNELKIT_JOB_NAME:-channelkit-renew}
MEMORY=${CHANNELKIT_MEMORY:-256Mi}
MAX_INSTANCES=${CHANNELKIT_MAX_INSTANCES:-100}
CONCURRENCY=${CHANNELKIT_CONCURRENCY:-80}
CPU=${CHANNELKIT_CPU:-1}
RENEW_MAX_INSTANCES=${CHANNELKIT_RENEW_MAX_INSTANCES:-2}
RENEW_TIMEOUT=${CHANNELKIT_RENEW_TIMEOUT:-540s}
SYNC_FUNCTION=${CHANNELKIT_SYNC_FUNCTION:-1}
SYNC_NAME=${CHANNELKIT_SYNC_NAME:-channelkit-sync}
SYNC_TOPIC=${CHANNELKIT_SYNC_TOPIC:-channelkit-sync}
SYNC_MAX_INSTANCES=${CHANNELKIT_SYNC_MAX_INSTANCES:-20}
SYNC_TRIGGER_SA=${CHANNELKIT_SYNC_TRIGGER_SA:-channelkit-sync-trigger}
RENEW_TOPIC=${CHANNELKIT_RENEW_TOPIC:-channelkit-renew}
WORKER_NAME=${CHANNELKIT_WORKER_NAME:-channelkit-renew-worker}
WORKER_MAX_INSTANCES=${CHANNELKIT_WORKER_MAX_INSTANCES:-10}
TRIGGER_SA=${CHANNELKIT_TRIGGER_SA:-channelkit-renew-trigger}
FANOUT=${CHANNELKIT_FANOUT:-1}
SCHEDULE=${CHANNELKIT_SCHEDULE:-0 * * * *}
TIME_ZONE=${CHANNELKIT_TIME_ZONE:-Etc/UTC}
RENEW_BEFORE=${CHANNELKIT_RENEW_BEFORE:-10800}
HANDLER=${CHANNELKIT_HANDLER:-}
HANDLER_SOURCE=${CHANNELKIT_HANDLER_SOURCE:-}
EXTRA_REQUIREMENTS=${CHANNELKIT_EXTRA_REQUIREMENTS:-}
TOPIC=${CHANNELKIT_PUBSUB_TOPIC:-}
COLLECTION=${CHANNELKIT_COLLECTION:-channels}
FIRESTORE_LOCATION=${CHANNELKIT_FIRESTORE_LOCATION:-}
RUNTIME_SA=${CHANNELKIT_RUNTIME_SA:-channelkit-runtime}
SCHEDULER_SA=${CHANNELKIT_SCHEDULER_SA:-channelkit-scheduler}
BUILD_DIR=${CHANNELKIT_BUILD_DIR:-}
METRIC_PREFIX=${CHANNELKIT_METRIC_PREFIX:-channelkit}
METRICS=${CHANNELKIT_METRICS:-1}
CREDENTIALS_SECRET=${CHANNELKIT_CREDENTIALS_SECRET:-channelkit-credentials-key}
CREDENTIALS_KEY_SECRET=1
EXTRA_ENV=()
DRY_RUN=0

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
  flag=$1
  value=
  if [[ $flag == --*=* ]]; then
    value=${flag#*=}
    flag=${flag%%=*}
    set -- "$flag" "$value" "${@:2}"
  fi
  case $flag in
    -h|--help) usage; exit 0 ;;
    --dry-run) DRY_RUN=1; shift; continue ;;
    --no-metrics) METRICS=0; shift; continue ;;
    --no-credentials-key) CREDENTIALS_KEY_SECRET=0; shift; continue ;;
    --no-sync-function) SYNC_FUNCTION=0; shift; continue ;;
    --no-fanout) FANOUT=0; shift; continue ;;
    --project|--region|--webhook-name|--renew-name|--job-name|--memory|--max-instances|\
    --renew-max-instances|--renew-timeout|--schedule|--time-zone|--renew-before|--handler|\
    --handler-source|--requirements|--pubsub-topic|--collection|--firestore-location|\
    --runtime-sa|--scheduler-sa|--env|--build-dir|--metric-prefix|--credentials-secret|\
    --sync-name|--sync-topic|--sync-max-instances|--sync-trigger-sa|\
    --renew-topic|--worker-name|--worker-max-instances|--trigger-sa|\
    --concurrency|--cpu)
      need_value "$@" ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  case $flag in
    --project) PROJECT=$2 ;;
    --region) REGION=$2 ;;
    --webhook-name) WEBHOOK_NAME=$2 ;;
    --renew-name) RENEW_NAME=$2 ;;
    --job-name) JOB_NAME=$2 ;;
    --memory) MEMORY=$2 ;;
    --max-instances) MAX_INSTANCES=$2 ;;
    --concurrency) CONCURRENCY=$2 ;;
    --cpu) CPU=$2 ;;
    --renew-max-instances) RENEW_MAX_INSTANCES=$2 ;;
    --renew-timeout) RENEW_TIMEOUT=$2 ;;
    --schedule) SCHEDULE=$2 ;;
    --time-zone) TIME_ZONE=$2 ;;
    --renew-before) RENEW_BEFORE=$2 ;;
    --handler) HANDLER=$2 ;;
    --handler-source) HANDLER_SOURCE=$2 ;;
    --requirements) EXTRA_REQUIREMENTS=$2 ;;
    --pubsub-topic) TOPIC=$2 ;;
    --collection) COLLECTION=$2 ;;
    --firestore-location) FIRESTORE_LOCATION=$2 ;;
    --runtime-sa) RUNTIME_SA=$2 ;;
    --scheduler-sa) SCHEDULER_SA=$2 ;;
    --env) EXTRA_ENV+=("$2") ;;
    --build-dir) BUILD_DIR=$2 ;;
    --metric-prefix) METRIC_PREFIX=$2 ;;
    --credentials-secret) CREDENTIALS_SECRET=$2 ;;
    --sync-name) SYNC_NAME=$2 ;;
    --sync-topic) SYNC_TOPIC=$2 ;;
    --sync-max-instances) SYNC_MAX_INSTANCES=$2 ;;
    --sync-trigger-sa) SYNC_TRIGGER_SA=$2 ;;
    --renew-topic) RENEW_TOPIC=$2 ;;
    --worker-name) WORKER_NAME=$2 ;;
    --worker-max-instances) WORKER_MAX_INSTANCES=$2 ;;
    --trigger-sa) TRIGGER_SA=$2 ;;
  esac
  shift 2
done

command -v gcloud >/dev/null || die "gcloud is not on PATH: install the Google Cloud SDK"

if [[ -z $PROJECT ]]; then
  PROJECT=$(gcloud config get-value project 2>/dev/null || true)
fi
[[ -n $PROJECT ]] || die "no project: pass --project or run 'gcloud config set project ID'"
if [[ -z $REGION ]]; then
  REGION=$(gcloud config get-value functions/region 2>/dev/null || true)
  REGION=${REGION:-us-central1}
fi
FIRESTORE_LOCATION=${FIRESTORE_LOCATION:-$REGION}

# -- validation: fail before touching the project ------------------------------------------

[[ $PROJECT =~ ^[a-z][a-z0-9:.-]*[a-z0-9]$ ]] || die "invalid project id: $PROJECT"
[[ $REGION =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "invalid region: $REGION"
for name in "$WEBHOOK_NAME" "$RENEW_NAME" "$SYNC_NAME"; do
  [[ $name =~ ^[a-z][a-z0-9-]{0,61}[a-z0-9]$ ]] \
    || die "invalid function name '$name': lowercase letters, digits and '-', up to 63"
done
[[ $WEBHOOK_NAME != "$RENEW_NAME" ]] || die "the webhook and renew functions need different names"
[[ $SYNC_FUNCTION == 0 || ($SYNC_NAME != "$WEBHOOK_NAME" && $SYNC_NAME != "$RENEW_NAME") ]] \
  || die "the sync function needs a name of its own (--sync-name)"
[[ $SYNC_FUNCTION == 0 || $SYNC_FUNCTION == 1 ]] \
  || die "CHANNELKIT_SYNC_FUNCTION must be 0 or 1, got '$SYNC_FUNCTION'"
[[ $SYNC_MAX_INSTANCES =~ ^[1-9][0-9]*$ ]] || die "--sync-max-instances must be a positive integer"
[[ $FANOUT == 0 || $FANOUT == 1 ]] || die "CHANNELKIT_FANOUT must be 0 or 1, got '$FANOUT'"
if [[ $FANOUT == 1 ]]; then
  [[ $WORKER_NAME =~ ^[a-z][a-z0-9-]{0,61}[a-z0-9]$ ]] \
    || die "invalid function name '$WORKER_NAME': lowercase letters, digits and '-', up to 63"
  [[ $WORKER_NAME != "$WEBHOOK_NAME" && $WORKER_NAME != "$RENEW_NAME" \
    && ($SYNC_FUNCTION == 0 || $WORKER_NAME != "$SYNC_NAME") ]] \
    || die "the renew-worker function needs a name of its own (--worker-name)"
  [[ $WORKER_MAX_INSTANCES =~ ^[1-9][0-9]*$ ]] || die "--worker-max-instances must be a positive integer"
  if [[ $RENEW_TOPIC != projects/* ]]; then
    RENEW_TOPIC="projects/$PROJECT/topics/$RENEW_TOPIC"
  fi
  [[ $RENEW_TOPIC =~ ^projects/[^/]+/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$ ]] \
    || die "invalid --renew-topic: $RENEW_TOPIC"
  # A function's --trigger-topic names a topic of its own project.
  [[ $RENEW_TOPIC == "projects/$PROJECT/topics/"* ]] \
    || die "--renew-topic must be a topic of project $PROJECT (the worker's trigger), got $RENEW_TOPIC"
fi
[[ $JOB_NAME =~ ^[A-Za-z0-9_-]{1,500}$ ]] || die "invalid scheduler job name: $JOB_NAME"
[[ $MAX_INSTANCES =~ ^[1-9][0-9]*$ ]] || die "--max-instances must be a positive integer"
[[ $RENEW_MAX_INSTANCES =~ ^[1-9][0-9]*$ ]] || die "--renew-max-instances must be a positive integer"
[[ $CONCURRENCY =~ ^[1-9][0-9]{0,3}$ && $CONCURRENCY -le 1000 ]] \
  || die "--concurrency must be a whole number from 1 to 1000, got '$CONCURRENCY'"
# vCPUs: a fraction below 1 (0.5, .25), or a whole number 1, 2, 4, 6 or 8 (what Cloud Run offers).
[[ $CPU =~ ^(0?\.[0-9]*[1-9][0-9]*|[12468])$ ]] \
  || die "--cpu must be a fraction below 1 (like 0.5) or 1, 2, 4, 6 or 8, got '$CPU'"
[[ $CONCURRENCY == 1 || $CPU != *.* ]] \
  || die "--cpu $CPU is below 1: Cloud Run serves more than one request at a time (--concurrency $CONCURRENCY) only with at least 1 vCPU"
[[ $RENEW_BEFORE =~ ^[0-9]+$ ]] || die "--renew-before must be a number of seconds"
[[ $RENEW_TIMEOUT =~ ^[0-9]+s$ ]] || die "--renew-timeout must be seconds, like 540s"
[[ $(wc -w <<<"$SCHEDULE") -eq 5 ]] || die "--schedule must be a cron expression of 5 fields"
[[ $COLLECTION =~ ^[A-Za-z0-9_-]+$ ]] || die "invalid collection: $COLLECTION"
[[ $METRICS == 0 || $METRICS == 1 ]] || die "CHANNELKIT_METRICS must be 0 or 1, got '$METRICS'"
# A metric id may be 100 characters: the prefix, '/', and the longest name below (23).
[[ $METRIC_PREFIX =~ ^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$ && ${#METRIC_PREFIX} -le 76 ]] \
  || die "invalid --metric-prefix '$METRIC_PREFIX': letters, digits, '_', '.', '-' and '/' between them, up to 76"
if [[ -n $HANDLER ]]; then
  [[ $HANDLER =~ ^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$ ]] \
    || die "--handler must be package.module:function, got '$HANDLER'"
fi
if [[ -n $HANDLER_SOURCE && ! -e $HANDLER_SOURCE ]]; then
  die "--handler-source not found: $HANDLER_SOURCE"
fi
if [[ -n $EXTRA_REQUIREMENTS && ! -f $EXTRA_REQUIREMENTS ]]; then
  die "--requirements file not found: $EXTRA_REQUIREMENTS"
fi
if [[ -n $TOPIC ]]; then
  if [[ $TOPIC != projects/* ]]; then
    TOPIC="projects/$PROJECT/topics/$TOPIC"
  fi
  [[ $TOPIC =~ ^projects/[^/]+/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$ ]] \
    || die "invalid Pub/Sub topic: $TOPIC"
fi
# The trigger takes a topic of this project, by its id.
if [[ $SYNC_TOPIC == projects/* ]]; then
  [[ $SYNC_TOPIC == "projects/$PROJECT/topics/"* ]] \
    || die "--sync-topic must be a topic of project $PROJECT, got '$SYNC_TOPIC'"
  SYNC_TOPIC=${SYNC_TOPIC#"projects/$PROJECT/topics/"}
fi
[[ $SYNC_TOPIC =~ ^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$ ]] || die "invalid --sync-topic: $SYNC_TOPIC"
SYNC_TOPIC_PATH=projects/$PROJECT/topics/$SYNC_TOPIC
[[ $SYNC_FUNCTION == 0 || $SYNC_TOPIC_PATH != "$TOPIC" ]] \
  || die "the sync topic and the notification topic (--pubsub-topic) must differ"
[[ $FANOUT == 0 || ($RENEW_TOPIC != "$TOPIC" && ($SYNC_FUNCTION == 0 || $RENEW_TOPIC != "$SYNC_TOPIC_PATH")) ]] \
  || die "the renew topic (--renew-topic) must differ from the sync topic and the notification topic"
[[ $CREDENTIALS_SECRET =~ ^[A-Za-z0-9_-]{1,255}$ ]] \
  || die "invalid --credentials-secret '$CREDENTIALS_SECRET': letters, digits, '_' and '-', up to 255"
for pair in "${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}"; do
  # Never echo this one: its value is a secret. It belongs in Secret Manager, not in plain
  # environment variables that every viewer of the function can read.
  [[ $pair != CHANNELKIT_CREDENTIALS_KEY=* ]] || die "--env CHANNELKIT_CREDENTIALS_KEY=...:" \
    "the key belongs in Secret Manager (--credentials-secret), not in a plain variable;" \
    "see docs/deploy.md, \"The credentials key\""
  [[ $pair =~ ^[A-Za-z_][A-Za-z0-9_]*=.*$ ]] || die "--env wants KEY=VALUE, got '$pair'"
  [[ $pair != CHANNELKIT_SYNC_TOPIC=* ]] \
    || die "--env CHANNELKIT_SYNC_TOPIC=...: deploy.sh sets it on the webhook; use --sync-topic"
  [[ $pair != CHANNELKIT_RENEW_TOPIC=* ]] \
    || die "--env CHANNELKIT_RENEW_TOPIC=...: deploy.sh sets it on the renew function; use --renew-topic"
  [[ $pair != THREADS=* ]] || die "--env THREADS=...: the webhook's threads follow --concurrency; set that"
done

# A name alone becomes an account of this project.
sa_email() {
  if [[ $1 == *@* ]]; then printf '%s' "$1"; else printf '%s@%s.iam.gserviceaccount.com' "$1" "$PROJECT"; fi
}
RUNTIME_SA_EMAIL=$(sa_email "$RUNTIME_SA")
SCHEDULER_SA_EMAIL=$(sa_email "$SCHEDULER_SA")
SYNC_TRIGGER_SA_EMAIL=$(sa_email "$SYNC_TRIGGER_SA")
[[ $RUNTIME_SA_EMAIL != "$SCHEDULER_SA_EMAIL" ]] \
  || die "the scheduler needs its own service account (it may invoke the renew function only)"
[[ $SYNC_FUNCTION == 0 || ($SYNC_TRIGGER_SA_EMAIL != "$RUNTIME_SA_EMAIL" \
  && $SYNC_TRIGGER_SA_EMAIL != "$SCHEDULER_SA_EMAIL") ]] \
  || die "the sync trigger needs its own service account (it may invoke the sync function only)"
TRIGGER_SA_EMAIL=$(sa_email "$TRIGGER_SA")
if [[ $FANOUT == 1 ]]; then
  [[ $TRIGGER_SA_EMAIL != "$RUNTIME_SA_EMAIL" && $TRIGGER_SA_EMAIL != "$SCHEDULER_SA_EMAIL" \
    && ($SYNC_FUNCTION == 0 || $TRIGGER_SA_EMAIL != "$SYNC_TRIGGER_SA_EMAIL") ]] \
    || die "the renew-worker's trigger needs its own service account (it may invoke the worker only)"
fi

# -- running gcloud ---------------------------------------------------------------------------

GCLOUD=(gcloud "--project=$PROJECT" --quiet)

# show ARGS...: the command line, quoted so that it can be pasted into a shell.
show() {
  local arg line=''
  for arg in "$@"; do
    if [[ ! $arg =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
      arg="'${arg//\'/\'\\\'\'}'"
    fi
    line+=${line:+ }$arg
  done
  if [[ $DRY_RUN == 1 ]]; then printf '%s\n' "$line"; else printf '+ %s\n' "$line" >&2; fi
}

# run ARGS...: gcloud ARGS (printed; not run on --dry-run). Its output goes to stderr:
# stdout is kept for the summary at the end.
run() {
  show "${GCLOUD[@]}" "$@"
  [[ $DRY_RUN == 1 ]] || "${GCLOUD[@]}" "$@" >&2
}

# query ARGS...: gcloud ARGS, a read whose answer the script needs (never on --dry-run).
query() {
  "${GCLOUD[@]}" "$@"
}

# exists DESCRIBE-ARGS...: 0 when the resource exists, 1 when gcloud says it does not;
# any other failure (auth, permission, network) stops the script with gcloud's message.
# On --dry-run it prints the check and answers "does not exist", so the create is shown.
exists() {
  local err
  if [[ $DRY_RUN == 1 ]]; then
    show "${GCLOUD[@]}" "$@" --format=none
    printf '# (the next command runs only if the check above finds nothing)\n'
    return 1
  fi
  if err=$("${GCLOUD[@]}" "$@" --format=none 2>&1 >/dev/null); then
    return 0
  fi
  if grep -qiE 'NOT_FOUND|not found|does not exist|404' <<<"$err"; then
    return 1
  fi
  printf '%s\n' "$err" >&2
  die "could not check: gcloud $*"
}

# retry ARGS...: run, retried a few times (IAM takes a moment to know a new account).
retry() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if run "$@"; then return 0; fi
    [[ $attempt == 5 ]] && break
    say "retrying in $((attempt * 5))s (a new service account can take a moment to appear)"
    sleep $((attempt * 5))
  done
  die "failed: gcloud $*"
}

ensure_service_account() {  # ensure_service_account EMAIL DISPLAY-NAME
  local email=$1 display=$2
  if exists iam service-accounts describe "$email"; then
    say "service account $email exists"
  else
    [[ $email == *"@$PROJECT.iam.gserviceaccount.com" ]] \
      || die "service account $email does not exist and is not of project $PROJECT: create it first"
    run iam service-accounts create "${email%%@*}" "--display-name=$display"
  fi
}

# -- staging: one build directory per function, the repository left as it is -------------

KEEP_BUILD=1
if [[ -z $BUILD_DIR ]]; then
  KEEP_BUILD=0
  BUILD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/channelkit-deploy.XXXXXX")
  trap 'rm -rf -- "$BUILD_DIR"' EXIT
fi
mkdir -p -- "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)

# channelkit.testing (the simulator) is shipped only if something deployed imports it.
needs_testing() {
  grep -rlqE '^[[:space:]]*(from|import)[[:space:]]+channelkit\.testing|from[[:space:]]+channelkit[[:space:]]+import[[:space:]].*testing' \
    --include='*.py' --exclude-dir=testing "$ROOT/lib/channelkit" "$ROOT/functions"
}

fresh_dir() {  # fresh_dir DIR: an empty directory of ours (one an earlier run left is replaced)
  local dir=$1
  if [[ -e $dir ]]; then
    [[ -f $dir/.channelkit-staged ]] || die "$dir exists and was not staged by $PROG: choose another --build-dir"
    rm -rf -- "$dir"
  fi
  mkdir -p -- "$dir"
  : >"$dir/.channelkit-staged"
}

stage() {  # stage ENTRY-FILE DIR: main.py + channelkit + requirements.txt
  local entry=$1 dir=$2 helper
  fresh_dir "$dir"
  cp -- "$ROOT/functions/$entry" "$dir/main.py"
  # Helper modules beside the entry points (if any) travel with them.
  for helper in "$ROOT"/functions/*.py; do
    case ${helper##*/} in webhook.py|renew.py|sync.py|renew_worker.py) ;; *) cp -- "$helper" "$dir/" ;; esac
  done
  local excludes=(--exclude=__pycache__ --exclude='*.pyc')
  if ! needs_testing; then
    excludes+=(--exclude=channelkit/testing)
  fi
  tar -C "$ROOT/lib" -cf - "${excludes[@]}" channelkit | tar -C "$dir" -xf -
  cp -- "$ROOT/requirements.txt" "$dir/requirements.txt"
  if [[ -n $EXTRA_REQUIREMENTS ]]; then
    { printf '\n# from %s\n' "$EXTRA_REQUIREMENTS"; cat -- "$EXTRA_REQUIREMENTS"; } >>"$dir/requirements.txt"
  fi
  if [[ -n $HANDLER_SOURCE ]]; then
    cp -R -- "${HANDLER_SOURCE%/}" "$dir/"  # the directory itself, not its contents
  fi
  printf '%s\n' '.gcloudignore' '.channelkit-staged' '__pycache__/' '*.pyc' >"$dir/.gcloudignore"
}

WEBHOOK_SRC=$BUILD_DIR/webhook
RENEW_SRC=$BUILD_DIR/renew
SYNC_SRC=$BUILD_DIR/sync
say "staging the functions in $BUILD_DIR"
stage webhook.py "$WEBHOOK_SRC"
stage renew.py "$RENEW_SRC"
[[ $SYNC_FUNCTION == 0 ]] || stage sync.py "$SYNC_SRC"
WORKER_SRC=$BUILD_DIR/renew-worker
[[ $FANOUT == 0 ]] || stage renew_worker.py "$WORKER_SRC"
if [[ -n $HANDLER ]]; then
  top=${HANDLER%%[.:]*}
  if [[ $top != channelkit && ! -e $WEBHOOK_SRC/$top.py && ! -d $WEBHOOK_SRC/$top ]]; then
    say "warning: the handler's package '$top' is not in the staged source: pass --handler-source," \
      "unless --requirements installs it"
  fi
fi

# -- log-based metrics: a config file each, for gcloud logging metrics create/update -----------

# Each renewal run logs one health line (lib/channelkit/logs.py), which Cloud Logging stores with
# its fields in jsonPayload: {"message": "channelkit health", "suspended": 0, "expired": 0,
# "renewalFailures": 0, ...}. A 2nd gen function logs as its Cloud Run service (same name).
# Each metric records one field, once per run, as a distribution: alert when it is above 0.
HEALTH_FILTER="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"$RENEW_NAME\""
HEALTH_FILTER+=' AND jsonPayload.message="channelkit health"'
# metric id (after PREFIX/) | jsonPayload field | description (no '"' or '\')
HEALTH_METRICS=(
  "suspended_subscriptions|suspended|channelkit: subscriptions suspended (renewal gave up on them)"
  "expired_subscriptions|expired|channelkit: subscriptions expired without being renewed"
  "renewal_failures|renewalFailures|channelkit: renewals that failed in the run (suspensions included)"
)
METRICS_DIR=$BUILD_DIR/metrics

metric_config() {  # metric_config FIELD DESCRIPTION: the LogMetric, as JSON
  local quoted_filter=${HEALTH_FILTER//\"/\\\"}
  cat <<EOF
{
  "description": "$2, one value per run of $RENEW_NAME",
  "filter": "$quoted_filter",
  "metricDescriptor": {"metricKind": "DELTA", "valueType": "DISTRIBUTION", "unit": "1"},
  "valueExtractor": "EXTRACT(jsonPayload.$1)",
  "bucketOptions": {"exponentialBuckets": {"numFiniteBuckets": 16, "growthFactor": 2, "scale": 1}}
}
EOF
}

if [[ $METRICS == 1 ]]; then
  fresh_dir "$METRICS_DIR"
  for spec in "${HEALTH_METRICS[@]}"; do
    IFS='|' read -r id field description <<<"$spec"
    metric_config "$field" "$description" >"$METRICS_DIR/$id.json"
  done
fi

# -- environment of the functions -------------------------------------------------------------

join_env() {  # join_env KEY=VALUE...: the value of --set-env-vars
  local out='' pair
  for pair in "$@"; do
    [[ $pair != *,* ]] || die "environment values may not contain ',': $pair"
    out+=${out:+,}$pair
  done
  printf '%s' "$out"
}
COMMON_ENV=("GOOGLE_CLOUD_PROJECT=$PROJECT" "CHANNELKIT_COLLECTION=$COLLECTION")
[[ -z $HANDLER ]] || COMMON_ENV+=("CHANNELKIT_HANDLER=$HANDLER")
[[ -z $TOPIC ]] || COMMON_ENV+=("CHANNELKIT_PUBSUB_TOPIC=$TOPIC")
COMMON_ENV+=("${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}")
WEBHOOK_EXTRA=()
[[ $SYNC_FUNCTION == 0 ]] || WEBHOOK_EXTRA=("CHANNELKIT_SYNC_TOPIC=$SYNC_TOPIC_PATH")
# functions-framework's gunicorn serves THREADS requests at once (its default: 4 per core):
# as many threads as Cloud Run sends the instance requests.
WEBHOOK_ENV=$(join_env "${COMMON_ENV[@]}" "THREADS=$CONCURRENCY" "${WEBHOOK_EXTRA[@]+"${WEBHOOK_EXTRA[@]}"}")
RENEW_ENV_LIST=("${COMMON_ENV[@]}" "CHANNELKIT_RENEW_BEFORE=$RENEW_BEFORE")
# The worker judges "due" as the run does: the same CHANNELKIT_RENEW_BEFORE.
WORKER_ENV=$(join_env "${RENEW_ENV_LIST[@]}")
[[ $FANOUT == 0 ]] || RENEW_ENV_LIST+=("CHANNELKIT_RENEW_TOPIC=$RENEW_TOPIC")
RENEW_ENV=$(join_env "${RENEW_ENV_LIST[@]}")
# One sync may list for most of the sync function's timeout (the webhook's budget is 20 s);
# what is left is retried. An --env CHANNELKIT_SYNC_BUDGET wins.
SYNC_TIMEOUT=540s
SYNC_EXTRA=("CHANNELKIT_SYNC_BUDGET=480")
for pair in "${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}"; do
  [[ $pair != CHANNELKIT_SYNC_BUDGET=* ]] || SYNC_EXTRA=()
done
SYNC_ENV=$(join_env "${COMMON_ENV[@]}" "${SYNC_EXTRA[@]+"${SYNC_EXTRA[@]}"}")

if [[ $DRY_RUN == 1 ]]; then
  printf '# dry run: project %s, region %s; sources staged in %s%s\n' "$PROJECT" "$REGION" "$BUILD_DIR" \
    "$([[ $KEEP_BUILD == 1 ]] || echo ' (removed at exit; keep them with --build-dir)')"
fi

# -- 1. APIs ------------------------------------------------------------------------------------

SERVICES=(cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com
  artifactregistry.googleapis.com cloudscheduler.googleapis.com firestore.googleapis.com
  iam.googleapis.com)
[[ -z $TOPIC && $SYNC_FUNCTION == 0 && $FANOUT == 0 ]] || SERVICES+=(pubsub.googleapis.com)
[[ $SYNC_FUNCTION == 0 && $FANOUT == 0 ]] || SERVICES+=(eventarc.googleapis.com)  # 2nd gen event triggers
[[ $METRICS == 0 ]] || SERVICES+=(logging.googleapis.com)
[[ $CREDENTIALS_KEY_SECRET == 0 ]] || SERVICES+=(secretmanager.googleapis.com)
say "enabling APIs"
run services enable "${SERVICES[@]}"

# -- 2. Firestore database ----------------------------------------------------------------------

say "Firestore database"
if exists firestore databases describe '--database=(default)'; then
  DB_TYPE=$(query firestore databases describe '--database=(default)' '--format=value(type)')
  if [[ $DRY_RUN == 0 && $DB_TYPE != FIRESTORE_NATIVE ]]; then
    die "the project's (default) database is in ${DB_TYPE:-an unknown} mode; channelkit needs Firestore Native mode"
  fi
else
  run firestore databases create '--database=(default)' "--location=$FIRESTORE_LOCATION" --type=firestore-native
fi

# -- 3. runtime identity ------------------------------------------------------------------------

say "runtime service account"
ensure_service_account "$RUNTIME_SA_EMAIL" "channelkit functions (runtime)"
retry projects add-iam-policy-binding "$PROJECT" "--member=serviceAccount:$RUNTIME_SA_EMAIL" \
  --role=roles/datastore.user --condition=None --format=none

# -- 4. the credentials key: a Secret Manager secret, created once, mounted in every function --

# The key that encrypts stored user OAuth credentials at rest (CHANNELKIT_CREDENTIALS_KEY: 32
# random bytes, base64). Only a subshell holds it, with tracing off (even under bash -x): it is
# generated, checked and fed to gcloud on stdin. It is never a command-line argument, never
# printed, never in the command lines that run/show log, never in the script's own variables.
# An existing secret is left exactly as it is: its versions are the keys that stored
# credentials are encrypted with (rotation is manual: docs/deploy.md, "The credentials key").

# new_key: a fresh key on stdout (no newline), or nothing and a failure.
new_key() (
  set +x
  key=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
  [[ $key =~ ^[A-Za-z0-9+/]{43}=$ ]] || exit 1
  printf '%s' "$key"
)

# create_key_secret: gcloud secrets create NAME, the first version's data a new key from stdin.
# The key is checked before gcloud runs: a failed generator must not leave a secret without a
# version. On --dry-run no key is generated: the command is only shown.
create_key_secret() (
  set +x
  local create=(secrets create "$CREDENTIALS_SECRET" --replication-policy=automatic --data-file=-)
  if [[ $DRY_RUN == 1 ]]; then
    printf '# (its data on stdin: a new key, 32 random bytes from /dev/urandom, base64; never shown)\n'
    run "${create[@]}"
    exit 0
  fi
  key=$(new_key) || die "could not generate a key (head -c 32 /dev/urandom | base64)"
  printf '%s' "$key" | run "${create[@]}"
)

SECRET_FLAGS=()
if [[ $CREDENTIALS_KEY_SECRET == 1 ]]; then
  say "credentials key: Secret Manager secret $CREDENTIALS_SECRET"
  if exists secrets describe "$CREDENTIALS_SECRET"; then
    # Left as it is. Without an enabled latest version the functions could not start.
    key_state=missing
    if exists secrets versions describe latest "--secret=$CREDENTIALS_SECRET"; then
      key_state=$(query secrets versions describe latest "--secret=$CREDENTIALS_SECRET" '--format=value(state)')
    fi
    [[ $key_state == ENABLED ]] || die "secret $CREDENTIALS_SECRET exists but its latest version is" \
      "${key_state:-unknown}, not ENABLED; $PROG never adds a version to an existing secret: add one" \
      "(docs/deploy.md, \"The credentials key\"), or pass --credentials-secret or --no-credentials-key"
    say "the secret exists (latest version ENABLED): left as it is"
  else
    create_key_secret
  fi
  retry secrets add-iam-policy-binding "$CREDENTIALS_SECRET" "--member=serviceAccount:$RUNTIME_SA_EMAIL" \
    --role=roles/secretmanager.secretAccessor --condition=None --format=none
  SECRET_FLAGS=("--set-secrets=CHANNELKIT_CREDENTIALS_KEY=$CREDENTIALS_SECRET:latest")
fi

# -- 5. Pub/Sub topics: the sync topic, the renew topic, the notification topic -----------------

TOPICS=()
[[ $SYNC_FUNCTION == 0 ]] || TOPICS+=("$SYNC_TOPIC_PATH")
[[ $FANOUT == 0 ]] || TOPICS+=("$RENEW_TOPIC")
[[ -z $TOPIC ]] || TOPICS+=("$TOPIC")
for topic in "${TOPICS[@]+"${TOPICS[@]}"}"; do
  say "Pub/Sub topic $topic"
  if exists pubsub topics describe "$topic"; then
    say "topic exists"
  else
    run pubsub topics create "$topic"
  fi
  retry pubsub topics add-iam-policy-binding "$topic" "--member=serviceAccount:$RUNTIME_SA_EMAIL" \
    --role=roles/pubsub.publisher --format=none
done

# -- 6. the functions Pub/Sub triggers: before anything publishes to their topics ---------------

# deploy_pubsub_function NAME SOURCE ENTRY-POINT TOPIC-ID TRIGGER-SA MAX-INSTANCES TIMEOUT ENV:
# private, 2nd gen, one message per invocation, redelivered while it fails (--retry); the
# trigger's own service account pushes the messages and is the only one that may invoke it.
deploy_pubsub_function() {
  run functions deploy "$1" --gen2 --runtime=python312 "--region=$REGION" \
    "--source=$2" "--entry-point=$3" "--trigger-topic=$4" --retry \
    "--trigger-service-account=$5" --no-allow-unauthenticated \
    "--run-service-account=$RUNTIME_SA_EMAIL" "--memory=$MEMORY" \
    "--max-instances=$6" "--timeout=$7" "--set-env-vars=$8" \
    "${SECRET_FLAGS[@]+"${SECRET_FLAGS[@]}"}"
  retry functions add-invoker-policy-binding "$1" "--region=$REGION" "--member=serviceAccount:$5"
}

if [[ $SYNC_FUNCTION == 1 ]]; then
  say "sync trigger service account"
  ensure_service_account "$SYNC_TRIGGER_SA_EMAIL" "channelkit sync trigger (invokes $SYNC_NAME)"
  say "deploying the sync function $SYNC_NAME (triggered by $SYNC_TOPIC_PATH)"
  deploy_pubsub_function "$SYNC_NAME" "$SYNC_SRC" sync "$SYNC_TOPIC" "$SYNC_TRIGGER_SA_EMAIL" \
    "$SYNC_MAX_INSTANCES" "$SYNC_TIMEOUT" "$SYNC_ENV"
fi

# The renew-worker: one shard of due subscriptions per message (published by the renew function).
if [[ $FANOUT == 1 ]]; then
  say "renew-worker trigger service account"
  ensure_service_account "$TRIGGER_SA_EMAIL" "channelkit renew-worker trigger (invokes $WORKER_NAME)"
  say "deploying the renew-worker function $WORKER_NAME (triggered by $RENEW_TOPIC)"
  deploy_pubsub_function "$WORKER_NAME" "$WORKER_SRC" renew_worker "${RENEW_TOPIC##*/}" \
    "$TRIGGER_SA_EMAIL" "$WORKER_MAX_INSTANCES" 540s "$WORKER_ENV"
fi

# -- 7, 8. the webhook and renew functions --------------------------------------------------------

say "deploying the webhook function $WEBHOOK_NAME"
run functions deploy "$WEBHOOK_NAME" --gen2 --runtime=python312 "--region=$REGION" \
  "--source=$WEBHOOK_SRC" --entry-point=webhook --trigger-http --allow-unauthenticated \
  "--run-service-account=$RUNTIME_SA_EMAIL" "--memory=$MEMORY" "--cpu=$CPU" \
  "--concurrency=$CONCURRENCY" "--max-instances=$MAX_INSTANCES" --timeout=60s \
  "--set-env-vars=$WEBHOOK_ENV" "${SECRET_FLAGS[@]+"${SECRET_FLAGS[@]}"}"

say "deploying the renew function $RENEW_NAME"
run functions deploy "$RENEW_NAME" --gen2 --runtime=python312 "--region=$REGION" \
  "--source=$RENEW_SRC" --entry-point=renew --trigger-http --no-allow-unauthenticated \
  "--run-service-account=$RUNTIME_SA_EMAIL" "--memory=$MEMORY" \
  "--max-instances=$RENEW_MAX_INSTANCES" "--timeout=$RENEW_TIMEOUT" "--set-env-vars=$RENEW_ENV" \
  "${SECRET_FLAGS[@]+"${SECRET_FLAGS[@]}"}"

function_url() {  # function_url NAME: the function's HTTPS URL (its Cloud Run service URL)
  local url
  url=$("${GCLOUD[@]}" functions describe "$1" --gen2 "--region=$REGION" '--format=value(serviceConfig.uri)')
  [[ $url == https://* ]] || die "no URL for function $1 (got '$url')"
  printf '%s' "$url"
}
if [[ $DRY_RUN == 1 ]]; then
  for name in "$WEBHOOK_NAME" "$RENEW_NAME"; do
    show "${GCLOUD[@]}" functions describe "$name" --gen2 "--region=$REGION" '--format=value(serviceConfig.uri)'
  done
  WEBHOOK_URL="https://$WEBHOOK_NAME-URL.a.run.app"
  RENEW_URL="https://$RENEW_NAME-URL.a.run.app"
else
  WEBHOOK_URL=$(function_url "$WEBHOOK_NAME")
  RENEW_URL=$(function_url "$RENEW_NAME")
fi

# -- 9. the scheduler: its own identity, invoker on the renew function only -----------------------

say "scheduler service account"
ensure_service_account "$SCHEDULER_SA_EMAIL" "channelkit scheduler (invokes $RENEW_NAME)"
retry functions add-invoker-policy-binding "$RENEW_NAME" "--region=$REGION" \
  "--member=serviceAccount:$SCHEDULER_SA_EMAIL"

JOB_FLAGS=("--location=$REGION" "--schedule=$SCHEDULE" "--time-zone=$TIME_ZONE" "--uri=$RENEW_URL"
  --http-method=POST "--oidc-service-account-email=$SCHEDULER_SA_EMAIL"
  "--oidc-token-audience=$RENEW_URL" "--attempt-deadline=$RENEW_TIMEOUT"
  "--description=channelkit: renew watch channels before they expire")
say "Cloud Scheduler job $JOB_NAME ($SCHEDULE, $TIME_ZONE)"
if exists scheduler jobs describe "$JOB_NAME" "--location=$REGION"; then
  run scheduler jobs update http "$JOB_NAME" "${JOB_FLAGS[@]}"
else
  run scheduler jobs create http "$JOB_NAME" "${JOB_FLAGS[@]}"
fi

# -- 10. Firestore TTL -------------------------------------------------------------------------------

for group in "$COLLECTION" messages; do
  say "Firestore TTL on $group.expireAt"
  ttl_check=(firestore indexes fields describe expireAt "--collection-group=$group"
    '--database=(default)' '--format=value(ttlConfig.state)')
  if [[ $DRY_RUN == 1 ]]; then
    show "${GCLOUD[@]}" "${ttl_check[@]}"
    printf '# (the next command runs unless the check above says ACTIVE or CREATING)\n'
    state=
  else
    state=$(query "${ttl_check[@]}")
  fi
  case $state in
    ACTIVE|CREATING) say "TTL already $state on $group.expireAt" ;;
    *) run firestore fields ttls update expireAt "--collection-group=$group" '--database=(default)' \
         --enable-ttl --async ;;
  esac
done

# -- 11. log-based metrics on the renew function's health line ------------------------------------

if [[ $METRICS == 1 ]]; then
  for spec in "${HEALTH_METRICS[@]}"; do
    id=${spec%%|*}
    metric=$METRIC_PREFIX/$id
    config=$METRICS_DIR/$id.json
    say "log-based metric $metric"
    if [[ $DRY_RUN == 1 ]]; then
      printf '# %s:\n' "$config"
      sed 's/^/#   /' -- "$config"
    fi
    if exists logging metrics describe "$metric"; then
      run logging metrics update "$metric" "--config-from-file=$config"
    else
      run logging metrics create "$metric" "--config-from-file=$config"
    fi
  done
fi

# -- 12. what next ------------------------------------------------------------------------------------

if [[ $DRY_RUN == 1 ]]; then
  printf '# dry run: nothing was run\n'
  exit 0
fi
SYNC_SUMMARY="
Syncs of --sync subscriptions: inside the webhook's requests (--no-sync-function).
"
if [[ $SYNC_FUNCTION == 1 ]]; then
  SYNC_SUMMARY="
Syncs of --sync subscriptions: the webhook publishes a request to $SYNC_TOPIC_PATH,
  the function $SYNC_NAME runs it (invoked by $SYNC_TRIGGER_SA_EMAIL only).
"
fi
FANOUT_SUMMARY=
if [[ $FANOUT == 1 ]]; then
  FANOUT_SUMMARY="
  Past CHANNELKIT_RENEW_INLINE due channels a run publishes the rest to $RENEW_TOPIC;
  $WORKER_NAME renews them (at most $WORKER_MAX_INSTANCES instances)."
fi
METRICS_SUMMARY=
if [[ $METRICS == 1 ]]; then
  METRICS_SUMMARY="
Health: each renewal run logs one 'channelkit health' line; the log-based metrics
  logging.googleapis.com/user/$METRIC_PREFIX/{suspended_subscriptions,expired_subscriptions,renewal_failures}
  record it for Cloud Monitoring alerts (docs/deploy.md, \"Health and alerts\").
"
fi
cat <<EOF

channelkit is deployed to $PROJECT ($REGION).

Webhook URL (the address of your watch channels):
  $WEBHOOK_URL

Renewal: Cloud Scheduler job '$JOB_NAME' calls $RENEW_URL
  on '$SCHEDULE' ($TIME_ZONE) as $SCHEDULER_SA_EMAIL; channels expiring within
  ${RENEW_BEFORE}s are renewed. The functions run as $RUNTIME_SA_EMAIL.$FANOUT_SUMMARY
$SYNC_SUMMARY$METRICS_SUMMARY
Next: create a watch (here, on a Drive file), with credentials that can read it:
  GOOGLE_CLOUD_PROJECT=$PROJECT python -m channelkit watch drive v3 files.watch \\
      --param fileId=FILE_ID --address $WEBHOOK_URL
EOF
