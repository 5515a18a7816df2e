"""A local stand-in for the Google Cloud REST APIs that gcloud calls while deploying.

The real ``gcloud`` talks to it through ``CLOUDSDK_API_ENDPOINT_OVERRIDES_<API>``
(docs/deploy.md, "How deploy.sh is tested"). It records every request exactly as gcloud sent it (method,
path, query, JSON body; the source zip of ``gcloud functions deploy``) and keeps
just enough state to answer like the real services: a resource that was never
created is a 404, a created one can be read back and patched, every
long-running operation is already done, IAM policies are stored and returned.
Secret Manager secrets keep their versions' payloads (``secret_payloads``), and a
function whose secret environment variables name a secret version that is missing,
disabled or not readable by the function's service account is refused, as a
real deployment would fail.

It is not a fake of Google's behaviour beyond that: the tests read what gcloud
*sent*, which is what a real project would receive.

    with GcloudRecorder(project="p") as rec:
        subprocess.run(["gcloud", ...], env={**os.environ, **rec.env(config_dir)})
        rec.find(method="POST", api="cloudfunctions"), rec.uploads

Run it alone to explore what a gcloud command sends::

    python tests/support/gcloud_recorder.py --port 8765
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Every API gcloud touches in deploy.sh, by the name its endpoint override uses.
APIS = (
    "artifactregistry",
    "appengine",
    "cloudbuild",
    "cloudfunctions",
    "cloudresourcemanager",
    "cloudscheduler",
    "firestore",
    "iam",
    "logging",
    "pubsub",
    "run",
    "secretmanager",
    "serviceusage",
    "storage",
)

PROJECT_NUMBER = "123456789012"

#: Runtimes the recorder lists for Cloud Functions 2nd gen.
RUNTIMES = ("python310", "python311", "python312", "python313")


@dataclass
class Recorded:
    """One request as gcloud sent it."""

    method: str
    path: str  # without the /<api> prefix, e.g. /v2/projects/p/locations/l/functions/f
    api: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes = b""
    json: object = None
    status: int = 0

    @property
    def verb(self) -> str:
        """The custom method after ``:`` in the path (``setIamPolicy``), or ``""``."""
        last = self.path.rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else ""

    def __str__(self) -> str:
        query = f"?{urllib.parse.urlencode(self.query)}" if self.query else ""
        return f"{self.method} /{self.api}{self.path}{query} -> {self.status}"


@dataclass
class _State:
    resources: dict[str, dict] = field(default_factory=dict)
    policies: dict[str, dict] = field(default_factory=dict)
    operations: dict[str, dict] = field(default_factory=dict)
    secret_data: dict[str, bytes] = field(default_factory=dict)  # secret version name -> payload


class ApiError(Exception):
    def __init__(self, code: int, status: str, message: str):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def body(self) -> dict:
        return {"error": {"code": self.code, "status": self.status, "message": self.message}}


def _not_found(name: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"Resource '{name}' was not found")


class GcloudRecorder:
    """Records gcloud's REST requests on a loopback port and answers them plausibly."""

    def __init__(self, project: str = "channelkit-test", *, host: str = "127.0.0.1"):
        self.project = project
        self.requests: list[Recorded] = []
        self.uploads: dict[str, bytes] = {}  # storage object name -> the bytes gcloud PUT
        self._state = _State()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                recorder._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GcloudRecorder:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GcloudRecorder:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self, config_dir: str) -> dict[str, str]:
        """Environment for gcloud: every API here, a fake token, no way off the machine."""
        dead = f"http://127.0.0.1:{_dead_port()}"
        env = {
            "CLOUDSDK_CONFIG": str(config_dir),
            "CLOUDSDK_AUTH_ACCESS_TOKEN": "fake-token",
            "CLOUDSDK_CORE_PROJECT": self.project,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "CLOUDSDK_METRICS_ENVIRONMENT": "channelkit-tests",
            # Anything not addressed to the recorder goes to a closed port and fails.
            "https_proxy": dead,
            "HTTPS_PROXY": dead,
            "http_proxy": dead,
            "HTTP_PROXY": dead,
            "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost",
            "GCE_METADATA_HOST": "127.0.0.1:1",
            "GCE_METADATA_IP": "127.0.0.1:1",
        }
        for api in APIS:
            env[f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api.upper()}"] = f"{self.url}/{api}/"
        return env

    # -- queries for tests ---------------------------------------------------------

    def find(
        self,
        method: str | None = None,
        api: str | None = None,
        path: str | None = None,
        verb: str | None = None,
    ) -> list[Recorded]:
        """Recorded requests matching all the given filters (``path`` is a regex search)."""
        with self._lock:
            requests = list(self.requests)
        return [
            r
            for r in requests
            if (method is None or r.method == method)
            and (api is None or r.api == api)
            and (path is None or re.search(path, r.path))
            and (verb is None or r.verb == verb)
        ]

    def writes(self) -> list[Recorded]:
        """Every request that could change something (all but GETs)."""
        return [r for r in self.find() if r.method != "GET"]

    def resource(self, name: str) -> dict | None:
        with self._lock:
            found = self._state.resources.get(name)
            return copy.deepcopy(found)

    def resources(self, prefix: str) -> dict[str, dict]:
        """Every stored resource whose name starts with ``prefix``, by name."""
        with self._lock:
            return {
                name: copy.deepcopy(found)
                for name, found in self._state.resources.items()
                if name.startswith(prefix)
            }

    def policy(self, name: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._state.policies.get(name, {}))

    def secret_payloads(self, secret: str) -> list[bytes]:
        """The payloads of a Secret Manager secret's versions, oldest first (decoded: what
        ``secrets versions access`` would print). The secret is ``projects/P/secrets/ID``."""
        with self._lock:
            versions = [
                (int(name.rsplit("/", 1)[-1]), data)
                for name, data in self._state.secret_data.items()
                if name.startswith(f"{secret}/versions/")
            ]
        return [data for _, data in sorted(versions)]

    def source_zip(self, function_body: dict) -> bytes:
        """The zip gcloud uploaded for a function create/patch request body."""
        source = function_body["buildConfig"]["source"]["storageSource"]
        with self._lock:
            return self.uploads[source["object"]]

    def log(self) -> str:
        """Every recorded request, one per line (for assertion messages)."""
        return "\n".join(str(r) for r in self.find())

    # -- serving -------------------------------------------------------------------

    def _serve(self, http: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        segments = parsed.path.lstrip("/").split("/", 1)
        api = segments[0]
        rest = "/" + (segments[1] if len(segments) > 1 else "")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        query.pop("alt", None)
        body = None
        if raw and "json" in (http.headers.get("Content-Type") or ""):
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        record = Recorded(
            method=http.command,
            path=urllib.parse.unquote(rest),
            api=api,
            query=query,
            headers={k.lower(): v for k, v in http.headers.items()},
            raw=raw,
            json=body,
        )
        try:
            with self._lock:
                status, payload = self._route(record)
        except ApiError as error:
            status, payload = error.code, error.body()
        except Exception as error:  # a recorder bug must show, not hang gcloud
            status, payload = 500, ApiError(500, "INTERNAL", f"recorder: {error!r}").body()
        record.status = status
        with self._lock:
            self.requests.append(record)
        out = json.dumps(payload).encode() if payload is not None else b""
        http.send_response(status)
        http.send_header("Content-Type", "application/json; charset=UTF-8")
        http.send_header("Content-Length", str(len(out)))
        http.end_headers()
        http.wfile.write(out)

    def _route(self, r: Recorded) -> tuple[int, object]:
        if r.api == "upload":
            return self._upload(r)
        handler = getattr(self, f"_api_{r.api}", None)
        if handler is None:
            raise ApiError(404, "NOT_FOUND", f"recorder does not play API {r.api!r}")
        result = handler(r, _strip_version(r.path))
        return (200, result) if not isinstance(result, tuple) else result

    # -- generic REST helpers (called with the lock held) ---------------------------

    def _get(self, name: str) -> dict:
        found = self._state.resources.get(name)
        if found is None:
            raise _not_found(name)
        return copy.deepcopy(found)

    def _put(self, name: str, resource: dict) -> dict:
        resource = copy.deepcopy(resource)
        resource["name"] = resource.get("name") or name
        self._state.resources[name] = resource
        return copy.deepcopy(resource)

    def _create(self, name: str, resource: dict) -> dict:
        if name in self._state.resources:
            raise ApiError(409, "ALREADY_EXISTS", f"Resource '{name}' already exists")
        return self._put(name, resource)

    def _patch(self, name: str, changes: dict, mask: str | None) -> dict:
        current = self._get(name)
        if mask:
            for path in mask.split(","):
                path = _camel(path.strip())
                _set_path(current, path, _get_path(changes, path))
        else:
            current.update(changes)
        return self._put(name, current)

    def _operation(self, parent: str, response: dict | None, type_url: str, metadata=None) -> dict:
        name = f"{parent}/operations/operation-{next(self._ids)}"
        op = {"name": name, "done": True}
        if metadata is not None:
            op["metadata"] = metadata
        if response is not None:
            op["response"] = {"@type": type_url, **response}
        else:
            op["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
        self._state.operations[name] = op
        return op

    def _get_operation(self, name: str) -> dict:
        found = self._state.operations.get(name)
        if found is None:
            raise _not_found(name)
        return copy.deepcopy(found)

    def _iam(self, r: Recorded, resource: str) -> dict:
        if r.verb == "getIamPolicy":
            return self._state.policies.get(resource) or {"version": 1, "etag": "BwAAAAA="}
        if r.verb == "setIamPolicy":
            policy = copy.deepcopy((r.json or {}).get("policy") or {})
            policy["etag"] = f"BwE{next(self._ids):05d}="
            self._state.policies[resource] = policy
            return policy
        if r.verb == "testIamPermissions":
            return {"permissions": (r.json or {}).get("permissions", [])}
        raise ApiError(400, "INVALID_ARGUMENT", f"unknown IAM verb {r.verb!r}")

    def _upload(self, r: Recorded) -> tuple[int, object]:
        if r.method != "PUT":
            raise ApiError(405, "METHOD_NOT_ALLOWED", "uploads are PUT")
        self.uploads[r.path.rsplit("/", 1)[-1]] = r.raw
        return 200, None

    # -- APIs ------------------------------------------------------------------------

    def _api_cloudfunctions(self, r: Recorded, path: str):
        name, verb = _split_verb(path)
        if path.startswith("operations/") or "/operations/" in path:
            return self._get_operation(name)
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/runtimes", name)
        if m:
            return {
                "runtimes": [
                    {"name": rt, "displayName": rt, "environment": "GEN_2", "stage": "GA"} for rt in RUNTIMES
                ]
            }
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/functions", name)
        if m and verb == "generateUploadUrl":
            upload_id = f"upload-{next(self._ids)}"
            return {
                "uploadUrl": f"{self.url}/upload/{upload_id}.zip",
                "storageSource": {"bucket": f"gcf-v2-uploads-{PROJECT_NUMBER}", "object": f"{upload_id}.zip"},
            }
        if m and r.method == "POST":
            self._check_secrets(r.json or {})
            function = self._create(
                f"{name}/{r.query['functionId']}",
                _function_deployed(f"{name}/{r.query['functionId']}", r.json),
            )
            return self._operation(
                name.rsplit("/", 1)[0],
                function,
                "type.googleapis.com/google.cloud.functions.v2.Function",
                _function_metadata(function),
            )
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/functions/([^/]+)", name)
        if m:
            if verb:
                self._get(name)
                return self._iam(r, name)
            if r.method == "GET":
                return self._get(name)
            if r.method == "PATCH":
                current = self._get(name)
                changed = _function_deployed(name, r.json, current)
                self._check_secrets(changed)
                function = self._patch(name, changed, r.query.get("updateMask"))
                function = self._put(name, _function_deployed(name, function))
                return self._operation(
                    name.rsplit("/", 2)[0],
                    function,
                    "type.googleapis.com/google.cloud.functions.v2.Function",
                    _function_metadata(function),
                )
        raise ApiError(404, "NOT_FOUND", f"cloudfunctions: no route for {r.method} {path}")

    def _check_secrets(self, function: dict) -> None:
        """A function's secret environment variables must name a secret version that exists and
        that the function's service account may access (on the secret or the project), or the
        deployment fails, as a real one does. gcloud names the project by its number."""
        service = function.get("serviceConfig") or {}
        account = (
            service.get("serviceAccountEmail") or f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com"
        )
        for variable in service.get("secretEnvironmentVariables") or []:
            project = variable.get("projectId") or self.project
            project = self.project if project == PROJECT_NUMBER else project
            secret = f"projects/{project}/secrets/{variable['secret']}"
            version = self._secret_version(f"{secret}/versions/{variable.get('version') or 'latest'}")
            if self._get(version)["state"] != "ENABLED":
                raise ApiError(400, "FAILED_PRECONDITION", f"{version} is not enabled")
            granted = {
                member
                for policy in (
                    self._state.policies.get(secret),
                    self._state.policies.get(f"projects/{project}"),
                )
                for binding in (policy or {}).get("bindings", [])
                if binding["role"] in ("roles/secretmanager.secretAccessor", "roles/owner")
                for member in binding["members"]
            }
            if f"serviceAccount:{account}" not in granted:
                raise ApiError(
                    403,
                    "PERMISSION_DENIED",
                    f"Permission denied on secret {version} for service account {account}",
                )

    def _api_cloudbuild(self, r: Recorded, path: str):
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/defaultServiceAccount", path)
        if m and r.method == "GET":
            return {
                "name": path,
                "serviceAccountEmail": f"projects/{m.group(1)}/serviceAccounts/"
                f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com",
            }
        raise ApiError(404, "NOT_FOUND", f"cloudbuild: no route for {r.method} {path}")

    def _api_run(self, r: Recorded, path: str):
        name, verb = _split_verb(path)
        if verb in ("getIamPolicy", "setIamPolicy", "testIamPermissions"):
            return self._iam(r, name)
        if r.method == "GET":
            return self._get(name)
        raise ApiError(404, "NOT_FOUND", f"run: no route for {r.method} {path}")

    def _api_serviceusage(self, r: Recorded, path: str):
        name, verb = _split_verb(path)
        if verb in ("batchEnable", "enable"):
            services = (r.json or {}).get("serviceIds") or [name.rsplit("/", 1)[-1]]
            parent = name if verb == "batchEnable" else name.rsplit("/services/", 1)[0]
            for service in services:
                self._put(f"{parent}/services/{service}", {"config": {"name": service}, "state": "ENABLED"})
            return self._operation(
                "",
                {"services": []},
                "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
            )
        if name.startswith("operations/"):
            return self._get_operation(name)
        if r.method == "GET" and "/services/" in name:
            # Every service counts as enabled unless the test removed it.
            return self._state.resources.get(name) or {
                "name": name,
                "config": {"name": name.rsplit("/", 1)[-1]},
                "state": "ENABLED",
            }
        raise ApiError(404, "NOT_FOUND", f"serviceusage: no route for {r.method} {path}")

    def _api_cloudresourcemanager(self, r: Recorded, path: str):
        name, verb = _split_verb(path)
        if verb:
            return self._iam(r, name)
        m = re.fullmatch(r"projects/([^/]+)", name)
        if m and r.method == "GET":
            return {
                "projectId": m.group(1),
                "projectNumber": PROJECT_NUMBER,
                "name": m.group(1),
                "lifecycleState": "ACTIVE",
            }
        raise ApiError(404, "NOT_FOUND", f"cloudresourcemanager: no route for {r.method} {path}")

    def _api_iam(self, r: Recorded, path: str):
        name, verb = _split_verb(path)
        m = re.fullmatch(r"projects/([^/]+)/serviceAccounts", name)
        if m and r.method == "POST":
            account_id = r.json["accountId"]
            email = f"{account_id}@{m.group(1)}.iam.gserviceaccount.com"
            account = dict(r.json.get("serviceAccount") or {})
            account.update(
                {
                    "email": email,
                    "projectId": m.group(1),
                    "uniqueId": str(next(self._ids)),
                    "name": f"projects/{m.group(1)}/serviceAccounts/{email}",
                }
            )
            return self._create(f"projects/{m.group(1)}/serviceAccounts/{email}", account)
        m = re.fullmatch(r"projects/([^/]+)/serviceAccounts/([^/]+)", name)
        if m:
            # gcloud names accounts as projects/-/serviceAccounts/EMAIL: the email decides.
            email = m.group(2)
            project = email.split("@", 1)[1].split(".", 1)[0] if "@" in email else m.group(1)
            name = f"projects/{project}/serviceAccounts/{email}"
            if verb:
                self._get(name)
                return self._iam(r, name)
            if r.method == "GET":
                return self._get(name)
        raise ApiError(404, "NOT_FOUND", f"iam: no route for {r.method} {path}")

    def _api_cloudscheduler(self, r: Recorded, path: str):
        name, verb = _split_verb(path)
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/jobs", name)
        if m and r.method == "POST":
            job = dict(r.json or {})
            return self._create(job["name"], {**job, "state": "ENABLED"})
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)", name)
        if m:
            if r.method == "GET":
                return self._get(name)
            if r.method == "PATCH":
                return self._patch(name, r.json or {}, r.query.get("updateMask"))
        m = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)", name)
        if m and r.method == "GET":
            return {"name": name, "locationId": m.group(2)}
        raise ApiError(404, "NOT_FOUND", f"cloudscheduler: no route for {r.method} {path}")

    def _api_firestore(self, r: Recorded, path: str):
        name, verb = _split_verb(path)
        if "/operations/" in name:
            return self._get_operation(name)
        m = re.fullmatch(r"projects/([^/]+)/databases", name)
        if m and r.method == "POST":
            db_name = f"{name}/{r.query.get('databaseId', '(default)')}"
            database = self._create(db_name, {**(r.json or {}), "uid": "db-uid"})
            return self._operation(
                db_name, database, "type.googleapis.com/google.firestore.admin.v1.Database"
            )
        m = re.fullmatch(r"projects/([^/]+)/databases/([^/]+)", name)
        if m and r.method == "GET":
            return self._get(name)
        m = re.fullmatch(r"projects/([^/]+)/databases/([^/]+)/collectionGroups/([^/]+)/fields/([^/]+)", name)
        if m:
            database = name.split("/collectionGroups/")[0]
            if r.method == "GET":
                return self._state.resources.get(name) or {
                    "name": name,
                    "indexConfig": {
                        "usesAncestorConfig": True,
                        "ancestorField": f"{database}/collectionGroups/__default__/fields/*",
                    },
                }
            if r.method == "PATCH":
                current = self._state.resources.get(name) or {"name": name}
                changes = copy.deepcopy(r.json or {})
                ttl = changes.get("ttlConfig")
                if ttl is not None and "ttlConfig" in (r.query.get("updateMask") or "ttlConfig"):
                    changes["ttlConfig"] = {**ttl, "state": "ACTIVE"} if ttl is not None else None
                current.update({k: v for k, v in changes.items() if v is not None})
                self._put(name, current)
                return self._operation(
                    database,
                    None,
                    "",
                    {
                        "@type": "type.googleapis.com/google.firestore.admin.v1.FieldOperationMetadata",
                        "field": name,
                        "state": "SUCCESSFUL",
                    },
                )
        raise ApiError(404, "NOT_FOUND", f"firestore: no route for {r.method} {path}")

    def _api_pubsub(self, r: Recorded, path: str):
        name, verb = _split_verb(path)
        m = re.fullmatch(r"projects/([^/]+)/topics/([^/]+)", name)
        if m:
            if verb:
                self._get(name)
                return self._iam(r, name)
            if r.method == "PUT":
                return self._create(name, {**(r.json or {}), "name": name})
            if r.method == "GET":
                return self._get(name)
        raise ApiError(404, "NOT_FOUND", f"pubsub: no route for {r.method} {path}")

    def _api_logging(self, r: Recorded, path: str):
        # Log-based metrics. gcloud escapes a '/' inside a metric id as %2F (and sends it
        # encoded once more): the id is unquoted here, and the metric is stored and returned
        # under its plain id ("channelkit/renewal_failures"), as the service names it.
        m = re.fullmatch(r"projects/([^/]+)/metrics", path)
        if m and r.method == "POST":
            metric = dict(r.json or {})
            return self._create(f"{path}/{metric['name']}", _metric_stored(m.group(1), metric))
        m = re.fullmatch(r"projects/([^/]+)/metrics/(.+)", path)
        if m:
            metric_id = urllib.parse.unquote(m.group(2))
            name = f"projects/{m.group(1)}/metrics/{metric_id}"
            if r.method == "GET":
                return self._get(name)
            if r.method == "PUT":
                # projects.metrics.update replaces the whole metric (and would create it).
                current = self._state.resources.get(name) or {}
                metric = {**(r.json or {}), "name": metric_id}
                return self._put(name, _metric_stored(m.group(1), metric, current.get("createTime")))
        raise ApiError(404, "NOT_FOUND", f"logging: no route for {r.method} {path}")

    def _api_secretmanager(self, r: Recorded, path: str):
        # Secrets and their versions. gcloud secrets create --data-file sends two requests: the
        # secret (POST .../secrets?secretId=ID), then its first version (POST ...:addVersion,
        # the payload base64 in payload.data). A version's payload is kept apart from its
        # metadata (secret_payloads), as the service does: only :access returns it.
        name, verb = _split_verb(path)
        m = re.fullmatch(r"projects/([^/]+)/secrets", name)
        if m and r.method == "POST":
            secret = {
                **(r.json or {}),
                "name": f"{name}/{r.query['secretId']}",
                "createTime": "2025-01-01T00:00:00.000000Z",
                "etag": f'"{next(self._ids):05d}"',
            }
            return self._create(secret["name"], secret)
        m = re.fullmatch(r"projects/([^/]+)/secrets/([^/]+)", name)
        if m:
            if verb == "addVersion":
                self._get(name)
                return self._add_secret_version(name, (r.json or {}).get("payload") or {})
            if verb:
                self._get(name)
                return self._iam(r, name)
            if r.method == "GET":
                return self._get(name)
        m = re.fullmatch(r"projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)", name)
        if m:
            name = self._secret_version(name)
            if verb == "access" and r.method == "GET":
                version = self._get(name)
                if version["state"] != "ENABLED":
                    raise ApiError(400, "FAILED_PRECONDITION", f"{name} is in {version['state']} state")
                data = self._state.secret_data[name]
                return {"name": name, "payload": {"data": base64.b64encode(data).decode()}}
            if not verb and r.method == "GET":
                return self._get(name)
        raise ApiError(404, "NOT_FOUND", f"secretmanager: no route for {r.method} {path}")

    def _add_secret_version(self, secret: str, payload: dict) -> dict:
        if "data" not in payload:
            raise ApiError(400, "INVALID_ARGUMENT", "payload.data is required")
        data = base64.b64decode(payload["data"], validate=True)
        number = 1 + sum(1 for n in self._state.secret_data if n.startswith(f"{secret}/versions/"))
        name = f"{secret}/versions/{number}"
        self._state.secret_data[name] = data
        version = {
            "name": name,
            "createTime": "2025-01-01T00:00:00.000000Z",
            "state": "ENABLED",
            "replicationStatus": {"automatic": {}},
            "etag": f'"{next(self._ids):05d}"',
        }
        if "dataCrc32c" in payload:
            version["clientSpecifiedPayloadChecksum"] = True
        return self._put(name, version)

    def _secret_version(self, name: str) -> str:
        """``.../versions/latest`` -> the newest version's name (404 when there is none)."""
        secret, _, version = name.rpartition("/versions/")
        self._get(secret)
        if version != "latest":
            return name
        numbers = [
            int(n.rsplit("/", 1)[-1]) for n in self._state.secret_data if n.startswith(f"{secret}/versions/")
        ]
        if not numbers:
            raise _not_found(name)
        return f"{secret}/versions/{max(numbers)}"


