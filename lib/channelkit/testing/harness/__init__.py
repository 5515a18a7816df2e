"""One test harness for channelkit's tests, benchmarks and scripts (standard library only).

* ``notification_headers`` — Google's headers of one notification for a stored ``Channel``;
* ``post`` — one request on the loopback interface, never through a proxy;
  ``free_port`` / ``port_open`` — a port to listen on, whether one is taken;
* ``wait_until`` — poll a condition, ``TimeoutError`` after a deadline;
* ``LoopbackReceiver`` — a webhook on 127.0.0.1 that records what it is sent, and answers
  as told (``judged_by``: as channelkit's ``Receiver`` decides);
* ``FunctionsFrameworkProcess`` — a function under functions-framework, started on a
  free port, ready without a line in its log, stopped with its whole process group;
  ``stop_process_group`` for any other child started in a session of its own;
* ``PushRelay`` — one Pub/Sub push endpoint spreading deliveries over several function
  processes, as Cloud Run spreads them over instances.
"""

from channelkit.testing.harness.headers import FAR_EXPIRATION, notification_headers
from channelkit.testing.harness.loopback import free_port, port_open, post
from channelkit.testing.harness.processes import FunctionsFrameworkProcess, stop_process_group
from channelkit.testing.harness.receiver import LoopbackReceiver, judged_by
from channelkit.testing.harness.relay import PushRelay
from channelkit.testing.harness.waiting import wait_until

__all__ = [
    "FAR_EXPIRATION",
    "FunctionsFrameworkProcess",
    "LoopbackReceiver",
    "PushRelay",
    "free_port",
    "judged_by",
    "notification_headers",
    "port_open",
    "post",
    "stop_process_group",
    "wait_until",
]
