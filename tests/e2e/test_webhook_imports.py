"""The webhook process never imports googleapiclient (a cold-start cost it does not need).

A fresh interpreter serves one real notification through functions-framework's
test client, on the Firestore emulator, then lists what it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from channelkit.testing.harness import notification_headers
from support.webhook_testing import SOURCE, new_channel

SERVE_ONE = """
    import json, sys
    import functions_framework
    app = functions_framework.create_app(target="webhook", source=sys.argv[1])
    response = app.test_client().post("/", headers=json.loads(sys.argv[2]))
    print(json.dumps({
        "status": response.status_code,
        "googleapiclient": sorted(m for m in sys.modules if m.startswith("googleapiclient")),
        "firestore": "google.cloud.firestore" in sys.modules,
    }))
"""


def test_serving_a_notification_does_not_import_googleapiclient(store, firestore_env):
    channel = new_channel()
    store.create(channel)
    env = {k: v for k, v in os.environ.items() if k != "CHANNELKIT_HANDLER"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(SERVE_ONE),
            str(SOURCE),
            json.dumps(notification_headers(channel, 7, "update")),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "googleapiclient": [], "firestore": True}