# -- helpers ------------------------------------------------------------------------------


def _strip_version(path: str) -> str:
    """``/v2/projects/p/...`` -> ``projects/p/...``."""
    parts = path.lstrip("/").split("/", 1)
    return parts[1] if len(parts) > 1 and re.fullmatch(r"v\d+\w*", parts[0]) else path.lstrip("/")


def _split_verb(path: str) -> tuple[str, str]:
    head, _, last = path.rpartition("/")
    if ":" in last:
        last, verb = last.split(":", 1)
        return (f"{head}/{last}" if head else last), verb
    return path, ""


def _camel(dotted: str) -> str:
    """``build_config.entry_point`` -> ``buildConfig.entryPoint`` (update masks come in both)."""
    return ".".join(re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), part) for part in dotted.split("."))


def _get_path(data: dict, dotted: str):
    for key in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return copy.deepcopy(data)


def _set_path(data: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    if value is None:
        data.pop(keys[-1], None)
    else:
        data[keys[-1]] = value


def _function_deployed(name: str, sent: dict | None, current: dict | None = None) -> dict:
    """The function as the service would return it after a deployment of ``sent``."""
    function = copy.deepcopy(current or {})
    for key, value in (sent or {}).items():
        function[key] = copy.deepcopy(value)
    short = name.rsplit("/", 1)[-1]
    project, region = name.split("/")[1], name.split("/")[3]
    service = function.setdefault("serviceConfig", {})
    service["service"] = f"projects/{project}/locations/{region}/services/{short.lower()}"
    service["uri"] = f"https://{short.lower()}-abc123xyz-{region[:2]}.a.run.app"
    service.setdefault("revision", f"{short.lower()}-00001-abc")
    function.update(
        {
            "name": name,
            "environment": "GEN_2",
            "state": "ACTIVE",
            "url": f"https://{region}-{project}.cloudfunctions.net/{short}",
        }
    )
    return function


def _function_metadata(function: dict) -> dict:
    return {
        "@type": "type.googleapis.com/google.cloud.functions.v2.OperationMetadata",
        "target": function["name"],
        "verb": "create",
        "stages": [{"name": stage, "state": "COMPLETE"} for stage in ("BUILD", "SERVICE")],
    }


def _metric_stored(project: str, sent: dict, created: str | None = None) -> dict:
    """A log-based metric as the service returns it: the descriptor's type and times filled in."""
    metric = copy.deepcopy(sent)
    metric_type = f"logging.googleapis.com/user/{metric['name']}"
    descriptor = metric.setdefault("metricDescriptor", {})
    descriptor.update({"name": f"projects/{project}/metricDescriptors/{metric_type}", "type": metric_type})
    now = "2025-01-01T00:00:00.000000Z"
    metric.update({"createTime": created or now, "updateTime": now})
    return metric


def _dead_port() -> int:
    """A loopback port with nothing listening (bound then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv=None) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--project", default="channelkit-test")
    args = parser.parse_args(argv)
    recorder = GcloudRecorder(args.project)
    if args.port:
        recorder._server.server_close()
        recorder._server = ThreadingHTTPServer(("127.0.0.1", args.port), recorder._server.RequestHandlerClass)
    recorder.start()
    print(f"recording on {recorder.url}; environment for gcloud:", flush=True)
    for key, value in sorted(recorder.env("/tmp/gcloud-recorder-config").items()):
        print(f"export {key}={value}", flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            for request in recorder.find()[seen:]:
                print(request, json.dumps(request.json) if request.json else "", flush=True)
                seen += 1
    except KeyboardInterrupt:
        recorder.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
